/**
 * Data retention (docs/retention.md): deleting what is older than its configured age, in small
 * bounded steps that can each be repeated (Temporal retries them; a run cut short is finished by the
 * next one). Nothing here decides the ages: the caller passes cut-off dates (retention/settings.ts).
 *
 * - An incident's own records (its delivery records, their receipts, their send claims, its
 *   page counter) go together, once the incident has been billed (it has a `cost`, written by the
 *   billed stage, activities/billing.ts, with its ledger entries) and the newest of its records
 *   was last changed before the cut-off. An incident never billed keeps its records. The incident
 *   document stays (no personal data), marked `recordsDeletedAt`, so later runs pass it by.
 * - Alert events go by age once the incident they opened or joined is billed (or they touched
 *   none); refused webhook bodies, received SMS and the audit log go by age alone.
 * - The billing ledger and the months' runs go by month, after ten years by default.
 *
 * On FerretDB only equality filters reach PostgreSQL's indexes, and a `$in` is tested value by
 * value over everything else the filter matched: so deletions are by `_id` one at a time (bulk
 * writes of `{_id}` deletes), in batches of BATCH, never a `deleteMany` over a range.
 */
import { ObjectId, type Collection, type Document, type Filter } from 'mongodb';
import type { Store } from './db';
import { deleteByIds, findByValues } from './backend';
import { deleteRollsOf } from './notice-rolls';

/** Documents read and deleted per step. */
export const BATCH = 1000;

/** Called after each batch: the activities heartbeat there. */
export type Progress = () => void;

export interface IncidentRecordCounts {
  /** Its newest record was changed after the cut-off: nothing deleted, it is looked at again next run. */
  young?: boolean;
  deliveries: number;
  receipts: number;
  sendClaims: number;
}

/**
 * The incidents whose records may go: billed, opened before `cutoff` (none of their records can be
 * younger than that), not swept yet; in id order after `after`.
 */
export async function billedIncidentsBefore(
  store: Store,
  cutoff: Date,
  after: string | undefined,
  limit: number,
): Promise<string[]> {
  const filter = {
    cost: { $exists: true },
    openedAt: { $lt: cutoff },
    recordsDeletedAt: { $exists: false },
    ...(after !== undefined ? { _id: { $gt: after } } : {}),
  };
  const rows = await sweptIncidents(store)
    .find(filter, { projection: { _id: 1 } })
    .sort({ _id: 1 })
    .limit(limit)
    .toArray();
  return rows.map((r) => r._id);
}

/** Incidents opened before `cutoff` that were never billed: their records are kept (reported by a dry run). */
export async function unbilledIncidentsBefore(store: Store, cutoff: Date): Promise<number> {
  return store.incidents.countDocuments({ openedAt: { $lt: cutoff }, cost: { $exists: false } });
}

/** Incidents with the one field retention adds: when their records were deleted. */
function sweptIncidents(store: Store) {
  return store.db.collection<{ _id: string; recordsDeletedAt?: Date }>('incidents');
}

type RecordRef = { _id: string; providerMessageId?: string; attempts?: number };

/** The receipts of these messages: each message's own, and the parts of a long one (which name it as their parent). */
async function receiptIdsOf(store: Store, records: RecordRef[]): Promise<unknown[]> {
  const uuids = records.map((r) => r.providerMessageId).filter((u): u is string => Boolean(u));
  const opts = { projection: { _id: 1 } };
  const found = [
    ...(await findByValues(store, store.receipts, 'messageUuid', uuids, {}, opts)),
    ...(await findByValues(store, store.receipts, 'parentMessageUuid', uuids, {}, opts)),
  ];
  return [...new Map(found.map((r) => [String(r._id), r._id])).values()];
}

/** Every send claim a record can have had: one per attempt, `<record id>#<attempt>` (store/deliveries.ts). */
function claimIdsOf(records: RecordRef[]): string[] {
  return records.flatMap((r) => Array.from({ length: (r.attempts ?? 0) + 1 }, (_, i) => `${r._id}#${i + 1}`));
}

/**
 * Deletes one billed incident's records, if they are all older than `cutoff`, BATCH at a time:
 * receipts and send claims first, then the records that lead to them, so that an interrupted run
 * leaves nothing unreachable; then marks the incident. A dry run reads the same, deletes nothing.
 */
