/**
 * Listings for the API and dashboards: incidents with filters, newest first, and an incident's
 * delivery records, both paged by an opaque cursor (the previous page's `next`), so that a page
 * stays correct while new incidents open or records change state between two requests. They read
 * MongoDB only: listings never ask Temporal.
 */
import type { Filter } from 'mongodb';
import type { Store } from './db';
import { answeredOverlay } from './send-requests';
import type {
  Delivery,
  DeliveryChannel,
  DeliveryState,
  Incident,
  IncidentKind,
  IncidentPhase,
  MessageKind,
  Severity,
} from '../domain/types';

/** Phases after which an incident takes no more changes. */
export const CLOSED_PHASES: IncidentPhase[] = ['resolved', 'cancelled', 'billed', 'completed'];

export interface IncidentListQuery {
  /** `open`: still in progress (resolving included); `closed`: resolved, cancelled or billed. */
  status?: 'open' | 'closed';
  phases?: IncidentPhase[];
  kind?: IncidentKind;
  severities?: Severity[];
  /** Named when opened, or affected (downstream of one that was). */
  siteId?: string;
  area?: string;
  source?: string;
  /** Opened at or after. */
  since?: Date;
  /** Opened before. */
  until?: Date;
  /** Include incidents absorbed into another by correlation (default: no, the one carrying on is listed). */
  includeMerged?: boolean;
  limit: number;
  after?: string;
}

export class CursorError extends Error {}

/** `openedAt|_id` of the last incident of a page, in base64url. */
function incidentCursor(i: Pick<Incident, '_id' | 'openedAt'>): string {
  return Buffer.from(`${i.openedAt.toISOString()}|${i._id}`).toString('base64url');
}

function parseIncidentCursor(cursor: string): { openedAt: Date; id: string } {
  const text = Buffer.from(cursor, 'base64url').toString();
  const bar = text.indexOf('|');
  const openedAt = new Date(text.slice(0, bar));
  if (bar < 0 || Number.isNaN(openedAt.getTime()) || text.length === bar + 1)
    throw new CursorError("after is not a cursor this listing gave out: pass the previous page's `next` as it is");
  return { openedAt, id: text.slice(bar + 1) };
}

export async function listIncidents(
  store: Store,
  q: IncidentListQuery,
): Promise<{ items: Incident[]; next: string | null }> {
  const and: Filter<Incident>[] = [];
  if (q.status === 'open') and.push({ phase: { $nin: CLOSED_PHASES } });
  if (q.status === 'closed') and.push({ phase: { $in: CLOSED_PHASES } });
  if (q.phases?.length) and.push({ phase: { $in: q.phases } });
  if (q.kind) and.push({ kind: q.kind });
  if (q.severities?.length) and.push({ severity: { $in: q.severities } });
  if (q.siteId) and.push({ $or: [{ siteIds: q.siteId }, { affectedSiteIds: q.siteId }] });
  if (q.area) and.push({ areas: q.area });
  if (q.source) and.push({ source: q.source });
  if (q.since) and.push({ openedAt: { $gte: q.since } });
  if (q.until) and.push({ openedAt: { $lt: q.until } });
  if (!q.includeMerged) and.push({ mergedInto: { $exists: false } });
  if (q.after) {
    const c = parseIncidentCursor(q.after);
    and.push({ $or: [{ openedAt: { $lt: c.openedAt } }, { openedAt: c.openedAt, _id: { $lt: c.id } }] });
  }
  const filter: Filter<Incident> = and.length ? { $and: and } : {};
  // One more than asked tells whether there is a next page.
  const rows = await store.incidents
    .find(filter)
    .sort({ openedAt: -1, _id: -1 })
    .limit(q.limit + 1)
    .toArray();
  const items = rows.slice(0, q.limit);
  return { items, next: rows.length > q.limit ? incidentCursor(items[items.length - 1]!) : null };
}

export interface DeliveryListQuery {
  states?: DeliveryState[];
  kinds?: MessageKind[];
  channel?: DeliveryChannel;
  limit: number;
  /** The previous page's `next`: the last record id it held. */
  after?: string;
}

/** An incident's delivery records, in id order (by kind, then subscriber), filtered. */
export async function listDeliveries(
  store: Store,
  incidentId: string,
  q: DeliveryListQuery,
): Promise<{ items: Delivery[]; next: string | null }> {
  const filter: Filter<Delivery> = { incidentId };
  // A message on its way whose receipt is not written yet is still `planned` in its record and reads
  // as `accepted` (store/send-requests.ts): asked for accepted ones, planned ones are read too, and
  // each record is filtered by the state it reads as (a page may then hold fewer than `limit`).
  const asAnswered = await answeredOverlay(store, incidentId);
  const wanted = q.states?.length ? new Set(q.states) : undefined;
  if (wanted)
    filter.state = { $in: wanted.has('accepted') ? [...new Set([...wanted, 'planned' as const])] : [...wanted] };
  if (q.kinds?.length) filter.kind = { $in: q.kinds };
  if (q.channel) filter.channel = q.channel;
  if (q.after) {
    const last = Buffer.from(q.after, 'base64url').toString();
    if (!last.startsWith(`${incidentId}|`))
      throw new CursorError(
        "after is not a cursor of this incident's deliveries: pass the previous page's `next` as it is",
      );
    filter._id = { $gt: last };
  }
  const rows = await store.deliveries
    .find(filter)
    .sort({ _id: 1 })
    .limit(q.limit + 1)
    .toArray();
  const items = rows.slice(0, q.limit);
  return {
    items: items.map(asAnswered).filter((d) => !wanted || wanted.has(d.state)),
    next: rows.length > q.limit ? Buffer.from(items[items.length - 1]!._id).toString('base64url') : null,
  };
}
