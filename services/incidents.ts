/**
 * Opening and resolving incidents, for every way in: the operator API, monitoring webhooks, the
 * CLI. The incident is stored in MongoDB before its workflow starts, and the workflow id follows
 * from the key, so a repeated trigger (a retried request, the same alert delivered again)
 * reaches the same incident and the same workflow.
 */
import { createHash, randomUUID } from 'node:crypto';
import { MongoServerError } from 'mongodb';
import { isGrpcDeadlineError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { SignalDefinition, UpdateDefinition } from '@temporalio/common';
import type { Store } from '../store/db';
import type { Incident, IncidentKind, Severity } from '../domain/types';
import type { Acknowledgement } from '../domain/acknowledgement';
import { unknownSites } from '../store/network';
import { incidentWorkflowId, startIncidentWorkflow } from '../temporal/client';
import type { RulesHolder } from '../rules';
import { saveRuleVersion } from '../store/rule-versions';
import { deliveryPolicyFor } from './delivery-policy';
import { createCorrelation, type Network } from '../ingest/correlation';
import {
  acknowledgeSignal,
  acknowledgeUpdate,
  addUpdateSignal,
  addUpdateUpdate,
  cancelSignal,
  cancelUpdate,
  escalateSignal,
  escalateUpdate,
  extendScopeSignal,
  extendScopeUpdate,
  reopenSignal,
  reopenUpdate,
  resolveSignal,
  resolveUpdate,
  type AcknowledgeInput,
  type AddUpdateInput,
  type DeliveryPolicy,
  type IncidentStatus,
  type ResolveInput,
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
  /** How long an operator's request waits for a worker to answer it before the API answers 202 with it queued (default 5 s). */
  updateWaitMs?: number;
}

export interface OpenIncidentInput {
  siteIds: string[];
  kind?: IncidentKind;
  severity?: Severity;
  title?: string;
  source?: string;
  /** Deduplication key: the same key always means the same incident. */
  key?: string;
  /** false: open an incident of its own even if an open one covers these sites (default true). */
  correlate?: boolean;
  /** When service is expected back (ISO), as an update would give it: the outage notices name it. */
  estimatedEnd?: string;
  /** An announcement's words (checked and transliterated by the caller): its SMS to the paying subscribers of the sites. */
  announcement?: { text: string };
}

/** What opening did: a new incident, the one this key opened, an open one covering the sites, or one absorbing those below. */
export type OpenOutcome = 'opened' | 'already_open' | 'joined' | 'absorbed';

/**
 * How a request reaches the incident's workflow. `signal`: written to its history at once, applied
 * when a worker runs (monitoring webhooks: they never wait for a worker). `bounded`: an Update
 * when a worker is polling, answered by the workflow (its refusal is a 409), but waited for at
 * most `updateWaitMs`; with no worker polling, a signal (operators).
 */
export type RequestMode = 'signal' | 'bounded';

/** The request is recorded and will be applied when a worker runs; the answer is what is stored now. */
export interface QueuedRequest {
  incidentId: string;
  phase: string;
  queued: true;
  requestId: string;
  /** Why it was not answered by the workflow. */
  reason: string;
}

export type RequestOutcome = IncidentStatus | QueuedRequest;

export function isQueued(r: RequestOutcome): r is QueuedRequest {
  return 'queued' in r && r.queued === true;
}

/** Why an incident cannot be opened or resolved, for the caller to turn into a 4xx. */
export class IncidentInputError extends Error {
  constructor(
    readonly code: 'unknown_site' | 'incident_not_found' | 'incident_closed' | 'incident_rejected',
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** Same key, same id. */
export function incidentIdForKey(key: string): string {
  return `inc_${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

/** A worker that polled within this long is taken as up (its long polls last about a minute). */
const POLLER_FRESH_MS = 90_000;
const DEFAULT_UPDATE_WAIT_MS = 5_000;
/** A start or a signal needs no worker and takes milliseconds; made under a tree's lock (30 s lease), it must not take longer than this. */
const TEMPORAL_CALL_MS = 10_000;
/** temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW (the proto package is not a dependency of ours). */
const TASK_QUEUE_TYPE_WORKFLOW = 1;

interface RequestKinds {
  resolve: ResolveInput;
  reopen: { note?: string };
  addUpdate: AddUpdateInput;
  escalate: { reason?: string };
  extendScope: { siteIds: string[] };
  cancel: { reason?: string };
  acknowledge: AcknowledgeInput;
}
type RequestKind = keyof RequestKinds;

const MESSAGES: {
  [K in RequestKind]: {
    update: UpdateDefinition<IncidentStatus, [RequestKinds[K]]>;
    signal: SignalDefinition<[RequestKinds[K]]>;
  };
} = {
  resolve: { update: resolveUpdate, signal: resolveSignal },
  reopen: { update: reopenUpdate, signal: reopenSignal },
  addUpdate: { update: addUpdateUpdate, signal: addUpdateSignal },
  escalate: { update: escalateUpdate, signal: escalateSignal },
  extendScope: { update: extendScopeUpdate, signal: extendScopeSignal },
  cancel: { update: cancelUpdate, signal: cancelSignal },
  acknowledge: { update: acknowledgeUpdate, signal: acknowledgeSignal },
};

export interface IncidentRequestDoc {
  _id: string;
  incidentId: string;
  kind: RequestKind;
  input: unknown;
  at: Date;
  /** `signal`: in the workflow's history, applied when a worker runs; `update`: admitted, not answered within the wait. */
  via: 'signal' | 'update';
}

export function createIncidentService(deps: IncidentServiceDeps) {
  const { store, temporal, taskQueue } = deps;
  const correlation = createCorrelation(store);
  const requests = store.db.collection<IncidentRequestDoc>('incident_requests');

  let pollers: { at: number; up: Promise<boolean> } | undefined;
  /** Whether a worker polls the task queue (asked at most once a second). */
  const workerUp = (): Promise<boolean> => {
    if (pollers && Date.now() - pollers.at < 1000) return pollers.up;
    const up = temporal.workflowService
      .describeTaskQueue({
        namespace: temporal.options.namespace,
        taskQueue: { name: taskQueue },
        taskQueueType: TASK_QUEUE_TYPE_WORKFLOW,
      })
      .then((r) =>
        (r.pollers ?? []).some((p) => Date.now() - Number(p.lastAccessTime?.seconds ?? 0) * 1000 < POLLER_FRESH_MS),
      )
      .catch(() => true); // cannot tell: the bounded Update still answers in time
    pollers = { at: Date.now(), up };
    return up;
  };

  const create = async (
    input: OpenIncidentInput,
    key: string,
    network: Network,
  ): Promise<{ incident: Incident; created: boolean }> => {
    const id = incidentIdForKey(key);
    const existing = await store.incidents.findOne({ _id: id });
    if (existing) {
      // Stored, and its workflow perhaps never started (the start failed): starting again is harmless.
      if (existing.phase === 'detected') await start(existing);
      return { incident: existing, created: false };
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
      title:
        input.title ?? `${input.kind === 'announcement' ? 'Announcement to' : 'Outage on'} ${input.siteIds.join(', ')}`,
      source: input.source ?? 'api',
      phase: 'detected',
      openedAt: now,
      workflowId: incidentWorkflowId(id),
      ...(rules ? { rulesVersion: rules.version } : {}),
      ...(input.estimatedEnd
        ? {
            estimatedEnd: new Date(input.estimatedEnd),
            updates: [{ at: now, estimatedEnd: new Date(input.estimatedEnd) }],
          }
        : {}),
      ...(input.announcement ? { announcement: { text: input.announcement.text } } : {}),
      timeline: [{ at: now, phase: 'detected' }],
    };
    try {
      await store.incidents.insertOne(incident);
    } catch (err) {
      // Two identical triggers at once: the second finds the first's incident.
      if (err instanceof MongoServerError && err.code === 11000)
        return { incident: (await store.incidents.findOne({ _id: id }))!, created: false };
      throw err;
    }
    if (incident.kind === 'outage') await correlation.opened(id, input.siteIds, now, network);
    // Stored first: should this start fail, the same trigger again starts it (the id is stable).
    await start(incident);
    return { incident, created: true };
  };

  const start = async (incident: Incident) => {
    const rules = incident.rulesVersion ? deps.rules?.current() : undefined;
    const delivery = deliveryPolicyFor(rules, deps.deliveryPolicy);
    const groupWaitSeconds = rules?.settings.groupWaitSeconds ?? 0;
    // Under the tree's lock: bounded well within its lease, so that a Temporal that does not answer fails the request instead.
    await temporal.connection.withDeadline(Date.now() + TEMPORAL_CALL_MS, () =>
      startIncidentWorkflow(temporal, taskQueue, {
        incidentId: incident._id,
        siteIds: incident.siteIds,
        ...(delivery ? { delivery } : {}),
        ...(groupWaitSeconds > 0 ? { groupWaitSeconds } : {}),
        ...(incident.estimatedEnd ? { estimatedEnd: incident.estimatedEnd.toISOString() } : {}),
      }),
    );
  };

  const service = {
    /**
     * Opens an incident, or returns the one this key already opened. Unless `correlate: false`,
     * decided under the network tree's lock like an alert: sites at or below an open incident's
     * sites join it (no second round of notices), sites above open incidents absorb them.
     */
    async open(
      input: OpenIncidentInput,
    ): Promise<{ incident: Incident; created: boolean; outcome: OpenOutcome; absorbed?: string[] }> {
      const missing = await unknownSites(store, input.siteIds);
      if (missing.length > 0) {
        throw new IncidentInputError(
          'unknown_site',
          `No site with id ${missing.map((m) => JSON.stringify(m)).join(', ')}; GET /v1/sites lists them.`,
          { unknown: missing },
        );
      }
      return correlation.withTrees(input.siteIds, async (network) => {
        const keyed = input.key ? await store.incidents.findOne({ _id: incidentIdForKey(input.key) }) : null;
        if (keyed || input.correlate === false || (input.kind ?? 'outage') !== 'outage') {
          const r = await create(input, input.key ?? randomUUID(), network);
          return { ...r, outcome: r.created ? 'opened' : 'already_open' };
        }
        const related = await correlation.relate(input.siteIds, network);
        if (related.covering) return { incident: await load(related.covering), created: false, outcome: 'joined' };
        if (related.downstreamOpen) {
          const [survivor, ...absorbed] = related.downstreamOpen;
          await service.absorb(survivor!, absorbed, input.siteIds, network);
          return { incident: await load(survivor!), created: false, outcome: 'absorbed', absorbed };
        }
        const r = await create(input, input.key ?? randomUUID(), network);
        return { ...r, outcome: r.created ? 'opened' : 'already_open' };
      });
    },

    /** The alert intake's open: the decision is made already, under the lock (ingest/process.ts). */
    async openDecided(
      input: OpenIncidentInput & { key: string },
      network: Network,
    ): Promise<{ incident: Incident; created: boolean }> {
      const missing = await unknownSites(store, input.siteIds);
      if (missing.length > 0)
        throw new IncidentInputError(
          'unknown_site',
          `No site with id ${missing.map((m) => JSON.stringify(m)).join(', ')}; GET /v1/sites lists them.`,
          { unknown: missing },
        );
      return create(input, input.key, network);
    },

    /**
     * Asks the incident's workflow to resolve; harmless when it is resolving or resolved already.
     * `settleSeconds` (monitoring resolves) holds the restoration notices that long in case the
     * site goes down again; `reopen` within it carries on as if nothing happened.
     */
    async resolve(
      incidentId: string,
      note?: string,
      options: { settleSeconds?: number; mode?: RequestMode } = {},
    ): Promise<RequestOutcome & { settlingUntil?: string }> {
      const incident = await load(incidentId);
      // Over already (resolved or cancelled, then billed): resolving again changes nothing.
      if (isOver(incident)) return { ...statusOf(incident), resolveRequested: true };
      return correlation.withIncident(incidentId, incident.siteIds, async () => {
        const input = { note, ...(options.settleSeconds ? { settleSeconds: options.settleSeconds } : {}) };
        const r = await send(incident, 'resolve', input, options.mode ?? 'bounded');
        const settlingUntil = isQueued(r)
          ? options.settleSeconds
            ? new Date(Date.now() + options.settleSeconds * 1000).toISOString()
            : undefined
          : r.settlingUntil;
        await correlation.closing(incidentId, settlingUntil ? new Date(settlingUntil) : undefined);
        await store.incidents.updateOne(
          { _id: incidentId },
          settlingUntil
            ? { $set: { resolveRequestedAt: new Date(), settlingUntil: new Date(settlingUntil) } }
            : { $set: { resolveRequestedAt: new Date() } },
        );
        // Incidents merged into this one end with it.
        for (const merged of await correlation.mergedInto(incidentId)) {
          await service.resolve(merged, note, options).catch((err) => {
            if (!(err instanceof IncidentInputError)) throw err;
          });
        }
        return { ...r, ...(settlingUntil ? { settlingUntil } : {}) };
      });
    },

    /**
     * A site above open incidents went down: `survivorId` carries on with `siteIds` added, and the
     * others are merged into it (they resolve with it). Their subscribers were told already, so
     * the scope extension skips their sites. Under the tree's lock; never waits for a worker.
     */
    async absorb(survivorId: string, absorbedIds: string[], siteIds: string[], network: Network): Promise<void> {
      const survivor = await load(survivorId);
      if (absorbedIds.length) {
        // One write by `_id` each: the write gate of avviso-ferretdb orders it with the workflow's own
        // writes to the same incident, so neither undoes the other (docs/ferretdb-serialization.md).
        for (const id of absorbedIds)
          await store.incidents.updateOne({ _id: id }, { $set: { mergedInto: survivorId } });
        await store.incidents.updateOne({ _id: survivorId }, { $addToSet: { absorbed: { $each: absorbedIds } } });
      }
      await correlation.absorbed(survivorId, absorbedIds, siteIds, network);
      await send(survivor, 'extendScope', { siteIds }, 'signal');
    },

    /** The trouble came back while a resolve was settling: the incident carries on, nobody is told twice. */
    async reopen(incidentId: string, note?: string, mode: RequestMode = 'bounded'): Promise<RequestOutcome> {
      const incident = await load(incidentId);
      return correlation.withIncident(incidentId, incident.siteIds, async () => {
        const r = await send(incident, 'reopen', { note }, mode);
        await correlation.reopened(incidentId);
        await store.incidents.updateOne({ _id: incidentId }, { $unset: { settlingUntil: '', resolveRequestedAt: '' } });
        return r;
      });
    },

    /** A word for the public and, when `estimatedEnd` changes, an update to those the rules say. */
    async addUpdate(incidentId: string, update: AddUpdateInput): Promise<RequestOutcome> {
      return send(await load(incidentId), 'addUpdate', update, 'bounded');
    },

    /** Calls the staff the rules escalate this incident to, now. */
    async escalate(incidentId: string, reason?: string): Promise<RequestOutcome> {
      const incident = await load(incidentId);
      if (incident.kind === 'announcement')
        throw new IncidentInputError(
          'incident_rejected',
          `Incident ${incidentId} is an announcement: the rules escalate outages and maintenance to staff, not announcements.`,
        );
      return send(incident, 'escalate', { reason }, 'bounded');
    },

    /**
     * Someone takes the staff escalation: who and when are stored on the incident first (the
     * first acknowledgement wins, atomically; a repeat answers the stored one), then the workflow
     * stops the rules' repeats and gives up the staff messages not yet sent.
     */
    async acknowledge(
      incidentId: string,
      who: Omit<Acknowledgement, 'at'>,
      mode: RequestMode = 'bounded',
    ): Promise<RequestOutcome & { acknowledged: Acknowledgement; alreadyAcknowledged: boolean }> {
      const incident = await load(incidentId);
      if (isOver(incident) || incident.resolveRequestedAt)
        throw new IncidentInputError(
          'incident_closed',
          `Incident ${incident._id} is ${incident.phase}${incident.resolveRequestedAt ? ' (being resolved)' : ''}; there is no escalation to acknowledge.`,
        );
      const mine: Acknowledgement = { ...who, at: new Date() };
      const won =
        (
          await store.incidents.updateOne(
            { _id: incidentId, acknowledged: { $exists: false } },
            { $set: { acknowledged: mine } },
          )
        ).modifiedCount === 1;
      const acknowledged = won ? mine : ((await load(incidentId)).acknowledged ?? mine);
      // Sent again on a repeat too: harmless (the workflow keeps the first), and it heals a first send that failed.
      const r = await send(incident, 'acknowledge', { by: acknowledged.by, at: acknowledged.at.toISOString() }, mode);
      return { ...r, acknowledged, alreadyAcknowledged: !won };
    },

    /** More sites are affected: their subscribers who were not told are told; nobody is told twice. */
    async extendScope(incidentId: string, siteIds: string[]): Promise<RequestOutcome> {
      const incident = await load(incidentId);
      if (incident.kind === 'announcement')
        throw new IncidentInputError(
          'incident_rejected',
          `Incident ${incidentId} is an announcement: its audience is fixed when it is opened; open another for more sites.`,
        );
      const missing = await unknownSites(store, siteIds);
      if (missing.length > 0)
        throw new IncidentInputError(
          'unknown_site',
          `No site with id ${missing.map((m) => JSON.stringify(m)).join(', ')}; GET /v1/sites lists them.`,
          { unknown: missing },
        );
      return correlation.withIncident(incidentId, [...incident.siteIds, ...siteIds], async () => {
        const r = await send(incident, 'extendScope', { siteIds }, 'bounded');
        if (incident.kind === 'outage')
          await correlation.absorbed(incidentId, [], siteIds, await correlation.network());
        return r;
      });
    },

    /** A false alarm: nothing more is sent, and those already told are told so. */
    async cancel(incidentId: string, reason?: string): Promise<RequestOutcome> {
      const incident = await load(incidentId);
      return correlation.withIncident(incidentId, incident.siteIds, async () => {
        const r = await send(incident, 'cancel', { reason }, 'bounded');
        await correlation.closing(incidentId);
        return r;
      });
    },
  };

  async function load(incidentId: string): Promise<Incident> {
    const incident = await store.incidents.findOne({ _id: incidentId });
    if (!incident) throw new IncidentInputError('incident_not_found', `No incident ${incidentId}.`);
    return incident;
  }

  /**
   * Hands a request to the incident's workflow. As a signal it is in the workflow's history when
   * this returns, with or without a worker. As an Update, the workflow's validator's refusal
   * becomes a 409 that says why; not answered within the wait (a busy worker), it stays admitted
   * and is applied when the worker gets to it, and the caller is told it is queued.
   */
  async function send<K extends RequestKind>(
    incident: Incident,
    kind: K,
    input: RequestKinds[K],
    mode: RequestMode,
  ): Promise<RequestOutcome> {
    if (isOver(incident) && kind !== 'resolve')
      throw new IncidentInputError(
        'incident_closed',
        `Incident ${incident._id} is ${incident.phase}; it takes no more changes.`,
      );
    const handle = temporal.workflow.getHandle(incident.workflowId);
    const requestId = randomUUID();
    const queued = async (via: 'signal' | 'update', reason: string): Promise<QueuedRequest> => {
      await requests.insertOne({ _id: requestId, incidentId: incident._id, kind, input, at: new Date(), via });
      return { incidentId: incident._id, phase: incident.phase, queued: true, requestId, reason };
    };
    try {
      if (mode === 'signal' || !(await workerUp())) {
        await temporal.connection.withDeadline(Date.now() + TEMPORAL_CALL_MS, () =>
          handle.signal(MESSAGES[kind].signal as SignalDefinition<[RequestKinds[K]]>, input),
        );
        return await queued(
          'signal',
          mode === 'signal'
            ? "handed to the incident's workflow; applied when a worker runs it"
            : 'no worker is running: applied when one starts',
        );
      }
      const wait = deps.updateWaitMs ?? DEFAULT_UPDATE_WAIT_MS;
      try {
        return await temporal.connection.withDeadline(Date.now() + wait, () =>
          handle.executeUpdate(MESSAGES[kind].update as UpdateDefinition<IncidentStatus, [RequestKinds[K]]>, {
            args: [input],
            updateId: requestId,
          }),
        );
      } catch (err) {
        if (isGrpcDeadlineError(err))
          return await queued('update', `no worker answered within ${wait / 1000} s: applied when one gets to it`);
        throw err;
      }
    } catch (err) {
      if (err instanceof WorkflowNotFoundError)
        throw new IncidentInputError(
          'incident_closed',
          `Incident ${incident._id} has no running workflow; it may have just finished. GET it to see its phase.`,
        );
      if (err instanceof WorkflowUpdateFailedError)
        throw new IncidentInputError(
          'incident_rejected',
          `Incident ${incident._id}: ${(err.cause as Error | undefined)?.message ?? err.message}`,
        );
      throw err;
    }
  }

  return service;
}

/** What the stored incident says, in the shape of a workflow's status. */
function statusOf(incident: Incident): IncidentStatus {
  return {
    incidentId: incident._id,
    phase: incident.phase,
    recipients: 0,
    sent: {},
    failed: 0,
    retried: 0,
    fellBack: 0,
    resolveRequested: Boolean(incident.resolveRequestedAt),
  };
}

/** Resolved or cancelled: nothing more will happen to it but its bill. */
function isOver(incident: Incident): boolean {
  return (
    Boolean(incident.resolvedAt) ||
    incident.phase === 'resolved' ||
    incident.phase === 'cancelled' ||
    incident.phase === 'billed'
  );
}

export type IncidentService = ReturnType<typeof createIncidentService>;
