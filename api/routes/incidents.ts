/**
 * Incidents: open one on a set of sites, look at it, resolve it. Opening is idempotent on a key
 * (the body's `key` or the `Idempotency-Key` header): the same key reaches the same incident; and
 * correlated like an alert (services/incidents.ts, ingest/correlation.ts): without a key, a
 * repeated call for sites an open incident covers joins it.
 * The incident is stored in MongoDB before the API answers, and its workflow is started with
 * USE_EXISTING, so a retried request neither loses nor doubles anything.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app';
import { ApiError } from '../errors';
import type { Incident } from '../../domain/types';
import { deliveryCounts } from '../../store/incidents';
import { CursorError, listDeliveries, listIncidents } from '../../store/incident-queries';
import { statusQuery, type IncidentStatus } from '../../workflows/incident';
import { createIncidentService, IncidentInputError, type OpenIncidentInput } from '../../services/incidents';
import { acknowledgementSchema } from './incident-actions';

/** The body is what the service takes. */
type OpenBody = OpenIncidentInput;

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
    endedAt: { type: 'string', format: 'date-time' },
    rulesVersion: { type: 'string' },
    resolvedAt: { type: 'string', format: 'date-time' },
    workflowId: { type: 'string' },
  },
} as const;

/** The answer to opening: the incident the call ended in, and how. */
const opened = {
  type: 'object',
  properties: {
    ...incidentSummary.properties,
    outcome: { type: 'string', enum: ['opened', 'already_open', 'joined', 'absorbed'], description: 'opened a new incident; already_open: the one this key opened; joined: an open incident covering these sites; absorbed: the open incidents below these sites, into this one' },
    absorbed: { type: 'array', items: { type: 'string' }, description: 'absorbed: the other incidents merged into this one' },
  },
} as const;

const incidentDetail = {
  type: 'object',
  properties: {
    ...incidentSummary.properties,
    timeline: { type: 'array', items: { type: 'object', properties: { at: { type: 'string', format: 'date-time' }, phase: { type: 'string' }, note: { type: 'string' } } } },
    acknowledged: { ...acknowledgementSchema, description: 'Who took the staff escalation, and when (POST /v1/incidents/:id/acknowledge, the console, an SMS reply)' },
    escalationProblems: {
      type: 'array',
      description: 'Escalations that could not go as planned: nobody on call, a call with no voice channel',
      items: { type: 'object', properties: { at: { type: 'string', format: 'date-time' }, round: { type: 'integer' }, problem: { type: 'string' } } },
    },
    deliveries: {
      type: 'object',
      additionalProperties: { type: 'object', additionalProperties: { type: 'object', additionalProperties: { type: 'integer' } } },
      description: 'Messages by channel, then kind (outage, restored, outage-restored), then state',
    },
    live: {
      type: 'object',
      nullable: true,
      description: 'What the running workflow reports (null once it is closed or unreachable)',
      properties: {
        phase: { type: 'string' },
        recipients: { type: 'integer' },
        sent: { type: 'object', additionalProperties: { type: 'integer' } },
        failed: { type: 'integer' },
        retried: { type: 'integer' },
        fellBack: { type: 'integer' },
        resolveRequested: { type: 'boolean' },
      },
    },
    cost: {
      type: 'object',
      description: 'What its messages cost at the providers, from the billed stage on (see /v1/billing/reports/incidents)',
      properties: {
        billedAt: { type: 'string', format: 'date-time' },
        period: { type: 'string', description: 'The month (YYYY-MM, Italian time) its cost counts towards' },
        channels: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              channel: { type: 'string' }, currency: { type: 'string' }, messages: { type: 'integer' }, units: { type: 'integer', description: 'SMS parts on sms' },
              amountMicros: { type: 'integer' }, amountCents: { type: 'integer' }, fromReceipts: { type: 'integer' }, fromRateTable: { type: 'integer' }, unpriced: { type: 'integer' }, ledgerKey: { type: 'string' },
            },
          },
        },
        totals: { type: 'array', items: { type: 'object', properties: { currency: { type: 'string' }, amountMicros: { type: 'integer' }, amountCents: { type: 'integer' } } } },
      },
    },
  },
} as const;

function toApiError(err: unknown): never {
  if (err instanceof IncidentInputError) {
    const status = { unknown_site: 422, incident_not_found: 404, incident_closed: 409, incident_rejected: 409 }[err.code];
    throw new ApiError(status, err.code, err.message, err.details && { field: 'body.siteIds', ...err.details });
  }
  throw err;
}

const PHASES = ['detected', 'notifying', 'notified', 'escalated', 'resolving', 'resolved', 'cancelled', 'billed', 'scheduled', 'in_progress', 'overrun', 'completed'] as const;
const DELIVERY_STATES = ['planned', 'sending', 'accepted', 'sent', 'delivered', 'undelivered', 'failed', 'expired'] as const;
const MESSAGE_KINDS = ['outage', 'update', 'restored', 'outage-restored', 'withdrawn', 'escalation', 'maintenance', 'reminder', 'started', 'completed', 'rescheduled', 'cancelled'] as const;

