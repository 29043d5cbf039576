/**
 * The send path's writes: one request document per batch and page, instead of a write per message.
 *
 * A sender takes the due records of a page by inserting a request document that names them, with
 * the attempt each is on: `{_id: <incident>|<kind>/<channel>|p<page>|<seq>, recipients: [{id,
 * attempt}], reservedAt, open: true}` (stored as two arrays: see SendRequestDoc). The `_id` is the claim. `seq` is the number of requests the
 * sender saw on that page plus one, so two senders that read the page alike race on one insert and
 * exactly one wins; a sender that read it before another's request landed computes a `seq` that
 * exists, loses, and reads again. A record is due when it is planned and no open request names it
 * on its next attempt. The page's requests are read before its records: a request closed by then
 * was closed after its records were written, so the records read next show it.
 *
 * The records are not written when they are taken (the `sending` update and the per-record claim
 * of before), nor when Plivo answers an SMS request: its answer (a message id per record) goes into
 * the request, one update per batch (`recordAnswers`), which closes it and leaves it `pending`. A
 * record named by a pending request's answer, still planned on the attempt before, is on its way:
 * it is not due (dueCandidates), resolution counts it as told (answeredOverlay), and the receipt
 * applier writes it once, with its final state (store/receipts.ts). For those that got no receipt
 * within the delivery timeout the watchdog asks the provider first (waitingAnswers), and the answer
 * is written with the provider's word on it, or as `accepted` when the message is still queued or
 * unknown there (writeAnswers); billing and the end of an outage write what still waits
 * (settleAnswered). A request stops being pending once all its answers are written. An SMS found at
 * the provider by a reconciliation goes into its request the same way. Calls and the channels without
 * receipts are written on the records at once, with the history steps `sending` (at the reservation)
 * and the outcome. A request left open (the worker died, or the answer was lost after
 * the request went out) is settled by the next sender's reconciliation, which asks the provider
 * what it accepted.
 *
 * Records in `sending` were reserved by a version before this one: they are still settled by the
 * reconciliation (unfinishedReservations) and recorded as before.
 */
import type { Filter, UpdateFilter } from 'mongodb';
import type { Store } from './db';
import { findByValues, readPagesInOrder, updateEachIf, writesByIdAreConditional, type Progress } from './backend';
import { forgetQuiet, isQuiet, noteRecordsChanged, readPageBook, rememberQuiet } from './quiet-pages';
import { ANSWER_TIMEOUT_MS, liveSenders, senderId } from './sender-lease';
import type { AcceptedOutcome, Reserved, Scope, WaitingAnswer } from '../delivery/ports';
import type { Delivery, DeliveryChannel, DeliveryState, MessageKind } from '../domain/types';
import { pushTo } from '../domain/group-by';

export interface SendRequestDoc {
  _id: string;
  incidentId: string;
  kind: MessageKind;
  channel: DeliveryChannel;
  page: number;
  seq: number;
  /**
   * The records taken (`recipientIds`), each on the attempt this request makes of it (1 for the first),
   * at the same index of `recipientAttempts`. Arrays of plain values, not one sub-document per record:
   * FerretDB decodes a request whole on every read, and 50 sub-documents took 2-2.5x as long to read
   * (docs/ferretdb-notes.md). Read them with recipientsOf.
   */
  recipientIds?: string[];
  recipientAttempts?: number[];
  /** The records taken, as requests written before the arrays above name them. */
  recipients?: { id: string; attempt: number }[];
  reservedAt: Date;
  /** The sender's lease (store/sender-lease.ts): its requests are not settled by others while it lives. */
  sender?: string;
  /** Until the provider's answer is recorded (on the records, or in the request), or the reconciliation has settled it. */
  open: boolean;
  closedAt?: Date;
  /** Answered, and some records it names may not carry their answer yet (see the top of this file). */
  pending?: boolean;
  answeredAt?: Date;
  /** The note the answer writes in the records' history. */
  note?: string;
  /**
   * The provider's answer: for each record accepted (`answerIds`), on the request's attempt of it
   * (`answerAttempts`), the message id it gave (`answerUuids`), at the same index. Read with answersOf.
   */
  answerIds?: string[];
  answerAttempts?: number[];
  answerUuids?: string[];
  /**
   * The answer, as requests answered before the arrays above hold it. Requests answered since hold
   * OUTCOMES_MOVED here: a worker of the version before, still running during a rolling upgrade, reads
   * `outcomes` for the answers; with nothing there it would take the records for due and send them
   * again, with a string it fails (its activity is retried, on a new worker), which texts nobody twice.
   */
  outcomes?: Answer[] | typeof OUTCOMES_MOVED;
  /**
   * How many answers the receipt applier has written on their records with their receipts (each
   * counted once: its write's condition holds once). All of them: no longer pending, without a read
   * of the records. Answers written otherwise (the watchdog, billing) are not counted: those end the
   * request's pending state themselves, from the records.
   */
  answersWritten?: number;
  settledAt?: Date;
}

