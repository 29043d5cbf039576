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
 */
import { BSON, type Collection } from 'mongodb';
import type { Store } from './db';
import type { Subscriber } from '../domain/types';
import { eachParallel, findByValues } from './backend';

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

const rosters = (store: Store): Collection<RosterDoc> => store.db.collection<RosterDoc>('site_rosters');
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

/** The sites' current generations (0 for a site never written). */
async function currentGenerations(store: Store, siteIds: string[]): Promise<Map<string, number>> {
  const found = await findByValues(store, generations(store), '_id', siteIds);
  const gens = new Map(siteIds.map((id) => [id, 0]));
  for (const g of found) gens.set(g._id, g.gen);
  return gens;
}

/** The roster's members when it is whole and of generation `gen`; null when stale, partial or missing. */
function validMembers(docs: RosterDoc[], gen: number): string[] | null {
  if (docs.length === 0) return null;
  docs.sort((a, b) => a.chunk - b.chunk);
  const whole = docs.every((d, i) => d.chunk === i && d.chunks === docs.length && d.gen === gen);
  return whole ? docs.flatMap((d) => d.members) : null;
}

const encode = (s: Subscriber): string => BSON.EJSON.stringify(s, { relaxed: true });
const decode = (m: string): Subscriber => BSON.EJSON.parse(m, { relaxed: true }) as Subscriber;

/**
 * Writes a site's roster of generation `gen`, then removes chunks beyond it (a site that shrank).
 * A chunk of a newer generation is left alone (a slower rebuild from an older scan never overwrites a
 * newer one's: the upsert then meets the `_id` that exists, and gives up).
 */
async function writeRoster(store: Store, siteId: string, gen: number, subscribers: Subscriber[]): Promise<void> {
  const chunks = Math.max(1, Math.ceil(subscribers.length / ROSTER_CHUNK));
  for (let chunk = 0; chunk < chunks; chunk++) {
    const members = subscribers.slice(chunk * ROSTER_CHUNK, (chunk + 1) * ROSTER_CHUNK).map(encode);
    const _id = `${siteId}|${chunk}`;
    try {
      await rosters(store).updateOne(
        { _id, gen: { $lte: gen } },
        { $set: { siteId, chunk, chunks, gen, members } },
        { upsert: true },
      );
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
    }
  }
  await rosters(store).deleteMany({ siteId, chunk: { $gte: chunks }, gen: { $lte: gen } });
}

/** Scans a site's subscribers (the plain read, in `_id` order) and rebuilds its roster from that scan. */
async function scanAndRebuild(store: Store, siteId: string, gen: number): Promise<Subscriber[]> {
  const subscribers = await store.subscribers.find({ siteId }).sort({ _id: 1 }).toArray();
  await writeRoster(store, siteId, gen, subscribers);
  return subscribers;
}

/** Sites whose rosters are read or rebuilt at once. */
const SITES_AT_ONCE = 2;

/**
 * Every subscriber of each site, whole, in `_id` order: from the site's roster when it is current,
 * else from a scan of the site (which rebuilds the roster). Returns the sites in the order given.
 */
export async function siteRosters(store: Store, siteIds: string[]): Promise<Subscriber[][]> {
  // Generations first: a roster is trusted only if it is of the generation read before it.
  const gens = await currentGenerations(store, siteIds);
  const out: Subscriber[][] = new Array(siteIds.length);
  await eachParallel(
    siteIds.map((_, i) => i),
    SITES_AT_ONCE,
    async (i) => {
      const siteId = siteIds[i]!;
      const gen = gens.get(siteId)!;
      const members = validMembers(await rosters(store).find({ siteId }).toArray(), gen);
      out[i] = members ? members.map(decode) : await scanAndRebuild(store, siteId, gen);
    },
  );
  return out;
}

/** Rebuilds these sites' rosters now (the importer, at its end: the first planning after it is fast). */
export async function rebuildRosters(store: Store, siteIds: Iterable<string>): Promise<void> {
  const ids = [...new Set(siteIds)];
  const gens = await currentGenerations(store, ids);
  await eachParallel(
    ids,
    SITES_AT_ONCE,
    async (siteId) => void (await scanAndRebuild(store, siteId, gens.get(siteId)!)),
  );
}
