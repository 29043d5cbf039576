/**
 * The subscribers a set of sites serves, in contract (`_id`) order, streamed.
 *
 * On MongoDB (and mongo-java-server) that is one `{siteId: {$in}}` query sorted by `_id`, served by
 * the `{siteId, _id}` index. FerretDB 1.24 over PostgreSQL hands only equalities down to its index:
 * a `$in` is a scan of the whole collection (100,000 subscribers) with a test per site, about 10 s.
 * There it is one equality query per site, each sorted by `_id` (a site serves a few thousand at
 * most, sorted by FerretDB in memory), merged here in `_id` order: the same answer, from the index.
 * Memory stays one batch per site, never the whole audience.
 */
import type { Document, Filter, FindCursor } from 'mongodb';
import type { Store } from './db';
import type { Subscriber } from '../domain/types';
import { eachParallel, inIsAScan } from './backend';

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
  const ids = [...new Set(siteIds)];
  if (ids.length === 0) return;
  const { filter = {}, after = null, batchSize = 1000, projection, ordered = true } = opts;
  const query = (sites: Filter<Subscriber>) =>
    ({ ...filter, ...sites, ...(after === null ? {} : { _id: { $gt: after } }) }) as Filter<Subscriber>;
  const open = (sites: Filter<Subscriber>): FindCursor<T> => {
    const c = store.subscribers.find(query(sites), projection ? { projection } : {}).batchSize(batchSize);
    return (ordered ? c.sort({ _id: 1 }) : c) as unknown as FindCursor<T>;
  };

  if (!(await perSite(store, ids))) {
    const c = open({ siteId: ids.length === 1 ? ids[0]! : { $in: ids } });
    try {
      yield* c;
    } finally {
      await c.close();
    }
    return;
  }

  const cursors = ids.map((id) => open({ siteId: id }));
  const iterators = cursors.map((c) => c[Symbol.asyncIterator]());
  /** A read started ahead of need: settled before the cursors close, so none is closed mid-read. */
  let ahead: Promise<IteratorResult<T>> | undefined;
  try {
    if (!ordered) {
      // One site after another, the next one's first batch read while this one's are handed out.
      // (Its failure is handled where it is awaited: the no-op handler only keeps Node from calling
      // it unhandled while this generator waits at a yield.)
      const readAhead = (i: number) => {
        const p = iterators[i]?.next();
        p?.catch(() => undefined);
        return p;
      };
      ahead = readAhead(0);
      for (let i = 0; i < iterators.length; i++) {
        const first = (await ahead)!;
        ahead = readAhead(i + 1);
        if (first.done) continue;
        yield first.value;
        for (let r = await iterators[i]!.next(); !r.done; r = await iterators[i]!.next()) yield r.value;
      }
      return;
    }
    // A k-way merge: the smallest head of all the sites' cursors, each already in `_id` order.
    const heads: IteratorResult<T>[] = new Array(iterators.length);
    await eachParallel(
      iterators.map((_, i) => i),
      SITES_AT_ONCE,
      async (i) => void (heads[i] = await iterators[i]!.next()),
    );
    for (;;) {
      let min = -1;
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i]!;
        if (!h.done && (min < 0 || h.value._id < (heads[min]!.value as T)._id)) min = i;
      }
      if (min < 0) return;
      yield heads[min]!.value as T;
      heads[min] = await iterators[min]!.next();
    }
  } finally {
    await ahead?.catch(() => undefined);
    await Promise.all(cursors.map((c) => c.close()));
  }
}
