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
import type { AnyBulkWriteOperation, Collection, Document, Filter, FindCursor, MongoBulkWriteError, OptionalUnlessRequiredId, UpdateFilter } from 'mongodb';
import type { Store } from './db';
import { eachParallel, readPagesInOrder, serverKind } from './server';
import { REACHED_PROVIDER } from '../delivery/lifecycle';
import { decideLost, type WatchdogPolicy } from '../delivery/watchdog';

export { isFerretDb, serverKind, type ServerKind } from './server';
import type { Delivery, DeliveryChannel, DeliveryState, Language, MessageKind, Subscriber, TemplateKind } from '../domain/types';

export function deliveryId(incidentId: string, kind: MessageKind, subscriberId: string, channel: DeliveryChannel, to: string, round?: number): string {
  return `${incidentId}|${kind}${round !== undefined ? `#${round}` : ''}|${subscriberId}|${channel}:${to}`;
}

const INSERT_BATCH = 1000;

/**
 * Inserts planned records (up to a page's worth, INSERT_BATCH), skipping those that exist:
 * planning the same audience twice (a retried activity) plans nothing new. The records are put on
 * their incident's next page first. Returns how many were new.
 */
export async function insertPlanned(store: Store, docs: Delivery[]): Promise<number> {
  if (docs.length === 0) return 0;
  for (const [incidentId, ofIncident] of groupBy(docs, (d) => d.incidentId)) {
    const page = await nextPage(store, incidentId, [...new Set(ofIncident.map((d) => scopeKey(d)))]);
    for (const d of ofIncident) d.page = page;
  }
  return (await insertIgnoringDuplicates(store.deliveries, docs)).length;
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
 * stay empty.
 */
async function nextPage(store: Store, incidentId: string, scopes: string[]): Promise<number> {
  const r = await store.deliveryPages.findOneAndUpdate({ _id: incidentId }, { $inc: { last: 1 }, $addToSet: { scopes: { $each: scopes } } }, { upsert: true, returnDocument: 'after' });
  return r?.last ?? 1;
}

/** The highest page number an incident has used (0 when none). */
async function lastPage(store: Store, incidentId: string): Promise<number> {
  return (await store.deliveryPages.findOne({ _id: incidentId }))?.last ?? 0;
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
    const writeErrors = bulk.writeErrors ? (Array.isArray(bulk.writeErrors) ? bulk.writeErrors : [bulk.writeErrors]) : [];
    if (writeErrors.length === 0 || writeErrors.some((e) => e.code !== 11000)) throw err;
    const failed = new Set(writeErrors.map((e) => e.index));
    return docs.filter((_, i) => !failed.has(i));
  }
}

export interface PlanInput {
  incidentId: string;
  kind: MessageKind;
  subscriberId: string;
  channel: DeliveryChannel;
  to: string;
  language: Language;
  fallbackOf?: string;
  /** What the rules said for this recipient (see Delivery). */
  templateSet?: string;
  area?: string;
  notBefore?: Date;
  graceEndsAt?: Date;
  hold?: Delivery['hold'];
  restoration?: boolean;
  round?: number;
  templateKind?: TemplateKind;
  updates?: Delivery['updates'];
  /** Not to be sent: this number was already told by that open incident (see store/coverage.ts). */
  coveredBy?: string;
  /** An operator's `message`: its words, sent as they are. */
  text?: string;
}

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
      ...(p.coveredBy ? [{ at: now, state: 'expired' as const, note: `not sent: covered by ${p.coveredBy}, which already told this number of the outage` }] : []),
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

