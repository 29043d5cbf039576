/**
 * A small demo network and subscriber set, loaded by `avviso dev` on first start so that the
 * stack does something useful before any real data is imported.
 *
 *   tower-lodi-01 (Lodi) ── tower-lodi-02 (Lodi Vecchio) ── ap-lodi-02-a (Lodi Vecchio)
 *                        └─ ap-lodi-01-a (Lodi)
 *   tower-crema-01 (Crema) ── ap-crema-01-a (Crema)
 */
import type { Store } from './db';
import type { Site, Subscriber } from '../domain/types';
import { subscribersChanged } from './site-roster';

export const DEMO_SITES: Site[] = [
  {
    _id: 'tower-lodi-01',
    name: 'Lodi, torre San Bernardo',
    area: 'Lodi',
    kind: 'tower',
    location: { lat: 45.3141, lon: 9.5037 },
    uplink: null,
  },
  {
    _id: 'ap-lodi-01-a',
    name: 'Lodi AP nord',
    area: 'Lodi',
    kind: 'access_point',
    location: { lat: 45.3172, lon: 9.5021 },
    uplink: 'tower-lodi-01',
  },
  {
    _id: 'tower-lodi-02',
    name: 'Lodi Vecchio, traliccio',
    area: 'Lodi Vecchio',
    kind: 'tower',
    location: { lat: 45.3019, lon: 9.4173 },
    uplink: 'tower-lodi-01',
  },
  {
    _id: 'ap-lodi-02-a',
    name: 'Lodi Vecchio AP',
    area: 'Lodi Vecchio',
    kind: 'access_point',
    location: { lat: 45.3027, lon: 9.4191 },
    uplink: 'tower-lodi-02',
  },
  {
    _id: 'tower-crema-01',
    name: 'Crema, torre Ombriano',
    area: 'Crema',
    kind: 'tower',
    location: { lat: 45.3584, lon: 9.6852 },
    uplink: null,
  },
  {
    _id: 'ap-crema-01-a',
    name: 'Crema AP centro',
    area: 'Crema',
    kind: 'access_point',
    location: { lat: 45.3621, lon: 9.6889 },
    uplink: 'tower-crema-01',
  },
];

function sub(
  id: string,
  name: string,
  phone: string,
  siteId: string,
  paid: boolean,
  extra: Partial<Subscriber> = {},
): Subscriber {
  return {
    _id: id,
    name,
    phones: [phone],
    language: 'it',
    siteId,
    segment: 'residential',
    smsAlerts: paid ? { active: true, since: new Date('2026-01-01T00:00:00Z') } : { active: false },
    optedOut: false,
    ...extra,
  };
}

export const DEMO_SUBSCRIBERS: Subscriber[] = [
  sub('C-1001', 'Maria Rossi', '+393471000001', 'ap-lodi-01-a', true),
  sub('C-1002', 'Giuseppe Bianchi', '+393471000002', 'ap-lodi-01-a', true, { segment: 'business' }),
  sub('C-1003', 'Anna Ferrari', '+393471000003', 'ap-lodi-01-a', false),
  sub('C-1004', 'John Smith', '+393471000004', 'tower-lodi-01', true, { language: 'en' }),
  sub('C-1005', 'Luca Colombo', '+393471000005', 'ap-lodi-02-a', true),
  sub('C-1006', 'Giulia Ricci', '+393471000006', 'ap-lodi-02-a', true, { optedOut: true }),
  sub('C-1007', 'Marco Galli', '+393471000007', 'tower-lodi-02', true),
  sub('C-2001', 'Paola Conti', '+393471000101', 'ap-crema-01-a', true),
  sub('C-2002', 'Stefano Marino', '+393471000102', 'ap-crema-01-a', false),
  sub('C-2003', 'Elena Greco', '+393471000103', 'tower-crema-01', true),
];

/** Loads the demo set unless the database already has sites. Returns whether it loaded. */
export async function loadDemoDataIfEmpty(store: Store): Promise<boolean> {
  if ((await store.sites.estimatedDocumentCount()) > 0) return false;
  // Upserts (a half-finished earlier load may have written some), in FerretDB-sized bulks.
  await store.sites.bulkWrite(
    DEMO_SITES.map((s) => ({ replaceOne: { filter: { _id: s._id }, replacement: s, upsert: true } })),
  );
  await store.subscribers.bulkWrite(
    DEMO_SUBSCRIBERS.map((s) => ({ replaceOne: { filter: { _id: s._id }, replacement: s, upsert: true } })),
  );
  await subscribersChanged(
    store,
    DEMO_SUBSCRIBERS.map((s) => s.siteId),
  );
  return true;
}
