/**
 * Planned maintenance: create one ahead of time (its window and sites), list and read them
 * (from MongoDB: the timeline holds every step, so nothing asks Temporal but the live counts),
 * and reschedule, cancel or complete one. Creating is idempotent on a key (the body's `key` or
 * the `Idempotency-Key` header). Changes are Temporal Updates: the workflow's validator answers
 * at once (409 with its reason when the maintenance can no longer take it).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app';
import { ApiError } from '../errors';
import type { Incident, MaintenancePhase, Severity } from '../../domain/types';
import { sharedDeliveryCounts } from '../../store/incidents';
import { listMaintenances, MAINTENANCE_PHASES, MaintenanceCursorError } from '../../store/maintenances';
import {
  createMaintenanceService,
  MaintenanceInputError,
  maintenanceIsOver,
  type CreateMaintenanceInput,
} from '../../services/maintenances';
import { maintenanceStatusQuery, type MaintenanceStatus } from '../../workflows/maintenance-api';
import { acknowledgedReplyOf, acknowledgementSchema, acknowledgeHandler } from './acknowledge';

const time = { type: 'string', format: 'date-time' } as const;
const text = { type: 'string', minLength: 1, maxLength: 500 } as const;

const params = {
  type: 'object',
  required: ['id'],
  properties: {
    id: {
      type: 'string',
      pattern: '^mnt_[a-z0-9]{16}$',
      description: 'The maintenance id, as returned when it was created',
    },
  },
} as const;

const windowSchema = { type: 'object', properties: { startsAt: time, endsAt: time } } as const;

const summary = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    key: { type: 'string' },
    phase: {
      type: 'string',
      enum: [...MAINTENANCE_PHASES],
      description:
        'scheduled, in_progress, overrun (the window ended before it was completed), completed, cancelled, billed',
    },
    title: { type: 'string' },
    description: { type: 'string' },
    severity: { type: 'string' },
    source: { type: 'string' },
    siteIds: { type: 'array', items: { type: 'string' } },
    affectedSiteIds: {
      type: 'array',
      items: { type: 'string' },
      description: 'The sites named and every site they feed',
    },
    areas: { type: 'array', items: { type: 'string' } },
    startsAt: time,
    endsAt: time,
    previousWindow: { ...windowSchema, description: 'The window before the last reschedule' },
    reschedules: { type: 'integer' },
    createdAt: time,
    completedAt: time,
    cancelledAt: time,
    rulesVersion: { type: 'string' },
    workflowId: { type: 'string' },
    acknowledged: {
      ...acknowledgementSchema,
      description:
        "Who took the overrun's staff escalation, and when (POST /v1/maintenances/:id/acknowledge, the console, an SMS reply)",
    },
  },
} as const;

const statusReply = {
  type: 'object',
  properties: {
    maintenanceId: { type: 'string' },
    phase: { type: 'string' },
    window: windowSchema,
    recipients: { type: 'integer' },
    sent: { type: 'object', additionalProperties: { type: 'integer' } },
    failed: { type: 'integer' },
    retried: { type: 'integer' },
    fellBack: { type: 'integer' },
    reschedules: { type: 'integer' },
    reminders: { type: 'integer', description: 'Reminder rounds planned in the current window' },
    escalations: { type: 'integer', description: 'Staff escalation rounds planned (overrun)' },
    cancelRequested: { type: 'boolean' },
    completeRequested: { type: 'boolean' },
    acknowledgedBy: { type: 'string', description: "Who took the overrun's staff escalation (the workflow's word)" },
    acknowledgedAt: time,
  },
} as const;

const acknowledgedReply = acknowledgedReplyOf(statusReply);

const detail = {
  type: 'object',
  properties: {
    ...summary.properties,
    timeline: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          at: time,
          phase: { type: 'string' },
          event: { type: 'string' },
          note: { type: 'string' },
          window: windowSchema,
        },
      },
    },
    deliveries: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: { type: 'object', additionalProperties: { type: 'integer' } },
      },
      description:
        'Messages by channel, then kind (maintenance, reminder, started, rescheduled, cancelled, completed, escalation), then state',
    },
    live: {
      ...statusReply,
      nullable: true,
      description: 'What the running workflow reports (null once it is over or unreachable)',
    },
  },
} as const;

const errors = { 404: { $ref: 'Error#' }, 409: { $ref: 'Error#' }, 422: { $ref: 'Error#' } } as const;

const STATUS: Record<MaintenanceInputError['code'], number> = {
  unknown_site: 422,
  invalid_window: 422,
  maintenance_not_found: 404,
  maintenance_closed: 409,
  maintenance_rejected: 409,
};

function toApiError(err: unknown): never {
  if (err instanceof MaintenanceInputError) throw new ApiError(STATUS[err.code], err.code, err.message, err.details);
  throw err;
}

function present(m: Incident) {
  return {
    id: m._id,
    key: m.key.replace(/^maintenance:/, ''),
    phase: m.phase,
    title: m.title,
    ...(m.description ? { description: m.description } : {}),
    severity: m.severity,
    source: m.source,
    siteIds: m.siteIds,
    affectedSiteIds: m.affectedSiteIds,
    areas: m.areas,
    startsAt: m.window?.startsAt,
    endsAt: m.window?.endsAt,
    ...(m.previousWindow ? { previousWindow: m.previousWindow } : {}),
    reschedules: m.reschedules ?? 0,
    createdAt: m.openedAt,
    ...(m.completedAt ? { completedAt: m.completedAt } : {}),
    ...(m.cancelledAt ? { cancelledAt: m.cancelledAt } : {}),
    ...(m.rulesVersion ? { rulesVersion: m.rulesVersion } : {}),
    workflowId: m.workflowId,
    ...(m.acknowledged ? { acknowledged: m.acknowledged } : {}),
  };
}

interface CreateBody extends Omit<CreateMaintenanceInput, 'source'> {
  severity?: Severity;
}

interface ListQuery {
  state?: MaintenancePhase[];
  site?: string;
  from?: string;
  to?: string;
  limit: number;
  after?: string;
}

export const maintenanceRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const { store, temporal } = deps;
  const maintenances = createMaintenanceService(deps);

  app.post<{ Body: CreateBody; Headers: { 'idempotency-key'?: string } }>(
    '/v1/maintenances',
    {
      schema: {
        tags: ['maintenance'],
        summary: 'Plan a maintenance on one or more sites',
        description:
          'Starts the maintenance workflow: the subscribers of these sites (and of every site they feed) whose rules ask for it get the notice (`notice` before the start, at once if that is past), reminders before it, a notice when it starts and when it is completed. While it is under way, monitoring alerts for these sites open no incident.',
        headers: {
          type: 'object',
          properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 200 } },
        },
        body: {
          type: 'object',
          required: ['siteIds', 'startsAt', 'endsAt', 'title'],
          additionalProperties: false,
          properties: {
            siteIds: {
              type: 'array',
              minItems: 1,
              maxItems: 500,
              uniqueItems: true,
              items: { type: 'string', minLength: 1, maxLength: 100 },
              description: 'Ids of the sites the work takes down',
            },
            startsAt: { ...time, description: 'When the work begins (ISO 8601)' },
            endsAt: { ...time, description: 'When it is planned to end; at most 7 days after the start' },
            title: { type: 'string', minLength: 1, maxLength: 200, description: 'Shown on the status page' },
            description: { type: 'string', maxLength: 2000, description: 'What the work is, for operators' },
            severity: { type: 'string', enum: ['minor', 'major', 'critical'], default: 'minor' },
            key: {
              type: 'string',
              minLength: 1,
              maxLength: 200,
              description: 'Deduplication key: creating with a key already used returns that maintenance',
            },
          },
        },
        response: { 200: summary, 202: summary, ...errors },
      },
    },
    async (req, reply) => {
      const key = req.body.key ?? req.headers['idempotency-key'];
      const { maintenance, created } = await maintenances.create({ ...req.body, key }).catch(toApiError);
      if (created)
        req.log.info({ maintenanceId: maintenance._id, sites: maintenance.siteIds.length }, 'maintenance planned');
      return reply
        .status(created ? 202 : 200)
        .header('location', `/v1/maintenances/${maintenance._id}`)
        .send(present(maintenance));
    },
  );

  app.get<{ Querystring: ListQuery }>(
    '/v1/maintenances',
    {
      schema: {
        tags: ['maintenance'],
        summary: 'List maintenances by start time, paged',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            state: {
              type: 'array',
              items: { type: 'string', enum: [...MAINTENANCE_PHASES] },
              description: 'Only these phases (repeat the parameter for several: ?state=scheduled&state=in_progress)',
            },
            site: {
              type: 'string',
              maxLength: 100,
              description: 'Only maintenances on this site (named, or downstream of one named)',
            },
            from: { ...time, description: 'Only windows that end after this time' },
            to: { ...time, description: 'Only windows that begin before this time' },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
            after: { type: 'string', maxLength: 300, description: "The previous page's `next`" },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { items: { type: 'array', items: summary }, next: { type: 'string', nullable: true } },
          },
          400: { $ref: 'Error#' },
        },
      },
    },
    async (req) => {
      const q = req.query;
      const phases = q.state;
      try {
        const page = await listMaintenances(store, {
          phases,
          siteId: q.site || undefined,
          from: q.from ? new Date(q.from) : undefined,
          to: q.to ? new Date(q.to) : undefined,
          limit: q.limit,
          after: q.after || undefined,
        });
        return { items: page.items.map(present), next: page.next };
      } catch (err) {
        if (err instanceof MaintenanceCursorError)
          throw new ApiError(400, 'invalid_request', err.message, { field: 'querystring.after' });
        throw err;
      }
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/maintenances/:id',
    {
      schema: {
        tags: ['maintenance'],
        summary: 'A maintenance with its timeline and message counts',
        params,
        response: { 200: detail, 404: { $ref: 'Error#' } },
      },
    },
    async (req) => {
      const m = await store.incidents.findOne({ _id: req.params.id, kind: 'maintenance' });
      if (!m) throw new ApiError(404, 'maintenance_not_found', `No maintenance ${req.params.id}.`);
      let live: MaintenanceStatus | null = null;
      if (!maintenanceIsOver(m)) {
        try {
          live = await temporal.workflow.getHandle(m.workflowId).query(maintenanceStatusQuery);
        } catch {
          live = null; // closed or unreachable: the stored timeline and counts still answer.
        }
      }
      return {
        ...present(m),
        timeline: m.timeline,
        deliveries: await sharedDeliveryCounts(store, m._id, { phase: m.phase }),
        live,
      };
    },
  );

  app.post<{ Params: { id: string }; Body: { startsAt?: string; endsAt: string; reason?: string } }>(
    '/v1/maintenances/:id/reschedule',
    {
      schema: {
        tags: ['maintenance'],
        summary: 'Move the window',
        description:
          'Those already told get the `rescheduled` message; notices not yet sent, reminders and the start notice follow the new window. Once the work has begun only its end can move (an overrun whose end moves ahead is under way again).',
        params,
        body: {
          type: 'object',
          required: ['endsAt'],
          additionalProperties: false,
          properties: {
            startsAt: { ...time, description: 'The new start; leave it out to keep the start' },
            endsAt: { ...time, description: 'The new end' },
            reason: text,
          },
        },
        response: { 202: statusReply, ...errors },
      },
    },
    async (req, reply) =>
      reply.status(202).send(await maintenances.reschedule(req.params.id, req.body).catch(toApiError)),
  );

  app.post<{ Params: { id: string }; Body: { reason?: string } | null }>(
    '/v1/maintenances/:id/cancel',
    {
      schema: {
        tags: ['maintenance'],
        summary: 'Call the work off',
        description:
          'Nothing more is sent but the `cancelled` message, to those already told. Only a maintenance that has not begun can be cancelled (complete one that has). Cancelling twice is harmless.',
        params,
        body: { type: 'object', nullable: true, additionalProperties: false, properties: { reason: text } },
        response: { 202: statusReply, ...errors },
      },
    },
    async (req, reply) =>
      reply.status(202).send(await maintenances.cancel(req.params.id, req.body?.reason).catch(toApiError)),
  );

  app.post<{ Params: { id: string }; Body: { note?: string } | null }>(
    '/v1/maintenances/:id/complete',
    {
      schema: {
        tags: ['maintenance'],
        summary: 'Report the work done',
        description:
          'Early, on time or late: those told whose rules ask for it get the `completed` message, and the status page shows it done. Only a maintenance that has begun can be completed. Completing twice is harmless.',
        params,
        body: { type: 'object', nullable: true, additionalProperties: false, properties: { note: text } },
        response: { 202: statusReply, ...errors },
      },
    },
    async (req, reply) =>
      reply.status(202).send(await maintenances.complete(req.params.id, req.body?.note).catch(toApiError)),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/maintenances/:id/acknowledge',
    {
      schema: {
        tags: ['maintenance'],
        summary: "Acknowledge the overrun's staff escalation: someone has taken it",
        description:
          "Stores who (the key's name) and when, stops the rules' escalation repeats and gives up the staff messages not yet sent. Only a maintenance that overran (and so escalated) can be acknowledged. The first acknowledgement counts; a repeat answers it with `alreadyAcknowledged: true`. Staff can do the same by replying to the escalation SMS with its code (`OK 123456`).",
        params,
        body: { type: 'object', nullable: true, additionalProperties: false, properties: {} },
        response: { 202: acknowledgedReply, ...errors },
      },
    },
    acknowledgeHandler((id, who) => maintenances.acknowledge(id, who), toApiError),
  );
};
