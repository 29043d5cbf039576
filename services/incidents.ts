/**
 * Opening and resolving incidents, for every way in: the operator API, monitoring webhooks, the
 * CLI. The incident is stored in MongoDB before its workflow starts, and the workflow id follows
 * from the key, so a repeated trigger (a retried request, the same alert delivered again)
 * reaches the same incident and the same workflow.
 */
import { createHash, randomUUID } from 'node:crypto';
import { MongoServerError, type UpdateFilter } from 'mongodb';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { Store } from '../store/db';
import type { Incident, IncidentKind, Severity } from '../domain/types';
import { unknownSites } from '../store/network';
import { incidentWorkflowId, startIncidentWorkflow } from '../temporal/client';
import type { RulesHolder } from '../rules';
import { saveRuleVersion } from '../store/rule-versions';
import { deliveryPolicyFor } from './delivery-policy';
import {
  addUpdateUpdate, cancelUpdate, escalateUpdate, extendScopeUpdate, reopenUpdate, resolveUpdate,
  type AddUpdateInput, type DeliveryPolicy, type IncidentStatus,
} from '../workflows/incident-api';
import { WorkflowUpdateFailedError } from '@temporalio/client';

export interface IncidentServiceDeps {
  store: Store;
  temporal: Client;
  taskQueue: string;
  /** The configured delivery policy; the rules in force (`defaults.delivery`) override its timeout, attempts and fallback order. */
  deliveryPolicy?: DeliveryPolicy;
  /** The rules in force: a new incident pins their current version. */
  rules?: RulesHolder;
}

export interface OpenIncidentInput {
  siteIds: string[];
  kind?: IncidentKind;
  severity?: Severity;
  title?: string;
  source?: string;
  /** Deduplication key: the same key always means the same incident. */
  key?: string;
}

/** How long after writing a correlation marker the service looks whether it stayed, and how often it writes it again. */
const CONFIRM_AFTER_MS = 150;
const CONFIRM_TRIES = 3;

/** Why an incident cannot be opened or resolved, for the caller to turn into a 4xx. */
export class IncidentInputError extends Error {
  constructor(readonly code: 'unknown_site' | 'incident_not_found' | 'incident_closed' | 'incident_rejected', message: string, readonly details?: Record<string, unknown>) {
    super(message);
  }
}