/** One record's answer: the message the provider accepted for it, on that attempt. */
export interface Answer {
  id: string;
  attempt: number;
  uuid: string;
}

/** An answer as the receipt applier needs it: the record, the attempt, and the history it writes. */
export interface AnswerRef extends Answer {
  /** The request that holds the answer. */
  request: string;
  reservedAt: Date;
  answeredAt: Date;
  note?: string;
}

/** The records a request took, each with its attempt, whichever shape the request was written in. */
export function recipientsOf(q: Pick<SendRequestDoc, 'recipientIds' | 'recipientAttempts' | 'recipients'>): {
  id: string;
  attempt: number;
}[] {
  if (!q.recipientIds) return q.recipients ?? [];
  const attempts = q.recipientAttempts ?? [];
  return q.recipientIds.map((id, i) => ({ id, attempt: attempts[i] ?? 1 }));
}

/** The answers a request holds, whichever shape it was written in. */
export function answersOf(
  q: Pick<SendRequestDoc, 'answerIds' | 'answerAttempts' | 'answerUuids' | 'outcomes'>,
): Answer[] {
  if (!q.answerIds) return Array.isArray(q.outcomes) ? q.outcomes : [];
  const attempts = q.answerAttempts ?? [];
  const uuids = q.answerUuids ?? [];
  return q.answerIds.map((id, i) => ({ id, attempt: attempts[i] ?? 1, uuid: uuids[i] ?? '' }));
}

function recipientFields(
  taken: { id: string; attempt: number }[],
): Pick<SendRequestDoc, 'recipientIds' | 'recipientAttempts'> {
  return { recipientIds: taken.map((t) => t.id), recipientAttempts: taken.map((t) => t.attempt) };
}

/** What `outcomes` holds in a request answered in the shape of arrays (see SendRequestDoc). */
export const OUTCOMES_MOVED = 'moved to answerIds, answerAttempts and answerUuids';

function answerFields(
  answers: Answer[],
): Pick<SendRequestDoc, 'answerIds' | 'answerAttempts' | 'answerUuids' | 'outcomes'> {
  return {
    outcomes: OUTCOMES_MOVED,
    answerIds: answers.map((a) => a.id),
    answerAttempts: answers.map((a) => a.attempt),
    answerUuids: answers.map((a) => a.uuid),
  };
}

function requestId(scope: Scope, page: number, seq: number): string {
  return `${scope.incidentId}|${scope.kind}/${scope.channel}|p${page}|${seq}`;
}

/** A page's view for one sender: how many requests it holds, and what it found there. */
interface PageView {
  requests: number;
  /** Planned records due and free. */
  free: number;
  /** Planned records due that an open request holds (another sender is sending them, or died doing so). */
  held: number;
}

const taken = (id: string, attempt: number) => `${id}#${attempt}`;

/** What the readers of pending requests need of them: all but the records taken (the answers name them). */
const WITHOUT_RECIPIENTS = { projection: { recipients: 0, recipientIds: 0, recipientAttempts: 0 } } as const;

/** The records a request took, in either shape (see SendRequestDoc). */
const WITH_RECIPIENTS = { recipients: 1, recipientIds: 1, recipientAttempts: 1 } as const;

/** Only the answers (the message ids a reconciliation must not take for lost ones). */
const ONLY_ANSWERS = { projection: { outcomes: 1, answerIds: 1, answerAttempts: 1, answerUuids: 1 } } as const;

/** Pending requests read this many at a time: a page's few, not every batch of a 100,000 fan-out at once. */
const PENDING_READ_BATCH = 20;

/**
 * Up to `want` due records of a scope, by page (oldest first: a message retried goes back to
 * planned on its own page, so it goes before the pages not yet sent) and by `_id` within a page,
 * leaving out those an open request has taken (`held`). One read of the page's requests and one of
 * its planned records per page, each matching at most a page of records. A page seen quiet (nothing
 * due, nothing held) is not read again until a change is noted on it or its time comes
 * (store/quiet-pages.ts).
 */
