/**
 * Delivery records: one per incident, message kind, subscriber and recipient on a channel. They
 * are the per-recipient state of an incident, kept here rather than in workflow history so that an
 * incident with 100,000 recipients costs the workflow a handful of events per batch.
 *
 * Writes are batched (insertMany, updateMany over id lists, bulk writes of per-record updates), so
 * the hot path does few, large requests. On FerretDB the per-record updates of the send path use
 * filters it can hand to SQLite (`{_id}` alone): see updateEachInState.
 *
 * Records are planned in pages: each insert of up to 1,000 records gets the incident's next page
 * number (`page`, counted in `delivery_pages`), and the sender looks for due records page by page,
 * oldest first (dueCandidates). FerretDB hands a query's equalities to its backend but applies any
 * other condition, its sort and its limit itself, after reading every record the equalities match:
 * "the first 1,000 planned records" read all 100,000 planned records of a large incident for each
 * batch (about 22 messages a second), where "the planned records of page 7" read at most 1,000.
 */
import type {
  Collection,
  Filter,
  FindCursor,
  MongoBulkWriteError,
  OptionalUnlessRequiredId,
  UpdateFilter,
} from 'mongodb';
import type { Store } from './db';
import { groupBy } from '../domain/group-by';
import { findByValues, updateByValues } from './backend';
import { noteRecordsChanged } from './quiet-pages';
import { writeNoticeRoll } from './notice-rolls';
import { decideLost, type WatchdogPolicy } from '../delivery/watchdog';
import type { PlanInput, SweepResult } from '../delivery/ports';

import type { Delivery, DeliveryChannel, DeliveryState, MessageKind, Subscriber } from '../domain/types';

export function deliveryId(
  incidentId: string,
  kind: MessageKind,
  subscriberId: string,
  channel: DeliveryChannel,
  to: string,
  round?: number,
): string {
  return `${incidentId}|${kind}${round !== undefined ? `#${round}` : ''}|${subscriberId}|${channel}:${to}`;
}

const INSERT_BATCH = 1000;

/**
 * Inserts planned records (up to a page's worth, INSERT_BATCH), skipping those that exist:
 * planning the same audience twice (a retried activity) plans nothing new. The records are put on
 * their incident's next page first. Returns how many were new.
 */
export async function insertPlanned(store: Store, docs: Delivery[]): Promise<number> {
  return (await insertNew(store, docs)).length;
}

/** insertPlanned, returning the records it inserted. */
async function insertNew(store: Store, docs: Delivery[]): Promise<Delivery[]> {
  if (docs.length === 0) return [];
  for (const [incidentId, ofIncident] of groupBy(docs, (d) => d.incidentId)) {
    const scopes = [...new Set(ofIncident.map((d) => scopeKey(d)))];
    const latest = Math.max(0, ...ofIncident.map((d) => d.notBefore?.getTime() ?? 0));
    const page = await nextPage(store, incidentId, scopes, new Date(latest));
    for (const d of ofIncident) d.page = page;
    // Before the records: a roll names every record of the page that may exist (store/notice-rolls.ts).
    await writeNoticeRoll(store, incidentId, page, ofIncident);
  }
  const inserted = await insertIgnoringDuplicates(store.deliveries, docs);
  // A sender may have read the new page before the records landed, and taken it for quiet.
  await noteRecordsChanged(store, inserted);
  return inserted;
}

/** A kind and channel, as `delivery_pages` lists them: `outage/sms`. */
function scopeKey(d: { kind: MessageKind; channel: DeliveryChannel }): string {
  return `${d.kind}/${d.channel}`;
}

/**
 * Allocates an incident's next page number (1, 2, ...; 0 is the page of records planned before
 * pages existed, see store/db.ts) and notes the kinds and channels planned on it. Two planners
 * that read the same number share a page: pages only bound what one query reads, they decide
 * nothing else. A retried planning takes new pages for records that exist already; those pages
 * stay empty. Notes too the latest `notBefore` the incident ever planned (`deferredUntil`, the epoch
 * for none; before the records exist: see nextDueAt).
 */
