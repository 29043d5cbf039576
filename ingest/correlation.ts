/**
 * Which incidents are open in each network tree, for correlation: the one place that decides
 * whether an alert or an API call joins an open incident, absorbs those below it, or opens one.
 *
 * Every read-and-decide and every write here happens under the tree's lock (store/tree-lock.ts), so
 * two requests for sites of one tree are decided one after the other, whatever their timing. The
 * state lives in its own collection, `incident_correlation`, one document per outage incident,
 * written only under the lock: not in the incident document, which the incident's workflow
 * rewrites as it goes (on FerretDB an update rewrites the whole document, so a marker written
 * there at the same moment can be lost).
 */
import type { Store } from '../store/db';
import type { IncidentPhase } from '../domain/types';
import { loadUplinks } from '../store/sites';
import { withTreeLocks } from '../store/tree-lock';

export interface CorrelationDoc {
  _id: string; // the incident id
  /** The root sites of the trees its sites are in: the locks that guard it. */
  roots: string[];
  /** The sites it was opened for, and those added since (absorbed, scope): it covers them and everything below. */
  siteIds: string[];
  openedAt: Date;
  /** `settling`: a monitoring resolve waits until `settlingUntil` for the site to stay up; `closed`: resolved, cancelled or merged. */
  state: 'open' | 'settling' | 'closed';
  settlingUntil?: Date;
  mergedInto?: string;
}

/** The network's shape as the decision reads it: each site's uplink. */
export class Network {
  constructor(private readonly uplinks: Map<string, string | null>) {}

  /** The site and every site above it, up to its tree's root. */
  lineage(id: string): string[] {
    const seen: string[] = [];
    for (let s: string | null | undefined = id; s && !seen.includes(s); s = this.uplinks.get(s)) seen.push(s);
    return seen;
  }

  /** The site exists (as of when this network was read). */
  knows(id: string): boolean {
    return this.uplinks.has(id);
  }

  rootOf(id: string): string {
    return this.lineage(id).at(-1) ?? id;
  }

  /** `site` is `above` or below it. */
  isAtOrBelow(site: string, above: string): boolean {
    return this.lineage(site).includes(above);
  }
}

export interface Relation {
  /** An open incident covers every one of the sites (they are at or below its sites): join it. */
  covering?: string;
  /** Open incidents whose sites all lie at or below these sites, oldest first: absorb them. */
  downstreamOpen?: string[];
}

const OPEN_PHASES: IncidentPhase[] = ['detected', 'notifying', 'notified', 'escalated'];
const NETWORK_CACHE_MS = 1000;
const ENDED_PHASES: IncidentPhase[] = ['resolving', 'resolved', 'cancelled', 'billed'];

