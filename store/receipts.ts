/**
 * Delivery receipts from the provider. The API stores each receipt as it arrives (one insert,
 * batched with its neighbours) before answering, and an applier moves the delivery records forward
 * in rounds: one read of the records a round's receipts name, then one write per record that moves.
 */
import { ObjectId, type AnyBulkWriteOperation } from 'mongodb';
import type { Store } from './db';
import type { Delivery } from '../domain/types';
import { conditionById, findByValues, readPagesInOrder } from './backend';
import { laterWord, PROVIDER_STATES, RECEIPT_MAY_REPLACE, receiptMoves } from '../delivery/lifecycle';

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
  /** The ten-second slot its `_id` was made in (SLOT_MS since the epoch): the applier reads receipts slot by slot (receiptsBetween). */
  slot?: number;
}

export { PROVIDER_STATES } from '../delivery/lifecycle';

/**
 * Receipts are read in slots of ten seconds: small enough that a round reads few receipts besides
 * its own (at 125 messages a second, some 300 receipts a second: 3,000 a slot, where a minute held
 * 19,000, all read again every round), large enough that an applier stopped for a day walks 8,640
 * slots, a few seconds of empty queries.
 */
const SLOT_MS = 10_000;

/** The slot an id was made in. */
export function slotOf(id: ObjectId): number {
  return Math.floor(id.getTimestamp().getTime() / SLOT_MS);
}

/** Stores receipts, each with its id made here and the slot of that id. */
export async function insertReceipts(store: Store, receipts: Receipt[]): Promise<void> {
  for (const r of receipts) {
    r._id ??= new ObjectId();
    r.slot = slotOf(r._id);
  }
  if (receipts.length) await store.receipts.insertMany(receipts, { ordered: false });
}

/**
 * Receipts with `after` < `_id` < `before`, in id order, at most `limit`, read slot by slot:
 * a range of ids is something FerretDB would test on every receipt ever stored, each round, where
 * `{slot}` is an equality its backend answers from an index (see readPagesInOrder).
 */
async function receiptsBetween(
  store: Store,
  after: ObjectId | null,
  before: ObjectId,
  limit: number,
): Promise<Receipt[]> {
  // With nothing applied yet, from the oldest receipt: one full read, before the first round only.
  const first = after
    ? slotOf(after)
    : (
        await store.receipts
          .find({}, { projection: { slot: 1 } })
          .sort({ _id: 1 })
          .limit(1)
          .toArray()
      )[0]?.slot;
  if (first === undefined) return [];
  const range = after ? { $gt: after, $lt: before } : { $lt: before };
  return (
    await readPagesInOrder(first, slotOf(before), limit, (slot) =>
      store.receipts.find({ slot, _id: range }).sort({ _id: 1 }).toArray(),
    )
  ).items;
}

/**
 * Receipts stored before receipts had slots, and not applied yet, get theirs: once per database
 * (store/db.ts), when a process first connects to it after the upgrade.
 */
export async function giveOldReceiptsSlots(store: Store): Promise<void> {
  const cursor = await store.cursors.findOne({ _id: CURSOR_ID });
  const after = cursor?.position ? new ObjectId(cursor.position) : undefined;
  const old = await store.receipts
    .find({ ...(after ? { _id: { $gt: after } } : {}), slot: { $exists: false } }, { projection: { _id: 1 } })
    .toArray();
  if (old.length)
    await store.receipts.bulkWrite(
      old.map((r) => ({ updateOne: { filter: { _id: r._id }, update: { $set: { slot: slotOf(r._id!) } } } })),
    );
}

const CURSOR_ID = 'receipts-applied';
/** Receipts younger than this are left for the next round: inserts from several API processes may land slightly out of id order. */
const SETTLE_MS = 1000;
/** How long a receipt for a message no record carries yet is tried again. */
const PENDING_MAX_AGE_MS = 10 * 60_000;

/**
 * Applies the receipts stored since the last call, in id order, and remembers how far it got.
 * Safe to run in several processes at once: a receipt only moves a record forward.
 *
 * A receipt can arrive before the record of its message carries the message's id (Plivo answers
 * the request, its first callbacks come, and only then is the batch's answer written): such a
 * receipt is kept in `pending_receipts` and tried again on every round for PENDING_MAX_AGE_MS.
 * (Finding the early ones from the sender's side instead meant a scan of every receipt per batch.)
 * Several API processes may each run an applier: a pending receipt two of them apply at once
 * moves its record to the same state twice (one history step too many), nothing worse.
 * One older than that belongs to no message of ours, or to one whose answer was lost and found
 * later by reconciliation, which applies its receipts itself (applyReceiptsFor); the watchdog asks
 * Plivo about any message whose receipt is overdue.
 */
