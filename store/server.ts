/**
 * What the database server does with a filter, and lookups shaped for it.
 *
 * A real MongoDB serves any filter shape from its indexes. FerretDB 1.24 hands equality filters
 * down to PostgreSQL (where our GIN indexes serve them: README, "Notes on FerretDB") and evaluates
 * everything else itself, over every document the handed-down part returned; a `$in` list is
 * tested value by value, so `{field: {$in: 5,000 values}}` over 40,000 records is 200 million
 * comparisons (about 15 s). On SQLite FerretDB hands down `{_id}` alone.
 */
import type { Collection, Document, Filter, FindOptions } from 'mongodb';
import type { Store } from './db';

export type ServerKind = 'mongodb' | 'ferretdb-postgresql' | 'ferretdb-sqlite';

const serverKindByStore = new WeakMap<Store, Promise<ServerKind>>();

/** Asked once per store: buildInfo says FerretDB; its startup log names the backend. */
export function serverKind(store: Store): Promise<ServerKind> {
  let known = serverKindByStore.get(store);
  if (!known) {
    known = (async (): Promise<ServerKind> => {
      const info = await store.db.admin().command({ buildInfo: 1 });
      if (typeof info.ferretdbVersion !== 'string') return 'mongodb';
      const log = await store.db.admin().command({ getLog: 'startupWarnings' }).catch(() => ({ log: [] }));
      // "Powered by FerretDB <version> and PostgreSQL 15.18." (SQLite is named the same way).
      return (log.log as string[]).some((l) => /Powered by FerretDB .* and PostgreSQL/.test(l)) ? 'ferretdb-postgresql' : 'ferretdb-sqlite';
    })();
    known.catch(() => serverKindByStore.delete(store)); // ask again next time; meanwhile the caller's call fails
    serverKindByStore.set(store, known);
  }
  return known;
}

/** Whether the server is FerretDB (either backend). */
export async function isFerretDb(store: Store): Promise<boolean> {
  return (await serverKind(store)) !== 'mongodb';
}

/** Runs `fn` for every item, at most `parallel` at a time. */
export async function eachParallel<T>(items: T[], parallel: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, parallel), items.length) }, lane));
}

/**
 * The documents whose `field` is one of `values` (and that match `filter`): one `$in` query, except
 * on FerretDB over PostgreSQL, where that is a scan with a test per value, and one equality query
 * per value (served by the GIN index on the field), sixteen at a time, is far cheaper.
 */
export async function findByValues<T extends Document>(store: Store, collection: Collection<T>, field: string, values: unknown[], filter: Filter<T> = {}, options: FindOptions = {}): Promise<T[]> {
  if (values.length === 0) return [];
  if ((await serverKind(store)) !== 'ferretdb-postgresql') return (await collection.find({ ...filter, [field]: { $in: values } } as Filter<T>, options).toArray()) as T[];
  const out: T[] = [];
  await eachParallel([...new Set(values)], 16, async (v) => {
    out.push(...((await collection.find({ ...filter, [field]: v } as Filter<T>, options).toArray()) as T[]));
  });
  return out;
}

/**
 * Reads numbered pages `first`..`last` in order until `want` items are found, and returns them in
 * page order (at most `want`), and whether every page was read with nothing left over (`complete`).
 * FerretDB applies a sort, a limit and any condition other than an equality after reading
 * everything the equalities match, so a hot path that needs "the next N in order" asks for one
 * small page at a time by an equality (a delivery record's page, a receipt's ten-second slot) instead.
 * Pages are read one at a time, then two, four, up to eight side by side while they come back
 * empty (an empty page answers in about a millisecond; a full one is read whole).
 */
export async function readPagesInOrder<T>(first: number, last: number, want: number, read: (page: number) => Promise<T[]>, maxAtOnce = 8): Promise<{ items: T[]; complete: boolean }> {
  const found: T[] = [];
  let from = first;
  for (let atOnce = 1; from <= last && found.length < want; atOnce = Math.min(maxAtOnce, atOnce * 2)) {
    const pages = Array.from({ length: Math.min(atOnce, last - from + 1) }, (_, i) => from + i);
    for (const items of await Promise.all(pages.map(read))) found.push(...items);
    from += pages.length;
  }
  return { items: found.slice(0, want), complete: from > last && found.length <= want };
}