export async function dueCandidates(
  store: Store,
  scope: Scope,
  want: number,
  now: Date,
  skip?: ReadonlySet<number>,
  readQuiet = false,
): Promise<{ found: Delivery[]; complete: boolean; held: number; pages: Map<number, PageView> }> {
  // Read before the pages: a change noted after this read is one the pages show, or one the next call sees noted.
  const book = await readPageBook(store, scope.incidentId);
  const pages = new Map<number, PageView>();
  let held = 0;
  const r = await readPagesInOrder(0, book.last, want, async (page) => {
    if (skip?.has(page)) return [];
    const quietKey = `${scope.incidentId}|${scope.kind}/${scope.channel}|p${page}`;
    const changes = book.changes(page);
    if (!readQuiet && isQuiet(store, quietKey, changes, now.getTime())) return [];
    // Requests first (see the top of this file).
    const requests = await store.sendRequests
      .find(
        { incidentId: scope.incidentId, kind: scope.kind, channel: scope.channel, page },
        {
          projection: {
            open: 1,
            pending: 1,
            ...WITH_RECIPIENTS,
            ...ONLY_ANSWERS.projection,
          },
        },
      )
      .toArray();
    const holding = new Set(
      requests.filter((q) => q.open).flatMap((q) => recipientsOf(q).map((p) => taken(p.id, p.attempt))),
    );
    const answered = new Set(
      requests.flatMap((q) => (q.pending ? answersOf(q) : [])).map((p) => taken(p.id, p.attempt)),
    );
    // Every planned record, deferred ones too: the earliest of those is when a quiet page must be
    // read again (equalities only, which every engine hands to an index).
    const planned = await store.deliveries
      // Everything the sender needs but the history, which only grows and is only ever appended to.
      .find({ ...scope, state: 'planned', page }, { projection: { history: 0 } })
      .sort({ _id: 1 })
      .toArray();
    const deferred = planned.filter((d) => d.notBefore && d.notBefore > now);
    const dueNow = deferred.length ? planned.filter((d) => !d.notBefore || d.notBefore <= now) : planned;
    const key = (d: Delivery) => taken(d._id, d.attempts + 1);
    // On their way (answered, waiting for a receipt) or held by a sender: not due.
    const free = dueNow.filter((d) => !holding.has(key(d)) && !answered.has(key(d)));
    const heldHere = dueNow.filter((d) => holding.has(key(d))).length;
    pages.set(page, {
      requests: requests.length,
      free: free.length,
      held: heldHere,
    });
    if (free.length === 0 && heldHere === 0) {
      const nextDue = Math.min(...deferred.map((d) => d.notBefore!.getTime()));
      rememberQuiet(store, quietKey, changes, now.getTime(), nextDue);
    } else forgetQuiet(store, quietKey);
    held += heldHere;
    return free;
  });
  return { found: r.items, complete: r.complete, held, pages };
}

/** Whether a planned record of this scope is due now and free (found page by page, like a batch). */
export async function anyDue(store: Store, scope: Scope, now: Date, readQuiet = false): Promise<boolean> {
  return (await dueCandidates(store, scope, 1, now, undefined, readQuiet)).found.length > 0;
}

