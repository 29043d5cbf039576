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
import { sharedDeliveryCounts } from '../../store/incidents';
import { CursorError, listDeliveries, listIncidents } from '../../store/incident-queries';
import { postsOfIncident, socialCollections } from '../../channels/social/posts';
import { statusQuery, type IncidentStatus } from '../../workflows/incident';
import { createIncidentService, IncidentInputError, type OpenIncidentInput } from '../../services/incidents';
import { checkedText, previewMessage, smsPolicyOf } from '../../services/operator-messages';
import { unknownSites } from '../../store/network';
import { checkedOrThrow, operatorMessageDeps, previewSchema, targetProperties } from '../operator-sms';
import { acknowledgementSchema } from './acknowledge';

/** The body is what the service takes, with an announcement's words and target. */
type OpenBody = Omit<OpenIncidentInput, 'siteIds' | 'announcement'> & {
  siteIds?: string[];
  areas?: string[];
  text?: string;
  dryRun?: boolean;
};

const incidentIdParam = {
  type: 'object',
  required: ['id'],
  properties: {
    id: {
      type: 'string',
      pattern: '^inc_[a-z0-9]{16}$',
      description: 'The incident id, as returned when it was opened',
    },
  },
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
    estimatedEnd: { type: 'string', format: 'date-time', description: 'When service is expected back, as last given' },
    announcement: {
      type: 'object',
      properties: { text: { type: 'string' } },
      description: 'An announcement: the words its SMS carries',
    },
    resolvedAt: { type: 'string', format: 'date-time' },
    workflowId: { type: 'string' },
  },
} as const;

/** The answer to opening: the incident the call ended in, and how. */
const opened = {
  type: 'object',
  properties: {
    ...incidentSummary.properties,
    outcome: {
      type: 'string',
      enum: ['opened', 'already_open', 'joined', 'absorbed'],
      description:
        'opened a new incident; already_open: the one this key opened; joined: an open incident covering these sites; absorbed: the open incidents below these sites, into this one',
    },
    absorbed: {
      type: 'array',
      items: { type: 'string' },
      description: 'absorbed: the other incidents merged into this one',
    },
  },
} as const;

const incidentDetail = {
  type: 'object',
  properties: {
    ...incidentSummary.properties,
    timeline: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          at: { type: 'string', format: 'date-time' },
          phase: { type: 'string' },
          note: { type: 'string' },
        },
      },
    },
    acknowledged: {
      ...acknowledgementSchema,
      description:
        'Who took the staff escalation, and when (POST /v1/incidents/:id/acknowledge, the console, an SMS reply)',
    },
    escalationProblems: {
      type: 'array',
      description: 'Escalations that could not go as planned: nobody on call, a call with no voice channel',
      items: {
        type: 'object',
        properties: {
          at: { type: 'string', format: 'date-time' },
          round: { type: 'integer' },
          problem: { type: 'string' },
        },
      },
    },
    deliveries: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: { type: 'object', additionalProperties: { type: 'integer' } },
      },
      description: 'Messages by channel, then kind (outage, restored, outage-restored, message...), then state',
    },
    social: {
      type: 'array',
      description:
        "The status feed's posts on the ISP's social accounts (X, Mastodon), one per network and status change: posted, pending (being retried: `error` says why) or failed (refused for good, e.g. a bad token: not retried)",
      items: {
        type: 'object',
        properties: {
          network: { type: 'string', enum: ['x', 'mastodon'] },
          kind: { type: 'string' },
          state: { type: 'string', enum: ['pending', 'posted', 'failed'] },
          attempts: { type: 'integer' },
          postId: { type: 'string' },
          url: { type: 'string' },
          error: { type: 'string' },
          httpStatus: { type: 'integer' },
          postedAt: { type: 'string', format: 'date-time' },
        },
      },
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
      description:
        'What its messages cost at the providers, from the billed stage on (see /v1/billing/reports/incidents)',
      properties: {
        billedAt: { type: 'string', format: 'date-time' },
        period: { type: 'string', description: 'The month (YYYY-MM, Italian time) its cost counts towards' },
        channels: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              channel: { type: 'string' },
              currency: { type: 'string' },
              messages: { type: 'integer' },
              units: { type: 'integer', description: 'SMS parts on sms' },
              amountMicros: { type: 'integer' },
              amountCents: { type: 'integer' },
              fromReceipts: { type: 'integer' },
              fromRateTable: { type: 'integer' },
              unpriced: { type: 'integer' },
              ledgerKey: { type: 'string' },
            },
          },
        },
        totals: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              currency: { type: 'string' },
              amountMicros: { type: 'integer' },
              amountCents: { type: 'integer' },
            },
          },
        },
      },
    },
  },
} as const;