export async function applyStoredReceipts(store: Store, now = new Date(), limit = 5000): Promise<number> {
  const cursor = await store.cursors.findOne({ _id: CURSOR_ID });
  const after = cursor?.position ? new ObjectId(cursor.position) : null;
  const settled = ObjectId.createFromTime(Math.floor((now.getTime() - SETTLE_MS) / 1000));
  const batch = await receiptsBetween(store, after, settled, limit);
  const pending = await store.pendingReceipts.find({}).limit(limit).toArray();
  if (batch.length === 0 && pending.length === 0) return 0;
  const unmatched = await applyReceipts(store, [...pending, ...batch], now);
  const messageOf = (r: Receipt) => r.parentMessageUuid || r.messageUuid;
  const keep = (r: Receipt) =>
    unmatched.has(messageOf(r)) && now.getTime() - r.receivedAt.getTime() < PENDING_MAX_AGE_MS;
  const settledPending = pending.filter((r) => !keep(r)).map((r) => r._id!);
  if (settledPending.length) await store.pendingReceipts.deleteMany({ _id: { $in: settledPending } });
  const newlyPending = batch.filter(keep);
  if (newlyPending.length)
    await store.pendingReceipts
      .insertMany(newlyPending, { ordered: false })
      .catch((err: { code?: number; writeErrors?: unknown }) => {
        // Another applier got there first: the copy it kept is the same receipt.
        if (err.code !== 11000 && !err.writeErrors) throw err;
      });
  if (batch.length)
    await store.cursors.updateOne(
      { _id: CURSOR_ID },
      { $set: { position: batch[batch.length - 1]!._id!.toHexString() } },
      { upsert: true },
    );
  return batch.length;
}

/**
 * Applies receipts, grouped by message (the latest word on each wins), and returns the messages
 * no record carries. The records of all these messages are read at once (findByValues: one `$in`
 * query, or on FerretDB over PostgreSQL one indexed query per message); each record is then
 * written by `_id` (on MongoDB with its state in the filter, so that the move stays forward-only
 * even against a concurrent writer).
 */
export async function applyReceipts(store: Store, receipts: Receipt[], now: Date): Promise<Set<string>> {
  // Within one batch the latest word on a message wins: order by Plivo's Sequence, then arrival.
  const latest = new Map<string, Receipt>();
  for (const r of [...receipts].sort((a, b) => (a.sequence ?? 0) - (b.sequence ?? 0))) {
    const id = r.parentMessageUuid || r.messageUuid;
    const state = PROVIDER_STATES[r.status];
    if (!state) continue;
    const prev = latest.get(id);
    // Keep the most advanced state; a final state is never replaced by an earlier one.
    if (laterWord(prev ? PROVIDER_STATES[prev.status] : undefined, state)) latest.set(id, r);
  }
  const unmatched = new Set(latest.keys());
  if (latest.size === 0) return unmatched;
  const records = await findByValues(
    store,
    store.deliveries,
    'providerMessageId',
    [...latest.keys()],
    {},
    { projection: { _id: 1, state: 1, providerMessageId: 1 } },
  );
  // Each record by `_id`, while still in a state the receipt may replace (the adapter's shape per engine).
  const ifStill = await conditionById<Delivery>(store);
  const ops: AnyBulkWriteOperation<Delivery>[] = [];
  for (const d of records) {
    const r = latest.get(d.providerMessageId!);
    if (!r) continue;
    unmatched.delete(d.providerMessageId!);
    const state = PROVIDER_STATES[r.status]!;
    if (!receiptMoves(d.state, state)) continue; // repeated, late or out of order: changes nothing
    const error = r.errorCode || undefined;
    ops.push({
      updateOne: {
        filter: ifStill(d._id, { state: { $in: RECEIPT_MAY_REPLACE[state] } }),
        update: {
          $set: {
            state,
            updatedAt: now,
            ...(r.units !== undefined ? { units: r.units } : {}),
            ...(r.totalAmount !== undefined ? { cost: r.totalAmount, currency: 'USD' } : {}),
            ...(error ? { error: `provider error ${error}` } : {}),
          },
          $push: {
            history: { at: now, state, note: error ? `receipt: ${state}, error ${error}` : `receipt: ${state}` },
          },
        },
      },
    });
  }
  if (ops.length) await store.deliveries.bulkWrite(ops, { ordered: false });
  return unmatched;
}

/**
 * Applies stored receipts every `everyMs` until stopped; errors are logged and retried next round.
 *
 * Each round reads the receipts since the last one and scans the delivery records they name (on
 * FerretDB every filtered read is a scan): the pause after a round is at least as long as the
 * round took, so that under a storm the applier takes at most half of the database's time and
 * the senders keep the rest. (A timer firing every `everyMs` regardless queued rounds back to back
 * once one took longer than that.)
 */
export function startReceiptApplier(
  store: Store,
  onError: (err: unknown) => void,
  everyMs = 500,
): { stop(): Promise<void> } {
  let stopped = false;
  let wake: (() => void) | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  const loop = (async () => {
    while (!stopped) {
      const started = Date.now();
      try {
        while ((await applyStoredReceipts(store)) === 5000 && !stopped);
      } catch (err) {
        onError(err);
      }
      if (!stopped) await pause(Math.max(everyMs, Date.now() - started));
    }
  })();
  return {
    async stop() {
      stopped = true;
      wake?.();
      await loop;
    },
  };
}

/**
 * Applies the receipts already stored for these messages, wherever they are: reconciliation calls
 * it once it has found, at the provider, messages whose answer was lost; their receipts came while
 * no record carried their ids. (After an ordinary batch the sender does not look: the receipts that
 * came before its answer was written wait in pending_receipts for the applier's next round, and
 * one applier means no receipt is applied twice at once.)
 */
export async function applyReceiptsFor(store: Store, messageUuids: string[], now = new Date()): Promise<void> {
  if (messageUuids.length === 0) return;
  // Parts of a long message carry the first part's id as their parent.
  const early = [
    ...(await findByValues(store, store.receipts, 'messageUuid', messageUuids)),
    ...(await findByValues(store, store.receipts, 'parentMessageUuid', messageUuids)),
  ];
  if (early.length) await applyReceipts(store, early, now);
}
