/**
 * The subscribers a set of sites serves, in contract (`_id`) order, streamed.
 *
 * On MongoDB (and mongo-java-server) that is one `{siteId: {$in}}` query sorted by `_id`, served by
 * the `{siteId, _id}` index. FerretDB 1.24 over PostgreSQL hands only equalities down to its index:
 * a `$in` is a scan of the whole collection (100,000 subscribers) with a test per site, about 10 s.
 * There it is one equality query per site, each sorted by `_id` (a site serves a few thousand at
 * most, sorted by FerretDB in memory), merged here in `_id` order: the same answer, from the index.
 * Memory stays one batch per site, never the whole audience.
 *
 * When the filter and projection can be applied here (store/document-match.ts: any filter mingo
 * compiles, inclusions of top-level fields), the
 * sites are read from their rosters instead (store/site-roster.ts: a few documents per site, about
 * eight times cheaper for FerretDB), on every engine, and filtered, ordered and projected here: the
 * same answer. That holds the sites' subscribers in memory at once (at most 256 sites; 20,000
 * subscribers are some tens of MB), the price of not decoding them one document each.
 */
import type { Document, Filter, FindCursor } from 'mongodb';
import type { Store } from './db';
import type { Subscriber } from '../domain/types';
import { eachParallel, inIsAScan } from './backend';
import { compileFilter, compileProjection } from './document-match';
import { siteRosters } from './site-roster';

/** Beyond this many sites the per-site cursors cost more than they save (and hold as many batches). */
const MAX_PER_SITE_CURSORS = 256;
/** Per-site queries in flight at once (see above: more at once is slower on FerretDB). */
const SITES_AT_ONCE = 2;

export interface SiteSubscribersOptions {
  /** Further conditions (equalities are what FerretDB serves from its index). */
  filter?: Filter<Subscriber>;
  /** Start after this contract id (a resumed read). */
  after?: string | null;
  batchSize?: number;
  projection?: Document;
  /** Whether the order matters; without it, sites are read one after another (cheaper, no merge). */
  ordered?: boolean;
}

/** Whether to read per site (FerretDB over PostgreSQL, a reasonable number of sites). */
async function perSite(store: Store, siteIds: string[]): Promise<boolean> {
  return siteIds.length > 1 && siteIds.length <= MAX_PER_SITE_CURSORS && (await inIsAScan(store));
}

/** The subscribers of `siteIds` matching `filter`, in `_id` order (unless `ordered: false`). */
export async function* subscribersOfSites<T extends Pick<Subscriber, '_id'> = Subscriber>(
  store: Store,
  siteIds: string[],
  opts: SiteSubscribersOptions = {},
): AsyncGenerator<T> {
  for await (const batch of subscriberBatchesOfSites<T>(store, siteIds, opts)) yield* batch;
}

/** What a cursor holds next: the rest of its batch, or the next batch it fetches; empty at its end. */
async function nextBatch<T>(cursor: FindCursor<T>): Promise<T[]> {
  const first = await cursor.next();
  return first === null ? [] : [first, ...cursor.readBufferedDocuments()];
}

/**
 * The same subscribers as arrays of up to about `batchSize`, in `_id` order (unless `ordered: false`):
 * for a reader that takes them a page at a time, with no `await` per subscriber.
 */
export async function* subscriberBatchesOfSites<T extends Pick<Subscriber, '_id'> = Subscriber>(
  store: Store,
  siteIds: string[],
  opts: SiteSubscribersOptions = {},
): AsyncGenerator<T[]> {
  const ids = [...new Set(siteIds)];
  if (ids.length === 0) return;
  const { filter = {}, after = null, batchSize = 1000, projection, ordered = true } = opts;
  const test = compileFilter(filter);
  const project = compileProjection(projection);
  if (test && project && ids.length <= MAX_PER_SITE_CURSORS) {
    yield* fromRosters(store, ids, { test, project, after, batchSize, ordered });
    return;
  }
  const query = (sites: Filter<Subscriber>) =>
    ({ ...filter, ...sites, ...(after === null ? {} : { _id: { $gt: after } }) }) as Filter<Subscriber>;
  const open = (sites: Filter<Subscriber>): FindCursor<T> => {
    const c = store.subscribers.find(query(sites), projection ? { projection } : {}).batchSize(batchSize);
    return (ordered ? c.sort({ _id: 1 }) : c) as unknown as FindCursor<T>;
  };

  if (!(await perSite(store, ids))) {
    const c = open({ siteId: ids.length === 1 ? ids[0]! : { $in: ids } });
    try {
      for (let batch = await nextBatch(c); batch.length > 0; batch = await nextBatch(c)) yield batch;
    } finally {
      await c.close();
    }
    return;
  }

  const cursors = ids.map((id) => open({ siteId: id }));
  /** A read started ahead of need: settled before the cursors close, so none is closed mid-read. */
  let ahead: Promise<T[]> | undefined;
  try {
    if (!ordered) {
      // One site after another, the next one's first batch read while this one's are handed out.
      // (Its failure is handled where it is awaited: the no-op handler only keeps Node from calling
      // it unhandled while this generator waits at a yield.)
      const readAhead = (i: number) => {
        const p = i < cursors.length ? nextBatch(cursors[i]!) : undefined;
        p?.catch(() => undefined);
        return p;
      };
      ahead = readAhead(0);
      for (let i = 0; i < cursors.length; i++) {
        let batch = (await ahead)!;
        ahead = readAhead(i + 1);
        for (; batch.length > 0; batch = await nextBatch(cursors[i]!)) yield batch;
      }
      return;
    }
    // A k-way merge: the smallest head of all the sites' batches, each already in `_id` order.
    const batches: T[][] = new Array(cursors.length);
    const at = new Array<number>(cursors.length).fill(0);
    await eachParallel(
      cursors.map((_, i) => i),
      SITES_AT_ONCE,
      async (i) => void (batches[i] = await nextBatch(cursors[i]!)),
    );
    let out: T[] = [];
    for (;;) {
      let min = -1;
      for (let i = 0; i < batches.length; i++)
        if (at[i]! < batches[i]!.length && (min < 0 || batches[i]![at[i]!]!._id < batches[min]![at[min]!]!._id))
          min = i;
      if (min < 0) break;
      out.push(batches[min]![at[min]!++]!);
      if (out.length >= batchSize) {
        yield out;
        out = [];
      }
      // A site's batch used up: its next one (empty at its end), read before anything else is chosen.
      if (at[min] === batches[min]!.length) {
        batches[min] = await nextBatch(cursors[min]!);
        at[min] = 0;
      }
    }
    if (out.length > 0) yield out;
  } finally {
    await ahead?.catch(() => undefined);
    await Promise.all(cursors.map((c) => c.close()));
  }
}

/** The sites' subscribers from their rosters, filtered, in `_id` order (or site after site), projected, in batches. */
async function* fromRosters<T>(
  store: Store,
  siteIds: string[],
  o: {
    test: (s: Subscriber) => boolean;
    project: (s: Subscriber) => unknown;
    after: string | null;
    batchSize: number;
    ordered: boolean;
  },
): AsyncGenerator<T[]> {
  const chosen = (await siteRosters(store, siteIds)).flatMap((site) =>
    site.filter((s) => (o.after === null || s._id > o.after) && o.test(s)),
  );
  // Each site's members are in `_id` order already; one sort orders them across the sites.
  if (o.ordered) chosen.sort((a, b) => (a._id < b._id ? -1 : a._id > b._id ? 1 : 0));
  for (let i = 0; i < chosen.length; i += o.batchSize) yield chosen.slice(i, i + o.batchSize).map(o.project) as T[];
}