function toApiError(err: unknown): never {
  if (err instanceof IncidentInputError) {
    const status = { unknown_site: 422, incident_not_found: 404, incident_closed: 409, incident_rejected: 409 }[
      err.code
    ];
    throw new ApiError(status, err.code, err.message, err.details && { field: 'body.siteIds', ...err.details });
  }
  throw err;
}

const PHASES = [
  'detected',
  'notifying',
  'notified',
  'escalated',
  'resolving',
  'resolved',
  'cancelled',
  'billed',
  'scheduled',
  'in_progress',
  'overrun',
  'completed',
] as const;
const DELIVERY_STATES = [
  'planned',
  'sending',
  'accepted',
  'sent',
  'delivered',
  'undelivered',
  'failed',
  'expired',
] as const;
const MESSAGE_KINDS = [
  'outage',
  'update',
  'restored',
  'outage-restored',
  'withdrawn',
  'escalation',
  'maintenance',
  'reminder',
  'started',
  'completed',
  'rescheduled',
  'cancelled',
  'message',
] as const;

interface ListQuery {
  status?: 'open' | 'closed';
  phase?: (typeof PHASES)[number][];
  kind?: 'outage' | 'maintenance' | 'announcement';
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
    history: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          at: { type: 'string', format: 'date-time' },
          state: { type: 'string' },
          note: { type: 'string' },
        },
      },
    },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
} as const;

/** An ISO date-time from the query string, or a 400 naming the parameter. */
function queryDate(value: string | undefined, name: string): Date | undefined {
  if (value === undefined || value === '') return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime()))
    throw new ApiError(
      400,
      'invalid_request',
      `querystring.${name} must be an ISO date-time, e.g. 2026-12-01T00:00:00Z`,
      { field: `querystring.${name}` },
    );
  return d;
}