async function nextPage(store: Store, incidentId: string, scopes: string[], latest: Date): Promise<number> {
  const r = await store.deliveryPages.findOneAndUpdate(
    { _id: incidentId },
    {
      $inc: { last: 1 },
      $addToSet: { scopes: { $each: scopes } },
      $max: { deferredUntil: latest },
      $setOnInsert: { rolled: true },
    },
    { upsert: true, returnDocument: 'after' },
  );
  return r?.last ?? 1;
}

/**
 * Inserts documents, skipping those whose `_id` exists, and returns the ones this call inserted.
 * A unique index is the one write FerretDB makes atomic under concurrency, so "whoever inserts
 * the id first wins" is how this module makes sure two senders never take the same message.
 */
async function insertIgnoringDuplicates<T extends { _id: string }>(collection: Collection<T>, docs: T[]): Promise<T[]> {
  if (docs.length === 0) return [];
  try {
    await collection.insertMany(docs as OptionalUnlessRequiredId<T>[], { ordered: false });
    return docs;
  } catch (err) {
    const bulk = err as MongoBulkWriteError;
    const writeErrors = bulk.writeErrors
      ? Array.isArray(bulk.writeErrors)
        ? bulk.writeErrors
        : [bulk.writeErrors]
      : [];
    if (writeErrors.length === 0 || writeErrors.some((e) => e.code !== 11000)) throw err;
    const failed = new Set(writeErrors.map((e) => e.index));
    return docs.filter((_, i) => !failed.has(i));
  }
}

export type { PlanInput } from '../delivery/ports';

export function plannedRecord(p: PlanInput, now: Date, note?: string): Delivery {
  return {
    _id: deliveryId(p.incidentId, p.kind, p.subscriberId, p.channel, p.to, p.round),
    incidentId: p.incidentId,
    kind: p.kind,
    subscriberId: p.subscriberId,
    channel: p.channel,
    to: p.to,
    language: p.language,
    state: 'planned',
    attempts: 0,
    ...(p.fallbackOf ? { fallbackOf: p.fallbackOf } : {}),
    ...(p.templateSet ? { templateSet: p.templateSet } : {}),
    ...(p.area ? { area: p.area } : {}),
    ...(p.notBefore ? { notBefore: p.notBefore } : {}),
    ...(p.graceEndsAt ? { graceEndsAt: p.graceEndsAt } : {}),
    ...(p.hold ? { hold: p.hold } : {}),
    ...(p.restoration !== undefined ? { restoration: p.restoration } : {}),
    ...(p.round !== undefined ? { round: p.round } : {}),
    ...(p.updates ? { updates: p.updates } : {}),
    ...(p.templateKind ? { templateKind: p.templateKind } : {}),
    ...(p.text !== undefined ? { text: p.text } : {}),
    page: 0,
    ...(p.coveredBy ? { state: 'expired' as const, coveredBy: p.coveredBy } : {}),
    history: [
      { at: now, state: 'planned', ...(note ? { note } : {}) },
      ...(p.coveredBy
        ? [
            {
              at: now,
              state: 'expired' as const,
              note: `not sent: covered by ${p.coveredBy}, which already told this number of the outage`,
            },
          ]
        : []),
    ],
    createdAt: now,
    updatedAt: now,
  };
}

/**
 * The numbers of subscribers who sent STOP: no SMS or call is planned to them, whatever plans it
 * (an update, a restoration, a fallback). Read once per planning; a STOP that lands while a
 * planning runs is caught by the STOP itself, which gives up what is planned to its number.
 */
async function optedOutNumbers(store: Store): Promise<Set<string>> {
  const optedOut = await store.subscribers.find({ optedOut: true }, { projection: { phones: 1 } }).toArray();
  return new Set(optedOut.flatMap((s) => s.phones));
}

const BY_PHONE: DeliveryChannel[] = ['sms', 'voice'];

