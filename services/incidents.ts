/**
 * Opening and resolving incidents, for every way in: the operator API, monitoring webhooks, the
 * CLI. The incident is stored in MongoDB before its workflow starts, and the workflow id follows
 * from the key, so a repeated trigger (a retried request, the same alert delivered again)
 * reaches the same incident and the same workflow.
 */
import { createHash, randomUUID } from 'node:crypto';
import { MongoServerError } from 'mongodb';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Store } from '../store/db';
import type { Incident, IncidentKind, Severity } from '../domain/types';
import { unknownSites } from '../store/network';
import { incidentWorkflowId, startIncidentWorkflow } from '../temporal/client';
import type { RulesHolder } from '../rules';
import { saveRuleVersion } from '../store/rule-versions';
import { resolveUpdate, type DeliveryPolicy, type IncidentStatus } from '../workflows/incident';

export interface IncidentServiceDeps {
  store: Store;
  temporal: Client;
  taskQueue: string;
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

/** Why an incident cannot be opened or resolved, for the caller to turn into a 4xx. */
export class IncidentInputError extends Error {
  constructor(readonly code: 'unknown_site' | 'incident_not_found' | 'incident_closed', message: string, readonly details?: Record<string, unknown>) {
    super(message);
  }
}

/** Same key, same id. */
export function incidentIdForKey(key: string): string {
  return `inc_${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

export function createIncidentService(deps: IncidentServiceDeps) {
  const { store, temporal, taskQueue } = deps;

  return {
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
      await startIncidentWorkflow(temporal, taskQueue, { incidentId: id, siteIds: input.siteIds, ...(deps.deliveryPolicy ? { delivery: deps.deliveryPolicy } : {}) });
      return { incident, created: true };
    },

    /** Asks the incident's workflow to resolve; harmless when it is resolving or resolved already. */
    async resolve(incidentId: string, note?: string): Promise<{ phase: string; resolveRequested: boolean }> {
      const incident = await store.incidents.findOne({ _id: incidentId });
      if (!incident) throw new IncidentInputError('incident_not_found', `No incident ${incidentId}.`);
      // Over already (resolved, then billed): resolving again changes nothing.
      if (incident.resolvedAt || incident.phase === 'resolved' || incident.phase === 'billed') return { phase: incident.phase, resolveRequested: true };
      try {
        const status: IncidentStatus = await temporal.workflow.getHandle(incident.workflowId).executeUpdate(resolveUpdate, { args: [{ note }] });
        return { phase: status.phase, resolveRequested: status.resolveRequested };
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new IncidentInputError('incident_closed', `Incident ${incidentId} has no running workflow; it may have just finished. GET it to see its phase.`);
        throw err;
      }
    },
  };
}

export type IncidentService = ReturnType<typeof createIncidentService>;
