/**
 * Delivery records: one per incident, message kind, subscriber and phone number. They are the
 * per-recipient state of an incident, kept here rather than in workflow history so that an
 * incident with 100,000 recipients costs the workflow a handful of events per batch.
 */
import type { AnyBulkWriteOperation, FindCursor, MongoBulkWriteError } from 'mongodb';
import type { Store } from './db';
import type { Delivery, Language, MessageKind, Subscriber } from '../domain/types';

export function deliveryId(incidentId: string, kind: MessageKind, subscriberId: string, phone: string): string {
  return `${incidentId}|${kind}|${subscriberId}|${phone}`;
}

const INSERT_BATCH = 1000;

/**
 * Inserts records, skipping those that exist: planning the same audience twice (a retried
 * activity) plans nothing new. Returns how many were new.
 */
async function insertNew(store: Store, docs: Delivery[]): Promise<number> {
  if (docs.length === 0) return 0;
  try {
    const r = await store.deliveries.insertMany(docs, { ordered: false });
    return r.insertedCount;
  } catch (err) {
    const bulk = err as MongoBulkWriteError;
    const writeErrors = bulk.writeErrors ? (Array.isArray(bulk.writeErrors) ? bulk.writeErrors : [bulk.writeErrors]) : [];
    if (writeErrors.length > 0 && writeErrors.every((e) => e.code === 11000)) return docs.length - writeErrors.length;
    throw err;
  }
}

function planned(incidentId: string, kind: MessageKind, subscriberId: string, phone: string, language: Language, now: Date): Delivery {
  return { _id: deliveryId(incidentId, kind, subscriberId, phone), incidentId, kind, subscriberId, phone, language, state: 'planned', attempts: 0, createdAt: now, updatedAt: now };
}

/** Plans one `kind` message per phone of each subscriber the cursor yields. */
export async function planForSubscribers(store: Store, incidentId: string, kind: MessageKind, subscribers: FindCursor<Subscriber>, now: Date): Promise<{ recipients: number; planned: number }> {
  let batch: Delivery[] = [];
  let recipients = 0;
  let created = 0;
  for await (const s of subscribers) {
    for (const phone of s.phones) {
      batch.push(planned(incidentId, kind, s._id, phone, s.language, now));
      recipients++;
    }
    if (batch.length >= INSERT_BATCH) {
      created += await insertNew(store, batch);
      batch = [];
    }
  }
  created += await insertNew(store, batch);
  return { recipients, planned: created };
}

/** States in which a message has reached the provider. */
export const REACHED_PROVIDER: Delivery['state'][] = ['accepted', 'sent', 'delivered', 'undelivered'];

/** Plans a restoration notice for every number whose outage notice reached the provider. */
export async function planRestorations(store: Store, incidentId: string, now: Date): Promise<number> {
  const cursor = store.deliveries.find({ incidentId, kind: 'outage', state: { $in: REACHED_PROVIDER } }).sort({ _id: 1 });
  let batch: Delivery[] = [];
  let created = 0;
  for await (const d of cursor) {
    batch.push(planned(incidentId, 'restored', d.subscriberId, d.phone, d.language, now));
    if (batch.length >= INSERT_BATCH) {
      created += await insertNew(store, batch);
      batch = [];
    }
  }
  return created + (await insertNew(store, batch));
}

/**
 * Takes up to `limit` planned messages and marks them `sending`, so that a second sender
 * does not take them too. Those left in `sending` by a crashed attempt are reconciled with the
 * provider before being sent again (see the delivery issue); this skeleton does not resend them.
 */
export async function claimPlanned(store: Store, incidentId: string, kind: MessageKind, limit: number, now: Date): Promise<Delivery[]> {
  const candidates = await store.deliveries.find({ incidentId, kind, state: 'planned' }).sort({ _id: 1 }).limit(limit).toArray();
  if (candidates.length === 0) return [];
  const ids = candidates.map((d) => d._id);
  await store.deliveries.updateMany({ _id: { $in: ids }, state: 'planned' }, { $set: { state: 'sending', updatedAt: now }, $inc: { attempts: 1 } });
  return store.deliveries.find({ _id: { $in: ids }, state: 'sending' }).sort({ _id: 1 }).toArray();
}

export async function countPlanned(store: Store, incidentId: string, kind: MessageKind): Promise<number> {
  return store.deliveries.countDocuments({ incidentId, kind, state: 'planned' });
}

export interface SendOutcome {
  id: string;
  state: 'accepted' | 'failed';
  providerMessageId?: string;
  error?: string;
}

/** Writes the outcome of a send, one bulk request for the whole batch. */
export async function recordOutcomes(store: Store, outcomes: SendOutcome[], now: Date): Promise<void> {
  if (outcomes.length === 0) return;
  const ops: AnyBulkWriteOperation<Delivery>[] = outcomes.map((o) => ({
    updateOne: {
      filter: { _id: o.id },
      update: { $set: { state: o.state, updatedAt: now, ...(o.providerMessageId ? { providerMessageId: o.providerMessageId } : {}), ...(o.error ? { error: o.error } : {}) } },
    },
  }));
  await store.deliveries.bulkWrite(ops, { ordered: false });
}