/**
 * What a planner does with each batch of records it has just inserted (send those due at once:
 * delivery/sender.ts `whilePlanning`). Called in order, one batch at a time; while it runs, the next
 * batch is read and inserted.
 */
export type OnPlanned = (inserted: Delivery[]) => Promise<void>;

/**
 * The records a planning finds planned already, by incident, kind and round: a retried planning
 * (a killed worker, a restarted database) skips them rather than inserting them again, which
 * FerretDB answers with one failed insert each (20,000 of them took 20-35 s of the drill). Read
 * once per incident, kind and round, and only when one such record exists; the unique insert
 * still decides what a planning beside this one planned meanwhile.
 */
class PlannedAlready {
  private readonly known = new Map<string, Promise<Set<string>>>();
  constructor(private readonly store: Store) {}

  async has(d: Delivery): Promise<boolean> {
    const key = `${d.incidentId}|${d.kind}|${d.round ?? ''}`;
    let ids = this.known.get(key);
    if (!ids) {
      ids = this.read({ incidentId: d.incidentId, kind: d.kind, ...(d.round !== undefined ? { round: d.round } : {}) });
      this.known.set(key, ids);
    }
    return (await ids).has(d._id);
  }

  private async read(filter: Filter<Delivery>): Promise<Set<string>> {
    const projection = { _id: 1 };
    if (!(await this.store.deliveries.findOne(filter, { projection }))) return new Set();
    const found = await this.store.deliveries.find(filter, { projection }).toArray();
    return new Set(found.map((d) => d._id));
  }
}

/** Plans records in batches from any source of plan inputs; existing ones are left alone, and none goes to a number that opted out. */
export async function planAll(
  store: Store,
  inputs: AsyncIterable<PlanInput> | Iterable<PlanInput>,
  now: Date,
  note?: string,
  onPlanned?: OnPlanned,
): Promise<{ recipients: number; planned: number }> {
  let batch: Delivery[] = [];
  let recipients = 0;
  let planned = 0;
  let optedOut: Set<string> | undefined;
  // One batch is inserted while the next is read (from a cursor, often), and handed on while the
  // one after is inserted: the database works on all three. Inserts go in order, one at a time, so
  // that their pages follow the order of the inputs; so do the hand-overs.
  let inserting: Promise<Delivery[]> = Promise.resolve([]);
  // The hand-overs in order: up to the last batch inserted, and up to the one before it.
  let handing: Promise<void> = Promise.resolve();
  let handingBefore: Promise<void> = Promise.resolve();
  const insert = async (docs: Delivery[]): Promise<number> => {
    const inserted = (await inserting).length;
    await handingBefore; // at most two batches wait for their hand-over: memory stays bounded
    inserting = insertNew(store, docs);
    inserting.catch(() => undefined); // awaited before the next one, or at the end: it fails there
    if (onPlanned) {
      const thisBatch = inserting;
      handingBefore = handing;
      handing = handing.then(() => thisBatch).then(onPlanned);
      handing.catch(() => undefined);
    }
    return inserted;
  };
  const existing = new PlannedAlready(store);
  for await (const p of inputs) {
    if (BY_PHONE.includes(p.channel) && (optedOut ??= await optedOutNumbers(store)).has(p.to)) continue;
    const record = plannedRecord(p, now, note);
    recipients++;
    if (await existing.has(record)) continue;
    batch.push(record);
    if (batch.length >= INSERT_BATCH) {
      planned += await insert(batch);
      batch = [];
    }
  }
  planned += await insert(batch);
  planned += (await inserting).length;
  await handing;
  return { recipients, planned };
}

/** One SMS record per phone of each subscriber the cursor yields. */
export async function planSmsForSubscribers(
  store: Store,
  incidentId: string,
  kind: MessageKind,
  subscribers: FindCursor<Subscriber> | AsyncIterable<Subscriber>,
  now: Date,
) {
  async function* inputs(): AsyncIterable<PlanInput> {
    for await (const s of subscribers) {
      for (const phone of s.phones)
        yield { incidentId, kind, subscriberId: s._id, channel: 'sms', to: phone, language: s.language };
    }
  }
  return planAll(store, inputs(), now);
}