/** Plans records in batches from any source of plan inputs; existing ones are left alone, and none goes to a number that opted out. */
export async function planAll(store: Store, inputs: AsyncIterable<PlanInput> | Iterable<PlanInput>, now: Date, note?: string): Promise<{ recipients: number; planned: number }> {
  let batch: Delivery[] = [];
  let recipients = 0;
  let planned = 0;
  let optedOut: Set<string> | undefined;
  for await (const p of inputs) {
    if (BY_PHONE.includes(p.channel) && (optedOut ??= await optedOutNumbers(store)).has(p.to)) continue;
    batch.push(plannedRecord(p, now, note));
    recipients++;
    if (batch.length >= INSERT_BATCH) {
      planned += await insertPlanned(store, batch);
      batch = [];
    }
  }
  planned += await insertPlanned(store, batch);
  return { recipients, planned };
}

/** One SMS record per phone of each subscriber the cursor yields. */
export async function planSmsForSubscribers(store: Store, incidentId: string, kind: MessageKind, subscribers: FindCursor<Subscriber> | AsyncIterable<Subscriber>, now: Date) {
  async function* inputs(): AsyncIterable<PlanInput> {
    for await (const s of subscribers) {
      for (const phone of s.phones) yield { incidentId, kind, subscriberId: s._id, channel: 'sms', to: phone, language: s.language };
    }
  }
  return planAll(store, inputs(), now);
}

export { REACHED_PROVIDER } from '../delivery/lifecycle';

/** Plans a restoration notice, on the same channel, for every outage notice that reached the provider. */
export async function planRestorations(store: Store, incidentId: string, now: Date): Promise<number> {
  const cursor = store.deliveries.find({ incidentId, kind: 'outage', state: { $in: REACHED_PROVIDER } }).sort({ _id: 1 });
  async function* inputs(): AsyncIterable<PlanInput> {
    for await (const d of cursor) yield { incidentId, kind: 'restored', subscriberId: d.subscriberId, channel: d.channel, to: d.to, language: d.language };
  }
  return (await planAll(store, inputs(), now)).planned;
}

type Scope = { incidentId: string; kind: MessageKind; channel: DeliveryChannel };

function step(state: DeliveryState, now: Date, note?: string) {
  return { at: now, state, ...(note ? { note } : {}) };
}

function transitionUpdate(to: DeliveryState, now: Date, note?: string, extra: Partial<Delivery> = {}, inc: Partial<Record<'attempts', number>> = {}): UpdateFilter<Delivery> {
  return {
    $set: { state: to, updatedAt: now, ...extra },
    $push: { history: step(to, now, note) },
    ...(Object.keys(inc).length ? { $inc: inc } : {}),
  };
}

/** Moves records in `from` states to `to`, appending a history step; returns how many moved. */
export async function transition(store: Store, filter: Filter<Delivery>, to: DeliveryState, now: Date, note?: string, extra: Partial<Delivery> = {}, inc: Partial<Record<'attempts', number>> = {}): Promise<number> {
  const r = await store.deliveries.updateMany(filter, transitionUpdate(to, now, note, extra, inc));
  return r.modifiedCount;
}

/**
 * Updates records one by one, each only if it is in one of the `from` states, 50 per request
 * (25 on PostgreSQL, three requests at a time: FerretDB holds a connection per statement of a bulk
 * until it ends, README "Notes on FerretDB", so one call never holds more than about 80 of its
 * 500), calling `progress` after each request.
 *
 * On MongoDB and on FerretDB over PostgreSQL each update is `{_id, state: {$in: from}}`: served by
 * the _id index there, and by the GIN index on `_id` here (the `$in` is then tested on that one
 * document). Three requests run at once on PostgreSQL: it and FerretDB then use more than one core.
 *
 * FerretDB on SQLite hands a filter down only when it is exactly `{_id: <id>}`: `{_id, state}` reads
 * and decodes the whole collection for each update (763 ms at 40,000 records, against 2 ms for
 * `{_id}`). There each record's state is read by `{_id}` just before its chunk is written, and the
 * records found in `from` are written with `{_id}` alone, and those reads are handed back (null
 * elsewhere). Check and write are not atomic, but neither is FerretDB's own conditional update: it
 * finds the document, then writes it back whole in a separate statement. What keeps two senders
 * apart is the send claim (a unique insert), not this condition.
 */
