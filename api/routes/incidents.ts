/**
 * Incidents: open one on a set of sites, look at it, resolve it. Opening is idempotent on a key
 * (the body's `key` or the `Idempotency-Key` header): the same key reaches the same incident.
 * The incident is stored in MongoDB before the API answers, and its workflow is started with
 * USE_EXISTING, so a retried request neither loses nor doubles anything.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { WorkflowNotFoundError } from '@temporalio/client';
import { MongoServerError } from 'mongodb';
import type { AppDeps } from '../app';
import { ApiError } from '../errors';
import type { Incident, IncidentKind, Severity } from '../../domain/types';
import { unknownSites } from '../../store/network';
import { deliveryCounts } from '../../store/incidents';
import { incidentWorkflowId, startIncidentWorkflow } from '../../temporal/client';
import { resolveUpdate, statusQuery, type IncidentStatus } from '../../workflows/incident';

interface OpenBody {
  siteIds: string[];
  kind?: IncidentKind;
  severity?: Severity;
  title?: string;
  source?: string;
  key?: string;
}

const incidentIdParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^inc_[a-z0-9]{16}$', description: 'The incident id, as returned when it was opened' } },
} as const;

const incidentSummary = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    key: { type: 'string' },
    kind: { type: 'string' },
    severity: { type: 'string' },
    phase: { type: 'string' },
    title: { type: 'string' },
    source: { type: 'string' },
    siteIds: { type: 'array', items: { type: 'string' } },
    affectedSiteIds: { type: 'array', items: { type: 'string' } },
    areas: { type: 'array', items: { type: 'string' } },
    openedAt: { type: 'string', format: 'date-time' },
    resolvedAt: { type: 'string', format: 'date-time' },
    workflowId: { type: 'string' },
  },
} as const;

const incidentDetail = {
  type: 'object',
  properties: {
    ...incidentSummary.properties,
    timeline: { type: 'array', items: { type: 'object', properties: { at: { type: 'string', format: 'date-time' }, phase: { type: 'string' }, note: { type: 'string' } } } },
    deliveries: { type: 'object', additionalProperties: { type: 'object', additionalProperties: { type: 'integer' } }, description: 'Messages by kind, then by state' },
    live: {
      type: 'object',
      nullable: true,
      description: 'What the running workflow reports (null once it is closed or unreachable)',
      properties: {
        phase: { type: 'string' },
        recipients: { type: 'integer' },
        sent: { type: 'object', additionalProperties: { type: 'integer' } },
        failed: { type: 'object', additionalProperties: { type: 'integer' } },
        resolveRequested: { type: 'boolean' },
      },
    },
  },
} as const;

/** Same key, same id: a trigger repeated by a monitoring tool or a retried call finds its incident. */
export function incidentIdForKey(key: string): string {
  return `inc_${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

function present(i: Incident) {
  const { _id, ...rest } = i;
  return { id: _id, ...rest };
}

export const incidentRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const { store, temporal, taskQueue } = deps;

  const getIncident = async (id: string): Promise<Incident> => {
    const incident = await store.incidents.findOne({ _id: id });
    if (!incident) throw new ApiError(404, 'incident_not_found', `No incident ${id}.`);
    return incident;
  };

  app.post<{ Body: OpenBody; Headers: { 'idempotency-key'?: string } }>('/v1/incidents', {
    schema: {
      tags: ['incidents'],
      summary: 'Open an incident on one or more sites',
      description: 'Starts the incident workflow: the paying subscribers of these sites, and of every site they feed, get an outage SMS, and a restoration SMS once it is resolved.',
      headers: { type: 'object', properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 200 } } },
      body: {
        type: 'object',
        required: ['siteIds'],
        additionalProperties: false,
        properties: {
          siteIds: { type: 'array', minItems: 1, maxItems: 500, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 100 }, description: 'Ids of the sites that are down' },
          kind: { type: 'string', enum: ['outage', 'maintenance'], default: 'outage' },
          severity: { type: 'string', enum: ['minor', 'major', 'critical'], default: 'major' },
          title: { type: 'string', maxLength: 200 },
          source: { type: 'string', maxLength: 100, default: 'api' },
          key: { type: 'string', minLength: 1, maxLength: 200, description: 'Deduplication key: opening with a key already used returns that incident' },
        },
      },
      response: { 200: incidentSummary, 202: incidentSummary, 422: { $ref: 'Error#' } },
    },
  }, async (req, reply) => {
    const body = req.body;
    const key = body.key ?? req.headers['idempotency-key'] ?? randomUUID();
    const id = incidentIdForKey(key);

    const existing = await store.incidents.findOne({ _id: id });
    if (existing) return reply.status(200).send(present(existing));

    const missing = await unknownSites(store, body.siteIds);
    if (missing.length > 0) {
      throw new ApiError(422, 'unknown_site', `No site with id ${missing.map((m) => JSON.stringify(m)).join(', ')}; GET /v1/sites lists them.`, { field: 'body.siteIds', unknown: missing });
    }

    const now = new Date();
    const incident: Incident = {
      _id: id,
      key,
      kind: body.kind ?? 'outage',
      severity: body.severity ?? 'major',
      siteIds: body.siteIds,
      areas: [],
      title: body.title ?? `Outage on ${body.siteIds.join(', ')}`,
      source: body.source ?? 'api',
      phase: 'detected',
      openedAt: now,
      workflowId: incidentWorkflowId(id),
      timeline: [{ at: now, phase: 'detected' }],
    };
    try {
      await store.incidents.insertOne(incident);
    } catch (err) {
      // Two identical requests at once: the second finds the first's incident.
      if (err instanceof MongoServerError && err.code === 11000) return reply.status(200).send(present(await getIncident(id)));
      throw err;
    }
    await startIncidentWorkflow(temporal, taskQueue, { incidentId: id, siteIds: body.siteIds, ...(deps.deliveryPolicy ? { delivery: deps.deliveryPolicy } : {}) });
    req.log.info({ incidentId: id, sites: body.siteIds.length }, 'incident opened');
    return reply.status(202).header('location', `/v1/incidents/${id}`).send(present(incident));
  });

  app.get<{ Params: { id: string } }>('/v1/incidents/:id', {
    schema: { tags: ['incidents'], summary: 'An incident with its timeline and message counts', params: incidentIdParam, response: { 200: incidentDetail, 404: { $ref: 'Error#' } } },
  }, async (req) => {
    const incident = await getIncident(req.params.id);
    let live: IncidentStatus | null = null;
    if (incident.phase !== 'resolved') {
      try {
        live = await temporal.workflow.getHandle(incident.workflowId).query(statusQuery);
      } catch {
        live = null; // closed or unreachable: the stored phase and counts still answer.
      }
    }
    return { ...present(incident), deliveries: await deliveryCounts(store, incident._id), live };
  });

  app.post<{ Params: { id: string }; Body: { note?: string } }>('/v1/incidents/:id/resolve', {
    schema: {
      tags: ['incidents'],
      summary: 'Resolve an incident',
      description: 'Everyone who was sent the outage notice gets the restoration notice. Resolving twice is harmless.',
      params: incidentIdParam,
      body: { type: 'object', nullable: true, additionalProperties: false, properties: { note: { type: 'string', maxLength: 500 } } },
      response: { 202: { type: 'object', properties: { id: { type: 'string' }, phase: { type: 'string' }, resolveRequested: { type: 'boolean' } } }, 404: { $ref: 'Error#' }, 409: { $ref: 'Error#' } },
    },
  }, async (req, reply) => {
    const incident = await getIncident(req.params.id);
    if (incident.phase === 'resolved') return reply.status(202).send({ id: incident._id, phase: 'resolved', resolveRequested: true });
    try {
      const status = await temporal.workflow.getHandle(incident.workflowId).executeUpdate(resolveUpdate, { args: [{ note: req.body?.note }] });
      return reply.status(202).send({ id: incident._id, phase: status.phase, resolveRequested: status.resolveRequested });
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new ApiError(409, 'incident_closed', `Incident ${incident._id} has no running workflow; it may have just finished. GET it to see its phase.`);
      throw err;
    }
  });
};
