/**
 * Imports subscribers from a billing or CRM export, streaming: rows are read, checked and
 * written a batch at a time.
 *
 * Idempotent: each stored subscriber carries a digest of the fields the import sets, so a row
 * whose digest is unchanged is not written at all, and importing the same file twice changes
 * nothing. New rows are inserted in batches (cheap everywhere); changed rows are updated one
 * statement each, in chunks of 50 sent one after another, never in parallel (FerretDB 1.24
 * holds a connection per update statement until its command ends and has 100: a large or
 * parallel bulk update stalls it).
 *
 * The digests of the stored subscribers are read once at the start, in one pass: on FerretDB
 * any query other than a look-up by `_id` scans the whole collection, so asking per batch would
 * scan it once per batch. The map holds one short entry per stored subscriber and shrinks as
 * the file's rows claim them.
 *
 * Without transactions, an import cut short leaves the rows before the cut written; running it
 * again finishes the job (those rows are then unchanged).
 *
 * The per-site rosters the audience is read from (store/site-roster.ts) are told once, at the end:
 * the generation of every site the import wrote a subscriber of (or moved one away from) is bumped
 * after its last write, and those rosters are rebuilt. Until then a planning reads those sites as
 * they were before the import (a state that existed), never half of a batch.
 */
import type { AnyBulkWriteOperation, MongoBulkWriteError } from 'mongodb';
import type { Store } from '../store/db';
import type { Subscriber } from '../domain/types';
import { FieldError } from '../store/normalize';
import { newSubscriber, subscriberHash, subscriberUpdate, type SubscriberFields } from '../store/subscribers';
import { rebuildRosters, writingSubscribers } from '../store/site-roster';
import { findByValues } from '../store/backend';
import { readRows, type Source } from './rows';
import { ReportBuilder, type ImportReport } from './report';
import { subscriberFromRow } from './subscriber-rows';
import type { ImportOptions } from './sites';

const BATCH = 1000;

interface Pending {
  line: number;
  id: string;
  fields: SubscriberFields;
  exists: boolean;
  /** The site a stored subscriber is on (undefined: to be read). */
  siteId?: string;
}

/** What the import needs of a stored subscriber: its content digest and its site. */
interface Stored {
  hash: string;
  siteId: string;
}

/** Contract id to content digest and site, for every stored subscriber. */
async function storedDigests(store: Store): Promise<Map<string, Stored>> {
  const digests = new Map<string, Stored>();
  const projection = { _id: 1, contentHash: 1, siteId: 1 };
  for await (const s of store.subscribers.find({}, { projection }).batchSize(10_000))
    digests.set(s._id, { hash: s.contentHash ?? '', siteId: s.siteId });
  return digests;
}

/**
 * Updates stored subscribers, each only while it is on the site it was read on, so that the site it
 * leaves is known for certain (its roster goes stale with the new one's). Those moved or created
 * meanwhile are read again and written again (the update is idempotent). Returns the sites left.
 */
async function updateOnKnownSites(
  store: Store,
  updates: Pending[],
  now: Date,
  touch: (siteIds: Iterable<string | undefined>) => Promise<void>,
): Promise<string[]> {
  const left: string[] = [];
  let pending = updates;
  for (let round = 1; pending.length > 0; round++) {
    const unread = pending.filter((p) => p.siteId === undefined).map((p) => p.id);
    if (unread.length) {
      const found = await findByValues(store, store.subscribers, '_id', unread, {}, { projection: { siteId: 1 } });
      const siteOf = new Map(found.map((s) => [s._id, s.siteId]));
      // One deleted meanwhile is left deleted.
      pending = pending.flatMap((p) =>
        p.siteId !== undefined ? [p] : siteOf.has(p.id) ? [{ ...p, siteId: siteOf.get(p.id)! }] : [],
      );
    }
    const ops: AnyBulkWriteOperation<Subscriber>[] = pending.map((p) => ({
      updateOne: { filter: { _id: p.id, siteId: p.siteId! }, update: subscriberUpdate(p.fields, now) },
    }));
    if (ops.length === 0) break;
    await touch(pending.flatMap((p) => [p.siteId, p.fields.siteId]));
    const r = await store.subscribers.bulkWrite(ops, { ordered: false });
    left.push(...pending.map((p) => p.siteId!));
    if (r.matchedCount === ops.length) break;
    if (round >= 3) throw new Error(`import: subscribers kept moving between sites while being updated`);
    pending = pending.map((p) => ({ ...p, siteId: undefined }));
  }
  return left;
}