interface ListQuery {
  status?: 'open' | 'closed';
  phase?: (typeof PHASES)[number][];
  kind?: 'outage' | 'maintenance';
  severity?: ('minor' | 'major' | 'critical')[];
  siteId?: string;
  area?: string;
  source?: string;
  since?: string;
  until?: string;
  includeMerged?: boolean;
  limit: number;
  after?: string;
}

interface DeliveryQuery {
  state?: (typeof DELIVERY_STATES)[number][];
  kind?: (typeof MESSAGE_KINDS)[number][];
  channel?: 'sms' | 'voice' | 'email' | 'webhook' | 'status';
  limit: number;
  after?: string;
}

const deliverySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    kind: { type: 'string' },
    round: { type: 'integer' },
    subscriberId: { type: 'string' },
    channel: { type: 'string' },
    to: { type: 'string', description: 'Phone number (E.164), e-mail address or URL' },
    language: { type: 'string' },
    state: { type: 'string', enum: DELIVERY_STATES },
    attempts: { type: 'integer' },
    providerMessageId: { type: 'string' },
    units: { type: 'integer', description: 'SMS parts billed' },
    cost: { type: 'string' },
    currency: { type: 'string' },
    error: { type: 'string' },
    invalidRecipient: { type: 'boolean' },
    fallbackOf: { type: 'string', description: 'The record (on another channel) this one replaces' },
    notBefore: { type: 'string', format: 'date-time', description: 'Held until then (grace delay, quiet hours)' },
    history: { type: 'array', items: { type: 'object', properties: { at: { type: 'string', format: 'date-time' }, state: { type: 'string' }, note: { type: 'string' } } } },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
} as const;

/** An ISO date-time from the query string, or a 400 naming the parameter. */
function queryDate(value: string | undefined, name: string): Date | undefined {
  if (value === undefined || value === '') return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new ApiError(400, 'invalid_request', `querystring.${name} must be an ISO date-time, e.g. 2026-12-01T00:00:00Z`, { field: `querystring.${name}` });
  return d;
}

function cursorCall<T>(f: () => Promise<T>): Promise<T> {
  return f().catch((err: unknown) => {
    if (err instanceof CursorError) throw new ApiError(400, 'invalid_cursor', err.message, { field: 'querystring.after' });
    throw err;
  });
}

function present(i: Incident) {
  const { _id, ...rest } = i;
  return { id: _id, ...rest };
}

