/**
 * What operators do to an open incident: post an update (a word and a new estimate), escalate
 * to staff, add affected sites, cancel a false alarm, reopen a resolve that is still settling.
 * Each is a Temporal Update: the workflow's validator answers at once (409 with its reason when
 * the incident can no longer take it), and the messages follow from the workflow. The API waits
 * for it a bounded time (no worker running, or a busy one): then it answers 202 with the request
 * recorded (`queued: true`), and the workflow applies it when a worker runs.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app';
import { ApiError } from '../errors';
import { acknowledgedReplyOf, acknowledgeHandler } from './acknowledge';
import { createIncidentService, IncidentInputError } from '../../services/incidents';
import { checkedText, previewMessage, smsPolicyOf } from '../../services/operator-messages';
import { targetSites } from '../../store/operator-audience';
import { checkedOrThrow, operatorMessageDeps, previewSchema, targetProperties, toTargetError } from '../operator-sms';

const params = {
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

const reason = { type: 'string', minLength: 1, maxLength: 500 } as const;

/** The workflow's answer: where the incident is, and what it has done so far. */
const statusReply = {
  type: 'object',
  properties: {
    incidentId: { type: 'string' },
    phase: { type: 'string' },
    recipients: { type: 'integer' },
    sent: { type: 'object', additionalProperties: { type: 'integer' } },
    failed: { type: 'integer' },
    retried: { type: 'integer' },
    fellBack: { type: 'integer' },
    resolveRequested: { type: 'boolean' },
    settlingUntil: { type: 'string', format: 'date-time' },
    cancelRequested: { type: 'boolean' },
    estimatedEnd: { type: 'string', format: 'date-time' },
    updates: { type: 'integer', description: 'Update rounds planned so far' },
    escalations: { type: 'integer', description: 'Escalation rounds planned so far' },
    addedSites: { type: 'integer', description: 'Sites added after opening (downstream ones included)' },
    messages: { type: 'integer', description: "Operators' messages sent by SMS so far" },
    acknowledgedBy: { type: 'string', description: "Who took the staff escalation (the workflow's word)" },
    acknowledgedAt: { type: 'string', format: 'date-time' },
    queued: {
      type: 'boolean',
      description:
        'No worker answered in time: the request is recorded and applied when one runs (phase is the stored one)',
    },
    requestId: { type: 'string', description: 'queued: the recorded request' },
    reason: { type: 'string', description: 'queued: why it was not answered at once' },
  },
} as const;

const acknowledgedReply = acknowledgedReplyOf(statusReply);

const errors = { 404: { $ref: 'Error#' }, 409: { $ref: 'Error#' }, 422: { $ref: 'Error#' } } as const;

interface UpdateBody {
  text?: string;
  estimatedEnd?: string;
  sms?: boolean;
  dryRun?: boolean;
  areas?: string[];
  siteIds?: string[];
}

const STATUS: Record<IncidentInputError['code'], number> = {
  unknown_site: 422,
  incident_not_found: 404,
  incident_closed: 409,
  incident_rejected: 409,
};

function toApiError(err: unknown): never {
  if (err instanceof IncidentInputError)
    throw new ApiError(
      STATUS[err.code],
      err.code,
      err.message,
      err.details && { field: 'body.siteIds', ...err.details },
    );
  throw err;
}

