/**
 * Planned maintenance, for every way in (the API, the CLI): create one, reschedule, cancel or
 * complete it. It is stored in MongoDB before its workflow starts (an incident document of kind
 * `maintenance`, see store/maintenances.ts), and its id and workflow id follow from its key, so a
 * repeated request reaches the same maintenance and the same workflow. Changes are Temporal
 * Updates: the workflow's validator answers at once, and its refusal says why.
 */
import { createHash, randomUUID } from 'node:crypto';
import { MongoServerError } from 'mongodb';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Acknowledgement } from '../domain/acknowledgement';
import type { UpdateDefinition } from '@temporalio/common';
import type { Store } from '../store/db';
import type { Incident, MaintenancePhase, Severity } from '../domain/types';
import { downstreamSites, unknownSites } from '../store/network';
import { maintenanceWorkflowId, startMaintenanceWorkflow } from '../temporal/client';
import type { RulesHolder } from '../rules';
import { saveRuleVersion } from '../store/rule-versions';
import { deliveryPolicyFor } from './delivery-policy';
import type { DeliveryPolicy } from '../workflows/incident-api';
import {
  acknowledgeMaintenanceSignal,
  acknowledgeMaintenanceUpdate,
  cancelMaintenanceUpdate,
  completeMaintenanceUpdate,
  rescheduleUpdate,
  type MaintenanceStatus,
  type RescheduleInput,
} from '../workflows/maintenance-api';

export interface MaintenanceServiceDeps {
  store: Store;
  temporal: Client;
  taskQueue: string;
  /** The configured delivery policy; the rules in force (`defaults.delivery`) override its timeout, attempts and fallback order. */
  deliveryPolicy?: DeliveryPolicy;
  /** The rules in force: a new maintenance pins their current version. */
  rules?: RulesHolder;
}

export interface CreateMaintenanceInput {
  siteIds: string[];
  /** ISO times. */
  startsAt: string;
  endsAt: string;
  title: string;
  description?: string;
  severity?: Severity;
  source?: string;
  /** Deduplication key: the same key always means the same maintenance. */
  key?: string;
}

export type MaintenanceErrorCode =
  'unknown_site' | 'invalid_window' | 'maintenance_not_found' | 'maintenance_closed' | 'maintenance_rejected';

