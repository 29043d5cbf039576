/**
 * MongoDB access: the one place that builds the client, names the collections and creates
 * their indexes. Works on MongoDB and on FerretDB (no transactions, change streams, TTL or
 * partial indexes are used: see the README).
 */
import { MongoClient, type Collection, type Db } from 'mongodb';
import type { Delivery, Incident, Site, Subscriber } from '../domain/types';
import type { Receipt } from './receipts';
import type { RateLimitDoc } from './rate-limits';
import type { AlertEpisodeDoc, AlertEventDoc, RejectedPayloadDoc } from '../ingest/store';

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
  incidents: Collection<Incident>;
  deliveries: Collection<Delivery>;
  receipts: Collection<Receipt>;
  /** Small bookkeeping documents: how far a background job got. */
  cursors: Collection<{ _id: string; position?: string }>;
  rateLimits: Collection<RateLimitDoc>;
  /** One document per send attempt of a delivery record: whoever inserts it may send. */
  sendClaims: Collection<{ _id: string; at: Date }>;
  inbound: Collection<InboundMessage>;
  /** Monitoring webhooks (ingest/store.ts): each delivered alert, each alert episode, each refused request. */
  alertEvents: Collection<AlertEventDoc>;
  alertIncidents: Collection<AlertEpisodeDoc>;
  rejectedPayloads: Collection<RejectedPayloadDoc>;
  close(): Promise<void>;
}

export async function connectStore(uri: string, dbName: string): Promise<Store> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000, appName: 'avviso' });
  await client.connect();
  const db = client.db(dbName);
  const store: Store = {
    client,
    db,
    sites: db.collection<Site>('sites'),
    subscribers: db.collection<Subscriber>('subscribers'),
    incidents: db.collection<Incident>('incidents'),
    deliveries: db.collection<Delivery>('deliveries'),
    receipts: db.collection<Receipt>('receipts'),
    cursors: db.collection<{ _id: string; position?: string }>('cursors'),
    rateLimits: db.collection<RateLimitDoc>('rate_limits'),
    sendClaims: db.collection<{ _id: string; at: Date }>('send_claims'),
    inbound: db.collection<InboundMessage>('inbound_messages'),
    alertEvents: db.collection<AlertEventDoc>('alert_events'),
    alertIncidents: db.collection<AlertEpisodeDoc>('alert_incidents'),
    rejectedPayloads: db.collection<RejectedPayloadDoc>('rejected_payloads'),
    close: () => client.close(),
  };
  await ensureIndexes(store);
  return store;
}

/** Idempotent: creating an index that exists is a no-op. */
export async function ensureIndexes(s: Store): Promise<void> {
  await Promise.all([
    // Walking the network downstream asks "which sites does X feed?".
    s.sites.createIndex({ uplink: 1 }),
    // The audience of a set of sites, paged by contract id.
    s.subscribers.createIndex({ siteId: 1, _id: 1 }),
    s.subscribers.createIndex({ phones: 1 }),
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
  ]);
}

/** Checks that the database answers; used by health checks. */
export async function pingStore(s: Store): Promise<void> {
  await s.db.command({ ping: 1 });
}
