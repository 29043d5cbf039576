/**
 * Sites one at a time (the API): create, change, delete, list. Every change keeps the network a
 * forest (./topology.ts). There are no transactions on FerretDB, so two changes made at the very
 * same moment could still close a loop; the downstream walk (./network.ts) stops at sites it has
 * already seen, so such a loop cannot hang it.
 */
import type { Filter } from 'mongodb';
import type { Store } from './db';
import type { Site, SiteKind } from '../domain/types';
import { RecordError } from './errors';
import { contentHash, coordinates, FieldError, recordId, requiredText } from './normalize';
import { refusedSites, type Uplinks } from './topology';

/** What describes a site, as an import row or an API body gives it. */
export interface SiteFields {
  name: string;
  area: string;
  kind: SiteKind;
  location?: { lat: number; lon: number };
  uplink: string | null;
}

export interface SiteInput {
  name?: string;
  area?: string;
  kind?: SiteKind;
  lat?: number | null;
  lon?: number | null;
  location?: { lat: number; lon: number } | null;
  uplink?: string | null;
}

/** Checks and tidies a site's fields; throws FieldError naming the field. */
export function siteFields(input: SiteInput): SiteFields {
  const kind = input.kind ?? 'tower';
  if (kind !== 'tower' && kind !== 'access_point')
    throw new FieldError('kind', `"${kind}" is not tower or access_point`);
  const lat = input.location?.lat ?? input.lat;
  const lon = input.location?.lon ?? input.lon;
  if ((lat === undefined || lat === null) !== (lon === undefined || lon === null))
    throw new FieldError(lat === undefined || lat === null ? 'lat' : 'lon', 'give both coordinates or neither');
  const uplink =
    input.uplink === undefined || input.uplink === null || input.uplink.trim() === ''
      ? null
      : recordId(input.uplink, 'uplink');
  return {
    name: requiredText(input.name, 'name'),
    area: requiredText(input.area, 'area', 100),
    kind,
    ...(lat !== undefined && lat !== null ? { location: coordinates(lat, lon!, 'location') } : {}),
    uplink,
  };
}

export function siteHash(f: SiteFields): string {
  return contentHash({ name: f.name, area: f.area, kind: f.kind, location: f.location, uplink: f.uplink });
}

/** Every site's uplink: the whole network's shape, small enough to hold (one entry per site). */
export async function loadUplinks(store: Store): Promise<Map<string, string | null>> {
  const uplinks = new Map<string, string | null>();
  for await (const s of store.sites.find({}, { projection: { _id: 1, uplink: 1 } }))
    uplinks.set(s._id, s.uplink ?? null);
  return uplinks;
}

function assertForest(existing: Uplinks, id: string, uplink: string | null): void {
  const reason = refusedSites(existing, [{ id, uplink }]).get(id);
  if (reason) {
    const code = reason.includes('loop') ? 'site_cycle' : 'unknown_uplink';
    throw new RecordError('invalid', code, `Site ${id}: uplink ${reason}.`, { field: 'body.uplink', uplink });
  }
}

export async function getSite(store: Store, id: string): Promise<Site> {
  const site = await store.sites.findOne({ _id: id });
  if (!site) throw new RecordError('not_found', 'site_not_found', `No site ${id}; GET /v1/sites lists them.`);
  return site;
}

export async function createSite(store: Store, id: string, fields: SiteFields, now: Date): Promise<Site> {
  if (await store.sites.findOne({ _id: id }, { projection: { _id: 1 } }))
    throw new RecordError('conflict', 'site_exists', `Site ${id} exists already; PATCH /v1/sites/${id} changes it.`);
  assertForest(await loadUplinks(store), id, fields.uplink);
  const site: Site = { _id: id, ...fields, contentHash: siteHash(fields), createdAt: now, updatedAt: now };
  try {
    await store.sites.insertOne(site);
  } catch (err) {
    if ((err as { code?: number }).code === 11000)
      throw new RecordError('conflict', 'site_exists', `Site ${id} exists already.`);
    throw err;
  }
  return site;
}

/** Applies the given fields (a missing field is left as it is; `location: null` removes it). */
export async function updateSite(store: Store, id: string, patch: SiteInput, now: Date): Promise<Site> {
  const current = await getSite(store, id);
  const merged = siteFields({
    name: patch.name ?? current.name,
    area: patch.area ?? current.area,
    kind: patch.kind ?? current.kind,
    location: patch.location === null ? null : (patch.location ?? current.location),
    uplink: patch.uplink === undefined ? current.uplink : patch.uplink,
  });
  if (merged.uplink !== current.uplink) assertForest(await loadUplinks(store), id, merged.uplink);
  const hash = siteHash(merged);
  if (hash === current.contentHash) return current;
  const { location, ...rest } = merged;
  const updated = await store.sites.findOneAndUpdate(
    { _id: id },
    {
      $set: { ...rest, ...(location ? { location } : {}), contentHash: hash, updatedAt: now },
      ...(location ? {} : { $unset: { location: '' as const } }),
    },
    { returnDocument: 'after' },
  );
  if (!updated) throw new RecordError('not_found', 'site_not_found', `Site ${id} was deleted meanwhile.`);
  return updated;
}

/** Refuses to delete a site that feeds other sites or serves subscribers: they would be left hanging. */
export async function deleteSite(store: Store, id: string): Promise<void> {
  await getSite(store, id);
  const child = await store.sites.findOne({ uplink: id }, { projection: { _id: 1 } });
  if (child)
    throw new RecordError(
      'conflict',
      'site_in_use',
      `Site ${id} feeds ${child._id}: move or delete the sites it feeds first.`,
      { feeds: child._id },
    );
  const served = await store.subscribers.countDocuments({ siteId: id }, { limit: 1 });
  if (served > 0)
    throw new RecordError(
      'conflict',
      'site_in_use',
      `Site ${id} serves subscribers: move them to another site first (GET /v1/subscribers?siteId=${id}).`,
    );
  await store.sites.deleteOne({ _id: id });
}

export interface SiteQuery {
  area?: string;
  kind?: SiteKind;
  uplink?: string;
  /** Sites whose id sorts after this one. */
  after?: string;
  limit: number;
}

/** One page of sites in id order, and the id to continue after (null on the last page). */
export async function listSites(store: Store, q: SiteQuery): Promise<{ items: Site[]; next: string | null }> {
  const filter: Filter<Site> = {
    ...(q.area ? { area: q.area } : {}),
    ...(q.kind ? { kind: q.kind } : {}),
    ...(q.uplink ? { uplink: q.uplink } : {}),
    ...(q.after ? { _id: { $gt: q.after } } : {}),
  };
  const items = await store.sites.find(filter).sort({ _id: 1 }).limit(q.limit).toArray();
  return { items, next: items.length === q.limit ? items[items.length - 1]!._id : null };
}
