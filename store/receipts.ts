/**
 * Delivery receipts from the provider. The API stores the receipts that arrive together as one
 * document, a receipt batch (api/plivo/receipt-buffer.ts: one insert per group commit, done before
 * any of them is answered), and an applier moves the delivery records forward in rounds: one read
 * of the records a round's receipts name, then one write per record that moves.
 *
 * Why batches: every receipt is stored as it comes, and a message has two or three (queued, sent,
 * delivered). One document per receipt was two or three documents written per SMS, more than the
 * message's own record; one per group commit is a few per thousand.
 */
import { ObjectId, type AnyBulkWriteOperation, type Filter, type WithId } from 'mongodb';
import type { Store } from './db';
import type { Delivery, DeliveryState } from '../domain/types';
import type { ProviderReport } from '../delivery/ports';
import {
  answersInMemory,
  answersOfRequests,
  countAnswersWritten,
  forgetAnswers,
  pendingAnswers,
  type AnswerRef,
} from './send-requests';
import { conditionById, findByValues } from './backend';
import { eachParallel } from '../domain/each-parallel';
import { groupBy } from '../domain/group-by';
import {
  holdIntermediate,
  isFinalWord,
  latestWords,
  messageOf,
  PROVIDER_STATES,
  RECEIPT_MAY_REPLACE,
  receiptMoves,
  type ReceiptWord,
} from '../delivery/lifecycle';

export interface Receipt {
  /** Made when stored; kept when the receipt waits in pending_receipts, so that two appliers keep one copy. */
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
  /** The send request the message went out in, as its receipt URL names it (receipts of older sends have none). */
  request?: string;
  /** Receipts stored one per document by versions before receipt batches: the ten-second slot of their `_id`. */
  slot?: number;
}

/** The receipts stored by one group commit, in arrival order. */
export interface ReceiptBatch {
  _id: ObjectId;
  /** The ten-second slot its `_id` was made in (SLOT_MS since the epoch): the applier reads batches slot by slot. */
  slot: number;
  receipts: Receipt[];
}

export { PROVIDER_STATES } from '../delivery/lifecycle';

/**
 * Batches are read in slots of ten seconds: small enough that a round reads few batches besides
 * its own, large enough that an applier stopped for a day walks 8,640 slots, a few seconds of
 * empty queries.
 */
const SLOT_MS = 10_000;

/** The slot an id was made in. */
export function slotOf(id: ObjectId): number {
  return Math.floor(id.getTimestamp().getTime() / SLOT_MS);
}

/** Stores receipts as one batch document (`id`: when it is stored, unless a test says otherwise). */
export async function insertReceipts(store: Store, receipts: Receipt[], id = new ObjectId()): Promise<void> {
  if (receipts.length === 0) return;
  for (const r of receipts) r._id ??= new ObjectId();
  await store.receiptBatches.insertOne({ _id: id, slot: slotOf(id), receipts });
}

/**
 * Batches with `after` < `_id` < `before`, in id order, until they hold `wantReceipts` receipts
 * (whole batches), read slot by slot: a range of ids is something FerretDB would test on every
 * batch ever stored, each round, where `{slot}` is an equality its backend answers from an index.
 * Empty slots are read several at once (an applier stopped for a day walks 8,640 of them); a slot
 * that holds batches is read alone, so that a round decodes little more than it applies.
 * `complete`: every batch before `before` was read.
 */
async function batchesBetween(
  store: Store,
  after: ObjectId | null,
  before: ObjectId,
  wantReceipts: number,
): Promise<{ batches: ReceiptBatch[]; complete: boolean }> {
  // With nothing applied yet, from the oldest batch: one full read, before the first round only.
  const first = after
    ? slotOf(after)
    : (
        await store.receiptBatches
          .find({}, { projection: { slot: 1 } })
          .sort({ _id: 1 })
          .limit(1)
          .toArray()
      )[0]?.slot;
  if (first === undefined) return { batches: [], complete: true };
  const range = after ? { $gt: after, $lt: before } : { $lt: before };
  const last = slotOf(before);
  const batches: ReceiptBatch[] = [];
  let receipts = 0;
  let slot = first;
  for (let atOnce = 1; slot <= last;) {
    const slots = Array.from({ length: Math.min(atOnce, last - slot + 1) }, (_, i) => slot + i);
    const found = (
      await Promise.all(slots.map((n) => store.receiptBatches.find({ slot: n, _id: range }).sort({ _id: 1 }).toArray()))
    ).flat();
    slot += slots.length;
    atOnce = found.length ? 1 : Math.min(MAX_EMPTY_SLOTS_AT_ONCE, atOnce * 2);
    for (const b of found) {
      if (receipts >= wantReceipts) return { batches, complete: false };
      batches.push(b);
      receipts += b.receipts.length;
    }
  }
  return { batches, complete: true };
}