export { REACHED_PROVIDER } from '../delivery/lifecycle';

type Scope = { incidentId: string; kind: MessageKind; channel: DeliveryChannel };

function step(state: DeliveryState, now: Date, note?: string) {
  return { at: now, state, ...(note ? { note } : {}) };
}

function transitionUpdate(
  to: DeliveryState,
  now: Date,
  note?: string,
  extra: Partial<Delivery> = {},
  inc: Partial<Record<'attempts', number>> = {},
): UpdateFilter<Delivery> {
  return {
    $set: { state: to, updatedAt: now, ...extra },
    $push: { history: step(to, now, note) },
    ...(Object.keys(inc).length ? { $inc: inc } : {}),
  };
}

/** Moves records in `from` states to `to`, appending a history step; returns how many moved. */
export async function transition(
  store: Store,
  filter: Filter<Delivery>,
  to: DeliveryState,
  now: Date,
  note?: string,
  extra: Partial<Delivery> = {},
  inc: Partial<Record<'attempts', number>> = {},
): Promise<number> {
  const r = await store.deliveries.updateMany(filter, transitionUpdate(to, now, note, extra, inc));
  return r.modifiedCount;
}

/**
 * SMS and calls still planned to a number are given up, with the reason (a STOP). One update per
 * channel, each an equality on the planned state, which the indexes serve on every engine.
 */
export async function dropPlannedTo(store: Store, phone: string, now: Date, why: string): Promise<number> {
  let dropped = 0;
  for (const channel of ['sms', 'voice'] as const)
    dropped += await transition(store, { state: 'planned', channel, to: phone }, 'expired', now, why);
  return dropped;
}

/**
 * An update still waiting (held by quiet hours, or being retried) is stale once a newer round is
 * planned for the same number: it is given up, naming the round that replaces it, so that after a
 * night each person gets the latest update once, not one per period. Records reached by the new
 * round only: someone the new round does not reach keeps the update they were owed.
 */
export async function supersedeOlderUpdates(
  store: Store,
  incidentId: string,
  round: number,
  now: Date,
): Promise<number> {
  const waiting = (
    await store.deliveries
      .find({ incidentId, kind: 'update', state: 'planned' }, { projection: { channel: 1, to: 1, round: 1 } })
      .toArray()
  ).filter((d) => (d.round ?? 0) < round);
  if (waiting.length === 0) return 0;
  const newer = await store.deliveries
    .find({ incidentId, kind: 'update', round }, { projection: { channel: 1, to: 1 } })
    .toArray();
  const reached = new Set(newer.map((d) => `${d.channel}:${d.to}`));
  const stale = waiting.filter((d) => reached.has(`${d.channel}:${d.to}`)).map((d) => d._id);
  if (stale.length === 0) return 0;
  return transition(
    store,
    { _id: { $in: stale }, state: 'planned' },
    'expired',
    now,
    `superseded by update round ${round}`,
    { supersededBy: `${incidentId}|update#${round}` },
  );
}

/** Of these provider message ids, those a delivery record already carries. */
export async function carriedProviderIds(store: Store, ids: string[]): Promise<Set<string>> {
  const found = await findByValues(
    store,
    store.deliveries,
    'providerMessageId',
    ids,
    {},
    { projection: { providerMessageId: 1 } },
  );
  return new Set(found.map((d) => d.providerMessageId!));
}

/** Messages the provider still has queued or sent: not lost, only slow; they get another delivery timeout from `now`. */
export async function giveMoreTime(store: Store, providerIds: string[], now: Date): Promise<void> {
  await updateByValues(
    store,
    store.deliveries,
    'providerMessageId',
    providerIds,
    { state: { $in: ['accepted', 'sent'] } },
    { $set: { updatedAt: now } },
  );
}

