/**
 * MongoDB access: the one place that builds the client, names the collections and creates
 * their indexes. Works on MongoDB and on FerretDB (no transactions, change streams, TTL or
 * partial indexes are used: see the README).
 */
import { MongoClient, type Collection, type Db } from 'mongodb';
import type { Contact, Delivery, Incident, Site, Subscriber } from '../domain/types';
import type { Receipt } from './receipts';
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
  receipts: Collection<Receipt>;
  /** Small bookkeeping documents: how far a background job got. */
  cursors: Collection<{ _id: string; position?: string }>;
  rateLimits: Collection<RateLimitDoc>;
  /** One document per send attempt of a delivery record: whoever inserts it may send. */
  sendClaims: Collection<{ _id: string; at: Date }>;
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
  close(): Promise<void>;
}

export async function connectStore(uri: string, dbName: string): Promise<Store> {
  // Polling monitor: FerretDB speaks no streaming hello (exhaust), and a process whose monitor had
  // been streaming was seen never to reconnect after FerretDB restarted (the fault drill).
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000, appName: 'avviso', serverMonitoringMode: 'poll' });
  await client.connect();
  const db = client.db(dbName);
  const store: Store = {
    client,
    db,
    sites: db.collection<Site>('sites'),
    subscribers: db.collection<Subscriber>('subscribers'),
    contacts: db.collection<Contact>('contacts'),
    incidents: db.collection<Incident>('incidents'),
    deliveries: db.collection<Delivery>('deliveries'),
    receipts: db.collection<Receipt>('receipts'),
    cursors: db.collection<{ _id: string; position?: string }>('cursors'),
    rateLimits: db.collection<RateLimitDoc>('rate_limits'),
    sendClaims: db.collection<{ _id: string; at: Date }>('send_claims'),
    ruleVersions: db.collection<RuleVersionDoc>('rule_versions'),
    inbound: db.collection<InboundMessage>('inbound_messages'),
    alertEvents: db.collection<AlertEventDoc>('alert_events'),
    alertIncidents: db.collection<AlertEpisodeDoc>('alert_incidents'),
    rejectedPayloads: db.collection<RejectedPayloadDoc>('rejected_payloads'),
    apiKeys: db.collection<ApiKeyDoc>('api_keys'),
    apiKeyUses: db.collection<{ _id: string; lastUsedAt: Date }>('api_key_uses'),
    auditLog: db.collection<AuditEntry>('audit_log'),
    ledger: db.collection<LedgerEntry>('ledger'),
    billingRuns: db.collection<BillingRunDoc>('billing_runs'),
    close: () => client.close(),
  };
  await ensureIndexes(store);
  return store;
}

/** Idempotent: creating an index that exists is a no-op. */
export async function ensureIndexes(s: Store): Promise<void> {
  await Promise.all([
    // Walking the network downstream asks "which sites does X feed?"; operators list a town's sites.
    // (FerretDB 1.24 keeps these indexes but answers every query but `{_id: x}` with a scan: see
    // store/audience.ts and import/ for how the hot paths live with that.)
    s.sites.createIndex({ uplink: 1 }),
    s.sites.createIndex({ area: 1, _id: 1 }),
    // The audience of a set of sites, in contract order; search by phone number.
    s.subscribers.createIndex({ siteId: 1, _id: 1 }),
    s.subscribers.createIndex({ phones: 1 }),
    // Who is on call; which teams a person is in.
    s.contacts.createIndex({ onCall: 1, _id: 1 }),
    s.contacts.createIndex({ members: 1 }),
    s.incidents.createIndex({ key: 1 }, { unique: true }),
    s.incidents.createIndex({ openedAt: -1 }),
    // Sending picks the next planned messages of one kind for one incident, in id order.
    s.deliveries.createIndex({ incidentId: 1, kind: 1, state: 1, _id: 1 }),
    s.deliveries.createIndex({ providerMessageId: 1 }),
    s.inbound.createIndex({ messageUuid: 1 }, { unique: true }),
    s.rateLimits.createIndex({ key: 1, version: -1 }),
    s.receipts.createIndex({ messageUuid: 1 }),
    // An alert's history, and its latest episode.
    s.alertEvents.createIndex({ dedupKey: 1, receivedAt: -1 }),
    s.alertIncidents.createIndex({ dedupKey: 1, episode: -1 }),
    s.rejectedPayloads.createIndex({ receivedAt: -1 }),
    // A month's invoice lines in key order, reports by entry type and month; an incident's costs.
    s.ledger.createIndex({ type: 1, period: 1, _id: 1 }),
    s.ledger.createIndex({ incidentId: 1 }),
    // The audit log, newest first, whole or for one key; metrics read deliveries changed since their last scrape.
    s.auditLog.createIndex({ at: -1 }),
    s.auditLog.createIndex({ 'actor.keyId': 1, at: -1 }),
    s.deliveries.createIndex({ updatedAt: 1, _id: 1 }),
  ]);
}

/** Checks that the database answers; used by health checks. */
export async function pingStore(s: Store): Promise<void> {
  await s.db.command({ ping: 1 });
}
