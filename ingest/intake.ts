/**
 * One authenticated delivery, from decoded payload to per-alert results: normalize, find each
 * alert's sites, store each alert with the raw request (the deduplication point), then act on it.
 * Alerts of a batch are handled each on its own; the request fails (5xx, for the tools that retry)
 * only when storing or acting failed, and then what was stored is handled again on the retry.
 */
import type { Store } from '../store/db';
import type { AlertEvent, RawDelivery } from './alert-event';
import { IngestError } from './errors';
import type { Integration } from './integrations';
import { NORMALIZERS } from './normalizers';
import { wouldOpen, type AlertProcessor } from './process';
import { siteIdsFor, type SiteResolution } from './sites';
import { isFinal, recordAlertResult, storeAlertEvent, type AlertAction } from './store';

export interface AlertOutcome {
  dedupKey: string;
  eventId: string;
  action: AlertAction;
  incidentId?: string;
  episode?: number;
  /** `silenced`: the planned maintenance its site is under. */
  maintenanceId?: string;
  /** This delivery was received before: its first result is reported. */
  duplicate?: boolean;
  reason?: string;
}

export interface IntakeResult {
  /** 202 when something was new, 200 when every alert was a repeat. */
  status: 200 | 202;
  body: { received: number; results: AlertOutcome[] };
}

export interface Delivery {
  integration: Integration;
  payload: unknown;
  raw: RawDelivery;
  headers: Record<string, string | undefined>;
  receivedAt: Date;
}

/** Each event's sites, with the ids the network does not know turned into a problem. */
async function resolveSites(store: Store, integration: Integration, events: AlertEvent[]): Promise<SiteResolution[]> {
  const mapped = events.map((e) => siteIdsFor(e.target, integration.site));
  const wanted = [...new Set(mapped.flatMap((m) => ('siteIds' in m ? m.siteIds : [])))];
  const known = new Set(wanted.length === 0 ? [] : (await store.sites.find({ _id: { $in: wanted } }, { projection: { _id: 1 } }).toArray()).map((s) => s._id));
  return mapped.map((m) => {
    if (!('siteIds' in m)) return m;
    const unknown = m.siteIds.filter((id) => !known.has(id));
    return unknown.length === 0 ? m : { problem: `no site with id ${unknown.map((id) => JSON.stringify(id)).join(', ')}: check the integration's site mapping, or GET /v1/sites` };
  });
}

export function createIntake(deps: { store: Store; processor: AlertProcessor }) {
  const { store, processor } = deps;

  async function handleOne(event: AlertEvent, sites: SiteResolution, delivery: Delivery): Promise<AlertOutcome> {
    const base = { dedupKey: event.dedupKey, eventId: event.eventId };
    const stored = await storeAlertEvent(store, {
      _id: event.eventId,
      ...event,
      raw: delivery.raw,
      ...('siteIds' in sites ? { siteIds: sites.siteIds } : { siteProblem: sites.problem }),
    });
    if (!stored.first && isFinal(stored.existing.result)) return { ...base, ...stored.existing.result, duplicate: true };
    const result = await processor.handle(event, sites, delivery.integration.minSeverity);
    await recordAlertResult(store, event.eventId, result);
    return { ...base, ...result, ...(stored.first ? {} : { duplicate: true }) };
  }

  return {
    /** Throws IngestError for a payload to refuse as a whole (malformed, or no alert with a known site). */
    async accept(delivery: Delivery): Promise<IntakeResult> {
      const { integration } = delivery;
      const events = NORMALIZERS[integration.source](delivery.payload, {
        integration: integration.name,
        timeZone: integration.timeZone,
        receivedAt: delivery.receivedAt,
        headers: delivery.headers,
      });
      const sites = await resolveSites(store, integration, events);

      // Refused as a whole only when no alert of it can be acted on for want of a site.
      const unplaceable = events.map((e, i) => wouldOpen(e, integration.minSeverity) && 'problem' in sites[i]!);
      if (unplaceable.every(Boolean)) {
        const problems = [...new Set(sites.flatMap((s) => ('problem' in s ? [s.problem] : [])))];
        throw new IngestError('unknown_site', problems.join('; '), undefined, { alerts: events.map((e) => e.dedupKey) });
      }

      // Alerts of one key in order (a batch could hold a firing and its resolution); different keys side by side.
      const byKey = new Map<string, number[]>();
      events.forEach((e, i) => byKey.set(e.dedupKey, [...(byKey.get(e.dedupKey) ?? []), i]));
      const results: AlertOutcome[] = new Array(events.length);
      const failures: unknown[] = [];
      await Promise.all([...byKey.values()].map(async (indexes) => {
        for (const i of indexes) {
          try {
            results[i] = await handleOne(events[i]!, sites[i]!, delivery);
          } catch (err) {
            failures.push(err);
            return;
          }
        }
      }));
      if (failures.length > 0) throw failures[0];
      return { status: results.every((r) => r.duplicate) ? 200 : 202, body: { received: events.length, results } };
    },
  };
}

export type Intake = ReturnType<typeof createIntake>;
