/**
 * The send path's writes: one request document per batch and page, instead of a write per message.
 *
 * A sender takes the due records of a page by inserting a request document that names them, with
 * the attempt each is on: `{_id: <incident>|<kind>/<channel>|p<page>|<seq>, recipients: [{id,
 * attempt}], reservedAt, open: true}`. The `_id` is the claim. `seq` is the number of requests the
 * sender saw on that page plus one, so two senders that read the page alike race on one insert and
 * exactly one wins; a sender that read it before another's request landed computes a `seq` that
 * exists, loses, and reads again. A record is due when it is planned and no open request names it
 * on its next attempt. The page's requests are read before its records: a request closed by then
 * was closed after its records were written, so the records read next show it.
 *
 * The records are not written when they are taken (the `sending` update and the per-record claim
 * of before): only when the provider has answered, once each (accepted, or failed), with the
 * history steps `sending` (at the reservation) and the outcome, so that history reads as it did.
 * The request is closed after its records are written. A request left open (the worker died, or
 * the answer was lost after the request went out) is settled by the next sender's reconciliation,
 * which asks the provider what it accepted.
 *
 * Records in `sending` were reserved by a version before this one: they are still settled by the
 * reconciliation (unfinishedReservations) and recorded as before.
 */
import type { Filter, UpdateFilter } from 'mongodb';
import type { Store } from './db';
import { readPagesInOrder, updateEachIf, type Progress } from './backend';
import { dueBy, lastPage } from './deliveries';
import type { AcceptedOutcome, Reserved, Scope } from '../delivery/ports';
import type { Delivery, DeliveryChannel, DeliveryState, MessageKind } from '../domain/types';

export interface SendRequestDoc {
  _id: string;
  incidentId: string;
  kind: MessageKind;
  channel: DeliveryChannel;
  page: number;
  seq: number;
  /** The records taken, each on the attempt this request makes of it (1 for the first). */
  recipients: { id: string; attempt: number }[];
  reservedAt: Date;
  /** Until the provider's answer is recorded on the records, or the reconciliation has settled it. */
  open: boolean;
  closedAt?: Date;
}

function requestId(scope: Scope, page: number, seq: number): string {
  return `${scope.incidentId}|${scope.kind}/${scope.channel}|p${page}|${seq}`;
}

/** A page's view for one sender: how many requests it holds, and who is taken by an open one. */
interface PageView {
  requests: number;
  taken: Set<string>;
}

const taken = (id: string, attempt: number) => `${id}#${attempt}`;

/**
 * Up to `want` due records of a scope, by page (oldest first: a message retried goes back to
 * planned on its own page, so it goes before the pages not yet sent) and by `_id` within a page,
 * leaving out those an open request has taken (`held`). One read of the page's requests and one of
 * its planned records per page, each matching at most a page of records.
 */
export async function dueCandidates(
  store: Store,
  scope: Scope,
  want: number,
  now: Date,
): Promise<{ found: Delivery[]; complete: boolean; held: number; pages: Map<number, PageView> }> {
  const last = await lastPage(store, scope.incidentId);
  const pages = new Map<number, PageView>();
  let held = 0;
  const r = await readPagesInOrder(0, last, want, async (page) => {
    // Requests first (see the top of this file).
    const requests = await store.sendRequests
      .find(
        { incidentId: scope.incidentId, kind: scope.kind, channel: scope.channel, page },
        { projection: { open: 1, recipients: 1 } },
      )
      .toArray();
    const view: PageView = {
      requests: requests.length,
      taken: new Set(requests.filter((q) => q.open).flatMap((q) => q.recipients.map((p) => taken(p.id, p.attempt)))),
    };
    pages.set(page, view);
    const planned = await store.deliveries
      // Everything the sender needs but the history, which only grows and is only ever appended to.
      .find({ ...scope, state: 'planned', page, ...dueBy(now) }, { projection: { history: 0 } })
      .sort({ _id: 1 })
      .toArray();
    const free = planned.filter((d) => !view.taken.has(taken(d._id, d.attempts + 1)));
    held += planned.length - free.length;
    return free;
  });
  return { found: r.items, complete: r.complete, held, pages };
}