export async function purgeIncidentRecords(
  store: Store,
  incidentId: string,
  cutoff: Date,
  opts: { dryRun?: boolean; now?: Date; progress?: Progress } = {},
): Promise<IncidentRecordCounts> {
  const counts: IncidentRecordCounts = { deliveries: 0, receipts: 0, sendClaims: 0 };
  // A long incident (a maintenance announced weeks ahead, an outage of days) may have records
  // younger than the cut-off although it opened before it: it waits until all of them are old.
  const [newest] = await store.deliveries
    .find({ incidentId }, { projection: { _id: 0, updatedAt: 1 } })
    .sort({ updatedAt: -1 })
    .limit(1)
    .toArray();
  if (newest && newest.updatedAt >= cutoff) return { ...counts, young: true };
  const projection = { _id: 1, providerMessageId: 1, attempts: 1 };
  if (opts.dryRun) {
    const cursor = store.deliveries.find({ incidentId }, { projection }).batchSize(BATCH);
    let batch: RecordRef[] = [];
    const count = async () => {
      counts.deliveries += batch.length;
      counts.receipts += (await receiptIdsOf(store, batch)).length;
      counts.sendClaims += (
        await findByValues(store, store.sendClaims, '_id', claimIdsOf(batch), {}, { projection: { _id: 1 } })
      ).length;
      batch = [];
      opts.progress?.();
    };
    for await (const d of cursor) {
      batch.push(d as RecordRef);
      if (batch.length >= BATCH) await count();
    }
    if (batch.length) await count();
    counts.sendClaims += await store.sendRequests.countDocuments({ incidentId });
    return counts;
  }
  // Each round reads the first BATCH records left, so no cursor stays open over documents being
  // deleted. FerretDB applies a limit after reading all that the equalities match: so the records
  // are read page by page ({incidentId, page}: indexed equalities, a planning batch each), then
  // whatever no page holds.
  const lastPage = (await store.deliveryPages.findOne({ _id: incidentId }))?.last ?? 0;
  for (const filter of [...Array.from({ length: lastPage + 1 }, (_, page) => ({ incidentId, page })), { incidentId }]) {
    for (;;) {
      const batch = (await store.deliveries.find(filter, { projection }).limit(BATCH).toArray()) as RecordRef[];
      if (batch.length === 0) break;
      counts.receipts += await deleteByIds(store, store.receipts, await receiptIdsOf(store, batch));
      counts.sendClaims += await deleteByIds(store, store.sendClaims, claimIdsOf(batch));
      counts.deliveries += await deleteByIds(
        store,
        store.deliveries,
        batch.map((d) => d._id),
      );
      opts.progress?.();
    }
  }
  // The send requests of its batches (the claims of versions since store/send-requests.ts), counted with the claims.
  counts.sendClaims += (await store.sendRequests.deleteMany({ incidentId })).deletedCount;
  await deleteRollsOf(store, incidentId);
  await store.deliveryPages.deleteOne({ _id: incidentId });
  await sweptIncidents(store).updateOne({ _id: incidentId }, { $set: { recordsDeletedAt: opts.now ?? new Date() } });
  return counts;
}

/**
 * Receipt batches made before `cutoff` (store/receipts.ts): a batch holds receipts of many
 * incidents, applied to their records within seconds of arriving, so it goes by age, not with an
 * incident. Receipts hold no personal data (a message id, a status, a price, an error code).
 */
export async function purgeReceiptBatchesBefore(store: Store, cutoff: Date, dryRun = false): Promise<number> {
  const old = await store.receiptBatches
    .find({ _id: { $lt: ObjectId.createFromTime(Math.floor(cutoff.getTime() / 1000)) } })
    .toArray();
  if (!dryRun)
    await deleteByIds(
      store,
      store.receiptBatches,
      old.map((b) => b._id),
    );
  return old.reduce((n, b) => n + b.receipts.length, 0);
}

/** The collections deleted by age (alert events: also once their incident is billed); their `_id` is an event id or an ObjectId. */
export const AGED = {
  alertEvents: { collection: 'alertEvents', field: 'receivedAt', objectIds: false },
  rejectedPayloads: { collection: 'rejectedPayloads', field: 'receivedAt', objectIds: true },
  inbound: { collection: 'inbound', field: 'receivedAt', objectIds: true },
  auditLog: { collection: 'auditLog', field: 'at', objectIds: true },
} as const;
export type AgedKind = keyof typeof AGED;