export const incidentActionRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const incidents = createIncidentService(deps);

  const messages = operatorMessageDeps(deps);

  app.post<{ Params: { id: string }; Body: UpdateBody }>(
    '/v1/incidents/:id/updates',
    {
      schema: {
        tags: ['incidents'],
        summary:
          'Post an update: a word for the public, a new estimated restoration time, or both; the word also by SMS',
        description:
          "The text goes to the status page and feed. A changed estimate also sends an update to the subscribers whose rules ask for one (`updates.onEtaChange`), after their quiet hours. With `sms: true` the text also goes, as it is written, by SMS to the paying subscribers of the incident's sites (opted-out numbers skipped, one message per number), or to those of the chosen `areas` and `siteIds` (and the sites they feed): checked like a template (transliterated to GSM-7 when the rules say `defaults.sms.transliterate`, at most `defaults.sms.maxParts` parts), sent at once. With `dryRun: true` nothing is sent: the answer (200) gives the parts, the recipients and the cost at the billing rate table.",
        params,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: {
            text: reason,
            estimatedEnd: {
              type: 'string',
              format: 'date-time',
              description: 'When service is expected back (ISO 8601)',
            },
            sms: { type: 'boolean', default: false, description: 'Also send the text by SMS' },
            dryRun: {
              type: 'boolean',
              default: false,
              description: 'With sms: count parts, recipients and cost; send nothing, record nothing',
            },
            ...targetProperties,
          },
        },
        response: { 200: previewSchema, 202: statusReply, 400: { $ref: 'Error#' }, ...errors },
      },
    },
    async (req, reply) => {
      const body = req.body;
      if (body.estimatedEnd && Date.parse(body.estimatedEnd) < Date.now() - 60_000) {
        throw new ApiError(
          422,
          'estimate_in_past',
          'body.estimatedEnd is in the past; give when service is expected back.',
          { field: 'body.estimatedEnd' },
        );
      }
      const wantsSms = body.sms === true;
      for (const f of ['dryRun', 'areas', 'siteIds'] as const) {
        if (!wantsSms && (f === 'dryRun' ? body.dryRun : body[f]?.length))
          throw new ApiError(400, 'invalid_request', `body.${f} applies to a text sent by SMS: add "sms": true.`, {
            field: `body.${f}`,
          });
      }
      if (wantsSms && !body.text)
        throw new ApiError(400, 'invalid_request', 'body.text is required with "sms": true: it is the message sent.', {
          field: 'body.text',
        });
      const estimatedEnd = body.estimatedEnd ? new Date(body.estimatedEnd).toISOString() : undefined;
      if (!wantsSms)
        return reply
          .status(202)
          .send(await incidents.addUpdate(req.params.id, { text: body.text, estimatedEnd }).catch(toApiError));

      const incident = await messages.incident(req.params.id);
      if (['resolved', 'cancelled', 'billed'].includes(incident.doc.phase))
        throw new ApiError(
          409,
          'incident_closed',
          `Incident ${incident.doc._id} is ${incident.doc.phase}; it takes no more messages.`,
        );
      const checked = checkedOrThrow(() => checkedText(body.text!, smsPolicyOf(incident.rules), 'body.text'));
      const target = { areas: body.areas, siteIds: body.siteIds };
      if (body.dryRun)
        return reply
          .status(200)
          .send(await previewMessage(deps.store, incident.doc, target, checked, messages.rates()).catch(toTargetError));
      await targetSites(deps.store, incident.doc, target).catch(toTargetError);
      return reply
        .status(202)
        .send(
          await incidents
            .addUpdate(req.params.id, { text: body.text, estimatedEnd, sms: { text: checked.text, ...target } })
            .catch(toApiError),
        );
    },
  );

  app.post<{ Params: { id: string }; Body: { reason?: string } | null }>(
    '/v1/incidents/:id/escalate',
    {
      schema: {
        tags: ['incidents'],
        summary: 'Escalate to staff now',
        description:
          "Calls or messages every staff contact the rules escalate this incident to, without waiting for the rules' timers.",
        params,
        body: { type: 'object', nullable: true, additionalProperties: false, properties: { reason } },
        response: { 202: statusReply, ...errors },
      },
    },
    async (req, reply) =>
      reply.status(202).send(await incidents.escalate(req.params.id, req.body?.reason).catch(toApiError)),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/incidents/:id/acknowledge',
    {
      schema: {
        tags: ['incidents'],
        summary: 'Acknowledge the staff escalation: someone has taken it',
        description:
          "Stores who (the key's name) and when, stops the rules' escalation repeats and gives up the staff messages not yet sent. The first acknowledgement counts; a repeat answers it with `alreadyAcknowledged: true`. Staff can do the same by replying to the escalation SMS with its code (`OK 123456`).",
        params,
        body: { type: 'object', nullable: true, additionalProperties: false, properties: {} },
        response: { 202: acknowledgedReply, ...errors },
      },
    },
    acknowledgeHandler((id, who) => incidents.acknowledge(id, who), toApiError),
  );

  app.post<{ Params: { id: string }; Body: { siteIds: string[] } }>(
    '/v1/incidents/:id/scope',
    {
      schema: {
        tags: ['incidents'],
        summary: 'Add affected sites',
        description:
          'The sites (and every site they feed) join the incident; only subscribers not told yet are notified.',
        params,
        body: {
          type: 'object',
          required: ['siteIds'],
          additionalProperties: false,
          properties: {
            siteIds: {
              type: 'array',
              minItems: 1,
              maxItems: 500,
              uniqueItems: true,
              items: { type: 'string', minLength: 1, maxLength: 100 },
            },
          },
        },
        response: { 202: statusReply, ...errors },
      },
    },
    async (req, reply) =>
      reply.status(202).send(await incidents.extendScope(req.params.id, req.body.siteIds).catch(toApiError)),
  );

  app.post<{ Params: { id: string }; Body: { reason?: string } | null }>(
    '/v1/incidents/:id/cancel',
    {
      schema: {
        tags: ['incidents'],
        summary: 'Cancel a false alarm',
        description:
          'Nothing more is sent; whoever was told of the outage is told it was a false alarm. Only an incident not yet resolved can be cancelled.',
        params,
        body: { type: 'object', nullable: true, additionalProperties: false, properties: { reason } },
        response: { 202: statusReply, ...errors },
      },
    },
    async (req, reply) =>
      reply.status(202).send(await incidents.cancel(req.params.id, req.body?.reason).catch(toApiError)),
  );

  app.post<{ Params: { id: string }; Body: { note?: string } | null }>(
    '/v1/incidents/:id/reopen',
    {
      schema: {
        tags: ['incidents'],
        summary: 'Reopen a resolve that is still settling',
        description:
          'A monitoring resolve waits a few minutes before the restoration notices in case the site goes down again; reopening within that time carries on as one incident.',
        params,
        body: { type: 'object', nullable: true, additionalProperties: false, properties: { note: reason } },
        response: { 202: statusReply, ...errors },
      },
    },
    async (req, reply) =>
      reply.status(202).send(await incidents.reopen(req.params.id, req.body?.note).catch(toApiError)),
  );
};