/** Whether a planned record of this scope is due now and free (found page by page, like a batch). */
export async function anyDue(store: Store, scope: Scope, now: Date): Promise<boolean> {
  return (await dueCandidates(store, scope, 1, now)).found.length > 0;
}

/** Whether a planned record of any of these scopes is due now and free. */
export async function anyDueIn(store: Store, scopes: Scope[], now: Date): Promise<boolean> {
  for (const scope of scopes) if (await anyDue(store, scope, now)) return true;
  return false;
}

/**
 * Takes the next batch of due records for this sender: one request document per page they are on
 * (see the top of this file). Says whether more due records were waiting beyond `limit`, and how
 * many due records it found but could not take (`held`: another sender's open request has them,
 * or won the insert): those are not "nothing left", the caller must come back.
 */
export async function reserveNextBatch(
  store: Store,
  scope: Scope,
  limit: number,
  now: Date,
): Promise<{ records: Reserved[]; more: boolean; held: number }> {
  const { found, complete, held: takenByOthers, pages } = await dueCandidates(store, scope, limit, now);
  let held = takenByOthers;
  const records: Reserved[] = [];
  const byPage = new Map<number, Delivery[]>();
  for (const d of found) pushTo(byPage, d.page ?? 0, d);
  for (const [page, ofPage] of byPage) {
    const seq = pages.get(page)!.requests + 1;
    const doc: SendRequestDoc = {
      _id: requestId(scope, page, seq),
      ...scope,
      page,
      seq,
      recipients: ofPage.map((d) => ({ id: d._id, attempt: d.attempts + 1 })),
      reservedAt: now,
      open: true,
    };
    const won = await store.sendRequests.insertOne(doc).then(
      () => true,
      (err: { code?: number }) => {
        if (err.code === 11000) return false; // another sender took this page's next request first
        throw err;
      },
    );
    if (!won) {
      held += ofPage.length;
      continue;
    }
    for (const d of ofPage) records.push({ ...d, attempts: d.attempts + 1, reservedAt: now, request: doc._id });
  }
  return { records, more: !complete, held };
}

/**
 * The records of this scope an earlier sender took and did not record: those named by the open
 * requests and still planned on that attempt, and those reserved in the old shape (`sending`).
 * Requests with nothing left unrecorded (their sender died after writing the records, before
 * closing) are returned too, to be closed.
 */
export async function unfinishedReservations(
  store: Store,
  scope: Scope,
): Promise<{ records: Reserved[]; requests: string[] }> {
  const open = await store.sendRequests
    .find({ incidentId: scope.incidentId, kind: scope.kind, channel: scope.channel, open: true })
    .sort({ _id: 1 })
    .toArray();
  const records: Reserved[] = await store.deliveries
    .find({ ...scope, state: 'sending' })
    .sort({ _id: 1 })
    .toArray();
  if (scope.channel === 'voice') records.push(...(await callsEndedUnrecorded(store, scope)));
  for (const q of open) {
    const attemptOf = new Map(q.recipients.map((p) => [p.id, p.attempt]));
    const planned = await store.deliveries
      .find({ ...scope, state: 'planned', page: q.page })
      .sort({ _id: 1 })
      .toArray();
    for (const d of planned)
      if (attemptOf.get(d._id) === d.attempts + 1)
        records.push({ ...d, attempts: d.attempts + 1, reservedAt: q.reservedAt, request: q._id });
  }
  return { records, requests: open.map((q) => q._id) };
}

/**
 * Calls about to be made are written at once, as before send requests: `sending`, on their attempt,
 * with their words. Plivo fetches the words from our answer URL while it rings, and a hang-up may
 * be reported before the answer to the request is recorded (api/plivo/voice-calls.ts moves a call
 * in `sending`). Calls are few (staff escalations, fallbacks): one write each costs nothing here.
 */
