/**
 * The few reads the console needs that the API has no store function for: the network tree with
 * paying subscribers per site, which sites are down or under maintenance now, message progress
 * summed for a page, and a search of one incident's messages by phone or contract. Read-only.
 */
import type { Filter } from 'mongodb';
import type { Store } from '../../store/db';
import type { Delivery, Incident, Site } from '../../domain/types';
import { CLOSED_PHASES } from '../../store/incident-queries';
import { PENDING_MAINTENANCE_PHASES } from '../../store/maintenances';
import type { DeliveryCounts } from '../../store/incidents';
import { answeredOverlay } from '../../store/send-requests';

export interface SiteNode {
  site: Site;
  state: 'normal' | 'down' | 'maintenance';
  /** Paid SMS option in force now, on this site only. */
  paying: number;
  /** On this site and every site it feeds. */
  payingBelow: number;
  children: SiteNode[];
  /** The open incidents or maintenances this state comes from. */
  causes: string[];
}

/** Paying subscribers by site: the paid option in force now (store/audience.ts says the same for an audience). */
async function payingBySite(store: Store, at: Date): Promise<Map<string, number>> {
  const rows = await store.subscribers
    .aggregate<{ _id: string; n: number }>([
      {
        $match: {
          'smsAlerts.active': true,
          'smsAlerts.since': { $not: { $gt: at } },
          'smsAlerts.until': { $not: { $lte: at } },
        },
      },
      { $group: { _id: '$siteId', n: { $sum: 1 } } },
    ])
    .toArray();
  return new Map(rows.map((r) => [r._id, r.n]));
}

/** Open outages and maintenances under way, by affected site. */
async function siteStates(store: Store): Promise<Map<string, { state: 'down' | 'maintenance'; causes: string[] }>> {
  const open = await store.incidents
    .find(
      {
        $or: [
          { kind: 'outage', phase: { $nin: CLOSED_PHASES }, mergedInto: { $exists: false } },
          { kind: 'maintenance', phase: { $in: ['in_progress', 'overrun'] } },
        ],
      },
      { projection: { _id: 1, kind: 1, siteIds: 1, affectedSiteIds: 1 } },
    )
    .toArray();
  const states = new Map<string, { state: 'down' | 'maintenance'; causes: string[] }>();
  for (const i of open) {
    for (const id of i.affectedSiteIds ?? i.siteIds) {
      const s = states.get(id) ?? { state: i.kind === 'outage' ? 'down' : 'maintenance', causes: [] };
      if (i.kind === 'outage') s.state = 'down'; // down wins over planned work
      s.causes.push(i._id);
      states.set(id, s);
    }
  }
  return states;
}

export async function networkTree(store: Store, at = new Date()): Promise<{ roots: SiteNode[]; total: number }> {
  const [sites, paying, states] = await Promise.all([
    store.sites.find({}).sort({ _id: 1 }).toArray(),
    payingBySite(store, at),
    siteStates(store),
  ]);
  const nodes = new Map<string, SiteNode>();
  for (const site of sites) {
    const st = states.get(site._id);
    nodes.set(site._id, {
      site,
      state: st?.state ?? 'normal',
      paying: paying.get(site._id) ?? 0,
      payingBelow: 0,
      children: [],
      causes: st?.causes ?? [],
    });
  }
  const roots: SiteNode[] = [];
  for (const node of nodes.values()) {
    const parent = node.site.uplink ? nodes.get(node.site.uplink) : undefined;
    if (parent) parent.children.push(node);
    else roots.push(node);
  }
  // Sums from the leaves up; the store refuses uplink cycles (store/topology.ts), the guard is for safety.
  const sum = (n: SiteNode, depth: number): number =>
    (n.payingBelow = n.paying + (depth > 64 ? 0 : n.children.reduce((a, c) => a + sum(c, depth + 1), 0)));
  for (const r of roots) sum(r, 0);
  return { roots, total: sites.length };
}

export interface Progress {
  planned: number;
  sent: number;
  delivered: number;
  failed: number;
  held: number;
}

