/**
 * Who an outage reaches. Given the sites that are down, the audience is every site they feed
 * (directly or through other sites) and every subscriber those sites serve.
 *
 * Same question, same answer: sites come in id order, subscribers in contract (`_id`) order, and
 * whether someone's paid SMS option is in force is judged at a fixed moment (`at`, the incident's
 * opening), not "now". So a retried activity walks the same subscribers in the same order. The
 * snapshot itself is what the planner writes from it: delivery records are inserted if absent,
 * so planning again adds nobody (see store/deliveries.ts).
 *
 * Subscribers are read through server-side cursors sorted by `_id`, a batch at a time
 * (store/site-subscribers.ts: one `$in` query on MongoDB, walking the `{siteId, _id}` index; one
 * equality query per site, merged, on FerretDB), never re-queried per page: on FerretDB 1.24 a
 * query reads everything its equalities match before it sorts or skips, so keyset paging would read
 * the audience once per page. Pages are cut from the cursors' batches, with no `await` per subscriber.
 */
import { MongoNetworkError, MongoServerError, type Filter, type FindCursor } from 'mongodb';
import type { Store } from './db';
import type { Language, Segment, Site, Subscriber } from '../domain/types';
import { downstreamSites } from './network';
import { subscriberBatchesOfSites, subscribersOfSites } from './site-subscribers';
import type { SubscriberFacts } from '../rules';

/** Everyone the sites serve, or only those the paid SMS notice goes to. */
export type AudienceScope = 'all' | 'smsNotice';

export interface AudienceCounts {
  /** Every subscriber the affected sites serve. */
  subscribers: number;
  /** The paid SMS alert option in force at `at`, or not. */
  byAlertOption: { paid: number; unpaid: number };
  byLanguage: Record<Language, number>;
  bySegment: Record<Segment, number>;
  /** Subscribers not opted out, by the channels they can be reached on (one may count twice). */
  byChannel: { sms: number; email: number };
  optedOut: number;
  /** Who the outage SMS goes to (paid option in force, not opted out), and how many messages that is. */
  smsNotice: { subscribers: number; phones: number };
}

export interface Audience {
  /** The moment the paid option is judged at. */
  at: Date;
  requestedSiteIds: string[];
  /** Requested ids that name no site. */
  unknownSiteIds: string[];
  /** The requested sites and every site downstream, in id order. */
  sites: Site[];
  siteIds: string[];
  /** The towns they serve, sorted. */
  areas: string[];
  /** Subscribers in contract order, fetched `pageSize` at a time; the caller closes it. */
  cursor(scope?: AudienceScope): FindCursor<Subscriber>;
  /** The same subscribers as pages; resumes after the last page if the server loses the cursor. */
  pages(scope?: AudienceScope): AsyncGenerator<Subscriber[]>;
  counts(): Promise<AudienceCounts>;
}

export interface AudienceOptions {
  /** When the paid option must be in force: the incident's opening, for a repeatable answer. */
  at: Date;
  /** Subscribers per page (per cursor batch). */
  pageSize?: number;
}

export const DEFAULT_PAGE_SIZE = 1000;
const MAX_RESUMES = 3;

/** Whether the paid SMS option is in force at `at`: active, and `since <= at < until` (open bounds). */
export function smsAlertsInForce(s: Pick<Subscriber, 'smsAlerts'>, at: Date): boolean {
  const { active, since, until } = s.smsAlerts ?? { active: false };
  return active === true && (!since || since <= at) && (!until || at < until);
}

/** The query for a scope: the same condition as `smsAlertsInForce`, for the database to apply. */
export function audienceFilter(siteIds: string[], scope: AudienceScope, at: Date): Filter<Subscriber> {
  return { siteId: { $in: siteIds }, ...scopeFilter(scope, at) };
}

/** The scope's condition alone, without the sites. */
export function scopeFilter(scope: AudienceScope, at: Date): Filter<Subscriber> {
  if (scope === 'all') return {};
  return {
    optedOut: { $ne: true },
    'smsAlerts.active': true,
    // `$not` also matches a missing bound: no start or no end means open.
    'smsAlerts.since': { $not: { $gt: at } },
    'smsAlerts.until': { $not: { $lte: at } },
  };
}

function isCursorLost(err: unknown): boolean {
  // 43 CursorNotFound (timed out or killed), 237 CursorKilled; or the connection dropped.
  return (err instanceof MongoServerError && (err.code === 43 || err.code === 237)) || err instanceof MongoNetworkError;
}