export const incidentRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const { store, temporal } = deps;
  const incidents = createIncidentService(deps);

  const getIncident = async (id: string): Promise<Incident> => {
    const incident = await store.incidents.findOne({ _id: id });
    if (!incident) throw new ApiError(404, 'incident_not_found', `No incident ${id}.`);
    return incident;
  };

  app.post<{ Body: OpenBody; Headers: { 'idempotency-key'?: string } }>('/v1/incidents', {
    schema: {
      tags: ['incidents'],
      summary: 'Open an incident on one or more sites',
      description: 'Starts the incident workflow: the paying subscribers of these sites, and of every site they feed, get an outage SMS, and a restoration SMS once it is resolved. Correlated like a monitoring alert (unless `correlate: false`): sites at or below an open incident\'s sites join it (200, `outcome: joined`, no second round of SMS); sites above open incidents absorb them (202, `outcome: absorbed`, the incident that carries on); otherwise a new incident opens (202, `outcome: opened`). A key already used answers its incident (200, `already_open`).',
      headers: { type: 'object', properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 200 } } },
      body: {
        type: 'object',
        required: ['siteIds'],
        additionalProperties: false,
        properties: {
          siteIds: { type: 'array', minItems: 1, maxItems: 500, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 100 }, description: 'Ids of the sites that are down' },
          kind: { type: 'string', enum: ['outage'], default: 'outage', description: 'Planned work is created with POST /v1/maintenances, which knows its window' },
          severity: { type: 'string', enum: ['minor', 'major', 'critical'], default: 'major' },
          title: { type: 'string', maxLength: 200 },
          source: { type: 'string', maxLength: 100, default: 'api' },
          key: { type: 'string', minLength: 1, maxLength: 200, description: 'Deduplication key: opening with a key already used returns that incident' },
          correlate: { type: 'boolean', default: true, description: 'false: open an incident of its own even if an open one covers these sites' },
        },
      },
      response: { 200: opened, 202: opened, 422: { $ref: 'Error#' } },
    },
  }, async (req, reply) => {
    const key = req.body.key ?? req.headers['idempotency-key'];
    const { incident, created, outcome, absorbed } = await incidents.open({ ...req.body, key }).catch(toApiError);
    if (created || outcome === 'absorbed') req.log.info({ incidentId: incident._id, sites: incident.siteIds.length, outcome }, 'incident opened');
    const status = created || outcome === 'absorbed' ? 202 : 200;
    return reply.status(status).header('location', `/v1/incidents/${incident._id}`).send({ ...present(incident), outcome, ...(absorbed?.length ? { absorbed } : {}) });
  });

  app.get<{ Querystring: ListQuery }>('/v1/incidents', {
    schema: {
      tags: ['incidents'],
      summary: 'List incidents, newest first, with filters; paged',
      description: 'Outages by default (kind=maintenance for planned work). Reads the stored incidents only (never Temporal). Filters combine with AND; a list parameter (phase, severity) may be repeated: ?phase=notified&phase=escalated. Pass `next` as `after` for the following page.',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          status: { type: 'string', enum: ['open', 'closed'], description: 'open: not yet resolved, cancelled or billed' },
          phase: { type: 'array', items: { type: 'string', enum: PHASES } },
          kind: { type: 'string', enum: ['outage', 'maintenance'], default: 'outage', description: 'maintenance lists planned work too (ids mnt_…, details at /v1/maintenances/{id})' },
          severity: { type: 'array', items: { type: 'string', enum: ['minor', 'major', 'critical'] } },
          siteId: { type: 'string', maxLength: 100, description: 'Named when opened, or downstream of a site that was' },
          area: { type: 'string', maxLength: 100 },
          source: { type: 'string', maxLength: 100, description: 'api, or the monitoring integration (e.g. alertmanager/noc)' },
          since: { type: 'string', maxLength: 40, description: 'Opened at or after (ISO date-time)' },
          until: { type: 'string', maxLength: 40, description: 'Opened before (ISO date-time)' },
          includeMerged: { type: 'boolean', default: false, description: 'Also list incidents absorbed into another by correlation' },
          limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 },
          after: { type: 'string', maxLength: 300, description: 'The previous page\'s `next`' },
        },
      },
      response: { 200: { type: 'object', properties: { items: { type: 'array', items: incidentSummary }, next: { type: 'string', nullable: true } } }, 400: { $ref: 'Error#' } },
    },
  }, async (req) => {
    const q = req.query;
    const page = await cursorCall(() => listIncidents(store, {
      status: q.status, phases: q.phase, kind: q.kind, severities: q.severity, siteId: q.siteId || undefined, area: q.area || undefined, source: q.source || undefined,
      since: queryDate(q.since, 'since'), until: queryDate(q.until, 'until'), includeMerged: q.includeMerged, limit: q.limit, after: q.after || undefined,
    }));
    return { items: page.items.map(present), next: page.next };
  });

  app.get<{ Params: { id: string }; Querystring: DeliveryQuery }>('/v1/incidents/:id/deliveries', {
    schema: {
      tags: ['incidents'],
      summary: 'An incident\'s messages, one record per recipient and message, filtered by state, kind or channel; paged',
      description: 'Each record carries its history (planned, sending, accepted, delivered, retries, fallbacks) with the provider\'s id, parts and cost.',
      params: incidentIdParam,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          state: { type: 'array', items: { type: 'string', enum: DELIVERY_STATES } },
          kind: { type: 'array', items: { type: 'string', enum: MESSAGE_KINDS } },
          channel: { type: 'string', enum: ['sms', 'voice', 'email', 'webhook', 'status'] },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          after: { type: 'string', maxLength: 600, description: 'The previous page\'s `next`' },
        },
      },
      response: { 200: { type: 'object', properties: { items: { type: 'array', items: deliverySchema }, next: { type: 'string', nullable: true } } }, 400: { $ref: 'Error#' }, 404: { $ref: 'Error#' } },
    },
  }, async (req) => {
    await getIncident(req.params.id);
    const q = req.query;
    const page = await cursorCall(() => listDeliveries(store, req.params.id, { states: q.state, kinds: q.kind, channel: q.channel, limit: q.limit, after: q.after || undefined }));
    return { items: page.items.map(({ _id, ...d }) => ({ id: _id, ...d })), next: page.next };
  });

  app.get<{ Params: { id: string } }>('/v1/incidents/:id', {
    schema: { tags: ['incidents'], summary: 'An incident with its timeline and message counts', params: incidentIdParam, response: { 200: incidentDetail, 404: { $ref: 'Error#' } } },
  }, async (req) => {
    const incident = await getIncident(req.params.id);
    let live: IncidentStatus | null = null;
    if (incident.phase !== 'resolved' && incident.phase !== 'billed') {
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
      response: {
        202: {
          type: 'object',
          properties: {
            id: { type: 'string' }, phase: { type: 'string' }, resolveRequested: { type: 'boolean' },
            queued: { type: 'boolean', description: 'No worker answered in time: recorded, applied when one runs' }, requestId: { type: 'string' }, reason: { type: 'string' },
          },
        },
        404: { $ref: 'Error#' },
        409: { $ref: 'Error#' },
      },
    },
  }, async (req, reply) => {
    const r = await incidents.resolve(req.params.id, req.body?.note).catch(toApiError);
    return reply.status(202).send({ id: req.params.id, ...r });
  });
};