/** Why a maintenance cannot be created or changed, for the caller to turn into a 4xx. */
export class MaintenanceInputError extends Error {
  constructor(
    readonly code: MaintenanceErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** The longest window, and how far ahead one may be planned. */
export const MAX_WINDOW_MS = 7 * 86_400_000;
export const MAX_AHEAD_MS = 366 * 86_400_000;
/** A start this little in the past is taken as "now" (clocks and typing differ). */
const START_SLACK_MS = 5 * 60_000;

/** Same key, same id. */
export function maintenanceIdForKey(key: string): string {
  return `mnt_${createHash('sha256').update(`maintenance:${key}`).digest('hex').slice(0, 16)}`;
}

/** Over: nothing will happen to it but its bill. */
export function maintenanceIsOver(m: Pick<Incident, 'phase'>): boolean {
  return m.phase === 'completed' || m.phase === 'cancelled' || m.phase === 'billed';
}

/** What the stored document says, in the shape of the workflow's status (for a maintenance whose workflow is over). */
export function statusOfDocument(m: Incident): MaintenanceStatus {
  return {
    maintenanceId: m._id,
    phase: m.phase as MaintenancePhase,
    window: { startsAt: m.window!.startsAt.toISOString(), endsAt: m.window!.endsAt.toISOString() },
    recipients: 0,
    sent: {},
    failed: 0,
    retried: 0,
    fellBack: 0,
    reschedules: m.reschedules ?? 0,
    reminders: m.timeline.filter((t) => t.event?.startsWith('reminder#')).length,
    escalations: m.timeline.filter((t) => t.event?.startsWith('escalated#')).length,
    cancelRequested: Boolean(m.cancelledAt),
    completeRequested: Boolean(m.completedAt),
    ...(m.acknowledged ? { acknowledgedBy: m.acknowledged.by, acknowledgedAt: m.acknowledged.at.toISOString() } : {}),
  };
}

/** Escalated to staff: the window ended before the work was reported completed (an overrun, or one since moved on). */
export function maintenanceEscalated(m: Pick<Incident, 'phase' | 'timeline'>): boolean {
  return m.phase === 'overrun' || m.timeline.some((t) => t.event?.startsWith('escalated#'));
}

/** Checks a window given by a caller: a start and an end as ISO times, the end after the start and ahead. */
export function checkWindow(
  startsAt: string,
  endsAt: string,
  now: Date,
  opts: { startMayBePast?: boolean } = {},
): { startsAt: Date; endsAt: Date } {
  const start = new Date(startsAt);
  const end = new Date(endsAt);
  if (!Number.isFinite(start.getTime()) || !Number.isFinite(end.getTime()))
    throw new MaintenanceInputError('invalid_window', 'startsAt and endsAt must be ISO date-times.', {
      field: 'body.startsAt',
    });
  if (end <= start)
    throw new MaintenanceInputError('invalid_window', 'body.endsAt must be after body.startsAt.', {
      field: 'body.endsAt',
    });
  if (end <= now)
    throw new MaintenanceInputError('invalid_window', 'body.endsAt is in the past; give when the work will end.', {
      field: 'body.endsAt',
    });
  if (!opts.startMayBePast && start.getTime() < now.getTime() - START_SLACK_MS)
    throw new MaintenanceInputError('invalid_window', 'body.startsAt is in the past; give when the work will begin.', {
      field: 'body.startsAt',
    });
  if (end.getTime() - start.getTime() > MAX_WINDOW_MS)
    throw new MaintenanceInputError(
      'invalid_window',
      'A maintenance window lasts at most 7 days; plan longer work as several.',
      { field: 'body.endsAt' },
    );
  if (start.getTime() - now.getTime() > MAX_AHEAD_MS)
    throw new MaintenanceInputError('invalid_window', 'body.startsAt is more than a year ahead.', {
      field: 'body.startsAt',
    });
  return { startsAt: start, endsAt: end };
}

export function createMaintenanceService(deps: MaintenanceServiceDeps) {
  const { store, temporal, taskQueue } = deps;

  async function load(id: string): Promise<Incident> {
    const m = await store.incidents.findOne({ _id: id, kind: 'maintenance' });
    if (!m) throw new MaintenanceInputError('maintenance_not_found', `No maintenance ${id}.`);
    return m;
  }

  /** Sends an Update to the maintenance's workflow; its validator's refusal becomes a 409 that says why. */
  async function send<A>(
    m: Incident,
    update: UpdateDefinition<MaintenanceStatus, [A]>,
    arg: A,
  ): Promise<MaintenanceStatus> {
    try {
      return await temporal.workflow.getHandle(m.workflowId).executeUpdate(update, { args: [arg] });
    } catch (err) {
      if (err instanceof WorkflowNotFoundError)
        throw new MaintenanceInputError(
          'maintenance_closed',
          `Maintenance ${m._id} has no running workflow; it may have just finished. GET it to see its phase.`,
        );
      if (err instanceof WorkflowUpdateFailedError)
        throw new MaintenanceInputError(
          'maintenance_rejected',
          `Maintenance ${m._id}: ${(err.cause as Error | undefined)?.message ?? err.message}`,
        );
      throw err;
    }
  }

  return {
    /** Creates a maintenance, or returns the one this key already created (`created: false`). */
    async create(input: CreateMaintenanceInput): Promise<{ maintenance: Incident; created: boolean }> {
      const key = input.key ?? randomUUID();
      const id = maintenanceIdForKey(key);
      const existing = await store.incidents.findOne({ _id: id });
      if (existing) return { maintenance: existing, created: false };

      const now = new Date();
      const window = checkWindow(input.startsAt, input.endsAt, now);
      const missing = await unknownSites(store, input.siteIds);
      if (missing.length > 0)
        throw new MaintenanceInputError(
          'unknown_site',
          `No site with id ${missing.map((m) => JSON.stringify(m)).join(', ')}; GET /v1/sites lists them.`,
          { field: 'body.siteIds', unknown: missing },
        );
      const sites = await downstreamSites(store, input.siteIds);
      const rules = deps.rules?.current();
      if (rules) await saveRuleVersion(store, rules);
      const maintenance: Incident = {
        _id: id,
        key: `maintenance:${key}`,
        kind: 'maintenance',
        severity: input.severity ?? 'minor',
        siteIds: input.siteIds,
        // Known from the start, so that alerts from these sites are silenced from the window's start on.
        affectedSiteIds: sites.map((s) => s._id),
        areas: [...new Set(sites.map((s) => s.area))].sort(),
        title: input.title,
        ...(input.description ? { description: input.description } : {}),
        source: input.source ?? 'api',
        phase: 'scheduled',
        openedAt: now,
        window,
        estimatedEnd: window.endsAt,
        reschedules: 0,
        workflowId: maintenanceWorkflowId(id),
        ...(rules ? { rulesVersion: rules.version } : {}),
        timeline: [{ at: now, phase: 'scheduled', event: 'scheduled', window }],
      };
      try {
        await store.incidents.insertOne(maintenance);
      } catch (err) {
        // Two identical requests at once: the second finds the first's maintenance.
        if (err instanceof MongoServerError && err.code === 11000) {
          const first = await store.incidents.findOne({ _id: id });
          if (first) return { maintenance: first, created: false };
        }
        throw err;
      }
      // Stored first: should this start fail, the same request again starts it (the id is stable).
      const delivery = deliveryPolicyFor(rules, deps.deliveryPolicy);
      await startMaintenanceWorkflow(temporal, taskQueue, {
        maintenanceId: id,
        window: { startsAt: window.startsAt.toISOString(), endsAt: window.endsAt.toISOString() },
        ...(delivery ? { delivery } : {}),
      });
      return { maintenance, created: true };
    },

    /** A new window: those already told are told, reminders follow the new window. */
    async reschedule(id: string, input: RescheduleInput): Promise<MaintenanceStatus> {
      const m = await load(id);
      if (maintenanceIsOver(m))
        throw new MaintenanceInputError(
          'maintenance_closed',
          `Maintenance ${id} is ${m.phase}; it takes no more changes.`,
        );
      // The start as it is may be past (the work has begun): only a new start must lie ahead.
      const startsAt = input.startsAt ?? m.window!.startsAt.toISOString();
      const window = checkWindow(startsAt, input.endsAt, new Date(), {
        startMayBePast: Date.parse(startsAt) === m.window!.startsAt.getTime(),
      });
      return send(m, rescheduleUpdate, {
        ...(input.startsAt !== undefined ? { startsAt: window.startsAt.toISOString() } : {}),
        endsAt: window.endsAt.toISOString(),
        ...(input.reason ? { reason: input.reason } : {}),
      });
    },

    /** Called off before it began; repeating it is harmless. */
    async cancel(id: string, reason?: string): Promise<MaintenanceStatus> {
      const m = await load(id);
      if (m.cancelledAt) return statusOfDocument(m);
      if (maintenanceIsOver(m))
        throw new MaintenanceInputError(
          'maintenance_closed',
          `Maintenance ${id} is ${m.phase}; it can no longer be cancelled.`,
        );
      return send(m, cancelMaintenanceUpdate, { reason });
    },

    /** The work is done; repeating it is harmless. */
    async complete(id: string, note?: string): Promise<MaintenanceStatus> {
      const m = await load(id);
      if (m.completedAt) return statusOfDocument(m);
      if (maintenanceIsOver(m))
        throw new MaintenanceInputError(
          'maintenance_closed',
          `Maintenance ${id} is ${m.phase}; it can no longer be completed.`,
        );
      return send(m, completeMaintenanceUpdate, { note });
    },

    /**
     * Someone takes the overrun's staff escalation: who and when are stored on the maintenance first
     * (the first acknowledgement wins, atomically; a repeat answers the stored one), then the workflow
     * stops the rules' repeats and gives up the staff messages not yet sent. `signal` (an SMS reply)
     * does not wait for a worker.
     */
    async acknowledge(
      id: string,
      who: Omit<Acknowledgement, 'at'>,
      mode: 'update' | 'signal' = 'update',
    ): Promise<MaintenanceStatus & { acknowledged: Acknowledgement; alreadyAcknowledged: boolean }> {
      const m = await load(id);
      if (maintenanceIsOver(m) || m.completedAt || m.cancelledAt)
        throw new MaintenanceInputError(
          'maintenance_closed',
          `Maintenance ${id} is ${m.phase}; there is no escalation to acknowledge.`,
        );
      if (!maintenanceEscalated(m))
        throw new MaintenanceInputError(
          'maintenance_rejected',
          `Maintenance ${id} is ${m.phase}: only an overrun escalates to staff; there is nothing to acknowledge yet.`,
        );
      const mine: Acknowledgement = { ...who, at: new Date() };
      const won =
        (
          await store.incidents.updateOne(
            { _id: id, kind: 'maintenance', acknowledged: { $exists: false } },
            { $set: { acknowledged: mine } },
          )
        ).modifiedCount === 1;
      const acknowledged = won ? mine : ((await load(id)).acknowledged ?? mine);
      const input = { by: acknowledged.by, at: acknowledged.at.toISOString() };
      // Sent again on a repeat too: harmless (the workflow keeps the first), and it heals a first send that failed.
      let status: MaintenanceStatus;
      if (mode === 'signal') {
        await temporal.workflow
          .getHandle(m.workflowId)
          .signal(acknowledgeMaintenanceSignal, input)
          .catch((err: unknown) => {
            if (err instanceof WorkflowNotFoundError)
              throw new MaintenanceInputError('maintenance_closed', `Maintenance ${id} has no running workflow.`);
            throw err;
          });
        status = statusOfDocument({ ...m, acknowledged });
      } else status = await send(m, acknowledgeMaintenanceUpdate, input);
      return { ...status, acknowledged, alreadyAcknowledged: !won };
    },
  };
}

export type MaintenanceService = ReturnType<typeof createMaintenanceService>;
