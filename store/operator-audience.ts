/**
 * Who an operator's own words reach: the paying subscribers (SMS option in force, not opted out)
 * of an incident's sites, or of the part of them the operator chose (areas, sites and what they
 * feed). One message per phone number, under the first contract in id order (as the outage
 * notices do), and never to a number that any contract opted out from. The dry run counts with
 * this same walk, so its count is what is planned.
 */
import type { Store } from './db';
import type { Incident, Language, Site, Subscriber } from '../domain/types';
import { downstreamSites } from './network';
import { findByValues } from './backend';
import { scopeFilter } from './audience';
import { subscribersOfSites } from './site-subscribers';

/** A part of the audience; none given: all of it. */
export interface MessageTarget {
  areas?: string[];
  siteIds?: string[];
}

export interface Recipient {
  subscriberId: string;
  phone: string;
  language: Language;
  area: string;
}

/** Why a target is not part of the incident's audience, with the request field it came from. */
export class TargetError extends Error {
  constructor(
    readonly field: 'areas' | 'siteIds',
    message: string,
    readonly unknown: string[],
  ) {
    super(message);
  }
}

/** The incident's sites (fixed when its audience was planned, else those named and everything they feed). */
export async function incidentSites(
  store: Store,
  incident: Pick<Incident, 'siteIds' | 'affectedSiteIds'>,
): Promise<Site[]> {
  if (incident.affectedSiteIds)
    return (await findByValues(store, store.sites, '_id', incident.affectedSiteIds)).sort((a, b) =>
      a._id < b._id ? -1 : a._id > b._id ? 1 : 0,
    );
  return downstreamSites(store, incident.siteIds);
}

/** The sites of the incident the target names; a name outside the incident is a TargetError. */
export async function targetSites(
  store: Store,
  incident: Pick<Incident, 'siteIds' | 'affectedSiteIds'>,
  target: MessageTarget,
): Promise<Site[]> {
  let sites = await incidentSites(store, incident);
  if (target.areas?.length) {
    const known = new Set(sites.map((s) => s.area));
    const unknown = target.areas.filter((a) => !known.has(a));
    if (unknown.length)
      throw new TargetError(
        'areas',
        `${unknown.map((a) => JSON.stringify(a)).join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not among this incident's areas (${[...known].sort().join(', ')})`,
        unknown,
      );
    const chosen = new Set(target.areas);
    sites = sites.filter((s) => chosen.has(s.area));
  }
  if (target.siteIds?.length) {
    const known = new Set(sites.map((s) => s._id));
    const unknown = target.siteIds.filter((id) => !known.has(id));
    if (unknown.length)
      throw new TargetError(
        'siteIds',
        `${unknown.map((a) => JSON.stringify(a)).join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not among this incident's sites${target.areas?.length ? ' in the chosen areas' : ''}`,
        unknown,
      );
    const below = new Set((await downstreamSites(store, target.siteIds)).map((s) => s._id));
    sites = sites.filter((s) => below.has(s._id));
  }
  return sites;
}

/** The paying subscribers' numbers on `sites` as of `at`, once each, in contract id order. */
export async function* operatorRecipients(store: Store, sites: Site[], at: Date): AsyncIterable<Recipient> {
  if (sites.length === 0) return;
  const areaOf = new Map(sites.map((s) => [s._id, s.area]));
  const optedOut = new Set(
    (await store.subscribers.find({ optedOut: true }, { projection: { phones: 1 } }).toArray()).flatMap(
      (s) => s.phones,
    ),
  );
  const told = new Set<string>();
  // Per site on FerretDB (a `$in` over the sites is a scan of every subscriber there), merged in id order.
  const paying = subscribersOfSites<Pick<Subscriber, '_id' | 'phones' | 'language' | 'siteId'>>(
    store,
    [...areaOf.keys()],
    {
      filter: scopeFilter('smsNotice', at),
      projection: { _id: 1, phones: 1, language: 1, siteId: 1 },
    },
  );
  for await (const s of paying) {
    for (const phone of s.phones) {
      if (told.has(phone) || optedOut.has(phone)) continue;
      told.add(phone);
      yield { subscriberId: s._id, phone, language: s.language, area: areaOf.get(s.siteId)! };
    }
  }
}