/** Records whose time has come: no `notBefore`, or one that has passed. */
export function dueBy(now: Date): Filter<Delivery> {
  return { $or: [{ notBefore: { $exists: false } }, { notBefore: { $lte: now } }] };
}

/** Planned records of an incident that are due now. */
export async function countDue(store: Store, scope: Scope, now: Date): Promise<number> {
  return store.deliveries.countDocuments({ ...scope, state: 'planned', ...dueBy(now) });
}

/** When the next planned, not yet due record of an incident falls due (any kind and channel), or null. */
export async function nextDueAt(
  store: Store,
  incidentId: string,
  kinds: MessageKind[],
  now: Date,
): Promise<Date | null> {
  // No record of the incident was planned to wait past `now` (noted before any is inserted): no read.
  // On FerretDB the read below reads every record of these kinds (26 s each at 100,000 under load).
  // A document from before the note says nothing: the records are asked.
  const pages = await store.deliveryPages.findOne({ _id: incidentId }, { projection: { deferredUntil: 1 } });
  if (pages?.deferredUntil && pages.deferredUntil <= now) return null;
  const next = await store.deliveries
    .find(
      { incidentId, kind: { $in: kinds }, state: 'planned', notBefore: { $gt: now } },
      { projection: { notBefore: 1 } },
    )
    .sort({ notBefore: 1 })
    .limit(1)
    .toArray();
  return next[0]?.notBefore ?? null;
}

/**
 * The (kind, channel) pairs of these kinds an incident has planned records on, as its planning
 * noted them in `delivery_pages` (store/db.ts notes those of records planned before that). Asking
 * the records instead reads every record of the incident on FerretDB: 100,000 documents, several
 * seconds, once per sending call. An incident none of whose records were planned through here
 * (written directly, as tests do) is asked the records.
 */
export async function scopesWithRecords(
  store: Store,
  incidentId: string,
  kinds: MessageKind[],
): Promise<{ kind: MessageKind; channel: DeliveryChannel }[]> {
  const noted = (await store.deliveryPages.findOne({ _id: incidentId }))?.scopes;
  if (noted) {
    return noted
      .map((key) => {
        const [kind, channel] = key.split('/') as [MessageKind, DeliveryChannel];
        return { kind, channel };
      })
      .filter((p) => kinds.includes(p.kind));
  }
  const rows = await store.deliveries
    .aggregate<{ _id: { kind: MessageKind; channel: DeliveryChannel } }>([
      { $match: { incidentId, kind: { $in: kinds } } },
      { $group: { _id: { kind: '$kind', channel: '$channel' } } },
    ])
    .toArray();
  return rows.map((r) => r._id);
}

/**
 * Notes the kinds and channels of records planned before pages existed, per incident, in
 * `delivery_pages` (their records go on page 0): the migration of store/db.ts, once per database.
 */
export async function noteUnpagedScopes(store: Store): Promise<void> {
  const rows = await store.deliveries
    .aggregate<{ _id: { incidentId: string; kind: MessageKind; channel: DeliveryChannel } }>([
      { $match: { page: { $exists: false } } },
      { $group: { _id: { incidentId: '$incidentId', kind: '$kind', channel: '$channel' } } },
    ])
    .toArray();
  for (const [incidentId, pairs] of groupBy(
    rows.map((r) => r._id),
    (p) => p.incidentId,
  )) {
    await store.deliveryPages.updateOne(
      { _id: incidentId },
      {
        $addToSet: { scopes: { $each: pairs.map((p) => scopeKey({ kind: p.kind, channel: p.channel ?? 'sms' })) } },
        $setOnInsert: { last: 0 },
      },
      { upsert: true },
    );
  }
  await store.deliveries.updateMany({ page: { $exists: false } }, { $set: { page: 0 } });
}

/** One count per state: an equality FerretDB hands down, where `state: {$in}` would read every record of the incident. */
export async function countInState(store: Store, scope: Scope, states: DeliveryState[]): Promise<number> {
  const counts = await Promise.all(states.map((state) => store.deliveries.countDocuments({ ...scope, state })));
  return counts.reduce((a, b) => a + b, 0);
}