const MAX_EMPTY_SLOTS_AT_ONCE = 8;

/**
 * Receipts an older version stored one per document and had not applied when this version first
 * connects: moved into batches (one per ten-second slot, its `_id` the slot's first receipt's, so
 * the applier takes them in their order and two processes migrating at once insert one copy).
 * The old documents stay where they are, for retention to delete with their incident.
 */
export async function batchUnappliedReceipts(store: Store): Promise<void> {
  const cursor = await store.cursors.findOne({ _id: CURSOR_ID });
  const after = cursor?.position ? new ObjectId(cursor.position) : undefined;
  const old = await store.receipts
    .find(after ? { _id: { $gt: after } } : {})
    .sort({ _id: 1 })
    .toArray();
  const bySlot = new Map<number, Receipt[]>();
  for (const r of old) {
    const slot = slotOf(r._id!);
    const { slot: _slot, ...receipt } = r;
    bySlot.set(slot, [...(bySlot.get(slot) ?? []), receipt]);
  }
  for (const receipts of bySlot.values())
    await insertReceipts(store, receipts, receipts[0]!._id).catch((err: { code?: number }) => {
      if (err.code !== 11000) throw err; // another process moved them first
    });
}

const CURSOR_ID = 'receipts-applied';
/** Receipts younger than this are left for the next round: inserts from several API processes may land slightly out of id order. */
const SETTLE_MS = 1000;
/** How long a receipt for a message no record carries yet is tried again. */
const PENDING_MAX_AGE_MS = 10 * 60_000;
/** Receipts this much younger than PENDING_MAX_AGE_MS are read again by a reconciliation all the same (clocks, a slow round). */
const PENDING_MARGIN_MS = 2 * 60_000;

/**
 * Receipts a round applies (whole batches, so up to one batch more). Counted in receipts, not
 * batches: a batch is one group commit of the API and holds 1 to 500; in the 20,000 drill they
 * held about 50, and ten batches a round left the applier two minutes behind the callbacks. (At
 * 25,000 a round took minutes between reading the records and writing them, and the 20,000 drill
 * found the window.)
 */
const RECEIPTS_PER_ROUND = 5000;

/**
 * How long an intermediate word (`sent`) waits for its message's final one before it is applied
 * (delivery/lifecycle.ts holdIntermediate). Held in the applier's memory only: the receipt itself
 * is stored, and a process that stops loses nothing but the intermediate step of a record (the
 * final receipt, or the watchdog's question to Plivo for an overdue message, settles it).
 */
const HOLD_INTERMEDIATE_MS = 30_000;

/** Intermediate words held back, per store, by message. */
const heldWords = new WeakMap<Store, Map<string, Receipt>>();
function heldBy(store: Store): Map<string, Receipt> {
  let held = heldWords.get(store);
  if (!held) heldWords.set(store, (held = new Map()));
  return held;
}

/**
 * How far this process's applier got, as the time its receipts were stored: the last batch a full
 * round applied (more may wait), or about now when a round found no more. The watchdog judges a
 * receipt overdue by this clock, not the wall clock: in a storm the receipts are stored in time but
 * applied a minute later, and by the wall clock every one of them looked lost (the 20,000 drill
 * asked Plivo about 1,000 messages per sweep, 9 in 10 of them delivered, and wrote each record twice).
 */
const appliedUpTo = new WeakMap<Store, Date>();
/** Beyond this lag the watchdog goes by the wall clock again: an applier that is stuck must not stop it asking Plivo. */
const MAX_TRUSTED_LAG_MS = 10 * 60_000;