async function updateEachInState(store: Store, items: { id: string; update: UpdateFilter<Delivery> }[], from: DeliveryState[], progress?: Progress, opts: { checkOnFerretDb?: boolean } = {}): Promise<Map<string, Delivery> | null> {
  if (items.length === 0) return new Map();
  const kind = await serverKind(store);
  const sqlite = kind === 'ferretdb-sqlite';
  const check = sqlite && opts.checkOnFerretDb !== false;
  const seen = check ? new Map<string, Delivery>() : null;
  const [size, parallel] = kind === 'ferretdb-postgresql' ? [25, 3] : [50, 1];
  const chunks = Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
  await eachParallel(chunks, parallel, async (chunk) => {
    if (check) {
      const found = await Promise.all(chunk.map((c) => store.deliveries.findOne({ _id: c.id })));
      chunk = chunk.filter((_, k) => found[k] && from.includes(found[k].state));
      for (const d of found) if (d && from.includes(d.state)) seen!.set(d._id, d);
    }
    if (chunk.length) {
      await store.deliveries.bulkWrite(
        chunk.map((c) => ({ updateOne: { filter: sqlite ? { _id: c.id } : { _id: c.id, state: { $in: from } }, update: c.update } })),
        { ordered: false },
      );
    }
    progress?.();
  });
  return seen;
}

/**
 * Takes up to `limit` planned records and marks them `sending` with the time of the reservation,
 * so that, should the answer be lost, a later attempt can ask the provider what it accepted since.
 * Each attempt of each record is first claimed by inserting `recordId#attempt` into `send_claims`:
 * only one sender can insert it, so two senders (a retried activity and a slow earlier attempt)
 * never both send the same message.
 */
/** Called between the chunks of a long write: the delivery activities heartbeat there. */
export type Progress = () => void;

/*
 * Reservations are written one record per update, `progress` called every 50 (updateEachInState):
 * a long write of a 1,000-record batch must not outlast an activity's heartbeat timeout, or
 * Temporal would start another attempt beside the live one, whose reconciliation would hand back
 * reservations the live one is about to send.
 */

/**
 * Reserves the next batch as described above, and says whether more due records were waiting
 * beyond `limit` (the same query, one record longer, answers what a count would), and how many
 * due records it found but could not take: `held`, claimed by another sender that is sending them
 * now or died less than a minute ago. Those are not "nothing left": the caller must come back.
 */
export async function reserveNextBatch(store: Store, scope: Scope, limit: number, now: Date, progress?: Progress): Promise<{ records: Delivery[]; more: boolean; held: number }> {
  // "More" when pages were left unread: the next call finds out, cheaply, whether they hold any.
  const { found, complete } = await dueCandidates(store, scope, limit, now);
  return { ...(await reserveCandidates(store, found, now, progress)), more: !complete };
}

/**
 * Up to `want` planned records of a scope that are due, by page (oldest first: a message retried
 * goes back to planned on its own page, so it goes before the pages not yet sent) and by `_id`
 * within a page. One query per page, each matching at most a page of records (see the top of this
 * file).
 */
export async function dueCandidates(store: Store, scope: Scope, want: number, now: Date): Promise<{ found: Pick<Delivery, '_id' | 'attempts'>[]; complete: boolean }> {
  const last = await lastPage(store, scope.incidentId);
  const r = await readPagesInOrder(0, last, want, (page) => store.deliveries.find({ ...scope, state: 'planned', page, ...dueBy(now) }, { projection: { _id: 1, attempts: 1 } }).sort({ _id: 1 }).toArray());
  return { found: r.items, complete: r.complete };
}

/** Whether a planned record of this scope is due now (found page by page, like a batch). */
export async function anyDue(store: Store, scope: Scope, now: Date): Promise<boolean> {
  return (await dueCandidates(store, scope, 1, now)).found.length > 0;
}

