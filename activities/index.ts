/**
 * Activities: the only code that the incident workflow's side effects run through. Each is a
 * plain async function with explicit inputs, safe to run more than once (Temporal retries it):
 * the delivery records in MongoDB make a repeat a no-op.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Store } from '../store/db';
import type { SmsSender } from '../channels/sms-plivo';
import { PLIVO_MAX_DESTINATIONS } from '../channels/sms-plivo';
import type { IncidentPhase, MessageKind } from '../domain/types';
import { downstreamSites } from '../store/network';
import { recordPhase } from '../store/incidents';
import { claimPlanned, countPlanned, planForSubscribers, planRestorations, recordOutcomes, type SendOutcome } from '../store/deliveries';
import { renderMessage } from '../domain/messages';
import { maskPhone } from '../domain/phone';
import type { Logger } from '../domain/log';

export interface ActivityDeps {
  store: Store;
  sms: SmsSender;
  /** Where Plivo posts delivery receipts, or undefined to ask for none. */
  statusCallbackUrl?: string;
  logger: Logger;
}

export interface SnapshotResult {
  sites: number;
  recipients: number;
  planned: number;
}

export interface BatchResult {
  accepted: number;
  failed: number;
  remaining: number;
}

export function createActivities(deps: ActivityDeps) {
  const { store, sms, logger } = deps;

  async function incidentAreas(incidentId: string): Promise<string[]> {
    const incident = await store.incidents.findOne({ _id: incidentId }, { projection: { areas: 1 } });
    if (!incident) throw ApplicationFailure.create({ type: 'IncidentNotFound', message: `incident ${incidentId} is not in the database`, nonRetryable: true });
    return incident.areas;
  }

  return {
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
      const r = await planForSubscribers(store, input.incidentId, 'outage', cursor, new Date());
      logger.info({ incidentId: input.incidentId, sites: siteIds.length, recipients: r.recipients, planned: r.planned }, 'audience snapshot');
      return { sites: siteIds.length, ...r };
    },

    async planRestorationNotices(input: { incidentId: string }): Promise<{ planned: number }> {
      return { planned: await planRestorations(store, input.incidentId, new Date()) };
    },

    /** Sends the next batch of planned `kind` messages: one Plivo request per distinct text. */
    async sendNextBatch(input: { incidentId: string; kind: MessageKind; batchSize?: number }): Promise<BatchResult> {
      const { incidentId, kind } = input;
      const areas = await incidentAreas(incidentId);
      const batch = await claimPlanned(store, incidentId, kind, Math.min(input.batchSize ?? PLIVO_MAX_DESTINATIONS, PLIVO_MAX_DESTINATIONS), new Date());
      const byText = new Map<string, typeof batch>();
      for (const d of batch) {
        const text = renderMessage(kind, d.language, { areas });
        byText.set(text, [...(byText.get(text) ?? []), d]);
      }
      const outcomes: SendOutcome[] = [];
      for (const [text, group] of byText) {
        const result = await sms.sendBulk(text, group.map((d) => d.phone), deps.statusCallbackUrl);
        for (const d of group) {
          const uuid = result.accepted.get(d.phone);
          if (uuid) outcomes.push({ id: d._id, state: 'accepted', providerMessageId: uuid });
          else {
            outcomes.push({ id: d._id, state: 'failed', error: 'invalid number' });
            logger.warn({ incidentId, subscriberId: d.subscriberId }, `Plivo refused ${maskPhone(d.phone)} as invalid`);
          }
        }
      }
      await recordOutcomes(store, outcomes, new Date());
      const accepted = outcomes.filter((o) => o.state === 'accepted').length;
      return { accepted, failed: outcomes.length - accepted, remaining: await countPlanned(store, incidentId, kind) };
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