/** The time up to which stored receipts are applied, as far as this process knows (see appliedUpTo); at most `now`. */
export function receiptsAppliedUpTo(store: Store, now = new Date()): Date {
  const upTo = appliedUpTo.get(store);
  if (!upTo || upTo >= now || now.getTime() - upTo.getTime() > MAX_TRUSTED_LAG_MS) return now;
  return upTo;
}

/** Whether this process's last round left stored receipts for the next (the applier's loop goes on at once). */
const behind = new WeakMap<Store, boolean>();

/** The round each store's applier is running, if any: the sweeper and the worker's applier share it. */
const roundInFlight = new WeakMap<Store, Promise<number>>();

/**
 * Applies the receipts stored since the last call, in id order, and remembers how far it got;
 * returns the number of batches read (up to RECEIPTS_PER_ROUND receipts: there may be more).
 *
 * One round at a time per process: a call while a round runs waits for that round (two rounds
 * reading the same batches moved each record twice, one write per receipt too many). Several
 * processes may still apply at once; a receipt only moves a record forward, so that is safe.
 *
 * A receipt can arrive before the record of its message carries the message's id (Plivo answers
 * the request, its first callbacks come, and only then is the batch's answer written): such a
 * receipt is kept in `pending_receipts` and tried again on every round for PENDING_MAX_AGE_MS.
 * (Finding the early ones from the sender's side instead meant a scan of every receipt per batch.)
 * One older than that belongs to no message of ours, or to one whose answer was lost and found
 * later by reconciliation, which applies its receipts itself (applyReceiptsFor); the watchdog asks
 * Plivo about any message whose receipt is overdue.
 */
export function applyStoredReceipts(store: Store, now = new Date()): Promise<number> {
  const running = roundInFlight.get(store);
  if (running) return running;
  const round = applyRound(store, now).finally(() => roundInFlight.delete(store));
  roundInFlight.set(store, round);
  return round;
}

async function applyRound(store: Store, now: Date): Promise<number> {
  const cursor = await store.cursors.findOne({ _id: CURSOR_ID });
  const after = cursor?.position ? new ObjectId(cursor.position) : null;
  const settled = ObjectId.createFromTime(Math.floor((now.getTime() - SETTLE_MS) / 1000));
  const { batches, complete: caughtUp } = await batchesBetween(store, after, settled, RECEIPTS_PER_ROUND);
  behind.set(store, !caughtUp);
  const batch = batches.flatMap((b) => b.receipts);
  const pending = await store.pendingReceipts.find({}).limit(5000).toArray();
  const held = heldBy(store);
  const upTo = caughtUp ? new Date(now.getTime() - SETTLE_MS) : batches[batches.length - 1]!._id.getTimestamp();
  if (batches.length === 0 && pending.length === 0 && held.size === 0) {
    appliedUpTo.set(store, upTo);
    return 0;
  }
  // The holds below count in the receipts' own time, up to where this round read (`upTo`), not by the
  // wall clock: an applier minutes behind its receipts (a fan-out of 100,000) still finds the final
  // word that came seconds after a `sent`, where by the wall clock every `sent` was old, was written,
  // and its record written again by the final word (84,752 records written twice in one run).
  const { apply, hold } = holdIntermediate([...held.values(), ...pending, ...batch], upTo, HOLD_INTERMEDIATE_MS);
  held.clear();
  for (const r of hold) held.set(messageOf(r), r);
  const { unmatched, deferred } = await applyWords(store, apply, now, upTo);
  // A `sent` whose answer is still pending waits on (see applyWords): held as the young ones are.
  for (const [message, r] of latestWords(apply.filter((r) => deferred.has(messageOf(r)))))
    held.set(message, r as Receipt);
  // A receipt applied to no record is kept in pending_receipts for PENDING_MAX_AGE_MS; held ones stay where they are.
  const waits = (r: Receipt) =>
    unmatched.has(messageOf(r)) && now.getTime() - r.receivedAt.getTime() < PENDING_MAX_AGE_MS;
  const applied = new Set(apply);
  const kept = new Set(pending);
  const heldNow = new Set(hold);
  const settledPending = pending.filter((r) => !heldNow.has(r) && !(applied.has(r) && waits(r))).map((r) => r._id);
  if (settledPending.length) await store.pendingReceipts.deleteMany({ _id: { $in: settledPending } });
  const newlyPending = apply.filter((r) => !kept.has(r as WithId<Receipt>) && waits(r)) as WithId<Receipt>[];
  if (newlyPending.length)
    await store.pendingReceipts
      .insertMany(newlyPending, { ordered: false })
      .catch((err: { code?: number; writeErrors?: unknown }) => {
        // Another applier got there first: the copy it kept is the same receipt.
        if (err.code !== 11000 && !err.writeErrors) throw err;
      });
  if (batches.length)
    await store.cursors.updateOne(
      { _id: CURSOR_ID },
      { $set: { position: batches[batches.length - 1]!._id.toHexString() } },
      { upsert: true },
    );
  appliedUpTo.set(store, upTo);
  return batches.length;
}

