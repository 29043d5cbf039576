/**
 * The per-site roster: each site's subscribers, whole, in contract (`_id`) order, as a few documents
 * of up to ROSTER_CHUNK members, each member one Extended JSON string. The planner's read of an
 * audience (store/site-subscribers.ts) takes a site's roster instead of its subscriber documents:
 * FerretDB 1.24 pays per BSON value it hands back, and a member as one string is one value instead of
 * twenty (20,000 subscribers: about 0.2 s instead of 1.8 s of FerretDB's CPU; docs/performance-history.md).
 *
 * Never stale by construction: every site has a generation, `$inc`'d (atomically, on every engine)
 * AFTER every write to a subscriber of the site (both sites when one moves): `subscribersChanged`.
 * A roster carries the generation read BEFORE the scan it was built from, and is used only while
 * that is still the site's generation; otherwise the site is scanned as before and its roster
 * rebuilt from that scan. A write during the scan bumps the generation after the roster's was read,
 * so the roster it may have missed is stale at once, never used. Whatever writes subscribers
 * without the store's functions (fixtures, benchmarks, the drill) calls `subscribersChanged` too.
 *
 * And never trusted while a write may be under way: the store's writers mark the sites they are about
 * to write BEFORE writing (`writingSubscribers`: a marker with a lease, renewed while they run) and
 * remove the marks after the bump. A roster whose site is marked is not read (the site is scanned),
 * so neither an import's sites in the middle of it nor the site of a writer that died between its
 * write and its bump answer from an old roster; a mark whose lease lapsed (its writer died) is
 * replaced by the bump it never made.
 */
import { randomUUID } from 'node:crypto';
import { BSON, type AnyBulkWriteOperation, type Collection, type MongoBulkWriteError } from 'mongodb';
import type { Store } from './db';
import type { Subscriber } from '../domain/types';
import { eachParallel, findByValues, inIsAScan } from './backend';

/** Members per roster document (a document of ~1,000 whole subscribers is ~400 KB). */
export const ROSTER_CHUNK = 1000;

interface RosterDoc {
  /** `${siteId}|${chunk}` */
  _id: string;
  siteId: string;
  chunk: number;
  /** How many documents the roster has: a reader finding another number sees a roster being rewritten. */
  chunks: number;
  /** The site's generation read before the scan this roster was built from. */
  gen: number;
  /** Subscribers as Extended JSON (Dates come back as Dates), in `_id` order. */
  members: string[];
}

interface GenerationDoc {
  _id: string;
  gen: number;
}

/** A writer's mark on a site it is writing subscribers of. */
interface WritingDoc {
  /** `${siteId}|${writer}` */
  _id: string;
  siteId: string;
  expiresAt: Date;
}

const rosters = (store: Store): Collection<RosterDoc> => store.db.collection<RosterDoc>('site_rosters');
const writing = (store: Store): Collection<WritingDoc> => store.db.collection<WritingDoc>('site_writes');

/** A mark lapses this long after it was written or renewed (renewed every third of it while its writer runs). */
const MARK_MS = 60_000;

/**
 * Runs `fn`, which writes subscribers of `siteIds` (and of any site it passes to `touch` before
 * writing there), with those sites marked as being written; then bumps their generations and
 * removes the marks, however `fn` ended.
 */
export async function writingSubscribers<T>(
  store: Store,
  siteIds: Iterable<string | null | undefined>,
  fn: (touch: (siteIds: Iterable<string | null | undefined>) => Promise<void>) => Promise<T>,
): Promise<T> {
  const writer = randomUUID();
  const marked = new Set<string>();
  const mark = async (ids: Iterable<string | null | undefined>) => {
    const fresh = [...new Set([...ids].filter((id): id is string => typeof id === 'string' && !marked.has(id)))];
    if (fresh.length === 0) return;
    for (const id of fresh) marked.add(id);
    const expiresAt = new Date(Date.now() + MARK_MS);
    await writing(store).insertMany(fresh.map((siteId) => ({ _id: `${siteId}|${writer}`, siteId, expiresAt })));
  };
  const renewal = setInterval(() => {
    const expiresAt = new Date(Date.now() + MARK_MS);
    for (const siteId of marked)
      void writing(store)
        .updateOne({ _id: `${siteId}|${writer}` }, { $set: { expiresAt } })
        .catch(() => undefined); // the next renewal tries again
  }, MARK_MS / 3);
  renewal.unref();
  try {
    await mark(siteIds);
    return await fn(mark);
  } finally {
    clearInterval(renewal);
    await subscribersChanged(store, marked);
    for (const siteId of marked) await writing(store).deleteOne({ _id: `${siteId}|${writer}` });
  }
}

/**
 * The sites among these being written now (their rosters are not to be trusted). A mark whose
 * lease lapsed is its dead writer's: its bump is made here, and the mark removed.
 */