async function reserveCandidates(store: Store, candidates: Pick<Delivery, '_id' | 'attempts'>[], now: Date, progress?: Progress): Promise<{ records: Delivery[]; held: number }> {
  if (candidates.length === 0) return { records: [], held: 0 };
  const claimed = await claimAttempts(store, candidates, now);
  let held = candidates.length - claimed.length;
  // Records taken over from a dead sender, with their new attempt number (it overrides the candidate's).
  const reclaimedWith: Pick<Delivery, '_id' | 'attempts'>[] = [];
  if (held > 0) {
    // Claims a minute old belong to a sender that died between claiming and reserving: move those
    // records to their next attempt and claim that, in this same call.
    const won = new Set(claimed);
    const skipped = await skipAbandonedClaims(store, candidates.filter((d) => !won.has(d._id)), now);
    reclaimedWith.push(...skipped);
    const reclaimed = await claimAttempts(store, skipped, now);
    claimed.push(...reclaimed);
    held -= reclaimed.length;
  }
  const ids = claimed;
  if (ids.length === 0) return { records: [], held };
  const reserve = transitionUpdate('sending', now, undefined, { reservedAt: now }, { attempts: 1 });
  const before = await updateEachInState(store, ids.map((id) => ({ id, update: reserve })), ['planned'], progress);
  if (!before) {
    // Read back only what this call reserved: the attempt it claimed, at its time. A record this
    // call found no longer planned may be another sender's by now (one that took over claims it
    // thought abandoned while this call was stalled): sending it here would text it twice.
    const attemptOf = new Map([...candidates, ...reclaimedWith].map((d) => [d._id, d.attempts + 1]));
    const mine = await store.deliveries.find({ _id: { $in: ids }, state: 'sending', reservedAt: now }).sort({ _id: 1 }).toArray();
    return { records: mine.filter((d) => d.attempts === attemptOf.get(d._id)), held };
  }
  // FerretDB on SQLite: the records as they were just before this write (read by `{_id}` for the
  // state check), with the reservation applied here: reading them back would be a scan each.
  const records = [...before.values()]
    .map((d): Delivery => ({ ...d, state: 'sending', reservedAt: now, updatedAt: now, attempts: d.attempts + 1, history: [...d.history, step('sending', now)] }))
    .sort((a, b) => (a._id < b._id ? -1 : a._id > b._id ? 1 : 0));
  return { records, held };
}

/** Claims the next attempt of each record (`id#attempts+1`); returns the ids of the records won. */
async function claimAttempts(store: Store, records: Pick<Delivery, '_id' | 'attempts'>[], now: Date): Promise<string[]> {
  if (records.length === 0) return [];
  const claimed = await insertIgnoringDuplicates(store.sendClaims, records.map((d) => ({ _id: `${d._id}#${d.attempts + 1}`, at: now })));
  return claimed.map((c) => c._id.slice(0, c._id.lastIndexOf('#')));
}

/**
 * A claim whose record is still `planned` a minute later belongs to a sender that died between
 * claiming and marking the record: the record moves to its next attempt number, so that it can be
 * claimed again. Returns the records moved, with their new attempt number.
 */
async function skipAbandonedClaims(store: Store, lost: Pick<Delivery, '_id' | 'attempts'>[], now: Date): Promise<Pick<Delivery, '_id' | 'attempts'>[]> {
  if (lost.length === 0) return [];
  const attemptsOf = new Map(lost.map((d) => [d._id, d.attempts]));
  const stale = new Date(now.getTime() - 60_000);
  const claims = (await Promise.all(lost.map((d) => store.sendClaims.findOne({ _id: `${d._id}#${d.attempts + 1}` })))).filter((c) => c && c.at < stale);
  const moved: Pick<Delivery, '_id' | 'attempts'>[] = [];
  for (const c of claims) {
    const id = c!._id.slice(0, c!._id.lastIndexOf('#'));
    const attempts = attemptsOf.get(id)!;
    const r = await store.deliveries.updateOne({ _id: id, state: 'planned', attempts }, { $inc: { attempts: 1 }, $push: { history: step('planned', now, 'an earlier sender died after claiming this message; claimed again') } });
    if (r.modifiedCount === 1) moved.push({ _id: id, attempts: attempts + 1 });
  }
  return moved;
}

