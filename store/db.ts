/**
 * MongoDB access: the one place that builds the client, names the collections and creates
 * their indexes. Works on MongoDB and on FerretDB (no transactions, change streams, TTL or
 * partial indexes are used: see the README).
 */
import { MongoClient, type Collection, type Db } from 'mongodb';
import type { Contact, Delivery, Incident, Site, Subscriber } from '../domain/types';
import { batchUnappliedReceipts, type Receipt, type ReceiptBatch } from './receipts';
import { noteUnpagedScopes } from './deliveries';
import type { SendRequestDoc } from './send-requests';
import type { NoticeRollDoc } from './notice-rolls';
import { usesCompoundIndexes } from './backend';
import { ensureRosterIndexes } from './site-roster';
import type { RateLimitDoc } from './rate-limits';
import type { ApiKeyDoc } from './api-keys';
import type { AuditEntry } from './audit-log';
import type { RuleVersionDoc } from './rule-versions';
import type { AlertEpisodeDoc, AlertEventDoc, RejectedPayloadDoc } from '../ingest/store';
import type { BillingRunDoc, LedgerEntry } from './ledger';

/** An SMS a subscriber sent us (STOP, START, INFO...), kept as received. */
export interface InboundMessage {
  _id?: import('mongodb').ObjectId;
  messageUuid: string;
  from: string;
  to: string;
  text: string;
  receivedAt: Date;
  /** What we made of it: the keyword's action, and the subscribers it touched. */
  action?: string;
  subscriberIds?: string[];
  /** A staff contact's acknowledgement: who sent it, and the incident it took. */
  contactId?: string;
  incidentId?: string;
}

export interface Store {
  client: MongoClient;
  db: Db;
  sites: Collection<Site>;
  subscribers: Collection<Subscriber>;
  /** Staff to escalate to (store/contacts.ts). */
  contacts: Collection<Contact>;
  incidents: Collection<Incident>;
  deliveries: Collection<Delivery>;
  /** Receipts as stored by versions before receipt batches (one per document): kept for retention and lookups. */
  receipts: Collection<Receipt>;
  /** Receipts, one document per group commit of the API (store/receipts.ts). */
  receiptBatches: Collection<ReceiptBatch>;
  /** Receipts that named a message no record carried yet (its id is written moments after Plivo answers): the applier tries them again. */
  pendingReceipts: Collection<Receipt>;
  /** Small bookkeeping documents: how far a background job got. */
  cursors: Collection<{ _id: string; position?: string }>;
  rateLimits: Collection<RateLimitDoc>;
  /**
   * Per incident, the last page number its delivery records were planned on, and the kinds and channels planned
   * (store/deliveries.ts); how often records of a page (`changed.p<n>`) or of any page may have become due (store/quiet-pages.ts).
   */
  deliveryPages: Collection<{
    _id: string;
    last: number;
    scopes?: string[];
    changed?: Record<string, number>;
    changedAll?: number;
    /** The latest `notBefore` ever planned (the epoch for none; absent: not known, from before it was noted). */
    deferredUntil?: Date;
    /** Created by a version that rolls its notices (store/notice-rolls.ts): a page without a roll was planned by one before. */
    rolled?: boolean;
  }>;
  /** What a resolution needs of each outage notice, one document per page of records (store/notice-rolls.ts). */
  noticeRolls: Collection<NoticeRollDoc>;
  /** Claims made once by a unique insert (store/coverage.ts; send claims of versions before send requests). */
  sendClaims: Collection<{ _id: string; at: Date; by?: string }>;
  /** One document per batch and page a sender took (store/send-requests.ts): the claim, and the attempt of each record. */
  sendRequests: Collection<SendRequestDoc>;
  ruleVersions: Collection<RuleVersionDoc>;
  inbound: Collection<InboundMessage>;
  /** Monitoring webhooks (ingest/store.ts): each delivered alert, each alert episode, each refused request. */
  alertEvents: Collection<AlertEventDoc>;
  alertIncidents: Collection<AlertEpisodeDoc>;
  rejectedPayloads: Collection<RejectedPayloadDoc>;
  /** API keys (store/api-keys.ts), hashed; and the audit log of every change made through the API (insert-only). */
  apiKeys: Collection<ApiKeyDoc>;
  /** When each key was last used: apart from the key, so that this frequent write can never undo a revocation. */
  apiKeyUses: Collection<{ _id: string; lastUsedAt: Date }>;
  auditLog: Collection<AuditEntry>;
  /** Billing (store/ledger.ts): the append-only ledger of charges and costs, and each month's run. */
  ledger: Collection<LedgerEntry>;
  billingRuns: Collection<BillingRunDoc>;
  /** Connects a new client and puts it in place of the current one, which is closed (see superviseClient). */
  replaceClient(why: string): Promise<void>;
  close(): Promise<void>;
}