export interface AgedPage {
  /** Documents older than the cut-off read, deleted (or that a dry run would delete), and kept. */
  read: number;
  deleted: number;
  /** Alert events whose incident is not billed yet. */
  kept: number;
  /** Where the next page starts; absent after the last page. */
  next?: string;
}

/** Of these incidents, those not billed yet (an incident not in the database holds nothing back). */
async function unbilled(store: Store, incidentIds: string[]): Promise<Set<string>> {
  const found = await findByValues(
    store,
    store.incidents,
    '_id',
    [...new Set(incidentIds)],
    {},
    { projection: { _id: 1, cost: 1 } },
  );
  return new Set(found.filter((i) => !i.cost).map((i) => i._id));
}

/**
 * One page of documents older than `cutoff`, in `_id` order after `after` (an ObjectId as its hex
 * string), deleted BATCH at a time. A page is one query (on FerretDB every query with a range or a
 * sort reads the whole collection, so pages are large and few); a full page says where the next
 * one starts.
 */
export async function purgeAgedPage(
  store: Store,
  kind: AgedKind,
  cutoff: Date,
  opts: { after?: string; limit?: number; dryRun?: boolean; progress?: Progress } = {},
): Promise<AgedPage> {
  const { collection: name, field, objectIds } = AGED[kind];
  const collection = store[name] as unknown as Collection<Document>;
  const limit = opts.limit ?? 20_000;
  const after = opts.after === undefined ? undefined : objectIds ? new ObjectId(opts.after) : opts.after;
  const filter = {
    [field]: { $lt: cutoff },
    ...(after !== undefined ? { _id: { $gt: after } } : {}),
  } as unknown as Filter<Document>;
  const rows = await collection
    .find(filter, { projection: { _id: 1, ...(kind === 'alertEvents' ? { 'result.incidentId': 1 } : {}) } })
    .sort({ _id: 1 })
    .limit(limit)
    .toArray();
  let held = new Set<string>();
  if (kind === 'alertEvents') {
    const ids = rows
      .map((r) => (r.result as { incidentId?: string } | undefined)?.incidentId)
      .filter((i): i is string => Boolean(i));
    held = await unbilled(store, ids);
  }
  const doomed = rows
    .filter((r) => !held.has((r.result as { incidentId?: string } | undefined)?.incidentId ?? ''))
    .map((r) => r._id as unknown);
  let deleted = 0;
  for (let i = 0; i < doomed.length; i += BATCH) {
    const ids = doomed.slice(i, i + BATCH);
    deleted += opts.dryRun ? ids.length : await deleteByIds(store, collection, ids);
    opts.progress?.();
  }
  const last = rows[rows.length - 1]?._id as unknown;
  const page: AgedPage = { read: rows.length, deleted, kept: rows.length - doomed.length };
  if (rows.length >= limit && last !== undefined)
    page.next = last instanceof ObjectId ? last.toHexString() : String(last);
  return page;
}

export interface LedgerPurge {
  entries: number;
  billingRuns: number;
}

/**
 * Ledger entries of months before `beforeMonth`, and those months' runs. Each round reads up to
 * 20,000 ids left (one query: on FerretDB a range reads the whole ledger, whatever the limit) and
 * deletes them BATCH at a time; a dry run counts them.
 */
export async function purgeLedgerBefore(
  store: Store,
  beforeMonth: string,
  opts: { dryRun?: boolean; progress?: Progress } = {},
): Promise<LedgerPurge> {
  const old = { period: { $lt: beforeMonth } };
  if (opts.dryRun)
    return {
      entries: await store.ledger.countDocuments(old),
      billingRuns: await store.billingRuns.countDocuments({ _id: { $lt: beforeMonth } }),
    };
  let entries = 0;
  for (;;) {
    const ids = (
      await store.ledger
        .find(old, { projection: { _id: 1 } })
        .limit(20_000)
        .toArray()
    ).map((e) => e._id);
    if (ids.length === 0) break;
    for (let i = 0; i < ids.length; i += BATCH) {
      entries += await deleteByIds(store, store.ledger, ids.slice(i, i + BATCH));
      opts.progress?.();
    }
  }
  // Last: a run's summary is what revenue reports read for its month.
  const runs = await store.billingRuns.find({ _id: { $lt: beforeMonth } }, { projection: { _id: 1 } }).toArray();
  const billingRuns = await deleteByIds(
    store,
    store.billingRuns,
    runs.map((r) => r._id),
  );
  return { entries, billingRuns };
}
