/**
 * What the intake keeps in MongoDB, and the few queries on it. FerretDB's updates are not atomic
 * under concurrency, so every "only once" decision here is an insert of a unique `_id`:
 *
 * - alert_events: one document per delivered alert state, `_id` = its event id. The insert is the
 *   deduplication: the same delivery again fails with a duplicate key and finds the first one.
 *   It keeps the raw request and, once handled, the result; a document without a final result
 *   (the first attempt failed half-way) is handled again by the next delivery, which is safe
 *   because opening and resolving incidents are idempotent.
 * - alert_incidents: one document per episode of an alert (`<dedupKey>#<n>`): the incident that
 *   episode opened, and whether the tool has said it is over.
 * - rejected_payloads: every refused request (malformed, unknown site, bad token...), with why.
 */
import { MongoBulkWriteError, MongoServerError, type ObjectId } from 'mongodb';
import { groupCommit } from '../store/group-commit';
import type { Store } from '../store/db';
import type { AlertEvent, RawDelivery } from './alert-event';

/** What became of one alert. */
export type AlertAction =
  | 'accepted'
  | 'opened'
  | 'already_open'
  | 'resolved'
  | 'not_open'
  | 'recorded'
  | 'rejected'
  | 'joined'
  | 'absorbed'
  | 'reopened'
  | 'silenced';

export interface AlertResult {
  action: AlertAction;
  incidentId?: string;
  episode?: number;
  /** `silenced`: the planned maintenance its site is under. */
  maintenanceId?: string;
  /** Why it was recorded or rejected rather than acted on. */
  reason?: string;
}

/** Results that a repeat of the same delivery should simply report; `rejected` is tried again (the config may have been fixed). */
export function isFinal(result: AlertResult | undefined): result is AlertResult {
  return result !== undefined && result.action !== 'rejected' && result.action !== 'accepted';
}

export interface AlertEventDoc extends AlertEvent {
  _id: string;
  raw: RawDelivery;
  /** The sites the integration's mapping found, or why it found none. */
  siteIds?: string[];
  siteProblem?: string;
  result?: AlertResult;
  handledAt?: Date;
  /** Stored and not decided yet: what the sweep of undecided alerts looks for (removed with the result). */
  undecided?: true;
}

export interface AlertEpisodeDoc {
  _id: string; // the incident key: `${dedupKey}#${episode}`
  dedupKey: string;
  episode: number;
  incidentId: string;
  state: 'open' | 'resolved';
  siteIds: string[];
  openedAt: Date;
  resolvedAt?: Date;
  /** The alert joined an incident opened for a site upstream: its resolution does not resolve that incident. */
  joined?: boolean;
}

export interface RejectedPayloadDoc {
  _id?: ObjectId;
  receivedAt: Date;
  source: string;
  integration: string;
  /** The HTTP status answered, and the error's code and message, as the sender saw them. */
  status: number;
  code: string;
  message: string;
  field?: string;
  raw: RawDelivery & { truncated?: boolean };
  remoteAddress?: string;
  /** How a token was presented (never the token itself). */
  tokenVia?: string;
}

function isDuplicateKey(err: unknown): boolean {
  return err instanceof MongoServerError && err.code === 11000;
}

/** Stored first, or (a repeat, or a concurrent first delivery that lost) the document stored first. */
export type InsertedAlertEvent = { first: true } | { first: false; existing: AlertEventDoc };

/** The index of each duplicate key of a failed insertMany; undefined when anything else went wrong. */
function duplicateIndexes(err: unknown): Set<number> | undefined {
  if (!(err instanceof MongoBulkWriteError)) return undefined;
  const writeErrors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
  if (writeErrors.length === 0 || writeErrors.some((e) => e.code !== 11000)) return undefined;
  return new Set(writeErrors.map((e) => e.index));
}

async function firstDocument(store: Store, id: string, err: unknown): Promise<InsertedAlertEvent> {
  const existing = await store.alertEvents.findOne({ _id: id });
  if (!existing) throw err;
  return { first: false, existing };
}

/**
 * Stores a delivered alert; when this delivery was stored before (a repeat, or a concurrent first
 * delivery: the insert is the deciding step), returns that first document instead.
 */