const COLLECTIONS = {
  sites: 'sites',
  subscribers: 'subscribers',
  contacts: 'contacts',
  incidents: 'incidents',
  deliveries: 'deliveries',
  receipts: 'receipts',
  receiptBatches: 'receipt_batches',
  pendingReceipts: 'pending_receipts',
  cursors: 'cursors',
  rateLimits: 'rate_limits',
  sendClaims: 'send_claims',
  sendRequests: 'send_requests',
  deliveryPages: 'delivery_pages',
  noticeRolls: 'notice_rolls',
  ruleVersions: 'rule_versions',
  inbound: 'inbound_messages',
  alertEvents: 'alert_events',
  alertIncidents: 'alert_incidents',
  rejectedPayloads: 'rejected_payloads',
  apiKeys: 'api_keys',
  apiKeyUses: 'api_key_uses',
  auditLog: 'audit_log',
  ledger: 'ledger',
  billingRuns: 'billing_runs',
} as const;

export interface StoreOptions {
  /** Replace a client whose server has been unreachable this long while a fresh connection works (default 30 s; 0: never). */
  replaceWedgedAfterMs?: number;
  /** Where the supervisor says what it did (default: a JSON line on stderr). */
  log?: (level: 'warn' | 'error', msg: string) => void;
  /** Emit the driver's command events (the fan-out benchmark counts the documents written). */
  monitorCommands?: boolean;
}

function newClient(uri: string, monitorCommands = false): MongoClient {
  // Polling monitor: FerretDB speaks no streaming hello (exhaust), and a process whose monitor had
  // been streaming was seen never to reconnect after FerretDB restarted (the fault drill).
  return new MongoClient(uri, {
    serverSelectionTimeoutMS: 10_000,
    appName: 'avviso',
    serverMonitoringMode: 'poll',
    monitorCommands,
  });
}

export async function connectStore(uri: string, dbName: string, options: StoreOptions = {}): Promise<Store> {
  let client = newClient(uri, options.monitorCommands);
  await client.connect();
  let db = client.db(dbName);
  // Collections are looked up through the current client, so a replaced client is used at once
  // by every caller that reaches them through the store.
  const cache = new Map<string, Collection<never>>();
  const store = {
    get client() {
      return client;
    },
    get db() {
      return db;
    },
    async replaceClient(why: string) {
      const next = newClient(uri, options.monitorCommands);
      await next.connect();
      const old = client;
      client = next;
      db = next.db(dbName);
      cache.clear();
      supervisor.watch(next);
      log('warn', `database client replaced: ${why}`);
      await old.close(true).catch(() => undefined);
    },
    async close() {
      supervisor.stop();
      await client.close();
    },
  } as Store;
  for (const [field, name] of Object.entries(COLLECTIONS)) {
    Object.defineProperty(store, field, {
      enumerable: true,
      get: () => {
        let c = cache.get(name);
        if (!c) cache.set(name, (c = db.collection<never>(name)));
        return c;
      },
    });
  }
  const log =
    options.log ??
    ((level, msg) => process.stderr.write(`${JSON.stringify({ level, time: Date.now(), name: 'store', msg })}\n`));
  const supervisor = superviseClient(store, uri, options.replaceWedgedAfterMs ?? 30_000, log);
  supervisor.watch(client);
  await ensureIndexes(store);
  // Delivery records planned before pages existed (store/deliveries.ts) go on page 0, where the
  // sender looks for them first, and their kinds and channels are noted for their incidents.
  await oncePerDatabase(store, 'migration:delivery-pages', () => noteUnpagedScopes(store));
  await oncePerDatabase(store, 'migration:receipt-batches', () => batchUnappliedReceipts(store));
  return store;
}