function cursorCall<T>(f: () => Promise<T>): Promise<T> {
  return f().catch((err: unknown) => {
    if (err instanceof CursorError)
      throw new ApiError(400, 'invalid_cursor', err.message, { field: 'querystring.after' });
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
  const messages = operatorMessageDeps(deps);

  /** An announcement's sites (named, or every site of the areas) and its words, checked by the policy in force. */
  const announcement = async (b: OpenBody) => {
    if (!b.text)
      throw new ApiError(400, 'invalid_request', 'body.text is required for an announcement: it is the message sent.', {
        field: 'body.text',
      });
    const checked = checkedOrThrow(() => checkedText(b.text!, smsPolicyOf(messages.currentRules()), 'body.text'));
    if (!b.siteIds?.length && !b.areas?.length)
      throw new ApiError(400, 'invalid_request', 'An announcement needs body.areas or body.siteIds: whom it is for.', {
        field: 'body.areas',
      });
    const fromAreas = b.areas?.length
      ? await store.sites.find({ area: { $in: b.areas } }, { projection: { _id: 1, area: 1 } }).toArray()
      : [];
    const missingAreas = (b.areas ?? []).filter((a) => !fromAreas.some((s) => s.area === a));
    if (missingAreas.length)
      throw new ApiError(
        422,
        'unknown_area',
        `body.areas: no site is in ${missingAreas.map((a) => JSON.stringify(a)).join(', ')}; GET /v1/sites lists the sites and their areas.`,
        { field: 'body.areas', unknown: missingAreas },
      );
    const missing = b.siteIds?.length ? await unknownSites(store, b.siteIds) : [];
    if (missing.length)
      throw new ApiError(
        422,
        'unknown_site',
        `No site with id ${missing.map((m) => JSON.stringify(m)).join(', ')}; GET /v1/sites lists them.`,
        { field: 'body.siteIds', unknown: missing },
      );
    const siteIds = [...new Set([...(b.siteIds ?? []), ...fromAreas.map((s) => s._id)])].sort();
    const areas = b.areas?.length ? [...b.areas] : siteIds;
    return { siteIds, areas, checked };
  };

  const getIncident = async (id: string): Promise<Incident> => {
    const incident = await store.incidents.findOne({ _id: id });
    if (!incident) throw new ApiError(404, 'incident_not_found', `No incident ${id}.`);
    return incident;
  };

  app.post<{ Body: OpenBody; Headers: { 'idempotency-key'?: string } }>(
    '/v1/incidents',
    {
      schema: {
        tags: ['incidents'],
        summary: 'Open an incident on one or more sites, or an announcement to areas or sites',
        description:
          "Starts the incident workflow: the paying subscribers of these sites, and of every site they feed, get an outage SMS, and a restoration SMS once it is resolved. Correlated like a monitoring alert (unless `correlate: false`): sites at or below an open incident's sites join it (200, `outcome: joined`, no second round of SMS); sites above open incidents absorb them (202, `outcome: absorbed`, the incident that carries on); otherwise a new incident opens (202, `outcome: opened`). A key already used answers its incident (200, `already_open`). `estimatedEnd` gives the expected restoration from the start (the `eta` of the texts).\n\n`kind: announcement` sends the operators' `text` (e.g. a storm warning) by SMS to the paying subscribers of `siteIds` (and the sites they feed) or of whole `areas`, without an outage: checked like a template (400 naming `body.text` when the policy refuses it), never correlated, no restoration notice; it is updated, resolved (closed) and billed like an incident. With `dryRun: true` nothing is opened: the answer (200) gives the parts, the recipients and the cost.",
        headers: {
          type: 'object',
          properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 200 } },
        },
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            siteIds: {
              type: 'array',
              minItems: 1,
              maxItems: 500,
              uniqueItems: true,
              items: { type: 'string', minLength: 1, maxLength: 100 },
              description: "Ids of the sites that are down (required for an outage); an announcement's sites",
            },
            areas: { ...targetProperties.areas, description: 'An announcement: every site in these areas (towns)' },
            kind: {
              type: 'string',
              enum: ['outage', 'announcement'],
              default: 'outage',
              description: 'Planned work is created with POST /v1/maintenances, which knows its window',
            },
            text: {
              type: 'string',
              minLength: 1,
              maxLength: 500,
              description: 'An announcement: the words sent by SMS (required for it)',
            },
            dryRun: {
              type: 'boolean',
              default: false,
              description: 'An announcement: count parts, recipients and cost; open nothing',
            },
            estimatedEnd: {
              type: 'string',
              format: 'date-time',
              description: 'When service is expected back (ISO 8601), as an update would give it',
            },
            severity: { type: 'string', enum: ['minor', 'major', 'critical'], default: 'major' },
            title: { type: 'string', maxLength: 200 },
            source: { type: 'string', maxLength: 100, default: 'api' },
            key: {
              type: 'string',
              minLength: 1,
              maxLength: 200,
              description: 'Deduplication key: opening with a key already used returns that incident',
            },
            correlate: {
              type: 'boolean',
              default: true,
              description: 'false: open an incident of its own even if an open one covers these sites',
            },
          },
        },
        response: {
          200: {
            type: 'object',
            description:
              'An incident this key or these sites reached already; or, with dryRun, what the announcement would take',
            properties: { ...opened.properties, ...previewSchema.properties },
          },
          202: opened,
          400: { $ref: 'Error#' },
          422: { $ref: 'Error#' },
        },
      },
    },
    async (req, reply) => {
      const key = req.body.key ?? req.headers['idempotency-key'];
      const { areas, text, dryRun, ...body } = req.body;
      if (body.estimatedEnd && Date.parse(body.estimatedEnd) < Date.now() - 60_000) {
        throw new ApiError(
          422,
          'estimate_in_past',
          'body.estimatedEnd is in the past; give when service is expected back.',
          { field: 'body.estimatedEnd' },
        );
      }
      const estimatedEnd = body.estimatedEnd ? new Date(body.estimatedEnd).toISOString() : undefined;
      let input: OpenIncidentInput;
      if (body.kind === 'announcement') {
        const a = await announcement(req.body);
        if (dryRun)
          return reply
            .status(200)
            .send(await previewMessage(store, { siteIds: a.siteIds }, {}, a.checked, messages.rates()));
        input = {
          ...body,
          siteIds: a.siteIds,
          estimatedEnd,
          key,
          correlate: false,
          announcement: { text: a.checked.text },
          title: body.title ?? `Announcement: ${a.areas.join(', ')}`,
        };
      } else {
        for (const [f, v] of Object.entries({ areas, text, dryRun })) {
          if (v !== undefined && v !== false)
            throw new ApiError(
              400,
              'invalid_request',
              `body.${f} is for an announcement ("kind": "announcement"); an outage is opened on its siteIds.`,
              { field: `body.${f}` },
            );
        }
        if (!body.siteIds)
          throw new ApiError(400, 'invalid_request', 'body.siteIds is required: the ids of the sites that are down.', {
            field: 'body.siteIds',
          });
        input = { ...body, siteIds: body.siteIds, estimatedEnd, key };
      }
      const { incident, created, outcome, absorbed } = await incidents.open(input).catch(toApiError);
      if (created || outcome === 'absorbed')
        req.log.info({ incidentId: incident._id, sites: incident.siteIds.length, outcome }, 'incident opened');
      const status = created || outcome === 'absorbed' ? 202 : 200;
      return reply
        .status(status)
        .header('location', `/v1/incidents/${incident._id}`)
        .send({ ...present(incident), outcome, ...(absorbed?.length ? { absorbed } : {}) });
    },
  );

  app.get<{ Querystring: ListQuery }>(
    '/v1/incidents',
    {
      schema: {
        tags: ['incidents'],
        summary: 'List incidents, newest first, with filters; paged',
        description:
          'Outages by default (kind=maintenance for planned work). Reads the stored incidents only (never Temporal). Filters combine with AND; a list parameter (phase, severity) may be repeated: ?phase=notified&phase=escalated. Pass `next` as `after` for the following page.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            status: {
              type: 'string',
              enum: ['open', 'closed'],
              description: 'open: not yet resolved, cancelled or billed',
            },
            phase: { type: 'array', items: { type: 'string', enum: PHASES } },
            kind: {
              type: 'string',
              enum: ['outage', 'maintenance', 'announcement'],
              default: 'outage',
              description:
                "maintenance lists planned work too (ids mnt_…, details at /v1/maintenances/{id}); announcement: operators' messages to areas or sites",
            },
            severity: { type: 'array', items: { type: 'string', enum: ['minor', 'major', 'critical'] } },
            siteId: {
              type: 'string',
              maxLength: 100,
              description: 'Named when opened, or downstream of a site that was',
            },
            area: { type: 'string', maxLength: 100 },
            source: {
              type: 'string',
              maxLength: 100,
              description: 'api, or the monitoring integration (e.g. alertmanager/noc)',
            },
            since: { type: 'string', maxLength: 40, description: 'Opened at or after (ISO date-time)' },
            until: { type: 'string', maxLength: 40, description: 'Opened before (ISO date-time)' },
            includeMerged: {
              type: 'boolean',
              default: false,
              description: 'Also list incidents absorbed into another by correlation',
            },
            limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 },
            after: { type: 'string', maxLength: 300, description: "The previous page's `next`" },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { items: { type: 'array', items: incidentSummary }, next: { type: 'string', nullable: true } },
          },
          400: { $ref: 'Error#' },
        },
      },
    },
    async (req) => {
      const q = req.query;
      const page = await cursorCall(() =>
        listIncidents(store, {
          status: q.status,
          phases: q.phase,
          kind: q.kind,
          severities: q.severity,
          siteId: q.siteId || undefined,
          area: q.area || undefined,
          source: q.source || undefined,
          since: queryDate(q.since, 'since'),
          until: queryDate(q.until, 'until'),
          includeMerged: q.includeMerged,
          limit: q.limit,
          after: q.after || undefined,
        }),
      );
      return { items: page.items.map(present), next: page.next };
    },
  );

  app.get<{ Params: { id: string }; Querystring: DeliveryQuery }>(
    '/v1/incidents/:id/deliveries',
    {
      schema: {
        tags: ['incidents'],
        summary:
          "An incident's messages, one record per recipient and message, filtered by state, kind or channel; paged",
        description:
          "Each record carries its history (planned, sending, accepted, delivered, retries, fallbacks) with the provider's id, parts and cost.",
        params: incidentIdParam,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            state: { type: 'array', items: { type: 'string', enum: DELIVERY_STATES } },
            kind: { type: 'array', items: { type: 'string', enum: MESSAGE_KINDS } },
            channel: { type: 'string', enum: ['sms', 'voice', 'email', 'webhook', 'status'] },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            after: { type: 'string', maxLength: 600, description: "The previous page's `next`" },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { items: { type: 'array', items: deliverySchema }, next: { type: 'string', nullable: true } },
          },
          400: { $ref: 'Error#' },
          404: { $ref: 'Error#' },
        },
      },
    },
    async (req) => {
      await getIncident(req.params.id);
      const q = req.query;
      const page = await cursorCall(() =>
        listDeliveries(store, req.params.id, {
          states: q.state,
          kinds: q.kind,
          channel: q.channel,
          limit: q.limit,
          after: q.after || undefined,
        }),
      );
      return { items: page.items.map(({ _id, ...d }) => ({ id: _id, ...d })), next: page.next };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/incidents/:id',
    {
      schema: {
        tags: ['incidents'],
        summary: 'An incident with its timeline and message counts',
        params: incidentIdParam,
        response: { 200: incidentDetail, 404: { $ref: 'Error#' } },
      },
    },
    async (req) => {
      const incident = await getIncident(req.params.id);
      let live: IncidentStatus | null = null;
      if (incident.phase !== 'resolved' && incident.phase !== 'billed') {
        try {
          live = await temporal.workflow.getHandle(incident.workflowId).query(statusQuery);
        } catch {
          live = null; // closed or unreachable: the stored phase and counts still answer.
        }
      }
      const social = (await postsOfIncident(socialCollections(store).posts, incident._id)).map(
        ({ network, kind, state, attempts, postId, url, error, httpStatus, postedAt }) => ({
          network,
          kind,
          state,
          attempts,
          postId,
          url,
          error,
          httpStatus,
          postedAt,
        }),
      );
      return {
        ...present(incident),
        deliveries: await sharedDeliveryCounts(store, incident._id, { phase: incident.phase }),
        social,
        live,
      };
    },
  );

  app.post<{ Params: { id: string }; Body: { note?: string } }>(
    '/v1/incidents/:id/resolve',
    {
      schema: {
        tags: ['incidents'],
        summary: 'Resolve an incident',
        description:
          'Everyone who was sent the outage notice gets the restoration notice. Resolving twice is harmless.',
        params: incidentIdParam,
        body: {
          type: 'object',
          nullable: true,
          additionalProperties: false,
          properties: { note: { type: 'string', maxLength: 500 } },
        },
        response: {
          202: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              phase: { type: 'string' },
              resolveRequested: { type: 'boolean' },
              queued: { type: 'boolean', description: 'No worker answered in time: recorded, applied when one runs' },
              requestId: { type: 'string' },
              reason: { type: 'string' },
            },
          },
          404: { $ref: 'Error#' },
          409: { $ref: 'Error#' },
        },
      },
    },
    async (req, reply) => {
      const r = await incidents.resolve(req.params.id, req.body?.note).catch(toApiError);
      return reply.status(202).send({ id: req.params.id, ...r });
    },
  );
};
