/**
 * The backend adapter: everything the store does differently per database engine lives here, and
 * only here. The rest of the store asks for an intent (the documents whose field is one of these
 * values, delete these ids, update these records each if still in a state) and gets the shape of
 * request the engine serves best.
 *
 * A real MongoDB (and mongo-java-server, the second test engine) serves any filter shape from its
 * indexes. FerretDB 1.24 hands equality filters down to PostgreSQL (where the GIN indexes
 * avviso-ferretdb keeps serve them: README, "Notes on FerretDB") and evaluates everything else
 * itself, over every document the handed-down part returned; a `$in` list is tested value by value,
 * so `{field: {$in: 5,000 values}}` over 40,000 records is 200 million comparisons (about 15 s).
 * On SQLite FerretDB hands down `{_id}` alone.
 *
 * What the engine got wrong under concurrency (two winners of one conditional update, lost `$inc`)
 * is not handled here: avviso-ferretdb serializes conflicting writes in front of FerretDB
 * (tools/ferretdb/serialize.go, docs/ferretdb-serialization.md), so a conditional update has one
 * winner on every engine.
 */
import type { AnyBulkWriteOperation, Collection, Document, Filter, FindOptions, UpdateFilter } from 'mongodb';
import type { Store } from './db';
import { eachParallel } from '../domain/each-parallel';

export { eachParallel } from '../domain/each-parallel';

export type ServerKind = 'mongodb' | 'ferretdb-postgresql' | 'ferretdb-sqlite';

const serverKindByStore = new WeakMap<Store, Promise<ServerKind>>();

/**
 * The backend FerretDB's startup log names: "Powered by FerretDB <version> and PostgreSQL 15.18." (SQLite
 * is named the same way), or undefined while it names none: FerretDB names its backend only once it has
 * connected to it, and a FerretDB just (re)started has not. (Taking that for SQLite made a worker started
 * beside a restart of FerretDB write by `_id` alone, unconditionally: the 20,000 drill of the eighth
 * session sent restorations again after delivered ones, old answers written over newer attempts.)
 */
export function backendNamed(startupWarnings: string[]): ServerKind | undefined {
  // Each line is a log entry, in JSON: the words are in its `msg`.
  const line = startupWarnings.find((l) => l.includes('Powered by FerretDB'));
  if (line && / and PostgreSQL\b/.test(line)) return 'ferretdb-postgresql';
  if (line && / and SQLite\b/.test(line)) return 'ferretdb-sqlite';
  return undefined;
}

/**
 * Asked once per store: buildInfo says FerretDB; its startup log names the backend, once FerretDB has
 * reached it (a collection listed first makes sure). An answer that names none is not kept: the call
 * fails, and the next one asks again.
 */