export async function markCalling(store: Store, records: Reserved[], text: string, now: Date): Promise<void> {
  await updateEachIf(
    store,
    store.deliveries,
    records.map((d) => ({
      id: d._id,
      update: {
        $set: {
          state: 'sending' as const,
          text,
          attempts: d.attempts,
          reservedAt: d.reservedAt ?? now,
          updatedAt: now,
        },
        $push: { history: step('sending', d.reservedAt ?? now) },
      },
    })),
    { state: 'planned' },
    (d) => d.state === 'planned',
    undefined,
    { readFirst: false },
  );
}

/** What a call's hang-up leaves: the call ended, whether or not its answer was recorded. */
const ENDED: DeliveryState[] = ['delivered', 'undelivered'];

/**
 * Calls of the last hour that ended (their hang-up was reported) before the answer to their
 * request was recorded: the answer was lost, or not written yet when the sender stopped. They
 * keep the state the hang-up gave them; the reconciliation finds the call at Plivo and records
 * its id on them (recordAttempt).
 */
async function callsEndedUnrecorded(store: Store, scope: Scope): Promise<Reserved[]> {
  const since = new Date(Date.now() - 3600_000);
  const found = await Promise.all(
    ENDED.map((state) =>
      store.deliveries
        .find({ ...scope, state, providerMessageId: { $exists: false }, reservedAt: { $gte: since } })
        .toArray(),
    ),
  );
  return found.flat().sort((a, b) => (a._id < b._id ? -1 : 1));
}

/** Closes requests whose records are written (or settled by a reconciliation). */
export async function closeRequests(store: Store, ids: string[], now: Date): Promise<void> {
  for (const _id of new Set(ids))
    await store.sendRequests.updateOne({ _id, open: true }, { $set: { open: false, closedAt: now } });
}

function step(state: DeliveryState, at: Date, note?: string) {
  return { at, state, ...(note ? { note } : {}) };
}

/**
 * Writes the outcome of one attempt on each record, once: `to`, with `extra`, `attempts` set to
 * the attempt, and the history steps `sending` and `to`. Only if the record is still where the
 * sender took it: planned (or given up meanwhile, when `evenIfGivenUp`: the message went out, and
 * what the provider did with it is the truth) on the attempt before; or `sending` for a record
 * reserved in the old shape.
 */
async function recordAttempt(
  store: Store,
  items: { record: Reserved; to: DeliveryState; note?: string; extra?: Partial<Delivery> }[],
  now: Date,
  progress?: Progress,
  evenIfGivenUp = false,
): Promise<void> {
  const from: DeliveryState[] = evenIfGivenUp ? ['planned', 'expired'] : ['planned'];
  const byAttempt = new Map<number, typeof items>();
  for (const i of items) pushTo(byAttempt, i.record.attempts, i);
  for (const [attempt, group] of byAttempt) {
    const update = (i: (typeof items)[number]): UpdateFilter<Delivery> => ({
      $set: { state: i.to, updatedAt: now, attempts: attempt, reservedAt: i.record.reservedAt ?? now, ...i.extra },
      ...(i.to === 'accepted' || i.to === 'delivered' ? { $unset: { error: '' as const } } : {}),
      $push: {
        history: {
          $each: [
            ...(i.record.state === 'sending' ? [] : [step('sending', i.record.reservedAt ?? now)]),
            step(i.to, now, i.note),
          ],
        },
      },
    });
    const legacy = group.filter((i) => i.record.state === 'sending');
    const current = group.filter((i) => i.record.state !== 'sending');
    const condition: Filter<Delivery> = { state: { $in: from }, attempts: attempt - 1 };
    await updateEachIf(
      store,
      store.deliveries,
      current.map((i) => ({ id: i.record._id, update: update(i) })),
      condition,
      (d) => from.includes(d.state) && d.attempts === attempt - 1,
      progress,
      { readFirst: false },
    );
    await updateEachIf(
      store,
      store.deliveries,
      legacy.map((i) => ({ id: i.record._id, update: update(i) })),
      { state: 'sending' },
      (d) => d.state === 'sending',
      progress,
      { readFirst: false },
    );
    // A call may end, its hang-up reported, before the answer to its request is recorded: it keeps
    // the state the hang-up gave it, and gets the call's id (and the step that says where it came from).
    const ended = group.filter(
      (i) =>
        i.to === 'accepted' &&
        i.extra?.providerMessageId &&
        (i.record.state === 'sending' || ENDED.includes(i.record.state)),
    );
    await updateEachIf(
      store,
      store.deliveries,
      ended.map((i) => ({
        id: i.record._id,
        update: {
          $set: { providerMessageId: i.extra!.providerMessageId!, attempts: attempt },
          $push: { history: step('accepted', now, i.note) },
        },
      })),
      { state: { $in: ENDED }, providerMessageId: { $exists: false } },
      (d) => ENDED.includes(d.state) && !d.providerMessageId,
      progress,
      { readFirst: false },
    );
  }
}