/**
 * Applies receipts, grouped by message (the latest word on each wins), and returns the messages
 * no record carries. The records of all these messages are read at once (findByValues: one `$in`
 * query, or on FerretDB over PostgreSQL one indexed query per message); each record is then
 * written by `_id` (on MongoDB with its state in the filter, so that the move stays forward-only
 * even against a concurrent writer).
 */
export async function applyReceipts(store: Store, receipts: Receipt[], now: Date): Promise<Set<string>> {
  return (await applyWords(store, receipts, now)).unmatched;
}

/** How long a `sent` may wait for its message's final word while the answer is pending (then it is applied). */
const DEFER_INTERMEDIATE_MAX_MS = 5 * 60_000;

function isYoungSent(r: Receipt, readUpTo: Date): boolean {
  return (
    PROVIDER_STATES[r.status] === 'sent' && readUpTo.getTime() - r.receivedAt.getTime() < DEFER_INTERMEDIATE_MAX_MS
  );
}

/**
 * applyReceipts, for the applier's rounds: with `deferIntermediate` (the time up to which the round
 * read its receipts), a message whose answer is still pending and whose latest word is `sent` is
 * left out (`deferred`), for the round to hold: its record is written once, by its final word (or by
 * the watchdog's, after the wait), however late that comes (under a storm of callbacks Plivo's
 * `delivered` may come a minute after `sent`).
 */
async function applyWords(
  store: Store,
  receipts: Receipt[],
  now: Date,
  deferIntermediate?: Date,
): Promise<{ unmatched: Set<string>; deferred: Set<string> }> {
  // Within one batch the latest word on a message wins: order by Plivo's Sequence, then arrival.
  const latest = latestWords(receipts);
  const unmatched = new Set(latest.keys());
  const deferred = new Set<string>();
  if (latest.size === 0) return { unmatched, deferred };
  const ifStill = await conditionById<Delivery>(store);
  // Messages whose answer is pending (store/send-requests.ts): their records are known without a
  // read. Those this process does not know of are read from the request their receipt names (a few
  // documents by `_id`); the rest are looked for on the records (most carry their answer by then),
  // and only what is still unknown in every pending request.
  const answers = answersInMemory(store, [...latest.keys()]);
  const requestOf = new Map<string, string>();
  for (const r of receipts) if (r.request && !answers.has(messageOf(r))) requestOf.set(messageOf(r), r.request);
  for (const [uuid, ref] of await answersOfRequests(store, requestOf)) answers.set(uuid, ref);
  const records = await findByValues(
    store,
    store.deliveries,
    'providerMessageId',
    [...latest.keys()].filter((uuid) => !answers.has(uuid)),
    {},
    { projection: { _id: 1, state: 1, providerMessageId: 1 } },
  );
  const onRecords = new Set(records.map((d) => d.providerMessageId!));
  const unknown = [...latest.keys()].filter((uuid) => !answers.has(uuid) && !onRecords.has(uuid));
  if (unknown.length) for (const [uuid, ref] of await pendingAnswers(store, unknown)) answers.set(uuid, ref);
  if (deferIntermediate)
    for (const uuid of answers.keys())
      if (isYoungSent(latest.get(uuid) as Receipt, deferIntermediate)) {
        deferred.add(uuid);
        answers.delete(uuid);
        latest.delete(uuid);
        unmatched.delete(uuid);
      }
  // First the answers with their receipts, one bulk per request: what each bulk wrote is exactly how
  // many of its request's answers are on their records now (the condition holds once per answer).
  // Only where a bulk wrote less than it named (the watchdog wrote some answers first) the receipts
  // move those records as any other: FerretDB reads and decodes a record for every statement, and
  // naming both writes for every message doubled the applier's reads.
  const ops: AnyBulkWriteOperation<Delivery>[] = [];
  const written = new Map<string, number>();
  for (const [request, pairs] of groupBy(answeredMoveOps(answers, latest, ifStill, now), (m) => m.request)) {
    const wrote = (
      await store.deliveries.bulkWrite(
        pairs.map((p) => p.withAnswer),
        { ordered: false },
      )
    ).matchedCount;
    if (wrote) written.set(request, wrote);
    if (wrote < pairs.length) ops.push(...pairs.map((p) => p.afterAnswer));
  }
  for (const uuid of answers.keys()) unmatched.delete(uuid);
  ops.push(...receiptMoveOps(records, latest, ifStill, now));
  for (const d of records) if (latest.has(d.providerMessageId!)) unmatched.delete(d.providerMessageId!);
  if (ops.length) await store.deliveries.bulkWrite(ops, { ordered: false });
  // A message's final word is on its record now, with its message id: a later word (repeated, late)
  // finds the record by that id, and this process keeps in memory only the answers still on their way.
  forgetAnswers(
    store,
    [...answers.keys()].filter((uuid) => isFinalWord(latest.get(uuid)!)),
  );
  // Requests whose answers are all on their records now stop being pending (counted, not read).
  await countAnswersWritten(store, written, now);
  return { unmatched, deferred };
}

