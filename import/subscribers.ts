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
 */
import type { AnyBulkWriteOperation, MongoBulkWriteError } from 'mongodb';
import type { Store } from '../store/db';
import type { Subscriber } from '../domain/types';
import { FieldError } from '../store/normalize';
import { newSubscriber, subscriberHash, subscriberUpdate, type SubscriberFields } from '../store/subscribers';
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
}

/** Contract id to content digest, for every stored subscriber. */
async function storedDigests(store: Store): Promise<Map<string, string>> {
  const digests = new Map<string, string>();
  for await (const s of store.subscribers.find({}, { projection: { _id: 1, contentHash: 1 } }).batchSize(10_000))
    digests.set(s._id, s.contentHash ?? '');
  return digests;
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
  /** Contract ids already met in this file, with their line: a second row for one is refused. */
  const seen = new Map<string, number>();
  let batch: Pending[] = [];

  async function flush(): Promise<void> {
    const creates = batch.filter((p) => !p.exists);
    const updates = batch.filter((p) => p.exists);
    batch = [];
    report.count('created', creates.length);
    report.count('updated', updates.length);
    if (dryRun) return;
    const docs = creates.map((p) => newSubscriber(p.id, p.fields, now));
    if (docs.length) {
      try {
        await store.subscribers.insertMany(docs, { ordered: false });
      } catch (err) {
        const existing = duplicateIds(err, docs);
        if (!existing) throw err;
        updates.push(...creates.filter((p) => existing.has(p.id)));
        report.recount('created', 'updated', existing.size);
      }
    }
    const ops: AnyBulkWriteOperation<Subscriber>[] = updates.map((p) => ({
      updateOne: { filter: { _id: p.id }, update: subscriberUpdate(p.fields, now) },
    }));
    if (ops.length) await store.subscribers.bulkWrite(ops, { ordered: false });
  }

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
    const digest = stored.get(id);
    stored.delete(id);
    if (digest === subscriberHash(fields)) {
      report.count('unchanged');
      continue;
    }
    batch.push({ line: row.line, id, fields, exists: digest !== undefined });
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  return report.finish();
}
