/**
 * Delivery receipts from the provider. The API stores each receipt as it arrives (one insert,
 * batched with its neighbours) before answering, and an applier moves the delivery records forward
 * in grouped updates: a receipt storm costs a few large writes, not one update per callback.
 */
import { ObjectId, type AnyBulkWriteOperation } from 'mongodb';
import type { Store } from './db';
import type { Delivery, DeliveryState } from '../domain/types';
import { bulkWriteInChunks } from './deliveries';

export interface Receipt {
  _id?: ObjectId;
  messageUuid: string;
  /** The first part's uuid for a multi-part message: the id we hold. */
  parentMessageUuid?: string;
  status: string;
  sequence?: number;
  units?: number;
  totalAmount?: string;
  errorCode?: string;
  receivedAt: Date;
}

/** Plivo's status words, as delivery states. */
export const PROVIDER_STATES: Record<string, DeliveryState> = { queued: 'accepted', sent: 'sent', delivered: 'delivered', undelivered: 'undelivered', failed: 'failed', rejected: 'failed' };

/**
 * The states a receipt may replace. A receipt only moves a record forward, so a repeated or
 * late one (a `sent` arriving after `delivered`) changes nothing.
 */
const MAY_REPLACE: Record<DeliveryState, DeliveryState[]> = {
  planned: [],
  sending: [],
  accepted: ['sending'],
  sent: ['sending', 'accepted'],
  delivered: ['sending', 'accepted', 'sent', 'undelivered'],
  undelivered: ['sending', 'accepted', 'sent'],
  failed: ['sending', 'accepted', 'sent'],
  expired: [],
};

export async function insertReceipts(store: Store, receipts: Receipt[]): Promise<void> {
  if (receipts.length) await store.receipts.insertMany(receipts, { ordered: false });
}

const CURSOR_ID = 'receipts-applied';
/** Receipts younger than this are left for the next round: inserts from several API processes may land slightly out of id order. */
const SETTLE_MS = 1000;

/**
 * Applies the receipts stored since the last call, in id order, and remembers how far it got.
 * Safe to run in several processes at once: every update is conditional on the record's state.
 */
export async function applyStoredReceipts(store: Store, now = new Date(), limit = 5000): Promise<number> {
  const cursor = await store.cursors.findOne({ _id: CURSOR_ID });
  const after = cursor?.position ? new ObjectId(cursor.position) : new ObjectId('000000000000000000000000');
  const settled = ObjectId.createFromTime(Math.floor((now.getTime() - SETTLE_MS) / 1000));
  const batch = await store.receipts.find({ _id: { $gt: after, $lt: settled } }).sort({ _id: 1 }).limit(limit).toArray();
  if (batch.length === 0) return 0;
  await applyReceipts(store, batch, now);
  await store.cursors.updateOne({ _id: CURSOR_ID }, { $set: { position: batch[batch.length - 1]!._id!.toHexString() } }, { upsert: true });
  return batch.length;
}

/** Groups receipts by what they write, so that one update carries many records. */
export async function applyReceipts(store: Store, receipts: Receipt[], now: Date): Promise<void> {
  // Within one batch the latest word on a message wins: order by Plivo's Sequence, then arrival.
  const latest = new Map<string, Receipt>();
  for (const r of [...receipts].sort((a, b) => (a.sequence ?? 0) - (b.sequence ?? 0))) {
    const id = r.parentMessageUuid || r.messageUuid;
    const state = PROVIDER_STATES[r.status];
    if (!state) continue;
    const prev = latest.get(id);
    // Keep the most advanced state; a final state is never replaced by an earlier one.
    if (!prev || MAY_REPLACE[state].includes(PROVIDER_STATES[prev.status]!) || state === PROVIDER_STATES[prev.status]) latest.set(id, r);
  }
  const groups = new Map<string, { state: DeliveryState; units?: number; amount?: string; error?: string; ids: string[] }>();
  for (const [id, r] of latest) {
    const state = PROVIDER_STATES[r.status]!;
    const key = JSON.stringify([state, r.units, r.totalAmount, r.errorCode]);
    const g = groups.get(key) ?? { state, units: r.units, amount: r.totalAmount, error: r.errorCode || undefined, ids: [] };
    g.ids.push(id);
    groups.set(key, g);
  }
  const ops: AnyBulkWriteOperation<Delivery>[] = [...groups.values()].map((g) => ({
    updateMany: {
      filter: { providerMessageId: { $in: g.ids }, state: { $in: MAY_REPLACE[g.state] } },
      update: {
        $set: {
          state: g.state,
          updatedAt: now,
          ...(g.units !== undefined ? { units: g.units } : {}),
          ...(g.amount !== undefined ? { cost: g.amount, currency: 'USD' } : {}),
          ...(g.error ? { error: `provider error ${g.error}` } : {}),
        },
        $push: { history: { at: now, state: g.state, note: g.error ? `receipt: ${g.state}, error ${g.error}` : `receipt: ${g.state}` } },
      },
    },
  }));
  await bulkWriteInChunks(store.deliveries, ops);
}

/** Applies stored receipts every `everyMs` until stopped; errors are logged and retried next round. */
export function startReceiptApplier(store: Store, onError: (err: unknown) => void, everyMs = 500): { stop(): Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  const timer = setInterval(() => {
    running = running.then(async () => {
      if (stopped) return;
      try {
        while ((await applyStoredReceipts(store)) === 5000 && !stopped);
      } catch (err) {
        onError(err);
      }
    });
  }, everyMs);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

/**
 * Applies the receipts already stored for these messages. Called right after their ids are
 * recorded: a receipt can arrive before the id is written (Plivo is fast, or the answer was lost
 * and the id was found later by reconciliation), and the applier would have found no record for it.
 */
export async function applyReceiptsFor(store: Store, messageUuids: string[], now = new Date()): Promise<void> {
  if (messageUuids.length === 0) return;
  const early = await store.receipts.find({ $or: [{ messageUuid: { $in: messageUuids } }, { parentMessageUuid: { $in: messageUuids } }] }).toArray();
  if (early.length) await applyReceipts(store, early, now);
}