async function sitesBeingWritten(store: Store, siteIds: string[], now = new Date()): Promise<Set<string>> {
  // The collection holds a mark per site being written: a handful, read whole.
  const marks = (await writing(store).find({}).toArray()).filter((m) => siteIds.includes(m.siteId));
  const lapsed = marks.filter((m) => m.expiresAt <= now);
  if (lapsed.length) {
    await subscribersChanged(
      store,
      lapsed.map((m) => m.siteId),
    );
    for (const m of lapsed) await writing(store).deleteOne({ _id: m._id, expiresAt: m.expiresAt });
  }
  return new Set(marks.filter((m) => m.expiresAt > now).map((m) => m.siteId));
}
const generations = (store: Store): Collection<GenerationDoc> => store.db.collection<GenerationDoc>('site_generations');

/** The index a roster is read by (a site's documents, by the equality FerretDB hands to its index). */
export function ensureRosterIndexes(store: Store): Promise<string> {
  return rosters(store).createIndex({ siteId: 1 });
}

/**
 * Says that subscribers of these sites were written: call it AFTER the write (both the old and the
 * new site of a subscriber that moved). Their rosters are stale from then on.
 */
export async function subscribersChanged(store: Store, siteIds: Iterable<string | null | undefined>): Promise<void> {
  const ids = [...new Set([...siteIds].filter((id): id is string => typeof id === 'string'))];
  if (ids.length === 0) return;
  // One upsert per site, in parts: FerretDB holds a connection per statement of a bulk (backend.ts).
  for (let i = 0; i < ids.length; i += 50)
    await generations(store).bulkWrite(
      ids
        .slice(i, i + 50)
        .map((_id) => ({ updateOne: { filter: { _id }, update: { $inc: { gen: 1 } }, upsert: true } })),
      { ordered: false },
    );
}

/** Beyond this many sites, every generation is read in one query (a small document per site) rather than one query each. */
const GENERATIONS_BY_ID_UP_TO = 64;

/** The sites' current generations (0 for a site never written). */
async function currentGenerations(store: Store, siteIds: string[]): Promise<Map<string, number>> {
  const found =
    siteIds.length > GENERATIONS_BY_ID_UP_TO
      ? await generations(store).find({}).toArray()
      : await findByValues(store, generations(store), '_id', siteIds);
  const gens = new Map(siteIds.map((id) => [id, 0]));
  for (const g of found) if (gens.has(g._id)) gens.set(g._id, g.gen);
  return gens;
}

/**
 * The roster's members when it is whole and of generation `gen`; null when stale, partial or
 * missing. Chunks at or beyond the count the roster says it has are leftovers of a larger one, ignored.
 */
function validMembers(docs: RosterDoc[], gen: number): string[] | null {
  const chunks = docs.find((d) => d.chunk === 0)?.chunks;
  if (chunks === undefined) return null;
  const mine = docs.filter((d) => d.chunk < chunks).sort((a, b) => a.chunk - b.chunk);
  const whole = mine.length === chunks && mine.every((d, i) => d.chunk === i && d.chunks === chunks && d.gen === gen);
  return whole ? mine.flatMap((d) => d.members) : null;
}

const encode = (s: Subscriber): string => BSON.EJSON.stringify(s, { relaxed: true });
const decode = (m: string): Subscriber => BSON.EJSON.parse(m, { relaxed: true }) as Subscriber;

/** A roster to write: a site's members (encoded, in `_id` order) as of generation `gen`. */
interface RosterWrite {
  siteId: string;
  gen: number;
  members: string[];
}

/** Statements per bulk write (FerretDB holds a connection per statement of a bulk: store/backend.ts). */
const BULK = 50;

/** Runs `ops` in bulks of BULK; a duplicate `_id` (an upsert that met a newer roster's chunk) is no error. */
async function bulkIgnoringNewer(store: Store, ops: AnyBulkWriteOperation<RosterDoc>[]): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < ops.length; i += BULK) {
    try {
      deleted += (await rosters(store).bulkWrite(ops.slice(i, i + BULK), { ordered: false })).deletedCount;
    } catch (err) {
      const raw = (err as MongoBulkWriteError).writeErrors;
      const errors = raw ? (Array.isArray(raw) ? raw : [raw]) : [];
      if (errors.length === 0 || !errors.every((e) => e.code === 11000)) throw err;
      deleted += (err as MongoBulkWriteError).result?.deletedCount ?? 0;
    }
  }
  return deleted;
}

/**
 * Writes rosters, each chunk only over an older or equal generation's (a slower rebuild from an older
 * scan never overwrites a newer one's: its upsert meets the `_id` that exists, and gives up). Then the
 * chunks beyond each roster's end (a site that shrank) are deleted by `_id`, one index after another
 * while there was one to delete: a roster's chunks are numbered from 0 without gaps.
 */