export function createCorrelation(store: Store) {
  const docs = store.db.collection<CorrelationDoc>('incident_correlation');
  let backfilled: Promise<void> | undefined;

  /**
   * Incidents opened before this collection existed (an upgrade) are entered once per process:
   * unique inserts, so two processes doing it at once change nothing.
   */
  const backfill = async (network: Network) => {
    const open = await store.incidents
      .find(
        { kind: 'outage', phase: { $in: OPEN_PHASES } },
        { projection: { _id: 1, siteIds: 1, openedAt: 1, mergedInto: 1, resolveRequestedAt: 1, settlingUntil: 1 } },
      )
      .toArray();
    if (open.length === 0) return;
    const known = new Set(
      (await docs.find({ _id: { $in: open.map((i) => i._id) } }, { projection: { _id: 1 } }).toArray()).map(
        (d) => d._id,
      ),
    );
    for (const i of open.filter((o) => !known.has(o._id))) {
      const state =
        i.mergedInto || (i.resolveRequestedAt && !i.settlingUntil)
          ? 'closed'
          : i.resolveRequestedAt
            ? 'settling'
            : 'open';
      await docs
        .insertOne({
          _id: i._id,
          roots: [...new Set(i.siteIds.map((s) => network.rootOf(s)))],
          siteIds: i.siteIds,
          openedAt: i.openedAt,
          state,
          ...(i.settlingUntil ? { settlingUntil: i.settlingUntil } : {}),
          ...(i.mergedInto ? { mergedInto: i.mergedInto } : {}),
        })
        .catch(() => undefined);
    }
  };

  let cached: { at: number; network: Promise<Network> } | undefined;
  const correlation = {
    /** The network as it is now, read from the database. */
    async network(): Promise<Network> {
      const network = new Network(await loadUplinks(store));
      await (backfilled ??= backfill(network).catch((err) => {
        backfilled = undefined;
        throw err;
      }));
      return network;
    },

    /** The network as it was at most a second ago: enough to tell which tree a site is in before taking its lock. */
    recentNetwork(): Promise<Network> {
      if (!cached || Date.now() - cached.at > NETWORK_CACHE_MS) {
        const network = correlation.network();
        cached = { at: Date.now(), network };
        network.catch(() => (cached = undefined));
      }
      return cached.network;
    },

    /**
     * Runs `fn` holding the locks of the trees these sites are in, with the network as it is now.
     * The trees are found from the recent network; under the locks the network is read again, and
     * should a site have moved to another tree in the meantime, the right locks are taken instead.
     */
    async withTrees<T>(siteIds: string[], fn: (network: Network) => Promise<T>): Promise<T> {
      let guess = await correlation.recentNetwork();
      for (;;) {
        const roots = [...new Set(siteIds.map((s) => guess.rootOf(s)))];
        const outcome = await withTreeLocks<{ done: T } | { moved: Network }>(store, roots, async () => {
          const network = await correlation.network();
          const now = [...new Set(siteIds.map((s) => network.rootOf(s)))];
          return now.every((r) => roots.includes(r)) ? { done: await fn(network) } : { moved: network };
        });
        if ('done' in outcome) return outcome.done;
        guess = outcome.moved;
      }
    },

    /** Runs `fn` holding the locks of the trees this incident is in. */
    async withIncident<T>(incidentId: string, siteIds: string[], fn: () => Promise<T>): Promise<T> {
      const network = await correlation.recentNetwork();
      const doc = await docs.findOne({ _id: incidentId });
      const roots = [...(doc?.roots ?? []), ...siteIds.map((s) => network.rootOf(s))];
      return withTreeLocks(store, roots, fn);
    },

    /** How these sites relate to the incidents open in their trees. Under the trees' locks. */
    async relate(siteIds: string[], network: Network): Promise<Relation> {
      const roots = [...new Set(siteIds.map((s) => network.rootOf(s)))];
      let open = (await docs.find({ roots: { $in: roots }, state: 'open' }).toArray()).sort(
        (a, b) => a.openedAt.getTime() - b.openedAt.getTime() || a._id.localeCompare(b._id),
      );
      // A safety net: an incident whose workflow ended some other way is not joined (and is closed here, under the lock).
      // One read by id per open incident (few): FerretDB hands `_id: x` to PostgreSQL's index, but
      // answers `_id: {$in: [...]}` with a scan of every incident ever stored.
      const phases = await Promise.all(
        open.map((d) => store.incidents.findOne({ _id: d._id }, { projection: { _id: 1, phase: 1 } })),
      );
      const over = new Set(phases.filter((i) => i && ENDED_PHASES.includes(i.phase)).map((i) => i!._id));
      if (over.size) {
        await docs.updateMany({ _id: { $in: [...over] } }, { $set: { state: 'closed' } });
        open = open.filter((d) => !over.has(d._id));
      }
      const covering = open.find((i) =>
        siteIds.every((id) => i.siteIds.some((named) => network.isAtOrBelow(id, named))),
      );
      if (covering) return { covering: covering._id };
      const downstreamOpen = open
        .filter((i) => i.siteIds.every((named) => siteIds.some((id) => network.isAtOrBelow(named, id))))
        .map((i) => i._id);
      return downstreamOpen.length ? { downstreamOpen } : {};
    },

    get(incidentId: string): Promise<CorrelationDoc | null> {
      return docs.findOne({ _id: incidentId });
    },

    /** A new incident is open. Under the lock; a repeat (same id) changes nothing. */
    async opened(incidentId: string, siteIds: string[], openedAt: Date, network: Network): Promise<void> {
      await docs
        .insertOne({
          _id: incidentId,
          roots: [...new Set(siteIds.map((s) => network.rootOf(s)))],
          siteIds,
          openedAt,
          state: 'open',
        })
        .catch((err: { code?: number }) => {
          if (err.code !== 11000) throw err;
        });
    },

    /** `survivorId` now covers `siteIds` too; the absorbed incidents are closed into it. */
    async absorbed(survivorId: string, absorbedIds: string[], siteIds: string[], network: Network): Promise<void> {
      const survivor = await docs.findOne({ _id: survivorId });
      const all = [...new Set([...(survivor?.siteIds ?? []), ...siteIds])];
      await docs.updateOne(
        { _id: survivorId },
        {
          $set: {
            siteIds: all,
            roots: [...new Set([...(survivor?.roots ?? []), ...all.map((s) => network.rootOf(s))])],
          },
        },
      );
      if (absorbedIds.length)
        await docs.updateMany({ _id: { $in: absorbedIds } }, { $set: { state: 'closed', mergedInto: survivorId } });
    },

    /** Resolved (settling until then, if given) or cancelled: no longer joined. */
    async closing(incidentId: string, settlingUntil?: Date): Promise<void> {
      await docs.updateOne(
        { _id: incidentId },
        settlingUntil
          ? { $set: { state: 'settling', settlingUntil } }
          : { $set: { state: 'closed' }, $unset: { settlingUntil: '' } },
      );
    },

    async reopened(incidentId: string): Promise<void> {
      await docs.updateOne({ _id: incidentId }, { $set: { state: 'open' }, $unset: { settlingUntil: '' } });
    },

    /** The incidents merged into this one (they end with it). */
    async mergedInto(incidentId: string): Promise<string[]> {
      return (await docs.find({ mergedInto: incidentId }, { projection: { _id: 1 } }).toArray()).map((d) => d._id);
    },
  };
  return correlation;
}

export type Correlation = ReturnType<typeof createCorrelation>;