const SENT_STATES = ['sending', 'accepted', 'sent'];
const FAILED_STATES = ['undelivered', 'failed', 'expired'];

/** One channel's counts (all kinds) folded into planned / sent / delivered / failed; `held` is counted apart. */
export function progressByChannel(counts: DeliveryCounts, held: Record<string, number> = {}): Record<string, Progress> {
  const out: Record<string, Progress> = {};
  for (const [channel, kinds] of Object.entries(counts)) {
    const p = (out[channel] = { planned: 0, sent: 0, delivered: 0, failed: 0, held: held[channel] ?? 0 });
    for (const states of Object.values(kinds)) {
      for (const [state, n] of Object.entries(states)) {
        if (state === 'planned') p.planned += n;
        else if (state === 'delivered') p.delivered += n;
        else if (SENT_STATES.includes(state)) p.sent += n;
        else if (FAILED_STATES.includes(state)) p.failed += n;
      }
    }
  }
  return out;
}

/** Planned messages waiting for a later time (grace delay, quiet hours), by channel. */
export async function heldByChannel(
  store: Store,
  incidentId: string,
  now = new Date(),
): Promise<Record<string, number>> {
  const rows = await store.deliveries
    .aggregate<{ _id: string; n: number }>([
      { $match: { incidentId, state: 'planned', notBefore: { $gt: now } } },
      { $group: { _id: '$channel', n: { $sum: 1 } } },
    ])
    .toArray();
  return Object.fromEntries(rows.map((r) => [r._id, r.n]));
}

/** Open outages (not absorbed into another), newest first. */
export async function openOutages(store: Store, limit = 100): Promise<Incident[]> {
  return store.incidents
    .find({ kind: 'outage', phase: { $nin: CLOSED_PHASES }, mergedInto: { $exists: false } })
    .sort({ openedAt: -1 })
    .limit(limit)
    .toArray();
}

export async function pendingMaintenances(store: Store, limit = 100): Promise<Incident[]> {
  return store.incidents
    .find({ kind: 'maintenance', phase: { $in: [...PENDING_MAINTENANCE_PHASES] } })
    .sort({ 'window.startsAt': 1 })
    .limit(limit)
    .toArray();
}

/**
 * One incident's messages, newest change first, optionally only those to a phone number or
 * contract (the number as typed: digits are compared, so "+39 347 ..." finds "+39347...").
 */
export async function searchDeliveries(
  store: Store,
  incidentId: string,
  q: { phone?: string; contract?: string; limit: number },
): Promise<Delivery[]> {
  const filter: Filter<Delivery> = { incidentId };
  if (q.contract) filter.subscriberId = q.contract;
  if (q.phone) filter.to = q.phone;
  // Messages on their way whose receipt is not written yet read as accepted (store/send-requests.ts).
  const asAnswered = await answeredOverlay(store, incidentId);
  return (await store.deliveries.find(filter).sort({ updatedAt: -1 }).limit(q.limit).toArray()).map(asAnswered);
}

/** Every message a subscriber was sent (or was to be sent), newest first. */
export async function subscriberMessages(store: Store, subscriberId: string, limit = 200): Promise<Delivery[]> {
  return store.deliveries.find({ subscriberId }).sort({ createdAt: -1 }).limit(limit).toArray();
}

/** Why a message did not (yet) reach its recipient, from its record; undefined when it did. */
export function whyNotSent(d: Delivery, now = new Date()): string | undefined {
  if (d.state === 'delivered') return undefined;
  if (d.state === 'planned' && d.notBefore && d.notBefore > now)
    return `held until ${d.notBefore.toISOString()} (grace delay or quiet hours)`;
  if (d.invalidRecipient) return `invalid recipient${d.error ? `: ${d.error}` : ''}`;
  if (d.error) return d.error;
  const last = [...d.history].reverse().find((h) => h.note);
  if (last?.note) return last.note;
  if (['sending', 'accepted', 'sent'].includes(d.state)) return 'on its way: no delivery receipt yet';
  if (d.state === 'planned') return 'waiting to be sent';
  return d.state;
}
