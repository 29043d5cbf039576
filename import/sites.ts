/**
 * Imports sites (towers and access points) from a network inventory export.
 *
 * Unlike subscribers, a sites file is judged as a whole: a row's uplink may be defined further
 * down, and loops can only be seen with every row at hand, together with the sites already
 * stored (./../store/topology.ts). So the file's rows are held in memory (a network has thousands
 * of sites, not millions: some hundred bytes each) while the stored ones are read as id and
 * uplink only.
 *
 * Writes go in order of depth in the resulting network, roots first. Then at every moment
 * each written site's uplink chain runs through written sites to a root, and the unwritten ones
 * still form the old forest: a downstream walk made during the import never meets a loop.
 * Idempotent like the subscriber import: unchanged rows (same digest) are not written.
 */
import type { AnyBulkWriteOperation } from 'mongodb';
import type { Store } from '../store/db';
import type { Site } from '../domain/types';
import { FieldError } from '../store/normalize';
import { siteHash, type SiteFields } from '../store/sites';
import { refusedSites } from '../store/topology';
import { readRows, type ImportFormat, type Source, type TextEncoding } from './rows';
import { ReportBuilder, type ImportReport } from './report';
import { siteFromRow } from './site-rows';

export interface ImportOptions {
  format: ImportFormat;
  /** Check and count only; write nothing. */
  dryRun?: boolean;
  encoding?: TextEncoding;
  maxBytes?: number;
  /** The time written as createdAt/updatedAt (tests pin it). */
  now?: Date;
}

interface Row {
  line: number;
  id: string;
  site: SiteFields;
  hash: string;
}

const INSERT_BATCH = 1000;

/** Depth of each site in the network (roots 0); the graph is a forest by now. */
function depths(uplinks: Map<string, string | null>): Map<string, number> {
  const depth = new Map<string, number>();
  for (const start of uplinks.keys()) {
    const trail: string[] = [];
    let current: string | null | undefined = start;
    while (current != null && !depth.has(current) && uplinks.has(current)) {
      trail.push(current);
      current = uplinks.get(current);
    }
    let d = current != null && depth.has(current) ? depth.get(current)! : -1;
    for (const id of trail.reverse()) depth.set(id, ++d);
  }
  return depth;
}

export async function importSites(store: Store, source: Source, opts: ImportOptions): Promise<ImportReport> {
  const dryRun = opts.dryRun ?? false;
  const report = new ReportBuilder('sites', opts.format, dryRun);
  const now = opts.now ?? new Date();

  const stored = new Map<string, { uplink: string | null; hash?: string }>();
  for await (const s of store.sites.find({}, { projection: { _id: 1, uplink: 1, contentHash: 1 } }))
    stored.set(s._id, { uplink: s.uplink ?? null, hash: s.contentHash });

  const rows: Row[] = [];
  const seen = new Map<string, number>();
  for await (const row of readRows(source, {
    kind: 'sites',
    format: opts.format,
    encoding: opts.encoding,
    maxBytes: opts.maxBytes,
    onIgnoredColumns: (keys) => (report.report.ignoredColumns = keys),
  })) {
    if (row.kind === 'bad') {
      report.reject(row.line, row.problem);
      continue;
    }
    try {
      const { id, site } = siteFromRow(row.fields);
      const earlier = seen.get(id);
      if (earlier !== undefined) {
        report.reject(row.line, `site ${id} is already on line ${earlier}; one row per site`, id);
        continue;
      }
      seen.set(id, row.line);
      rows.push({ line: row.line, id, site, hash: siteHash(site) });
    } catch (err) {
      if (!(err instanceof FieldError)) throw err;
      report.reject(row.line, err.message, typeof row.fields.site_id === 'string' ? row.fields.site_id : undefined);
    }
  }

  const existingUplinks = new Map([...stored].map(([id, s]) => [id, s.uplink]));
  const refused = refusedSites(
    existingUplinks,
    rows.map((r) => ({ id: r.id, uplink: r.site.uplink, line: r.line })),
  );
  const accepted: Row[] = [];
  for (const r of rows) {
    const reason = refused.get(r.id);
    if (reason) report.reject(r.line, `uplink: ${reason}`, r.id);
    else if (stored.get(r.id)?.hash === r.hash) report.count('unchanged');
    else accepted.push(r);
  }

  const finalUplinks = new Map(existingUplinks);
  for (const r of accepted) finalUplinks.set(r.id, r.site.uplink);
  const depth = depths(finalUplinks);
  accepted.sort((a, b) => depth.get(a.id)! - depth.get(b.id)! || a.line - b.line);

  for (let i = 0; i < accepted.length;) {
    // One depth level at a time (in batches), so that parents are always written first.
    const level = depth.get(accepted[i]!.id)!;
    const group: Row[] = [];
    while (i < accepted.length && depth.get(accepted[i]!.id) === level && group.length < INSERT_BATCH)
      group.push(accepted[i++]!);
    const creates = group.filter((r) => !stored.has(r.id));
    const updates = group.filter((r) => stored.has(r.id));
    report.count('created', creates.length);
    report.count('updated', updates.length);
    if (dryRun) continue;
    if (creates.length) {
      const docs: Site[] = creates.map((r) => ({
        _id: r.id,
        ...r.site,
        contentHash: r.hash,
        createdAt: now,
        updatedAt: now,
      }));
      await store.sites.insertMany(docs, { ordered: false });
    }
    const ops: AnyBulkWriteOperation<Site>[] = updates.map((r) => {
      const { location, ...rest } = r.site;
      return {
        updateOne: {
          filter: { _id: r.id },
          update: {
            $set: { ...rest, ...(location ? { location } : {}), contentHash: r.hash, updatedAt: now },
            ...(location ? {} : { $unset: { location: '' as const } }),
          },
        },
      };
    });
    if (ops.length) await store.sites.bulkWrite(ops, { ordered: false });
  }
  return report.finish();
}