/** Records left in `sending` by an attempt that did not finish (its worker died, or its answer was lost). */
export async function unfinishedReservations(store: Store, scope: Scope): Promise<Delivery[]> {
  return store.deliveries.find({ ...scope, state: 'sending' }).sort({ _id: 1 }).toArray();
}

/**
 * SMS and calls still planned to a number are given up, with the reason (a STOP). One update per
 * channel, each an equality on the planned state, which the indexes serve on every engine.
 */
export async function dropPlannedTo(store: Store, phone: string, now: Date, why: string): Promise<number> {
  let dropped = 0;
  for (const channel of ['sms', 'voice'] as const) dropped += await transition(store, { state: 'planned', channel, to: phone }, 'expired', now, why);
  return dropped;
}

/**
 * An update still waiting (held by quiet hours, or being retried) is stale once a newer round is
 * planned for the same number: it is given up, naming the round that replaces it, so that after a
 * night each person gets the latest update once, not one per period. Records reached by the new
 * round only: someone the new round does not reach keeps the update they were owed.
 */
export async function supersedeOlderUpdates(store: Store, incidentId: string, round: number, now: Date): Promise<number> {
  const waiting = (await store.deliveries.find({ incidentId, kind: 'update', state: 'planned' }, { projection: { channel: 1, to: 1, round: 1 } }).toArray()).filter((d) => (d.round ?? 0) < round);
  if (waiting.length === 0) return 0;
  const newer = await store.deliveries.find({ incidentId, kind: 'update', round }, { projection: { channel: 1, to: 1 } }).toArray();
  const reached = new Set(newer.map((d) => `${d.channel}:${d.to}`));
  const stale = waiting.filter((d) => reached.has(`${d.channel}:${d.to}`)).map((d) => d._id);
  if (stale.length === 0) return 0;
  return transition(store, { _id: { $in: stale }, state: 'planned' }, 'expired', now, `superseded by update round ${round}`, { supersededBy: `${incidentId}|update#${round}` });
}

/** The request certainly failed before the provider accepted anything: the records go back to planned. */
export async function releaseReservations(store: Store, ids: string[], now: Date, why: string): Promise<void> {
  if (ids.length) await transition(store, { _id: { $in: ids }, state: 'sending' }, 'planned', now, why, { error: why });
}

export interface AcceptedOutcome {
  id: string;
  providerMessageId: string;
}

/** Writes what the provider accepted and what it refused, in few requests. */
export async function recordSendResults(store: Store, accepted: AcceptedOutcome[], invalid: { id: string; error: string }[], now: Date, note = 'accepted by the provider', acceptedState: DeliveryState = 'accepted', progress?: Progress): Promise<void> {
  await updateEachInState(
    store,
    accepted.map((o) => ({ id: o.id, update: { $set: { state: acceptedState, providerMessageId: o.providerMessageId, updatedAt: now }, $unset: { error: '' }, $push: { history: step(acceptedState, now, note) } } })),
    ['sending'],
    progress,
    // On FerretDB over SQLite, written without reading each record first: these are the records
    // this sender reserved moments ago, and what the provider accepted is true whatever else
    // touched them in between (another attempt's reconciliation can only have found the same
    // message). The worst case, a receipt applied in between, is a record set back to accepted,
    // which the watchdog settles by asking the provider; the check would cost a point read each.
    { checkOnFerretDb: false },
  );
  for (const [error, ids] of groupBy(invalid, (i) => i.error)) {
    await transition(store, { _id: { $in: ids.map((i) => i.id) }, state: 'sending' }, 'failed', now, error, { error, invalidRecipient: true });
  }
}