export async function insertAlertEvent(store: Store, doc: AlertEventDoc): Promise<InsertedAlertEvent> {
  try {
    await store.alertEvents.insertOne({ ...doc, undecided: true });
    return { first: true };
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    return firstDocument(store, doc._id, err);
  }
}

/**
 * insertAlertEvent for a storm: the alerts of concurrent requests are inserted together, one
 * unordered insertMany per group (./group-commit.ts), each request still awaiting its own
 * alert's insert before its answer. The unique `_id` still decides between two first deliveries,
 * in one group or in two: the one whose insert failed on the key reads the other's document.
 */
export function createAlertEventInserter(store: Store): (doc: AlertEventDoc) => Promise<InsertedAlertEvent> {
  const insertGroup = groupCommit<AlertEventDoc, boolean>(async (docs) => {
    try {
      await store.alertEvents.insertMany(
        docs.map((d) => ({ ...d, undecided: true as const })),
        { ordered: false },
      );
      return docs.map(() => ({ ok: true, value: true }));
    } catch (err) {
      const duplicates = duplicateIndexes(err);
      if (!duplicates) throw err;
      return docs.map((_, i) => ({ ok: true, value: !duplicates.has(i) }));
    }
  });
  return async (doc) =>
    (await insertGroup(doc)) ? { first: true } : firstDocument(store, doc._id, new Error(`alert ${doc._id} vanished`));
}

function resultUpdate(result: AlertResult) {
  return { $set: { result, handledAt: new Date() }, $unset: { undecided: '' as const } };
}

/**
 * Records an alert's result; in a storm, the results of decisions that end while one group is
 * being written go together in the next (one unordered bulkWrite of updates by `_id`). Each caller
 * awaits its own.
 */
export function createAlertResultRecorder(store: Store): (eventId: string, result: AlertResult) => Promise<void> {
  const recordGroup = groupCommit<{ eventId: string; result: AlertResult }, void>(async (items) => {
    await store.alertEvents.bulkWrite(
      items.map(({ eventId, result }) => ({ updateOne: { filter: { _id: eventId }, update: resultUpdate(result) } })),
      { ordered: false },
    );
    return items.map(() => ({ ok: true, value: undefined }));
  });
  return (eventId, result) => recordGroup({ eventId, result });
}

/**
 * Alerts stored more than `olderThanMs` ago and not decided, oldest first. By the `undecided`
 * marker (an equality FerretDB hands to PostgreSQL's index), not by a scan of every alert and its
 * raw body; `legacy` also finds those stored before the marker existed (a scan: once at start).
 */
export async function undecidedAlertEvents(
  store: Store,
  olderThanMs: number,
  legacy = false,
): Promise<AlertEventDoc[]> {
  const before = new Date(Date.now() - olderThanMs);
  const filter = legacy
    ? { result: { $exists: false }, receivedAt: { $lt: before } }
    : { undecided: true as const, receivedAt: { $lt: before } };
  return store.alertEvents.find(filter).sort({ receivedAt: 1 }).limit(1000).toArray();
}

export async function storeRejectedPayload(store: Store, doc: RejectedPayloadDoc): Promise<void> {
  await store.rejectedPayloads.insertOne(doc);
}

/** The latest episode of an alert, open or not. */
export async function latestEpisode(store: Store, dedupKey: string): Promise<AlertEpisodeDoc | undefined> {
  const [latest] = await store.alertIncidents.find({ dedupKey }).sort({ episode: -1 }).limit(1).toArray();
  return latest;
}

/** Records a new episode; a concurrent delivery that recorded the same one first wins, harmlessly. */
export async function recordEpisode(store: Store, doc: AlertEpisodeDoc): Promise<void> {
  try {
    await store.alertIncidents.insertOne(doc);
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
  }
}

export async function closeEpisode(store: Store, key: string, at: Date): Promise<void> {
  await store.alertIncidents.updateOne({ _id: key, state: 'open' }, { $set: { state: 'resolved', resolvedAt: at } });
}

/** A resolve that was still settling was reopened: the episode is open again. */
export async function reopenEpisode(store: Store, key: string): Promise<void> {
  await store.alertIncidents.updateOne({ _id: key }, { $set: { state: 'open' }, $unset: { resolvedAt: '' } });
}