/** Ids that an unordered insertMany found already there (someone created them meanwhile). */
function duplicateIds(err: unknown, docs: Subscriber[]): Set<string> | null {
  const bulk = err as MongoBulkWriteError;
  const raw = bulk?.writeErrors;
  const errors = raw ? (Array.isArray(raw) ? raw : [raw]) : [];
  if (errors.length === 0 || !errors.every((e) => e.code === 11000)) return null;
  return new Set(errors.map((e) => docs[e.index]!._id));
}

export async function importSubscribers(store: Store, source: Source, opts: ImportOptions): Promise<ImportReport> {
  const dryRun = opts.dryRun ?? false;
  const report = new ReportBuilder('subscribers', opts.format, dryRun);
  const now = opts.now ?? new Date();
  const sites = new Set((await store.sites.find({}, { projection: { _id: 1 } }).toArray()).map((s) => s._id));
  const stored = await storedDigests(store);
  /** Sites whose subscribers this import writes: their generations are bumped and rosters rebuilt at the end. */
  const touched = new Set<string>();
  /** Contract ids already met in this file, with their line: a second row for one is refused. */
  const seen = new Map<string, number>();
  let batch: Pending[] = [];

  async function flush(touch: (siteIds: Iterable<string | undefined>) => Promise<void>): Promise<void> {
    const creates = batch.filter((p) => !p.exists);
    const updates = batch.filter((p) => p.exists);
    batch = [];
    report.count('created', creates.length);
    report.count('updated', updates.length);
    if (dryRun) return;
    const docs = creates.map((p) => newSubscriber(p.id, p.fields, now));
    await touch(docs.map((d) => d.siteId));
    if (docs.length) {
      try {
        await store.subscribers.insertMany(docs, { ordered: false });
      } catch (err) {
        const existing = duplicateIds(err, docs);
        if (!existing) throw err;
        updates.push(...creates.filter((p) => existing.has(p.id)).map((p) => ({ ...p, siteId: undefined })));
        report.recount('created', 'updated', existing.size);
      }
    }
    for (const p of [...creates, ...updates]) touched.add(p.fields.siteId);
    for (const site of await updateOnKnownSites(store, updates, now, touch)) touched.add(site);
  }

  // Every site it writes a subscriber of, or moves one away from, is marked before its first write
  // there and bumped once after the last (however the import ended): store/site-roster.ts.
  if (dryRun) await importRows(async () => undefined);
  else await writingSubscribers(store, [], importRows);
  // So that the first planning after an import reads rosters, not every subscriber.
  if (!dryRun) await rebuildRosters(store, touched);
  return report.finish();

  async function importRows(touch: (siteIds: Iterable<string | undefined>) => Promise<void>): Promise<void> {
    const rows = readRows(source, {
      kind: 'subscribers',
      format: opts.format,
      encoding: opts.encoding,
      maxBytes: opts.maxBytes,
      onIgnoredColumns: (keys) => (report.report.ignoredColumns = keys),
    });
    for await (const row of rows) {
      if (row.kind === 'bad') {
        report.reject(row.line, row.problem);
        continue;
      }
      let id: string;
      let fields: SubscriberFields;
      try {
        ({ id, subscriber: fields } = subscriberFromRow(row.fields));
      } catch (err) {
        if (!(err instanceof FieldError)) throw err;
        report.reject(
          row.line,
          err.message,
          typeof row.fields.contract_id === 'string' ? row.fields.contract_id : undefined,
        );
        continue;
      }
      const earlier = seen.get(id);
      if (earlier !== undefined) {
        report.reject(row.line, `contract ${id} is already on line ${earlier}; one row per contract`, id);
        continue;
      }
      seen.set(id, row.line);
      if (!sites.has(fields.siteId)) {
        report.reject(row.line, `site_id: "${fields.siteId}" is not a known site; import the sites first`, id);
        continue;
      }
      const known = stored.get(id);
      stored.delete(id);
      if (known?.hash === subscriberHash(fields)) {
        report.count('unchanged');
        continue;
      }
      batch.push({ line: row.line, id, fields, exists: known !== undefined, siteId: known?.siteId });
      if (batch.length >= BATCH) await flush(touch);
    }
    await flush(touch);
  }
}