/** How long a message may go without a receipt, and how many attempts it gets (delivery/watchdog.ts). */
export type SweepPolicy = WatchdogPolicy;

export type { SweepResult } from '../delivery/ports';

export { providerAttempts } from '../delivery/watchdog';

/**
 * The delivery watchdog: a message reported undelivered or failed, or with no receipt within the
 * timeout, goes back to `planned` for another attempt; after `maxAttempts` that reached the
 * provider it expires on this channel, and the caller plans a fallback. An invalid recipient
 * expires at once. `overdueMayRetry`, when given, decides which messages without a receipt may be
 * taken for lost (SMS: only those the provider does not know); the others wait for their receipt.
 */
export async function sweepUndelivered(
  store: Store,
  scope: Scope,
  policy: SweepPolicy,
  now: Date,
  overdueMayRetry?: (d: Delivery) => boolean,
): Promise<SweepResult> {
  const stale = new Date(now.getTime() - policy.deliveryTimeoutMs);
  // Counted before the lost ones are read: a receipt (or a hang-up) that moves a record from in
  // flight to undelivered between the two reads would otherwise hide it from both, the sweep would
  // say nothing is in flight, and the workflow would never look again. Counted first, it is seen
  // in flight at worst, which costs one more look.
  const inFlight = await countInState(store, scope, ['accepted', 'sent']);
  // An overdue message the caller could not confirm lost stays where it is (see overdueMayRetry):
  // kept as it is read, not after, since at 100,000 nearly every record of a scope can be overdue
  // at once (their receipts queue up) and held whole they were 70-100 MB of the worker's heap.
  const overdue = async (state: DeliveryState): Promise<Delivery[]> => {
    const kept: Delivery[] = [];
    for await (const d of store.deliveries.find({ ...scope, state, updatedAt: { $lt: stale } }))
      if (!overdueMayRetry || overdueMayRetry(d)) kept.push(d);
    return kept;
  };
  // One query per state, each an equality FerretDB can hand down (an `$or` of them would read every
  // record of the incident there), merged in record order.
  const lost = (
    await Promise.all([
      ...(['undelivered', 'failed'] as DeliveryState[]).map((state) =>
        store.deliveries.find({ ...scope, state }).toArray(),
      ),
      ...(['accepted', 'sent'] as DeliveryState[]).map(overdue),
    ])
  )
    .flat()
    .sort((a, b) => (a._id < b._id ? -1 : a._id > b._id ? 1 : 0));
  // Decided in memory (delivery/watchdog.ts), then one update per (from state, outcome, reason): few requests.
  const moves = decideLost(lost, policy);
  const expired: Delivery[] = [];
  let retried = 0;
  for (const m of moves) {
    const ids = m.records.map((d) => d._id);
    // An overdue record must still be overdue when written: another sweep may have retried it since it was read.
    const stillOverdue = m.from === 'accepted' || m.from === 'sent' ? { updatedAt: { $lt: stale } } : {};
    const moved = await transition(
      store,
      { ...scope, _id: { $in: ids }, state: m.from, ...stillOverdue },
      m.to,
      now,
      m.note,
    );
    if (m.to === 'expired') {
      // Only those this call moved: a receipt may have settled one in between.
      const nowExpired = new Set(
        (
          await store.deliveries
            .find({ ...scope, _id: { $in: ids }, state: 'expired' }, { projection: { _id: 1 } })
            .toArray()
        ).map((d) => d._id),
      );
      expired.push(...m.records.filter((d) => nowExpired.has(d._id)));
    } else retried += moved;
  }
  // Due again: the sender must read their pages, however quiet it found them.
  const retriedRecords = moves.filter((m) => m.to === 'planned').flatMap((m) => m.records);
  if (retried > 0) await noteRecordsChanged(store, retriedRecords);
  return { retried, expired, inFlight };
}