/** Records whose time has come: no `notBefore`, or one that has passed. */
export function dueBy(now: Date): Filter<Delivery> {
  return { $or: [{ notBefore: { $exists: false } }, { notBefore: { $lte: now } }] };
}

/** Planned records of an incident that are due now. */
export async function countDue(store: Store, scope: Scope, now: Date): Promise<number> {
  return store.deliveries.countDocuments({ ...scope, state: 'planned', ...dueBy(now) });
}

/** Whether a planned record of any of these scopes is due now. */
export async function anyDueIn(store: Store, scopes: Scope[], now: Date): Promise<boolean> {
  for (const scope of scopes) if (await anyDue(store, scope, now)) return true;
  return false;
}

/** When the next planned, not yet due record of an incident falls due (any kind and channel), or null. */
export async function nextDueAt(store: Store, incidentId: string, kinds: MessageKind[], now: Date): Promise<Date | null> {
  const next = await store.deliveries.find({ incidentId, kind: { $in: kinds }, state: 'planned', notBefore: { $gt: now } }, { projection: { notBefore: 1 } }).sort({ notBefore: 1 }).limit(1).toArray();
  return next[0]?.notBefore ?? null;
}

/**
 * The (kind, channel) pairs of these kinds an incident has planned records on, as its planning
 * noted them in `delivery_pages` (store/db.ts notes those of records planned before that). Asking
 * the records instead reads every record of the incident on FerretDB: 100,000 documents, several
 * seconds, once per sending call. An incident none of whose records were planned through here
 * (written directly, as tests do) is asked the records.
 */
export async function scopesWithRecords(store: Store, incidentId: string, kinds: MessageKind[]): Promise<{ kind: MessageKind; channel: DeliveryChannel }[]> {
  const noted = (await store.deliveryPages.findOne({ _id: incidentId }))?.scopes;
  if (noted) {
    return noted.map((key) => {
      const [kind, channel] = key.split('/') as [MessageKind, DeliveryChannel];
      return { kind, channel };
    }).filter((p) => kinds.includes(p.kind));
  }
  const rows = await store.deliveries
    .aggregate<{ _id: { kind: MessageKind; channel: DeliveryChannel } }>([{ $match: { incidentId, kind: { $in: kinds } } }, { $group: { _id: { kind: '$kind', channel: '$channel' } } }])
    .toArray();
  return rows.map((r) => r._id);
}

/**
 * Notes the kinds and channels of records planned before pages existed, per incident, in
 * `delivery_pages` (their records go on page 0): the migration of store/db.ts, once per database.
 */
export async function noteUnpagedScopes(store: Store): Promise<void> {
  const rows = await store.deliveries
    .aggregate<{ _id: { incidentId: string; kind: MessageKind; channel: DeliveryChannel } }>([{ $match: { page: { $exists: false } } }, { $group: { _id: { incidentId: '$incidentId', kind: '$kind', channel: '$channel' } } }])
    .toArray();
  for (const [incidentId, pairs] of groupBy(rows.map((r) => r._id), (p) => p.incidentId)) {
    await store.deliveryPages.updateOne({ _id: incidentId }, { $addToSet: { scopes: { $each: pairs.map((p) => scopeKey({ kind: p.kind, channel: p.channel ?? 'sms' })) } }, $setOnInsert: { last: 0 } }, { upsert: true });
  }
  await store.deliveries.updateMany({ page: { $exists: false } }, { $set: { page: 0 } });
}

/** One count per state: an equality FerretDB hands down, where `state: {$in}` would read every record of the incident. */
export async function countInState(store: Store, scope: Scope, states: DeliveryState[]): Promise<number> {
  const counts = await Promise.all(states.map((state) => store.deliveries.countDocuments({ ...scope, state })));
  return counts.reduce((a, b) => a + b, 0);
}

