/**
 * One message per person, per event, across incidents. Two outages can cover the same site (a
 * tower and the relay that feeds it, opened apart, or kept apart on purpose): whoever was told of
 * the outage by one is not told again by the other, and hears that service is back once, when the
 * last outage covering their site ends.
 *
 * - Planning: a number that a live outage notice of another open outage covering the subscriber's
 *   site already reaches gets a record that is not sent (`coveredBy`, and why, in its history).
 * - Resolution: an outage that ends while another one still covers the site leaves the restoration
 *   to that one. The last to end sends it, to those it told and to those it covered.
 * - Two outages ending at the same moment both see the other one ending (each writes `resolving`
 *   before it looks), so both may decide to send: a unique claim per number and per episode (the
 *   incident that told them) lets exactly one of them plan it.
 * - Each of these looks at the others' records and then writes its own: two outages planning side
 *   by side would each miss the other's. So they run one at a time per network tree
 *   (`withCoveragePlanning`, a lock of store/tree-lock.ts): two outages covering one site are in
 *   that site's tree, and the later one finds every record of the earlier one.
 */
import { MongoServerError } from 'mongodb';
import type { Store } from './db';
import type { Delivery, DeliveryChannel, DeliveryState, Incident, IncidentPhase, Subscriber } from '../domain/types';
import { subscribersOfSites } from './site-subscribers';
import { upstreamSiteIds } from './network';
import { withTreeLocks } from './tree-lock';
import { noteIncidentsChanged } from './quiet-pages';

/** An outage is open until it starts to end (`resolving`): then it no longer covers anyone. */
export const OPEN_OUTAGE_PHASES: IncidentPhase[] = ['detected', 'notifying', 'notified', 'escalated'];
/** Outage notices that still stand: planned or on their way or read. */
export const LIVE_NOTICE: DeliveryState[] = ['planned', 'sending', 'accepted', 'sent', 'delivered'];
const BY_PHONE: DeliveryChannel[] = ['sms', 'voice'];

export interface OtherOutage {
  id: string;
  sites: Set<string>;
}

/** Longer than any planning of outage notices takes (a planning sends as it plans: 100,000 in about a minute). */
const PLANNING_WAIT_MS = 4 * 60_000;
/**
 * A killed worker's planning keeps its trees this long: about the activities' heartbeat timeout
 * (15 s), so that its retry, which starts then, finds them free.
 */
const PLANNING_LEASE_MS = 12_000;

/**
 * Runs `fn`, which reads the outage notices of other outages over these sites and plans or ends
 * this one's, holding the planning locks of the trees the sites are in: no other outage's planning
 * over these trees runs meanwhile, in this process or another.
 */
export async function withCoveragePlanning<T>(store: Store, siteIds: string[], fn: () => Promise<T>): Promise<T> {
  const roots = await Promise.all([...new Set(siteIds)].map(async (id) => (await upstreamSiteIds(store, id)).at(-1)!));
  return withTreeLocks(store, roots, fn, { kind: 'plan', waitMs: PLANNING_WAIT_MS, leaseMs: PLANNING_LEASE_MS });
}

/**
 * Marks an outage as ending, before it looks at the others: an insert, which no concurrent write
 * to the incident document can undo (its phase can be: FerretDB rewrites a whole document, and a
 * write of the API's beside the workflow's has lost a phase). Of two outages ending together,
 * each marks itself before it looks, so at least one sees the other ending.
 */
export async function markEnding(store: Store, incidentId: string, now: Date): Promise<void> {
  try {
    await store.sendClaims.insertOne({ _id: `ending|${incidentId}`, at: now, by: incidentId });
  } catch (err) {
    if (!(err instanceof MongoServerError) || err.code !== 11000) throw err;
  }
}

/**
 * Outages other than `exceptId` in these phases (default: open) that cover any of these sites;
 * with `openOnly`, not those that have begun to end (markEnding), whatever their phase says.
 */
export async function otherOutages(
  store: Store,
  siteIds: string[],
  exceptId: string,
  phases: IncidentPhase[] = OPEN_OUTAGE_PHASES,
  openOnly = phases === OPEN_OUTAGE_PHASES,
): Promise<OtherOutage[]> {
  if (siteIds.length === 0) return [];
  const found = (
    await store.incidents
      .find(
        { kind: 'outage', phase: { $in: phases }, affectedSiteIds: { $in: siteIds } },
        { projection: { affectedSiteIds: 1 } },
      )
      .toArray()
  ).filter((i) => i._id !== exceptId);
  const ending =
    openOnly && found.length
      ? new Set(
          (await store.sendClaims.find({ _id: { $in: found.map((i) => `ending|${i._id}`) } }).toArray()).map(
            (c) => c.by,
          ),
        )
      : new Set<string | undefined>();
  return found.filter((i) => !ending.has(i._id)).map((i) => ({ id: i._id, sites: new Set(i.affectedSiteIds ?? []) }));
}