/**
 * Runs a data migration the first time a process connects to a database that has not had it,
 * remembered in `cursors`: these read every document once (their filters cannot be handed down
 * on FerretDB), which must not happen at every start.
 */
async function oncePerDatabase(s: Store, marker: string, migrate: () => Promise<unknown>): Promise<void> {
  if (await s.cursors.findOne({ _id: marker })) return;
  await migrate();
  await s.cursors.updateOne({ _id: marker }, { $set: { position: 'done' } }, { upsert: true });
}

/**
 * The driver reconnects by itself after the database restarts, within a heartbeat. Once, under
 * load, a process's client was seen to stay "server unknown" for ten minutes after FerretDB came
 * back, while every other process had reconnected (the fault drill, issue 9). So: when the client
 * has seen no server for `afterMs` and a fresh connection answers a ping, the client is wedged,
 * and it is replaced. A database that is really down is left alone: nothing better can be done.
 */
function superviseClient(store: Store, uri: string, afterMs: number, log: NonNullable<StoreOptions['log']>) {
  let unknownSince: number | undefined;
  let busy = false;
  const timer = afterMs > 0 ? setInterval(() => void check(), Math.max(1000, Math.min(5000, afterMs / 3))) : undefined;
  timer?.unref();
  async function check() {
    if (busy || unknownSince === undefined || Date.now() - unknownSince < afterMs) return;
    busy = true;
    try {
      if (!(await freshPingWorks(uri))) return; // really down: the client will reconnect when it is back
      const stuckFor = Math.round((Date.now() - unknownSince) / 1000);
      await store.replaceClient(`it had seen no database for ${stuckFor} s while a new connection worked`);
      unknownSince = undefined;
    } catch (err) {
      log('error', `database client could not be replaced: ${(err as Error).message}`);
    } finally {
      busy = false;
    }
  }
  return {
    watch(client: MongoClient) {
      client.on('serverDescriptionChanged', (e) => {
        if (client !== store.client) return;
        if (e.newDescription.type === 'Unknown') unknownSince ??= Date.now();
        else unknownSince = undefined;
      });
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}

async function freshPingWorks(uri: string): Promise<boolean> {
  const probe = new MongoClient(uri, { serverSelectionTimeoutMS: 2000, connectTimeoutMS: 2000 });
  try {
    await probe.connect();
    await probe.db('admin').command({ ping: 1 });
    return true;
  } catch {
    return false;
  } finally {
    await probe.close().catch(() => undefined);
  }
}

/** Idempotent: creating an index that exists is a no-op. */
export async function ensureIndexes(s: Store): Promise<void> {
  // Indexes only an engine that reads compound and range indexes gets (store/backend.ts says why):
  // on FerretDB these two would cost four index writes per update of a delivery record.
  const mongoOnly = !(await usesCompoundIndexes(s))
    ? []
    : [
        // Sending picks the next planned messages of one kind for one incident, in id order; metrics
        // read deliveries changed since their last scrape.
        s.deliveries.createIndex({ incidentId: 1, kind: 1, state: 1, _id: 1 }),
        s.deliveries.createIndex({ updatedAt: 1, _id: 1 }),
        // An erasure finds the rolls that name the subscriber. Not on FerretDB: its B-tree index on an
        // array of a page's subscribers exceeds PostgreSQL's row size; there an erasure reads every roll.
        s.noticeRolls.createIndex({ subscriberIds: 1 }),
      ];
  await Promise.all([
    ...mongoOnly,
    // Walking the network downstream asks "which sites does X feed?"; operators list a town's sites.
    // (FerretDB 1.24 keeps these indexes but answers every query but `{_id: x}` with a scan: see
    // store/audience.ts and import/ for how the hot paths live with that.)
    s.sites.createIndex({ uplink: 1 }),
    s.sites.createIndex({ area: 1, _id: 1 }),
    // The audience of a set of sites, in contract order; search by phone number.
    s.subscribers.createIndex({ siteId: 1, _id: 1 }),
    s.subscribers.createIndex({ phones: 1 }),
    // A site's roster documents (store/site-roster.ts).
    ensureRosterIndexes(s),
    // Who is on call; which teams a person is in.
    s.contacts.createIndex({ onCall: 1, _id: 1 }),
    s.contacts.createIndex({ members: 1 }),
    s.incidents.createIndex({ key: 1 }, { unique: true }),
    s.incidents.createIndex({ openedAt: -1 }),
    // Every alert's decision asks which planned maintenance is under way (store/maintenances.ts
    // maintenanceCovering): on FerretDB the equality on kind then reads the maintenances only.
    s.incidents.createIndex({ kind: 1 }),
    // Sending reads planned records page by page (store/deliveries.ts dueCandidates); the sweeps
    // ask one state of an incident at a time. On FerretDB this gives the GIN indexes on incidentId,
    // page and state that keep those reads to what they match.
    s.deliveries.createIndex({ incidentId: 1, page: 1, state: 1 }),
    s.deliveries.createIndex({ providerMessageId: 1 }),
    // A page's requests, read with its records; an incident's open requests, for the reconciliation.
    s.sendRequests.createIndex({ incidentId: 1, page: 1 }),
    s.sendRequests.createIndex({ open: 1 }),
    // A resolution reads its incident's rolls.
    s.noticeRolls.createIndex({ incidentId: 1 }),
    s.inbound.createIndex({ messageUuid: 1 }, { unique: true }),
    s.rateLimits.createIndex({ key: 1, version: -1 }),
    // Receipts stored one per document by older versions: retention deletes them with their message's record.
    s.receipts.createIndex({ messageUuid: 1 }),
    s.receipts.createIndex({ parentMessageUuid: 1 }),
    // The applier reads receipt batches ten seconds at a time, in id order (store/receipts.ts).
    s.receiptBatches.createIndex({ slot: 1, _id: 1 }),
    // An alert's history, and its latest episode.
    s.alertEvents.createIndex({ dedupKey: 1, receivedAt: -1 }),
    // The sweep of alerts stored but not decided (ingest/store.ts undecidedAlertEvents): the marker
    // is removed once an alert is decided.
    s.alertEvents.createIndex({ undecided: 1 }),
    // Correlation reads the incidents open in a network tree, under the tree's lock (ingest/correlation.ts).
    s.db.collection('incident_correlation').createIndex({ state: 1, roots: 1 }),
    s.alertIncidents.createIndex({ dedupKey: 1, episode: -1 }),
    s.rejectedPayloads.createIndex({ receivedAt: -1 }),
    // A month's invoice lines in key order, reports by entry type and month; an incident's costs.
    s.ledger.createIndex({ type: 1, period: 1, _id: 1 }),
    s.ledger.createIndex({ incidentId: 1 }),
    // The audit log, newest first, whole or for one key.
    s.auditLog.createIndex({ at: -1 }),
    s.auditLog.createIndex({ 'actor.keyId': 1, at: -1 }),
  ]);
}

/** Checks that the database answers; used by health checks. */
export async function pingStore(s: Store): Promise<void> {
  await s.db.command({ ping: 1 });
}
