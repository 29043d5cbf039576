/**
 * Planned maintenance in MongoDB. A maintenance is an incident document of kind `maintenance`
 * (collection `incidents`, id `mnt_…`): the delivery activities, the status feed, billing and
 * the metrics already read incidents, so its messages go through the one sender, with the one
 * set of delivery records. What is particular to it lives here: its timeline events (which may
 * repeat, unlike an outage's phases), the delivery records that carry the rules' maintenance
 * plan for each recipient, the listing, and which sites are under maintenance now (the silence).
 */
import type { Filter } from 'mongodb';
import type { Store } from './db';
import type { Delivery, Incident, IncidentPhase, MaintenancePhase, TimelineEntry } from '../domain/types';
import { insertPlanned, plannedRecord, type PlanInput } from './deliveries';
import { downstreamSites } from './network';

export const MAINTENANCE_PHASES: readonly MaintenancePhase[] = [
  'scheduled',
  'in_progress',
  'overrun',
  'completed',
  'cancelled',
  'billed',
];
/** Not over: it may still begin, or is under way. */
export const PENDING_MAINTENANCE_PHASES: readonly MaintenancePhase[] = ['scheduled', 'in_progress', 'overrun'];

/**
 * Moves a maintenance to `phase` and appends the step to its timeline, once per `event` (a unique
 * name for the step: `rescheduled#2`): a retried activity adds nothing. `set` is written with it.
 */
export async function recordMaintenanceEvent(
  store: Store,
  id: string,
  entry: { at: Date; phase: IncidentPhase; event: string; note?: string; window?: TimelineEntry['window'] },
  set: Partial<Incident> = {},
): Promise<boolean> {
  const step: TimelineEntry = {
    at: entry.at,
    phase: entry.phase,
    event: entry.event,
    ...(entry.note ? { note: entry.note } : {}),
    ...(entry.window ? { window: entry.window } : {}),
  };
  const extra: Partial<Incident> = { ...set };
  if (entry.phase === 'completed' || entry.phase === 'cancelled') extra.resolvedAt = entry.at;
  const r = await store.incidents.updateOne(
    { _id: id, kind: 'maintenance', 'timeline.event': { $ne: entry.event } },
    { $set: { phase: entry.phase, ...extra }, $push: { timeline: step } },
  );
  return r.modifiedCount > 0;
}

/** A delivery record of a maintenance: the rules' plan for its recipient rides on the notice. */
export interface MaintenancePlanInput extends PlanInput {
  maintenance?: Delivery['maintenance'];
}

/**
 * Plans records, skipping those that exist (a retried activity plans nothing new), like
 * store/deliveries.ts `planAll`, but keeping each notice's maintenance plan on its record (the
 * reminders, start and completion notices read it). Returns how many were new.
 */
export async function planMaintenanceRecords(
  store: Store,
  inputs: AsyncIterable<MaintenancePlanInput> | Iterable<MaintenancePlanInput>,
  now: Date,
  note?: string,
): Promise<{ recipients: number; planned: number }> {
  let batch: Delivery[] = [];
  let recipients = 0;
  let planned = 0;
  const flush = async () => {
    planned += await insertPlanned(store, batch);
    batch = [];
  };
  for await (const p of inputs) {
    const { maintenance, ...plan } = p;
    batch.push({ ...plannedRecord(plan, now, note), ...(maintenance ? { maintenance } : {}) });
    recipients++;
    if (batch.length >= 1000) await flush();
  }
  await flush();
  return { recipients, planned };
}

export interface MaintenanceListQuery {
  phases?: MaintenancePhase[];
  /** Maintenances on this site (named, or downstream of one named). */
  siteId?: string;
  /** Windows that end after `from` and begin before `to`. */
  from?: Date;
  to?: Date;
  limit: number;
  /** The previous page's `next`. */
  after?: string;
}

/** The paging cursor: the start of the last one shown and its id. */
export function maintenanceCursor(m: Pick<Incident, '_id' | 'window'>): string {
  return Buffer.from(`${m.window!.startsAt.toISOString()}|${m._id}`).toString('base64url');
}

function parseCursor(cursor: string): { startsAt: Date; id: string } | undefined {
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const startsAt = new Date(at ?? '');
  return id && Number.isFinite(startsAt.getTime()) ? { startsAt, id } : undefined;
}

export class MaintenanceCursorError extends Error {}

/** Maintenances by start time, then id; `next` continues after the last one. */
export async function listMaintenances(
  store: Store,
  q: MaintenanceListQuery,
): Promise<{ items: Incident[]; next: string | null }> {
  const and: Filter<Incident>[] = [{ kind: 'maintenance' }];
  if (q.phases?.length) and.push({ phase: { $in: q.phases } });
  if (q.siteId) and.push({ $or: [{ siteIds: q.siteId }, { affectedSiteIds: q.siteId }] });
  if (q.from) and.push({ 'window.endsAt': { $gt: q.from } });
  if (q.to) and.push({ 'window.startsAt': { $lt: q.to } });
  if (q.after) {
    const c = parseCursor(q.after);
    if (!c) throw new MaintenanceCursorError('querystring.after is not a cursor this API gave');
    and.push({
      $or: [{ 'window.startsAt': { $gt: c.startsAt } }, { 'window.startsAt': c.startsAt, _id: { $gt: c.id } }],
    });
  }
  const found = await store.incidents
    .find({ $and: and })
    .sort({ 'window.startsAt': 1, _id: 1 })
    .limit(q.limit + 1)
    .toArray();
  const items = found.slice(0, q.limit);
  return { items, next: found.length > q.limit ? maintenanceCursor(items[items.length - 1]!) : null };
}

/**
 * The maintenance under way on these sites at `now`, if one covers each of them: its window has
 * begun and it is neither completed nor cancelled (an overrun still counts). A site covered is
 * one a maintenance names, or one downstream of it. Returns the covered sites per maintenance.
 */
export async function maintenanceCovering(
  store: Store,
  siteIds: string[],
  now: Date,
): Promise<{ maintenanceId: string; siteIds: string[] }[]> {
  const active = await store.incidents
    .find(
      { kind: 'maintenance', phase: { $in: [...PENDING_MAINTENANCE_PHASES] }, 'window.startsAt': { $lte: now } },
      { projection: { _id: 1, siteIds: 1, affectedSiteIds: 1, window: 1 } },
    )
    .toArray();
  const out: { maintenanceId: string; siteIds: string[] }[] = [];
  for (const m of active.sort(
    (a, b) => a.window!.startsAt.getTime() - b.window!.startsAt.getTime() || a._id.localeCompare(b._id),
  )) {
    const covered = new Set(m.affectedSiteIds ?? (await downstreamSites(store, m.siteIds)).map((s) => s._id));
    const hit = siteIds.filter((id) => covered.has(id));
    if (hit.length) out.push({ maintenanceId: m._id, siteIds: hit });
  }
  return out;
}