/**
 * FerretDB 1.24 stalls on a bulkWrite of 100 or more updates (measured here: 50 take 0.2 s,
 * 100 did not finish in two minutes), so large bulk writes go in chunks of 50.
 */
export async function bulkWriteInChunks<T extends Document>(collection: Collection<T>, ops: AnyBulkWriteOperation<T>[], chunk = 50, progress?: Progress): Promise<void> {
  for (let i = 0; i < ops.length; i += chunk) {
    await collection.bulkWrite(ops.slice(i, i + chunk), { ordered: false });
    progress?.();
  }
}

function groupBy<T, K>(items: T[], key: (t: T) => K): Map<K, T[]> {
  const m = new Map<K, T[]>();
  for (const i of items) {
    const k = key(i);
    const group = m.get(k);
    if (group) group.push(i);
    else m.set(k, [i]);
  }
  return m;
}

/** How long a message may go without a receipt, and how many attempts it gets (delivery/watchdog.ts). */
export type SweepPolicy = WatchdogPolicy;

export interface SweepResult {
  retried: number;
  expired: Delivery[];
  /** Records still on their way (accepted or sent, within the timeout). */
  inFlight: number;
}

export { providerAttempts } from '../delivery/watchdog';

/**
 * The delivery watchdog: a message reported undelivered or failed, or with no receipt within the
 * timeout, goes back to `planned` for another attempt; after `maxAttempts` that reached the
 * provider it expires on this channel, and the caller plans a fallback. An invalid recipient
 * expires at once. `overdueMayRetry`, when given, decides which messages without a receipt may be
 * taken for lost (SMS: only those the provider does not know); the others wait for their receipt.
 */
export async function sweepUndelivered(store: Store, scope: Scope, policy: SweepPolicy, now: Date, overdueMayRetry?: (d: Delivery) => boolean): Promise<SweepResult> {
  const stale = new Date(now.getTime() - policy.deliveryTimeoutMs);
  // Counted before the lost ones are read: a receipt (or a hang-up) that moves a record from in
  // flight to undelivered between the two reads would otherwise hide it from both, the sweep would
  // say nothing is in flight, and the workflow would never look again. Counted first, it is seen
  // in flight at worst, which costs one more look.
  const inFlight = await countInState(store, scope, ['accepted', 'sent']);
  // One query per state, each an equality FerretDB can hand down (an `$or` of them would read every
  // record of the incident there), merged in record order.
  const lost = (
    await Promise.all([
      ...(['undelivered', 'failed'] as DeliveryState[]).map((state) => store.deliveries.find({ ...scope, state }).toArray()),
      ...(['accepted', 'sent'] as DeliveryState[]).map((state) => store.deliveries.find({ ...scope, state, updatedAt: { $lt: stale } }).toArray()),
    ])
  )
    .flat()
    // An overdue message the caller could not confirm lost stays where it is (see overdueMayRetry).
    .filter((d) => !overdueMayRetry || (d.state !== 'accepted' && d.state !== 'sent') || overdueMayRetry(d))
    .sort((a, b) => (a._id < b._id ? -1 : a._id > b._id ? 1 : 0));
  // Decided in memory (delivery/watchdog.ts), then one update per (from state, outcome, reason): few requests.
  const moves = decideLost(lost, policy);
  const expired: Delivery[] = [];
  let retried = 0;
  for (const m of moves) {
    const ids = m.records.map((d) => d._id);
    const moved = await transition(store, { ...scope, _id: { $in: ids }, state: m.from }, m.to, now, m.note);
    if (m.to === 'expired') {
      // Only those this call moved: a receipt may have settled one in between.
      const nowExpired = new Set((await store.deliveries.find({ ...scope, _id: { $in: ids }, state: 'expired' }, { projection: { _id: 1 } }).toArray()).map((d) => d._id));
      expired.push(...m.records.filter((d) => nowExpired.has(d._id)));
    } else retried += moved;
  }
  return { retried, expired, inFlight };
}