/** What a receipt writes on a record: its state, parts and cost, and the step in its history. */
function receiptFields(r: Receipt | ProviderReport, state: DeliveryState, now: Date) {
  const error = r.errorCode || undefined;
  return {
    set: {
      state,
      updatedAt: now,
      ...(r.units !== undefined ? { units: r.units } : {}),
      ...(r.totalAmount !== undefined ? { cost: r.totalAmount, currency: 'USD' } : {}),
      ...(error ? { error: `provider error ${error}` } : {}),
    },
    step: { at: now, state, note: error ? `receipt: ${state}, error ${error}` : `receipt: ${state}` },
  };
}

/** A message whose answer is pending: the write of its answer with its receipt, and the receipt's move should the answer be written already. */
export interface AnsweredMove {
  request: string;
  withAnswer: AnyBulkWriteOperation<Delivery>;
  afterAnswer: AnyBulkWriteOperation<Delivery>;
}

/**
 * The writes for receipts whose answer is pending, by the record's `_id`, unread. Two conditional
 * writes per message, of which at most one matches: the record still waits for its answer (planned,
 * or given up while the message was on its way, on the attempt before), and gets the answer and the
 * receipt at once (`withAnswer`); or the watchdog wrote the answer first (settleAnswered), and the
 * receipt moves it as any other (`afterAnswer`: receiptMoveOps' condition).
 */
export function answeredMoveOps(
  answers: Map<string, AnswerRef>,
  latest: Map<string, ReceiptWord>,
  ifStill: (id: string, condition: Filter<Delivery>) => Filter<Delivery>,
  now: Date,
): AnsweredMove[] {
  const moves: AnsweredMove[] = [];
  for (const [uuid, a] of answers) {
    const r = latest.get(uuid) as Receipt | undefined;
    if (!r) continue;
    const state = PROVIDER_STATES[r.status]!;
    if (!receiptMoves('accepted', state)) continue;
    const { set, step } = receiptFields(r, state, now);
    moves.push({
      request: a.request,
      withAnswer: {
        updateOne: {
          filter: ifStill(a.id, { state: { $in: ['planned', 'expired'] }, attempts: a.attempt - 1 }),
          update: {
            $set: { ...set, providerMessageId: uuid, attempts: a.attempt, reservedAt: a.reservedAt },
            $push: {
              history: {
                $each: [
                  { at: a.reservedAt, state: 'sending' },
                  { at: a.answeredAt, state: 'accepted', ...(a.note ? { note: a.note } : {}) },
                  step,
                ],
              },
            },
          },
        },
      },
      afterAnswer: {
        updateOne: {
          filter: ifStill(a.id, { state: { $in: RECEIPT_MAY_REPLACE[state] }, providerMessageId: uuid }),
          update: { $set: set, $push: { history: step } },
        },
      },
    });
  }
  return moves;
}