async function writeRosters(store: Store, writes: RosterWrite[]): Promise<void> {
  const ops: AnyBulkWriteOperation<RosterDoc>[] = [];
  let beyond = writes.map((w) => {
    const chunks = Math.max(1, Math.ceil(w.members.length / ROSTER_CHUNK));
    for (let chunk = 0; chunk < chunks; chunk++) {
      const members = w.members.slice(chunk * ROSTER_CHUNK, (chunk + 1) * ROSTER_CHUNK);
      const { siteId, gen } = w;
      ops.push({
        updateOne: {
          filter: { _id: `${siteId}|${chunk}`, gen: { $lte: gen } },
          update: { $set: { siteId, chunk, chunks, gen, members } },
          upsert: true,
        },
      });
    }
    return { siteId: w.siteId, gen: w.gen, chunk: chunks };
  });
  await bulkIgnoringNewer(store, ops);
  while (beyond.length > 0) {
    const found: typeof beyond = [];
    for (let i = 0; i < beyond.length; i += BULK) {
      const part = beyond.slice(i, i + BULK);
      const results = await Promise.all(
        part.map((b) => rosters(store).deleteOne({ _id: `${b.siteId}|${b.chunk}`, gen: { $lte: b.gen } })),
      );
      part.forEach((b, k) => results[k]!.deletedCount > 0 && found.push({ ...b, chunk: b.chunk + 1 }));
    }
    beyond = found;
  }
}

/** Scans a site's subscribers (the plain read, in `_id` order) and rebuilds its roster from that scan. */
async function scanAndRebuild(store: Store, siteId: string, gen: number): Promise<Subscriber[]> {
  const subscribers = await store.subscribers.find({ siteId }).sort({ _id: 1 }).toArray();
  await writeRosters(store, [{ siteId, gen, members: subscribers.map(encode) }]);
  return subscribers;
}

/** Sites whose rosters are read or rebuilt at once. */
const SITES_AT_ONCE = 2;

/**
 * Every subscriber of each site, whole, in `_id` order: from the site's roster when it is current,
 * else from a scan of the site (which rebuilds the roster). Returns the sites in the order given.
 */
export async function siteRosters(store: Store, siteIds: string[]): Promise<Subscriber[][]> {
  // Marks and generations first: a roster is trusted only if no writer is at work on its site and
  // it is of the generation read before it.
  const busy = await sitesBeingWritten(store, siteIds);
  const gens = await currentGenerations(store, siteIds);
  const out: Subscriber[][] = new Array(siteIds.length);
  await eachParallel(
    siteIds.map((_, i) => i),
    SITES_AT_ONCE,
    async (i) => {
      const siteId = siteIds[i]!;
      const gen = gens.get(siteId)!;
      const members = busy.has(siteId) ? null : validMembers(await rosters(store).find({ siteId }).toArray(), gen);
      out[i] = members ? members.map(decode) : await scanAndRebuild(store, siteId, gen);
    },
  );
  return out;
}

/**
 * How many subscribers these sites have (all of them, as a roster holds them): a current roster's
 * length where siteRosters would trust it, else a count of the site's documents. A `$in` count reads
 * and decodes every subscriber document of the sites on FerretDB: 0.1-0.3 s of a 4,000 planning.
 */
export async function countSiteSubscribers(store: Store, siteIds: string[]): Promise<number> {
  if (siteIds.length === 0) return 0;
  const busy = await sitesBeingWritten(store, siteIds);
  const gens = await currentGenerations(store, siteIds);
  let total = 0;
  await eachParallel(siteIds, SITES_AT_ONCE, async (siteId) => {
    const members = busy.has(siteId)
      ? null
      : validMembers(await rosters(store).find({ siteId }).toArray(), gens.get(siteId)!);
    const n = members ? members.length : await store.subscribers.countDocuments({ siteId });
    total += n;
  });
  return total;
}

/** Beyond this many sites a rebuild reads every subscriber once rather than each site's (one query each). */
const REBUILD_PER_SITE_UP_TO = 32;

/**
 * Rebuilds these sites' rosters now (the importer, at its end, so that the first planning after it
 * is fast; an erasure, so that the erased subscriber is in no roster). Many sites are rebuilt from
 * one pass over the subscribers (the members of each held here, encoded, until written).
 */
export async function rebuildRosters(store: Store, siteIds: Iterable<string>): Promise<void> {
  const ids = [...new Set(siteIds)];
  const gens = await currentGenerations(store, ids);
  if (ids.length <= REBUILD_PER_SITE_UP_TO) {
    await eachParallel(
      ids,
      SITES_AT_ONCE,
      async (siteId) => void (await scanAndRebuild(store, siteId, gens.get(siteId)!)),
    );
    return;
  }
  const members = new Map<string, { id: string; member: string }[]>(ids.map((id) => [id, []]));
  // On FerretDB a `$in` over the sites is a scan of the collection anyway: the scan, tested here.
  const filter = (await inIsAScan(store)) ? {} : { siteId: { $in: ids } };
  for await (const s of store.subscribers.find(filter).batchSize(10_000))
    members.get(s.siteId)?.push({ id: s._id, member: encode(s) });
  const writes: RosterWrite[] = ids.map((siteId) => ({
    siteId,
    gen: gens.get(siteId)!,
    members: members
      .get(siteId)!
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((m) => m.member),
  }));
  members.clear();
  await writeRosters(store, writes);
}
