/**
 * Activities: the only code that the incident workflow's side effects run through. Each is a
 * plain async function with explicit inputs, safe to run more than once (Temporal retries it):
 * the delivery records in MongoDB make a repeat a no-op.
 */
import type { IncidentPhase } from '../domain/types';
import { downstreamSites } from '../store/network';
import { recordPhase } from '../store/incidents';
import { planRestorations, planSmsForSubscribers } from '../store/deliveries';
import { createDeliveryActivities, type DeliveryDeps } from './delivery';

export type ActivityDeps = DeliveryDeps;

export interface SnapshotResult {
  sites: number;
  recipients: number;
  planned: number;
}

export function createActivities(deps: ActivityDeps) {
  const { store, logger } = deps;

  return {
    ...createDeliveryActivities(deps),

    async recordIncidentPhase(input: { incidentId: string; phase: IncidentPhase; at: string; note?: string }): Promise<void> {
      await recordPhase(store, input.incidentId, input.phase, new Date(input.at), input.note);
    },

    /**
     * Fixes who this incident's outage notice goes to: the paying, not opted-out subscribers of
     * the affected sites and of every site downstream of them. Planned once; a repeat adds nothing.
     */
    async snapshotAudience(input: { incidentId: string; siteIds: string[] }): Promise<SnapshotResult> {
      const sites = await downstreamSites(store, input.siteIds);
      const siteIds = sites.map((s) => s._id);
      const areas = [...new Set(sites.map((s) => s.area))].sort();
      await store.incidents.updateOne({ _id: input.incidentId }, { $set: { areas, affectedSiteIds: siteIds } });
      const cursor = store.subscribers
        .find({ siteId: { $in: siteIds }, 'smsAlerts.active': true, optedOut: false })
        .sort({ _id: 1 });
      const r = await planSmsForSubscribers(store, input.incidentId, 'outage', cursor, new Date());
      logger.info({ incidentId: input.incidentId, sites: siteIds.length, recipients: r.recipients, planned: r.planned }, 'audience snapshot');
      return { sites: siteIds.length, ...r };
    },

    async planRestorationNotices(input: { incidentId: string }): Promise<{ planned: number }> {
      return { planned: await planRestorations(store, input.incidentId, new Date()) };
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