export async function resolveAudience(store: Store, siteIds: string[], opts: AudienceOptions): Promise<Audience> {
  const at = opts.at;
  const pageSize = opts.pageSize ?? DEFAULT_PAGE_SIZE;
  const requested = [...new Set(siteIds)].sort();
  const sites = await downstreamSites(store, requested);
  const ids = sites.map((s) => s._id);
  const known = new Set(ids);
  const filterFor = (scope: AudienceScope) => audienceFilter(ids, scope, at);

  const cursor = (scope: AudienceScope = 'all') =>
    store.subscribers.find(filterFor(scope)).sort({ _id: 1 }).batchSize(pageSize);

  async function* pages(scope: AudienceScope = 'all'): AsyncGenerator<Subscriber[]> {
    let after: string | null = null;
    for (let resumes = 0; ; resumes++) {
      const c = subscriberBatchesOfSites(store, ids, { filter: scopeFilter(scope, at), after, batchSize: pageSize });
      try {
        let page: Subscriber[] = [];
        for await (const batch of c) {
          for (let from = 0; from < batch.length;) {
            const taken = batch.slice(from, from + pageSize - page.length);
            from += taken.length;
            page = page.length === 0 ? taken : page.concat(taken);
            if (page.length === pageSize) {
              const full = page;
              page = [];
              yield full;
              after = full[full.length - 1]!._id;
            }
          }
        }
        if (page.length > 0) yield page;
        return;
      } catch (err) {
        if (!isCursorLost(err) || resumes >= MAX_RESUMES) throw err;
      } finally {
        await c.return(undefined);
      }
    }
  }

  /** One pass over the served subscribers, reading only what the counts need. */
  async function counts(): Promise<AudienceCounts> {
    const c: AudienceCounts = {
      subscribers: 0,
      byAlertOption: { paid: 0, unpaid: 0 },
      byLanguage: { it: 0, en: 0 },
      bySegment: { residential: 0, business: 0 },
      byChannel: { sms: 0, email: 0 },
      optedOut: 0,
      smsNotice: { subscribers: 0, phones: 0 },
    };
    const projection = { _id: 1, language: 1, segment: 1, optedOut: 1, smsAlerts: 1, phones: 1, email: 1 };
    for await (const batch of subscriberBatchesOfSites<Subscriber & { email?: string }>(store, ids, {
      projection,
      batchSize: 5000,
      ordered: false,
    }))
      for (const s of batch) count(s);
    return c;

    function count(s: Subscriber & { email?: string }): void {
      c.subscribers++;
      const paid = smsAlertsInForce(s, at);
      c.byAlertOption[paid ? 'paid' : 'unpaid']++;
      c.byLanguage[s.language] = (c.byLanguage[s.language] ?? 0) + 1;
      c.bySegment[s.segment] = (c.bySegment[s.segment] ?? 0) + 1;
      if (s.optedOut) {
        c.optedOut++;
        return;
      }
      if (s.phones?.length) c.byChannel.sms++;
      if (s.email) c.byChannel.email++;
      if (paid && s.phones?.length) {
        c.smsNotice.subscribers++;
        c.smsNotice.phones += s.phones.length;
      }
    }
  }

  return {
    at,
    requestedSiteIds: requested,
    unknownSiteIds: requested.filter((id) => !known.has(id)),
    sites,
    siteIds: ids,
    areas: [...new Set(sites.map((s) => s.area))].sort(),
    cursor,
    pages,
    counts,
  };
}

/** How many uplink hops each site is below the nearest requested one (0 for those). */
export function depthBelow(sites: Site[], requested: string[]): Map<string, number> {
  const byId = new Map(sites.map((s) => [s._id, s]));
  const depth = new Map<string, number>(requested.filter((id) => byId.has(id)).map((id) => [id, 0]));
  const of = (id: string): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    const trail: string[] = [];
    let current: string | null | undefined = id;
    while (current && depth.get(current) === undefined && !trail.includes(current)) {
      trail.push(current);
      current = byId.get(current)?.uplink;
    }
    let d = current ? (depth.get(current) ?? 0) : 0;
    for (const t of trail.reverse()) depth.set(t, ++d);
    return depth.get(id)!;
  };
  for (const s of sites) of(s._id);
  return depth;
}

/** What the rules know of a subscriber (paid option and opt-out judged at `at`, the incident's opening). */
export function subscriberFacts(s: Subscriber, area: string | undefined, at: Date): SubscriberFacts {
  const extra = s as Subscriber & { quietHours?: string; email?: string };
  const channels: SubscriberFacts['channels'] = ['sms', 'voice', ...(extra.email ? (['email'] as const) : [])];
  return {
    id: s._id,
    // Judged at the incident's opening: a retry, or a change of plan since, gives the same answer.
    paidSms: smsAlertsInForce(s, at) && !s.optedOut,
    language: s.language,
    segment: s.segment,
    siteId: s.siteId,
    area,
    channels,
    ...(extra.quietHours ? { quietHours: extra.quietHours } : {}),
  };
}

/**
 * The rules' view of every subscriber an incident on these sites reaches (the sites and all they
 * feed), as a live incident's planning sees them: what `POST /v1/rules/simulate` simulates on when
 * it is given no audience of its own.
 */
export async function audienceFacts(store: Store, siteIds: string[], at: Date): Promise<SubscriberFacts[]> {
  const sites = await downstreamSites(store, siteIds);
  const areaOf = new Map(sites.map((s) => [s._id, s.area]));
  const facts: SubscriberFacts[] = [];
  for await (const s of subscribersOfSites(store, [...areaOf.keys()]))
    facts.push(subscriberFacts(s, areaOf.get(s.siteId), at));
  return facts;
}