/** Whether a planned record of any of these scopes is due now and free. */
export async function anyDueIn(store: Store, scopes: Scope[], now: Date, readQuiet = false): Promise<boolean> {
  for (const scope of scopes) if (await anyDue(store, scope, now, readQuiet)) return true;
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
  skip?: ReadonlySet<number>,
): Promise<{ records: Reserved[]; more: boolean; held: number; exhausted: number[] }> {
  const { found, complete, held: takenByOthers, pages } = await dueCandidates(store, scope, limit, now, skip);
  let held = takenByOthers;
  const records: Reserved[] = [];
  // Pages this batch leaves with nothing due and nobody else holding anything: the caller may skip
  // them for the rest of its call (a record that comes back to planned there waits for the next call).
  const exhausted = [...pages].filter(([, v]) => v.free === 0 && v.held === 0).map(([page]) => page);
  const byPage = new Map<number, Delivery[]>();
  for (const d of found) pushTo(byPage, d.page ?? 0, d);
  const sender = byPage.size ? await senderId(store) : undefined;
  for (const [page, ofPage] of byPage) {
    const seq = pages.get(page)!.requests + 1;
    const doc: SendRequestDoc = {
      _id: requestId(scope, page, seq),
      ...scope,
      page,
      seq,
      ...recipientFields(ofPage.map((d) => ({ id: d._id, attempt: d.attempts + 1 }))),
      reservedAt: now,
      sender,
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
    if (ofPage.length === pages.get(page)!.free && pages.get(page)!.held === 0) exhausted.push(page);
  }
  return { records, more: !complete, held, exhausted };
}

/**
 * Takes records a planner has just inserted, to send them at once without reading them back: the
 * page's request number `seq` (1 for the first batch of a new page, then 2, ...), as a sender that
 * found `seq - 1` requests on the page would insert it. When that request exists already (two
 * planners that shared a page, or a sender that got there first), the insert loses and nothing is
 * taken: a sender finds them due as usual.
 */
export async function reserveFresh(
  store: Store,
  scope: Scope,
  records: Delivery[],
  now: Date,
  seq = 1,
): Promise<Reserved[]> {
  const page = records[0]?.page;
  if (page === undefined || records.some((d) => d.page !== page || d.attempts !== 0)) return [];
  const doc: SendRequestDoc = {
    _id: requestId(scope, page, seq),
    ...scope,
    page,
    seq,
    ...recipientFields(records.map((d) => ({ id: d._id, attempt: 1 }))),
    reservedAt: now,
    sender: await senderId(store),
    open: true,
  };
  const won = await store.sendRequests.insertOne(doc).then(
    () => true,
    (err: { code?: number }) => {
      if (err.code === 11000) return false;
      throw err;
    },
  );
  return won ? records.map((d) => ({ ...d, attempts: 1, reservedAt: now, request: doc._id })) : [];
}

/**
 * The records of this scope an earlier sender took and did not record: those named by the open
 * requests of senders that are gone (store/sender-lease.ts) or that are older than any answer
 * takes, and still planned on that attempt, and those reserved in the old shape (`sending`).
 * Requests with nothing left unrecorded (their sender died after writing the records, before
 * closing) are returned too, to be closed. A live sender's recent request is left to it: its
 * records stay held, and the caller comes back.
 */
export async function unfinishedReservations(
  store: Store,
  scope: Scope,
  now = new Date(),
): Promise<{ records: Reserved[]; requests: string[] }> {
  const all = await store.sendRequests
    .find({ incidentId: scope.incidentId, kind: scope.kind, channel: scope.channel, open: true })
    .sort({ _id: 1 })
    .toArray();
  const live = await liveSenders(
    store,
    all.flatMap((q) => (q.sender ? [q.sender] : [])),
    now,
  );
  const open = all.filter(
    (q) => !q.sender || !live.has(q.sender) || q.reservedAt.getTime() < now.getTime() - ANSWER_TIMEOUT_MS,
  );
  const records: Reserved[] = await store.deliveries
    .find({ ...scope, state: 'sending' })
    .sort({ _id: 1 })
    .toArray();
  if (scope.channel === 'voice') records.push(...(await callsEndedUnrecorded(store, scope)));
  for (const q of open) {
    const attemptOf = new Map(recipientsOf(q).map((p) => [p.id, p.attempt]));
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

/** A sender lost these requests' answers: it names no sender any more, so the next one settles them at once. */
export async function abandonRequests(store: Store, ids: string[]): Promise<void> {
  for (const _id of new Set(ids)) await store.sendRequests.updateOne({ _id, open: true }, { $unset: { sender: '' } });
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

/**
 * Closes requests whose records are written (or settled by a reconciliation). A request closed here
 * (not by its answers) frees what it held and was not written: due again, noted on its page.
 */
export async function closeRequests(store: Store, ids: string[], now: Date): Promise<void> {
  const closed: { incidentId: string; page: number }[] = [];
  for (const _id of new Set(ids)) {
    const r = await store.sendRequests.updateOne({ _id, open: true }, { $set: { open: false, closedAt: now } });
    const at = r.modifiedCount > 0 ? pageOfRequest(_id) : undefined;
    if (at) closed.push(at);
  }
  await noteRecordsChanged(store, closed);
}

/** The incident and page a request's `_id` names (see requestId). */
function pageOfRequest(id: string): { incidentId: string; page: number } | undefined {
  const m = /^(.*)\|[^|]*\|p(\d+)\|\d+$/.exec(id);
  return m ? { incidentId: m[1]!, page: Number(m[2]) } : undefined;
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

/**
 * Answers kept in this process by message id, as the sender recorded them: the receipt applier of
 * the same worker finds a record without a query, and a receipt that comes before the request's
 * answer is written finds it all the same. Others (another worker's, older ones) are read from the
 * requests their receipts name (answersOfRequests). Bounded, the oldest go first: at 100,000
 * recipients the 200,000 answers waiting for receipts held 55 MB of the worker's heap when all were
 * kept; 50,000 hold about 13 MB, and a drill's worker (20,000 subscribers) still finds its own.
 */
const answersSeen = new WeakMap<Store, Map<string, AnswerRef>>();
const ANSWERS_KEPT = 50_000;

function remember(store: Store, refs: AnswerRef[]): void {
  let seen = answersSeen.get(store);
  if (!seen) answersSeen.set(store, (seen = new Map()));
  for (const r of refs) seen.set(r.uuid, r);
  for (const uuid of seen.keys()) {
    if (seen.size <= ANSWERS_KEPT) break;
    seen.delete(uuid);
  }
}

/**
 * Answers no longer needed here: written on their records by the watchdog (their request is no longer
 * pending), or by their message's final receipt (store/receipts.ts: a later word on the message finds
 * the record by its message id). What a worker keeps is then what is on its way, not all it sent.
 */
export function forgetAnswers(store: Store, uuids: Iterable<string>): void {
  const seen = answersSeen.get(store);
  if (seen) for (const uuid of uuids) seen.delete(uuid);
}

/**
 * An answer as kept in memory: one object literal with every field, always in this order. Made by
 * spreading (`{ ...answer, request, ... }`) each object got a hidden class of its own in V8, about
 * 300 bytes more per answer: at 100,000 recipients the 235,000 answers held 87 MB of the worker's heap.
 */
function answerRef(
  o: Answer,
  request: string,
  reservedAt: Date,
  answeredAt: Date,
  note: string | undefined,
): AnswerRef {
  return { id: o.id, attempt: o.attempt, uuid: o.uuid, request, reservedAt, answeredAt, note };
}

function refsOf(q: SendRequestDoc): AnswerRef[] {
  return answersOf(q).map((o) => answerRef(o, q._id, q.reservedAt, q.answeredAt!, q.note));
}

/**
 * What Plivo accepted of a batch of SMS, written into the batch's requests (one update each, which
 * closes them and leaves them pending: see the top of this file); what it refused as invalid, on
 * the records. Records reserved in the old shape (`sending`) are written as before.
 */
export async function recordAnswers(
  store: Store,
  taken: Reserved[],
  accepted: AcceptedOutcome[],
  invalid: { id: string; error: string }[],
  now: Date,
  note: string,
  progress?: Progress,
): Promise<void> {
  // Where a conditional write by `_id` is not (see the adapter), answers go on the records, as before.
  if (!(await writesByIdAreConditional(store)))
    return recordSendResults(store, taken, accepted, invalid, now, note, 'accepted', progress);
  const byId = new Map(taken.map((d) => [d._id, d]));
  const legacy = accepted.filter((a) => byId.get(a.id)?.state === 'sending' || !byId.get(a.id)?.request);
  await recordSendResults(store, taken, legacy, invalid, now, note, 'accepted', progress);
  const byRequest = new Map<string, AnswerRef[]>();
  for (const a of accepted) {
    const d = byId.get(a.id);
    if (!d?.request || d.state === 'sending') continue;
    const answer = { id: a.id, attempt: d.attempts, uuid: a.providerMessageId };
    pushTo(byRequest, d.request, answerRef(answer, d.request, d.reservedAt ?? now, now, note));
  }
  // A request that answers fewer than it took (the rest failed to go out and were released) frees them as it closes.
  const takenBy = new Map<string, number>();
  for (const d of taken) if (d.request) takenBy.set(d.request, (takenBy.get(d.request) ?? 0) + 1);
  const freeing = [...byRequest].filter(([_id, refs]) => refs.length < (takenBy.get(_id) ?? 0)).map(([_id]) => _id);
  for (const [_id, refs] of byRequest) {
    // Known here before the request says so: a receipt may come first (it then waits in pending_receipts otherwise).
    remember(store, refs);
    await store.sendRequests.updateOne(
      { _id, open: true },
      {
        $set: {
          open: false,
          closedAt: now,
          pending: true,
          answeredAt: now,
          note,
          ...answerFields(refs),
        },
      },
    );
  }
  await noteRecordsChanged(
    store,
    freeing.flatMap((id) => pageOfRequest(id) ?? []),
  );
}

/**
 * The answers to these message ids that are pending (their records may not carry them): from this
 * process's memory, then from the pending requests (the batches still waiting for receipts: few).
 */
export async function pendingAnswers(store: Store, uuids: string[]): Promise<Map<string, AnswerRef>> {
  const found = answersInMemory(store, uuids);
  const missing = uuids.filter((uuid) => !found.has(uuid));
  if (missing.length === 0) return found;
  const wanted = new Set(missing);
  const read: AnswerRef[] = [];
  for await (const q of store.sendRequests.find({ pending: true }, WITHOUT_RECIPIENTS).batchSize(PENDING_READ_BATCH))
    for (const r of refsOf(q)) if (wanted.has(r.uuid)) read.push(r);
  for (const r of read) found.set(r.uuid, r);
  remember(store, read);
  return found;
}

/**
 * The pending answers to these message ids, read from the requests their receipts name (message id
 * to request id): a few documents by `_id`, where pendingAnswers reads every pending request.
 * A request that does not hold the message's answer (or is no longer pending) answers nothing for it.
 */
export async function answersOfRequests(store: Store, requestOf: Map<string, string>): Promise<Map<string, AnswerRef>> {
  const found = new Map<string, AnswerRef>();
  if (requestOf.size === 0) return found;
  const requests = await findByValues(
    store,
    store.sendRequests,
    '_id',
    [...new Set(requestOf.values())],
    { pending: true },
    WITHOUT_RECIPIENTS,
  );
  for (const q of requests) for (const r of refsOf(q)) if (requestOf.get(r.uuid) === q._id) found.set(r.uuid, r);
  remember(store, [...found.values()]);
  return found;
}

/**
 * Ends the pending state of these requests where every answer is written on its record (their
 * receipts came): the receipt applier calls it for the requests a round wrote to, so that the
 * pending requests stay the few whose receipts are still on their way.
 */
export async function endPendingIfWritten(store: Store, requestIds: string[], now: Date): Promise<void> {
  for (const _id of new Set(requestIds)) {
    const q = await store.sendRequests.findOne({ _id, pending: true });
    if (q && (await stillWaiting(store, q)).length === 0) await endPending(store, q, now);
  }
}

/**
 * Adds to each request the answers the receipt applier has just written on their records (request
 * id to how many), and ends the pending state of those whose answers are all written. An update of
 * the request, not a read of its page's records: while receipts lag, the page's records are still
 * planned, and reading them again on each round of the applier was the most the embedded server
 * decoded per delivered SMS.
 */
export async function countAnswersWritten(store: Store, written: Map<string, number>, now: Date): Promise<void> {
  for (const [_id, n] of written) {
    const q = await store.sendRequests.findOneAndUpdate(
      { _id, pending: true },
      { $inc: { answersWritten: n } },
      // Whole: FerretDB does not take a projection on findAndModify.
      { returnDocument: 'after' },
    );
    if (q && (q.answersWritten ?? 0) >= answersOf(q).length) await endPending(store, q, now);
  }
}

/** The pending answers to these message ids this process knows (it sent them, or read them from their requests). */
export function answersInMemory(store: Store, uuids: string[]): Map<string, AnswerRef> {
  const found = new Map<string, AnswerRef>();
  const seen = answersSeen.get(store);
  if (seen)
    for (const uuid of uuids) {
      const ref = seen.get(uuid);
      if (ref) found.set(uuid, ref);
    }
  return found;
}

/** The message ids of every pending answer (a reconciliation must not take them for a lost one). */
export async function pendingUuids(store: Store): Promise<Set<string>> {
  const requests = await store.sendRequests.find({ pending: true }, ONLY_ANSWERS).toArray();
  return new Set(requests.flatMap((q) => answersOf(q).map((o) => o.uuid)));
}

/**
 * The records a pending request's answers are not written on yet, each with its answer: still
 * planned (or given up while on its way) on the attempt before. One query per state of the
 * request's page, each an equality FerretDB hands down; few records once the receipts are in.
 */
async function stillWaiting(store: Store, q: SendRequestDoc): Promise<{ record: Delivery; answer: Answer }[]> {
  return (await stillWaitingOnPage(store, [q]))[0];
}

/**
 * stillWaiting for requests of one page, the page read once: a page holds several pending requests
 * at once (its first batch, then resends of what was not delivered), and reading its records again
 * for each of them made a drill's sweep of 5,000 spend seconds. A record is named on its next
 * attempt by one request at most, so each record goes to one request.
 */
async function stillWaitingOnPage(
  store: Store,
  requests: SendRequestDoc[],
): Promise<{ record: Delivery; answer: Answer }[][]> {
  const q0 = requests[0];
  const scope = { incidentId: q0.incidentId, kind: q0.kind, channel: q0.channel, page: q0.page };
  const records = (
    await Promise.all(
      (['planned', 'expired'] as DeliveryState[]).map((state) =>
        store.deliveries.find({ ...scope, state }, { projection: { history: 0 } }).toArray(),
      ),
    )
  ).flat();
  return requests.map((q) => {
    const answerOf = new Map(answersOf(q).map((o) => [o.id, o]));
    return records.flatMap((record) => {
      const answer = answerOf.get(record._id);
      return answer && answer.attempt === record.attempts + 1 ? [{ record, answer }] : [];
    });
  });
}

/**
 * The pending requests `filter` names, a page (incident, kind, channel, page) at a time: in `_id` order,
 * which keeps a page's requests together (`<incident>|<kind>/<channel>|p<page>|` begins every `_id` of
 * a page and no other). Read as they are used: at 100,000 recipients the pending requests of a fan-out
 * name 100,000 answers, and read at once they were 20-30 MB of the worker's heap on every sweep.
 */
async function* pendingByPage(store: Store, filter: Filter<SendRequestDoc>): AsyncGenerator<SendRequestDoc[]> {
  const requests = store.sendRequests
    .find({ ...filter, pending: true }, WITHOUT_RECIPIENTS)
    .sort({ _id: 1 })
    .batchSize(PENDING_READ_BATCH);
  const pageOf = (q: SendRequestDoc) => `${q.incidentId}|${q.kind}/${q.channel}|p${q.page}`;
  let group: SendRequestDoc[] = [];
  for await (const q of requests) {
    if (group.length && pageOf(group[0]) !== pageOf(q)) {
      yield group;
      group = [];
    }
    group.push(q);
  }
  if (group.length) yield group;
}

/**
 * Each pending request `filter` names with what it still waits for, one page at a time (a page's
 * records in memory at once). A page all of whose requests `unread` accepts is not read: its
 * requests come with `undefined`.
 */
function stillWaitingByRequest(
  store: Store,
  filter: Filter<SendRequestDoc>,
): AsyncGenerator<[SendRequestDoc, { record: Delivery; answer: Answer }[]]>;
function stillWaitingByRequest(
  store: Store,
  filter: Filter<SendRequestDoc>,
  unread: (q: SendRequestDoc) => boolean,
): AsyncGenerator<[SendRequestDoc, { record: Delivery; answer: Answer }[] | undefined]>;
async function* stillWaitingByRequest(
  store: Store,
  filter: Filter<SendRequestDoc>,
  unread?: (q: SendRequestDoc) => boolean,
): AsyncGenerator<[SendRequestDoc, { record: Delivery; answer: Answer }[] | undefined]> {
  for await (const group of pendingByPage(store, filter)) {
    if (unread && group.every(unread)) {
      for (const q of group) yield [q, undefined];
      continue;
    }
    const waiting = await stillWaitingOnPage(store, group);
    for (const [i, q] of group.entries()) yield [q, waiting[i]];
  }
}

/**
 * Answered at or after `answeredBefore`: none of its messages is overdue yet. While receipts lag
 * (a storm of callbacks), its records are still planned, and the watchdog read its page on every
 * sweep to count them; the count is on the request (answersWritten by the applier). Answers written
 * another way are not counted there: such a request reads as waiting longer, until it is old
 * enough to be read (and its pending state ended).
 */
function answeredSince(q: SendRequestDoc, answeredBefore: Date): boolean {
  return !!q.answeredAt && q.answeredAt >= answeredBefore;
}

/** A request whose answers are all written: no longer pending, in the database and in this process. */
async function endPending(store: Store, q: SendRequestDoc, now: Date): Promise<void> {
  await store.sendRequests.updateOne({ _id: q._id, pending: true }, { $set: { pending: false, settledAt: now } });
  forgetAnswers(
    store,
    answersOf(q).map((o) => o.uuid),
  );
}

/**
 * The pending requests of a scope, one by one: a request whose records all carry their answer (their
 * receipts came) stops being pending; one answered before `answeredBefore` gets `accepted` (with
 * the message id, at the time of the answer) written on the records no receipt has written yet, and
 * stops being pending. Returns how many records the younger ones still hold (in flight, for the
 * watchdog). A page's planned records are few once its receipts are in: the reads stay small.
 */
export async function settleAnswered(
  store: Store,
  scope: Partial<Scope> & { incidentId: string },
  answeredBefore: Date,
  now: Date,
  progress?: Progress,
): Promise<number> {
  let inFlight = 0;
  for await (const [q, waiting] of stillWaitingByRequest(store, scope)) {
    const items = waiting.map(({ record: d, answer: o }) => ({
      record: { ...d, attempts: o.attempt, reservedAt: q.reservedAt, request: q._id } as Reserved,
      to: 'accepted' as const,
      note: q.note,
      extra: { providerMessageId: o.uuid },
    }));
    if (items.length && q.answeredAt && q.answeredAt >= answeredBefore) {
      inFlight += items.length;
      continue;
    }
    await recordAttempt(store, items, q.answeredAt ?? now, progress, true);
    await endPending(store, q, now);
  }
  return inFlight;
}

/**
 * The watchdog's look at a scope's pending answers, before it writes any: how many records still wait
 * for their receipt, and the first `limit` of those answered before `answeredBefore`, in request order,
 * for it to ask the provider about. Requests with nothing waiting stop being pending. Nothing else is
 * written: an answer the provider says is delivered is then written once, with its final state
 * (applyReceipts), where settleAnswered wrote `accepted` first and the receipt a second time (in the
 * 20,000 drill, after a kill, 10,000 records in 32 s, whose receipts were late, not lost).
 */
export async function waitingAnswers(
  store: Store,
  scope: Scope,
  answeredBefore: Date,
  limit: number,
  now: Date,
): Promise<{ waiting: number; overdue: WaitingAnswer[] }> {
  let waiting = 0;
  const overdue: WaitingAnswer[] = [];
  for await (const [q, still] of stillWaitingByRequest(store, scope, (q) => answeredSince(q, answeredBefore))) {
    if (still === undefined) {
      // Young: none is overdue, and how many still wait is counted on the request, not read from the records.
      waiting += Math.max(0, answersOf(q).length - (q.answersWritten ?? 0));
      continue;
    }
    if (still.length === 0) {
      await endPending(store, q, now);
      continue;
    }
    waiting += still.length;
    if (!q.answeredAt || q.answeredAt >= answeredBefore) continue;
    for (const { record: d, answer: o } of still) {
      if (overdue.length >= limit) break;
      // Known in memory: the provider's word on it, applied next, finds its record without a query.
      remember(store, [answerRef(o, q._id, q.reservedAt, q.answeredAt, q.note)]);
      overdue.push({
        providerMessageId: o.uuid,
        record: { ...d, attempts: o.attempt, reservedAt: q.reservedAt, request: q._id },
        answeredAt: q.answeredAt,
        note: q.note,
      });
    }
  }
  return { waiting, overdue };
}

/**
 * Writes these answers on their records as `accepted`, with the message id: at `at` (another delivery
 * timeout from then), or at each answer's own time (overdue at once, for the watchdog to retry). A
 * record a receipt wrote meanwhile is left as it is (recordAttempt's condition).
 */
export async function writeAnswers(store: Store, answers: WaitingAnswer[], at?: Date): Promise<void> {
  const byTime = new Map<number, WaitingAnswer[]>();
  for (const a of answers) pushTo(byTime, (at ?? a.answeredAt).getTime(), a);
  for (const [time, group] of byTime)
    await recordAttempt(
      store,
      group.map((a) => ({
        record: a.record,
        to: 'accepted' as const,
        note: a.note,
        extra: { providerMessageId: a.providerMessageId },
      })),
      new Date(time),
      undefined,
      true,
    );
  await endPendingIfWritten(
    store,
    answers.map((a) => a.record.request!),
    new Date(),
  );
}

/**
 * Of an incident's records still planned, those on their way (answered, waiting for their receipt),
 * by channel and kind: the counts an operator sees move them to `accepted` (store/incidents.ts).
 */
export async function answeredInFlight(
  store: Store,
  incidentId: string,
): Promise<{ channel: DeliveryChannel; kind: MessageKind; n: number }[]> {
  const out: { channel: DeliveryChannel; kind: MessageKind; n: number }[] = [];
  for await (const [q, waiting] of stillWaitingByRequest(store, { incidentId })) {
    // Planned ones only: one given up on its way is counted where it stands.
    const n = waiting.filter((w) => w.record.state === 'planned').length;
    if (n) out.push({ channel: q.channel, kind: q.kind, n });
  }
  return out;
}

/**
 * How a reader of an incident's records sees those on their way whose answer is still pending:
 * `accepted`, with the step the answer would have written. The requests are read before the
 * records (see the top of this file): a request settled after this read has written its records.
 */
export async function answeredOverlay(
  store: Store,
  incidentId: string,
  kind?: MessageKind,
): Promise<(d: Delivery) => Delivery> {
  // By record, its latest attempt's answer only: a record planned on attempt n can only be on its way
  // on n + 1, and an answer to an attempt before that is not about it any more. (Keyed by record and
  // attempt, the 100,000 keys of a restoration were 100,000 strings more.)
  const refs = new Map<string, AnswerRef>();
  const requests = store.sendRequests.find(
    { incidentId, ...(kind ? { kind } : {}), pending: true },
    WITHOUT_RECIPIENTS,
  );
  requests.batchSize(PENDING_READ_BATCH);
  for await (const q of requests)
    for (const r of refsOf(q)) if ((refs.get(r.id)?.attempt ?? 0) < r.attempt) refs.set(r.id, r);
  return overlayOf(refs);
}

/**
 * Every answer an incident's requests of `kind` hold, pending or not, as a resolution reads them
 * (store/notice-rolls.ts): the overlay of answeredOverlay (an answer already written on its record
 * no longer matches its attempt, so the requests no longer pending change nothing there), and the
 * first attempt of each record the provider accepted, with the time it was taken.
 */
export async function answersAtResolution(
  store: Store,
  incidentId: string,
  kind: MessageKind,
): Promise<{ asAnswered: (d: Delivery) => Delivery; firstAnswered: Map<string, { attempt: number; at: Date }> }> {
  const refs = new Map<string, AnswerRef>();
  const firstAnswered = new Map<string, { attempt: number; at: Date }>();
  const requests = store.sendRequests.find({ incidentId, kind }, WITHOUT_RECIPIENTS);
  requests.batchSize(PENDING_READ_BATCH);
  for await (const q of requests) {
    if (!q.answeredAt) continue; // not answered (yet): its records are read whole
    for (const r of refsOf(q)) {
      if ((refs.get(r.id)?.attempt ?? 0) < r.attempt) refs.set(r.id, r);
      if ((firstAnswered.get(r.id)?.attempt ?? Infinity) > r.attempt)
        firstAnswered.set(r.id, { attempt: r.attempt, at: r.reservedAt });
    }
  }
  return { asAnswered: overlayOf(refs), firstAnswered };
}

function overlayOf(refs: Map<string, AnswerRef>): (d: Delivery) => Delivery {
  if (refs.size === 0) return (d) => d;
  return (d) => {
    const r = d.state === 'planned' ? refs.get(d._id) : undefined;
    if (!r || r.attempt !== d.attempts + 1) return d;
    return {
      ...d,
      state: 'accepted',
      attempts: r.attempt,
      reservedAt: r.reservedAt,
      providerMessageId: r.uuid,
      history: [...(d.history ?? []), step('sending', r.reservedAt), step('accepted', r.answeredAt, r.note)],
    };
  };
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
  // The records of one request share their page and their reservation: one write each request, its
  // page an equality every engine hands to an index (a write per record cost 5.6 s per 1,000 on
  // FerretDB under load, this 2.5 s). It names each record's `_id`, so the write gate locks only
  // those; it adds a step to their history and changes no state, so a record expired meanwhile
  // (the filter still reads `planned`) loses nothing.
  const groups = new Map<string, Reserved[]>();
  for (const d of records.filter((r) => r.state !== 'sending'))
    pushTo(groups, `${d.incidentId}|${d.page ?? 0}|${(d.reservedAt ?? now).getTime()}`, d);
  for (const group of groups.values()) {
    const first = group[0]!;
    await store.deliveries.updateMany(
      {
        incidentId: first.incidentId,
        ...(first.page !== undefined ? { page: first.page } : {}),
        state: 'planned',
        _id: { $in: group.map((d) => d._id) },
      },
      {
        $set: { updatedAt: now, error: why },
        $push: { history: { $each: [step('sending', first.reservedAt ?? now), step('planned', now, why)] } },
      },
    );
  }
  // Those reserved in the old shape are due now; the others once their request closes (closeRequests notes that too).
  await noteRecordsChanged(store, records);
}