/** Each subscriber's site, for the subscribers of these sites: which outage covers whom. */
export async function subscriberSites(store: Store, siteIds: string[]): Promise<Map<string, string>> {
  const siteOf = new Map<string, string>();
  const projection = { siteId: 1 };
  for await (const s of subscribersOfSites<Subscriber>(store, siteIds, { projection, ordered: false }))
    siteOf.set(s._id, s.siteId);
  return siteOf;
}

/**
 * As an outage ends: the other open outages over its sites, and whether a record's subscriber is
 * on a site one of them still covers (for them the outage goes on: that one tells them when it ends).
 */
export async function coveredAfterEnd(
  store: Store,
  incident: Pick<Incident, '_id' | 'siteIds' | 'affectedSiteIds'>,
): Promise<{ stillOpen: OtherOutage[]; stillCovered: (d: Pick<Delivery, 'subscriberId'>) => boolean }> {
  const sites = incident.affectedSiteIds ?? incident.siteIds;
  const stillOpen = await otherOutages(store, sites, incident._id);
  const siteOf = stillOpen.length ? await subscriberSites(store, sites) : new Map<string, string>();
  return { stillOpen, stillCovered: (d) => coveringOutage(stillOpen, siteOf.get(d.subscriberId)) !== undefined };
}

/** The first of these outages that covers a site, or undefined. */
export function coveringOutage(outages: OtherOutage[], siteId: string | undefined): string | undefined {
  return siteId === undefined ? undefined : outages.find((o) => o.sites.has(siteId))?.id;
}

/**
 * Who the other open outages already told (or are about to tell): per number (`sms:+39...`), the
 * outages whose live outage notice reaches it. One read per outage and state (equalities every
 * engine serves from an index).
 */
export async function numbersToldBy(
  store: Store,
  outages: OtherOutage[],
  states: DeliveryState[] = LIVE_NOTICE,
): Promise<Map<string, OtherOutage[]>> {
  const told = new Map<string, OtherOutage[]>();
  for (const outage of outages) {
    for (const state of states) {
      const records = await store.deliveries
        .find({ incidentId: outage.id, kind: 'outage', state }, { projection: { channel: 1, to: 1 } })
        .toArray();
      for (const d of records) {
        if (!BY_PHONE.includes(d.channel)) continue;
        const key = `${d.channel}:${d.to}`;
        const list = told.get(key) ?? [];
        if (!list.includes(outage)) list.push(outage);
        told.set(key, list);
      }
    }
  }
  return told;
}

/**
 * Claims the restoration notice of one number for one episode (the incident that told it) for
 * `incidentId`: true when this incident may plan it. A unique insert, so exactly one of two
 * incidents ending together wins; the same incident claiming again (a retried activity) wins again.
 */
export async function claimRestoration(
  store: Store,
  episode: string,
  number: string,
  incidentId: string,
  now: Date,
): Promise<boolean> {
  const _id = `restoration|${episode}|${number}`;
  try {
    await store.sendClaims.insertOne({ _id, at: now, by: incidentId });
    return true;
  } catch (err) {
    if (!(err instanceof MongoServerError) || err.code !== 11000) throw err;
    return (await store.sendClaims.findOne({ _id }))?.by === incidentId;
  }
}

/**
 * An outage ends before its notice reached a number that another open outage had left to it
 * (covered): that outage's record goes back to planned, so that the number hears of the outage
 * still going on from it, and never "restored" from this one. Returns how many records it revived.
 */
export async function handOverNotice(
  store: Store,
  from: string,
  to: OtherOutage[],
  channel: DeliveryChannel,
  number: string,
  now: Date,
): Promise<number> {
  const r = await store.deliveries.updateMany(
    {
      incidentId: { $in: to.map((o) => o.id) },
      kind: 'outage',
      state: 'expired',
      channel,
      to: number,
      coveredBy: from,
    },
    {
      $set: { state: 'planned', updatedAt: now },
      $unset: { coveredBy: '' },
      $push: { history: { at: now, state: 'planned', note: `handed over: ${from} ended before its notice went out` } },
    },
  );
  // Due again, on pages not known here: the sender reads every page of those outages again.
  if (r.modifiedCount > 0)
    await noteIncidentsChanged(
      store,
      to.map((o) => o.id),
    );
  return r.modifiedCount;
}