/** Writes what the provider accepted (with its message id) and what it refused as invalid, on the records taken. */
export async function recordSendResults(
  store: Store,
  taken: Reserved[],
  accepted: AcceptedOutcome[],
  invalid: { id: string; error: string }[],
  now: Date,
  note: string,
  acceptedState: 'accepted' | 'delivered',
  progress?: Progress,
): Promise<void> {
  const byId = new Map(taken.map((d) => [d._id, d]));
  await recordAttempt(
    store,
    [
      ...accepted
        .filter((a) => byId.has(a.id))
        .map((a) => ({
          record: byId.get(a.id)!,
          to: acceptedState,
          note,
          extra: { providerMessageId: a.providerMessageId },
        })),
      ...invalid
        .filter((i) => byId.has(i.id))
        .map((i) => ({
          record: byId.get(i.id)!,
          to: 'failed' as const,
          note: i.error,
          extra: { error: i.error, invalidRecipient: true },
        })),
    ],
    now,
    progress,
    true,
  );
}

/** The provider will never take these (a refusal that no retry mends): failed on this attempt. */
export async function failReserved(store: Store, records: Reserved[], now: Date, why: string): Promise<void> {
  await recordAttempt(
    store,
    records.map((record) => ({ record, to: 'failed', note: why, extra: { error: why } })),
    now,
  );
}

/**
 * The request certainly failed before the provider accepted anything: the records are due again
 * (on the same attempt), with the failure in their history. Their request is closed by the caller.
 */
export async function releaseReservations(store: Store, records: Reserved[], now: Date, why: string): Promise<void> {
  if (records.length === 0) return;
  const legacy = records.filter((d) => d.state === 'sending').map((d) => d._id);
  if (legacy.length)
    await store.deliveries.updateMany(
      { _id: { $in: legacy }, state: 'sending' },
      { $set: { state: 'planned', updatedAt: now, error: why }, $push: { history: step('planned', now, why) } },
    );
  const current = records.filter((d) => d.state !== 'sending');
  await updateEachIf(
    store,
    store.deliveries,
    current.map((d) => ({
      id: d._id,
      update: {
        $set: { updatedAt: now, error: why },
        $push: { history: { $each: [step('sending', d.reservedAt ?? now), step('planned', now, why)] } },
      },
    })),
    { state: 'planned' },
    (d) => d.state === 'planned',
    undefined,
    { readFirst: false },
  );
}

/** Appends to the list under `key` (a batch groups up to 1,000 records: no copy per record). */
function pushTo<K, V>(groups: Map<K, V[]>, key: K, value: V): void {
  const list = groups.get(key);
  if (list) list.push(value);
  else groups.set(key, [value]);
}