/** Same key, same id. */
export function incidentIdForKey(key: string): string {
  return `inc_${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

export function createIncidentService(deps: IncidentServiceDeps) {
  const { store, temporal, taskQueue } = deps;

  /**
   * Writes one of the markers alert correlation reads (resolving, reopened) and makes sure it
   * stays. FerretDB 1.x applies an update by reading the whole document, changing it in its own
   * process and writing it back, so the workflow's own write to the incident at the same moment
   * (its phase, right after our Update) can undo ours; a lost resolve marker let the next alert
   * for the site join the incident being resolved. So: look again a moment later, once the
   * workflow's write has landed, and write again if the change is gone. On MongoDB the first look
   * always finds it.
   */
  const writeAndConfirm = async (incidentId: string, update: UpdateFilter<Incident>, present: (i: Incident) => boolean) => {
    for (let attempt = 0; ; attempt++) {
      await store.incidents.updateOne({ _id: incidentId }, update);
      await new Promise((r) => setTimeout(r, CONFIRM_AFTER_MS));
      const now = await store.incidents.findOne({ _id: incidentId });
      if (!now || present(now) || attempt === CONFIRM_TRIES) return;
    }
  };

  const service = {
    /** Opens an incident, or returns the one this key already opened (`created: false`). */
    async open(input: OpenIncidentInput): Promise<{ incident: Incident; created: boolean }> {
      const key = input.key ?? randomUUID();
      const id = incidentIdForKey(key);
      const existing = await store.incidents.findOne({ _id: id });
      if (existing) return { incident: existing, created: false };

      const missing = await unknownSites(store, input.siteIds);
      if (missing.length > 0) {
        throw new IncidentInputError('unknown_site', `No site with id ${missing.map((m) => JSON.stringify(m)).join(', ')}; GET /v1/sites lists them.`, { unknown: missing });
      }
      const now = new Date();
      const rules = deps.rules?.current();
      if (rules) await saveRuleVersion(store, rules);
      const incident: Incident = {
        _id: id,
        key,
        kind: input.kind ?? 'outage',
        severity: input.severity ?? 'major',
        siteIds: input.siteIds,
        areas: [],
        title: input.title ?? `Outage on ${input.siteIds.join(', ')}`,
        source: input.source ?? 'api',
        phase: 'detected',
        openedAt: now,
        workflowId: incidentWorkflowId(id),
        ...(rules ? { rulesVersion: rules.version } : {}),
        timeline: [{ at: now, phase: 'detected' }],
      };
      try {
        await store.incidents.insertOne(incident);
      } catch (err) {
        // Two identical triggers at once: the second finds the first's incident.
        if (err instanceof MongoServerError && err.code === 11000) return { incident: (await store.incidents.findOne({ _id: id }))!, created: false };
        throw err;
      }
      // Stored first: should this start fail, the same trigger again starts it (the id is stable).
      const delivery = deliveryPolicyFor(rules, deps.deliveryPolicy);
      await startIncidentWorkflow(temporal, taskQueue, { incidentId: id, siteIds: input.siteIds, ...(delivery ? { delivery } : {}) });
      return { incident, created: true };
    },

    /**
     * Asks the incident's workflow to resolve; harmless when it is resolving or resolved already.
     * `settleSeconds` (monitoring resolves) holds the restoration notices that long in case the
     * site goes down again; `reopen` within it carries on as if nothing happened.
     */
    async resolve(incidentId: string, note?: string, options: { settleSeconds?: number } = {}): Promise<{ phase: string; resolveRequested: boolean; settlingUntil?: string }> {
      const incident = await load(incidentId);
      // Over already (resolved or cancelled, then billed): resolving again changes nothing.
      if (isOver(incident)) return { phase: incident.phase, resolveRequested: true };
      const status = await send(incident, resolveUpdate, { note, ...(options.settleSeconds ? { settleSeconds: options.settleSeconds } : {}) });
      const marks = { resolveRequestedAt: new Date(), ...(status.settlingUntil ? { settlingUntil: new Date(status.settlingUntil) } : {}) };
      await writeAndConfirm(incidentId, { $set: marks }, (i) => i.resolveRequestedAt !== undefined);
      // Incidents merged into this one end with it.
      for (const merged of await store.incidents.find({ mergedInto: incidentId, phase: { $nin: ['resolving', 'resolved', 'cancelled', 'billed'] } }).toArray()) {
        await service.resolve(merged._id, note, options).catch((err) => {
          if (!(err instanceof IncidentInputError)) throw err;
        });
      }
      return { phase: status.phase, resolveRequested: status.resolveRequested, ...(status.settlingUntil ? { settlingUntil: status.settlingUntil } : {}) };
    },

    /**
     * A site above open incidents went down: `survivorId` carries on with `siteIds` added, and the
     * others are merged into it (they resolve with it). Their subscribers were told already, so
     * the scope extension skips their sites.
     */
    async absorb(survivorId: string, absorbedIds: string[], siteIds: string[]): Promise<IncidentStatus> {
      const survivor = await load(survivorId);
      if (absorbedIds.length) {
        await store.incidents.updateMany({ _id: { $in: absorbedIds }, mergedInto: { $exists: false } }, { $set: { mergedInto: survivorId } });
        await store.incidents.updateOne({ _id: survivorId }, { $addToSet: { absorbed: { $each: absorbedIds } } });
      }
      return service.extendScope(survivor._id, siteIds);
    },

    /** The trouble came back while a resolve was settling: the incident carries on, nobody is told twice. */
    async reopen(incidentId: string, note?: string): Promise<IncidentStatus> {
      const incident = await load(incidentId);
      const status = await send(incident, reopenUpdate, { note });
      await writeAndConfirm(incidentId, { $unset: { settlingUntil: '', resolveRequestedAt: '' } }, (i) => i.resolveRequestedAt === undefined);
      return status;
    },

    /** A word for the public and, when `estimatedEnd` changes, an update to those the rules say. */
    async addUpdate(incidentId: string, update: AddUpdateInput): Promise<IncidentStatus> {
      return send(await load(incidentId), addUpdateUpdate, update);
    },

    /** Calls the staff the rules escalate this incident to, now. */
    async escalate(incidentId: string, reason?: string): Promise<IncidentStatus> {
      return send(await load(incidentId), escalateUpdate, { reason });
    },

    /** More sites are affected: their subscribers who were not told are told; nobody is told twice. */
    async extendScope(incidentId: string, siteIds: string[]): Promise<IncidentStatus> {
      const incident = await load(incidentId);
      const missing = await unknownSites(store, siteIds);
      if (missing.length > 0) throw new IncidentInputError('unknown_site', `No site with id ${missing.map((m) => JSON.stringify(m)).join(', ')}; GET /v1/sites lists them.`, { unknown: missing });
      return send(incident, extendScopeUpdate, { siteIds });
    },

    /** A false alarm: nothing more is sent, and those already told are told so. */
    async cancel(incidentId: string, reason?: string): Promise<IncidentStatus> {
      return send(await load(incidentId), cancelUpdate, { reason });
    },
  };

  async function load(incidentId: string): Promise<Incident> {
    const incident = await store.incidents.findOne({ _id: incidentId });
    if (!incident) throw new IncidentInputError('incident_not_found', `No incident ${incidentId}.`);
    return incident;
  }

  /** Sends an Update to the incident's workflow; its validator's refusal becomes a 409 that says why. */
  async function send<A>(incident: Incident, update: UpdateDefinition<IncidentStatus, [A]>, arg: A): Promise<IncidentStatus> {
    if (isOver(incident) && update.name !== 'resolve') throw new IncidentInputError('incident_closed', `Incident ${incident._id} is ${incident.phase}; it takes no more changes.`);
    try {
      return await temporal.workflow.getHandle(incident.workflowId).executeUpdate(update, { args: [arg] });
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new IncidentInputError('incident_closed', `Incident ${incident._id} has no running workflow; it may have just finished. GET it to see its phase.`);
      if (err instanceof WorkflowUpdateFailedError) throw new IncidentInputError('incident_rejected', `Incident ${incident._id}: ${(err.cause as Error | undefined)?.message ?? err.message}`);
      throw err;
    }
  }

  return service;
}

/** Resolved or cancelled: nothing more will happen to it but its bill. */
function isOver(incident: Incident): boolean {
  return Boolean(incident.resolvedAt) || incident.phase === 'resolved' || incident.phase === 'cancelled' || incident.phase === 'billed';
}

export type IncidentService = ReturnType<typeof createIncidentService>;