export function serverKind(store: Store): Promise<ServerKind> {
  let known = serverKindByStore.get(store);
  if (!known) {
    known = (async (): Promise<ServerKind> => {
      const info = await store.db.admin().command({ buildInfo: 1 });
      if (typeof info.ferretdbVersion !== 'string') return 'mongodb';
      await store.db.listCollections({}, { nameOnly: true }).toArray();
      const log = await store.db.admin().command({ getLog: 'startupWarnings' });
      const kind = backendNamed(log.log as string[]);
      if (!kind)
        throw new Error(
          `FerretDB does not name its backend yet (it has not reached it): asking again; it says ${JSON.stringify(log.log)}`,
        );
      return kind;
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

/**
 * Whether a `$in` over an indexed field is better read as one equality query per value: on FerretDB
 * over PostgreSQL only equalities reach the index, and a `$in` is a scan with a test per value;
 * elsewhere the one `$in` is served by the index.
 */
export async function inIsAScan(store: Store): Promise<boolean> {
  return (await serverKind(store)) === 'ferretdb-postgresql';
}

/**
 * The documents whose `field` is one of `values` (and that match `filter`): one `$in` query, except
 * on FerretDB over PostgreSQL, where that is a scan with a test per value, and one equality query
 * per value (served by the GIN index on the field), sixteen at a time, is far cheaper.
 */
export async function findByValues<T extends Document>(
  store: Store,
  collection: Collection<T>,
  field: string,
  values: unknown[],
  filter: Filter<T> = {},
  options: FindOptions = {},
): Promise<T[]> {
  if (values.length === 0) return [];
  if (!(await inIsAScan(store)))
    return (await collection.find({ ...filter, [field]: { $in: values } } as Filter<T>, options).toArray()) as T[];
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
export async function readPagesInOrder<T>(
  first: number,
  last: number,
  want: number,
  read: (page: number) => Promise<T[]>,
  maxAtOnce = 8,
): Promise<{ items: T[]; complete: boolean }> {
  const found: T[] = [];
  let from = first;
  for (let atOnce = 1; from <= last && found.length < want; atOnce = Math.min(maxAtOnce, atOnce * 2)) {
    const pages = Array.from({ length: Math.min(atOnce, last - from + 1) }, (_, i) => from + i);
    for (const items of await Promise.all(pages.map(read))) found.push(...items);
    from += pages.length;
  }
  return { items: found.slice(0, want), complete: from > last && found.length <= want };
}

/** The same update for every document whose `field` is one of `values` (and matches `filter`): findByValues' write. */
export async function updateByValues<T extends Document>(
  store: Store,
  collection: Collection<T>,
  field: string,
  values: unknown[],
  filter: Filter<T>,
  update: UpdateFilter<T>,
): Promise<void> {
  if (values.length === 0) return;
  if ((await serverKind(store)) !== 'ferretdb-postgresql') {
    await collection.updateMany({ ...filter, [field]: { $in: values } } as Filter<T>, update);
    return;
  }
  await eachParallel(
    [...new Set(values)],
    16,
    async (v) => void (await collection.updateMany({ ...filter, [field]: v } as Filter<T>, update)),
  );
}

/** Deletes these documents by `_id`: one statement on MongoDB, one `{_id}` delete each on FerretDB (a `$in` is a scan there). */
export async function deleteByIds<T extends Document>(
  store: Store,
  collection: Collection<T>,
  ids: unknown[],
): Promise<number> {
  if (ids.length === 0) return 0;
  if (!(await isFerretDb(store))) return (await collection.deleteMany({ _id: { $in: ids } } as Filter<T>)).deletedCount;
  let deleted = 0;
  const ops = ids.map((_id) => ({ deleteOne: { filter: { _id } } }) as AnyBulkWriteOperation<T>);
  for (let i = 0; i < ops.length; i += 100)
    deleted += (await collection.bulkWrite(ops.slice(i, i + 100), { ordered: false })).deletedCount;
  return deleted;
}

/**
 * Whether compound and range indexes are worth keeping: a real MongoDB reads them; FerretDB hands
 * a filter to PostgreSQL as `field @> value`, which its B-trees cannot serve (avviso-ferretdb adds a
 * GIN index per indexed field instead), yet it writes every index again on every update, since it
 * rewrites the whole document.
 */
export async function usesCompoundIndexes(store: Store): Promise<boolean> {
  return !(await isFerretDb(store));
}

/** Called between the parts of a long write: activities heartbeat there. */
export type Progress = () => void;

/**
 * Updates documents one by one, each only while it still matches `condition` (given twice: as a
 * filter, and as the same test in code), in parts, calling `progress` after each part. A
 * conditional update by `_id` has one winner on every engine (FerretDB's through avviso-ferretdb's
 * write gate).
 *
 * The parts: 25 on FerretDB over PostgreSQL, three at a time (it then uses more than one core);
 * 50, one at a time, elsewhere. On FerretDB over SQLite, which hands a filter down only when it is
 * exactly `{_id}` (`{_id, state}` reads and decodes the whole collection for each update: 763 ms at
 * 40,000 records, against 2 ms), each part is read by `{_id}` first and the documents found
 * matching are written by `{_id}` alone, and handed back as they were read (`readFirst: false`
 * writes them unread). Elsewhere the answer is null.
 */
export async function updateEachIf<T extends { _id: string }>(
  store: Store,
  collection: Collection<T>,
  items: { id: string; update: UpdateFilter<T> }[],
  condition: Filter<T>,
  matches: (doc: T) => boolean,
  progress?: Progress,
  opts: { readFirst?: boolean } = {},
): Promise<Map<string, T> | null> {
  const kind = await serverKind(store);
  const sqlite = kind === 'ferretdb-sqlite';
  const check = sqlite && opts.readFirst !== false;
  const seen = check ? new Map<string, T>() : null;
  if (items.length === 0) return seen;
  const [size, parallel] = kind === 'ferretdb-postgresql' ? [25, 3] : [50, 1];
  const parts = Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
  await eachParallel(parts, parallel, async (part) => {
    if (check) {
      const found = await Promise.all(
        part.map((c) => collection.findOne({ _id: c.id } as Filter<T>) as Promise<T | null>),
      );
      part = part.filter((_, k) => found[k] && matches(found[k]));
      for (const d of found) if (d && matches(d)) seen!.set(d._id, d);
    }
    if (part.length) {
      const ops = part.map(
        (c) => ({ updateOne: { filter: byIdIf(kind, c.id, condition), update: c.update } }) as AnyBulkWriteOperation<T>,
      );
      await collection.bulkWrite(ops, { ordered: false });
    }
    progress?.();
  });
  return seen;
}

/**
 * The filter for "this document, if it still matches `condition`": `{_id}` alone on FerretDB over
 * SQLite (anything more is a scan of the collection there; the caller then reads first).
 */
function byIdIf<T>(kind: ServerKind, id: string, condition: Filter<T>): Filter<T> {
  return (kind === 'ferretdb-sqlite' ? { _id: id } : { _id: id, ...condition }) as Filter<T>;
}

/**
 * Whether a write by `_id` with more in its filter is conditional here: everywhere but FerretDB
 * over SQLite, where byIdIf keeps `{_id}` alone and the caller must read first. Writes that cannot
 * read first (an answer applied with its receipt, unread) are not made there.
 */
export async function writesByIdAreConditional(store: Store): Promise<boolean> {
  return (await serverKind(store)) !== 'ferretdb-sqlite';
}

/** byIdIf for callers that write in bulk of their own (the receipt applier). */
export async function conditionById<T>(store: Store): Promise<(id: string, condition: Filter<T>) => Filter<T>> {
  const kind = await serverKind(store);
  return (id, condition) => byIdIf(kind, id, condition);
}