type RecordRead = Pick<Delivery, '_id' | 'state' | 'providerMessageId'>;

/**
 * The writes that move `records` (as read) by their messages' latest words: each by `_id`, while the
 * record is still in a state the receipt may replace AND still carries the receipt's message id
 * (the adapter keeps only `_id` where anything more is a scan). The id matters: a record read on
 * its first attempt may, before this write lands, have been found undelivered by another applier,
 * retried, and accepted again under a new id; a receipt of the first attempt must not move the
 * second (it did, under load with two workers: the drill's "sent again after a delivered one").
 */
export function receiptMoveOps(
  records: RecordRead[],
  latest: Map<string, ReceiptWord>,
  ifStill: (id: string, condition: Filter<Delivery>) => Filter<Delivery>,
  now: Date,
): AnyBulkWriteOperation<Delivery>[] {
  const ops: AnyBulkWriteOperation<Delivery>[] = [];
  for (const d of records) {
    const r = latest.get(d.providerMessageId!) as Receipt | undefined;
    if (!r) continue;
    const state = PROVIDER_STATES[r.status]!;
    if (!receiptMoves(d.state, state)) continue; // repeated, late or out of order: changes nothing
    const { set, step } = receiptFields(r, state, now);
    ops.push({
      updateOne: {
        filter: ifStill(d._id, { state: { $in: RECEIPT_MAY_REPLACE[state] }, providerMessageId: d.providerMessageId }),
        update: { $set: set, $push: { history: step } },
      },
    });
  }
  return ops;
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
        while ((await applyStoredReceipts(store)) > 0 && behind.get(store) && !stopped);
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
 * Applies the receipts stored since `since` for these messages: reconciliation calls it once it
 * has found, at the provider, messages whose answer was lost; their receipts came while no record
 * carried their ids, and those older than the wait in pending_receipts are read here. (After an
 * ordinary batch the sender does not look: the receipts that came before its answer was written
 * wait in pending_receipts for the applier's next round.) Receipts stored one per document by an
 * older version are looked up too.
 */
export async function applyReceiptsFor(
  store: Store,
  messageUuids: string[],
  since: Date,
  now = new Date(),
): Promise<void> {
  if (messageUuids.length === 0) return;
  const wanted = new Set(messageUuids);
  // Slot by slot, each an equality FerretDB answers from its index (a `$gte` read every batch ever stored).
  // Only the slots whose unmatched receipts no longer wait in pending_receipts: the younger ones wait
  // there, and the applier's next round applies them now that the answers are known. (Reading every
  // slot since the request, a minute after a kill about 60,000 receipts, took 10-15 s of the drill's
  // reconciliations, to apply what the next round applies anyway.)
  const lastSlot = Math.floor((now.getTime() - PENDING_MAX_AGE_MS + PENDING_MARGIN_MS) / SLOT_MS);
  const firstSlot = Math.floor(since.getTime() / SLOT_MS);
  const slots = Array.from({ length: Math.max(0, lastSlot - firstSlot + 1) }, (_, i) => firstSlot + i);
  const batches: ReceiptBatch[] = [];
  await eachParallel(
    slots,
    4,
    async (slot) => void batches.push(...(await store.receiptBatches.find({ slot }).toArray())),
  );
  batches.sort((a, b) => a._id.toHexString().localeCompare(b._id.toHexString())); // arrival order
  // Receipts stored one per document (versions before batches) only while such documents exist: on
  // FerretDB a lookup is one query per message id, 2,000 queries for a batch of 1,000.
  const legacy = (await store.receipts.findOne({}, { projection: { _id: 1 } }))
    ? [
        ...(await findByValues(store, store.receipts, 'messageUuid', messageUuids)),
        ...(await findByValues(store, store.receipts, 'parentMessageUuid', messageUuids)),
      ]
    : [];
  // Parts of a long message carry the first part's id as their parent.
  const early = [
    ...batches.flatMap((b) => b.receipts).filter((r) => wanted.has(r.parentMessageUuid || r.messageUuid)),
    ...legacy,
  ];
  if (early.length) await applyReceipts(store, early, now);
}
