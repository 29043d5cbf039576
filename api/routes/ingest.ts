/**
 * `POST /v1/ingest/{source}/{integration}`: monitoring webhooks. The integration (from the
 * integrations file) says which token the tool presents, its time zone, and how its payloads
 * name a site. The body is kept as received (this plugin's own content-type parser hands the
 * handler the raw bytes), checked and normalized per tool (ingest/normalizers), and every alert
 * is stored before the answer. Whatever is refused is stored too, with the reason, in
 * rejected_payloads; the token itself is never stored or logged.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { AppDeps } from '../app';
import { ApiError } from '../errors';
import { ALERT_SOURCES, type RawDelivery } from '../../ingest/alert-event';
import { presentedToken, secretsEqual, signatureProblem } from '../../ingest/auth';
import { decodeBody } from '../../ingest/body';
import { IngestError } from '../../ingest/errors';
import { integrationsPathFromEnv, loadIntegrations, type Integration } from '../../ingest/integrations';
import { createIntake } from '../../ingest/intake';
import { createAlertProcessor } from '../../ingest/process';
import { storeRejectedPayload } from '../../ingest/store';
import { createIncidentService } from '../../services/incidents';

interface Params {
  source: string;
  integration: string;
}

/** How often alerts stored but not decided are looked for. */
const RESUME_EVERY_MS = 60_000;

/** What a refused request from an unknown caller may cost us in storage. */
const UNAUTHENTICATED_BODY_LIMIT = 16 * 1024;

const TOOL_BODIES = `Each tool posts its own format (documented in docs/monitoring-setup.md, templates in ingest/templates/):
- alertmanager: Alertmanager webhook JSON (version 4); each alert of \`alerts\` is handled on its own.
- grafana: Grafana Alerting webhook JSON; HMAC signature checked when the integration has a secret.
- zabbix: JSON from the shipped media type script (event_id, event_value, update_status, nseverity, host, host_ip, tags, event_ts).
- uptime-kuma: \`{heartbeat, monitor, msg}\` as JSON, or multipart with a \`data\` field.
- librenms: the shipped JSON body (device_id, rule_id, state, severity, hostname, ip, title, timestamp), text/plain or JSON.
- icinga2, nagios: the shipped curl command's form fields (type, host, service, state, output, timet, last_state_change, problem_id).
- healthchecks: the shipped JSON body (code, status, now, name, tags).
- prtg: form-encoded (sensorid, device, host, status, message, datetime); token in \`?token=\`.
- cloudevents: CloudEvents 1.0, structured (application/cloudevents+json), batch, or binary (ce-* headers); type ending .firing or .resolved, data.dedupKey.
Token: \`Authorization: Bearer <token>\`, Basic auth with the token as password, \`X-Avviso-Token\`, or \`?token=\`.`;

const outcome = {
  type: 'object',
  properties: {
    dedupKey: { type: 'string', description: 'The alert identity: <source>:<integration>:<native key>' },
    eventId: { type: 'string', description: 'This delivery of this alert state; a repeat has the same id' },
    action: {
      type: 'string',
      enum: [
        'accepted',
        'opened',
        'already_open',
        'resolved',
        'not_open',
        'recorded',
        'rejected',
        'joined',
        'absorbed',
        'reopened',
        'silenced',
      ],
    },
    incidentId: { type: 'string' },
    maintenanceId: { type: 'string', description: 'silenced: the planned maintenance its site is under' },
    episode: {
      type: 'integer',
      description: 'Which outage of this alert (the next firing after a resolution is a new one)',
    },
    duplicate: { type: 'boolean', description: 'Received before: the first result is reported' },
    reason: { type: 'string', description: 'Why it was recorded or rejected rather than acted on' },
  },
} as const;

const accepted = {
  type: 'object',
  properties: {
    received: { type: 'integer', description: 'Alerts in the payload' },
    results: { type: 'array', items: outcome },
  },
} as const;

/** The headers worth keeping with a payload: never Authorization or the token header. */
function keptHeaders(req: FastifyRequest, integration?: Integration): Record<string, string> {
  const keep = [
    'content-type',
    'content-length',
    'user-agent',
    'x-forwarded-for',
    integration?.signature?.signatureHeader,
    integration?.signature?.timestampHeader,
  ];
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value !== 'string') continue;
    if (keep.includes(name) || name.startsWith('ce-')) out[name] = value;
  }
  return out;
}

/** The URL without its token, for logs and stored payloads. */
export function withoutToken(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1[redacted]');
}

/** The headers for the normalizers: Node has lower-cased their names; a repeated one is joined. */
function lowerCaseHeaders(req: FastifyRequest): Record<string, string | undefined> {
  const headers = req.headers;
  for (const k in headers) if (Array.isArray(headers[k])) return joinRepeated(headers);
  return headers as Record<string, string | undefined>;
}

function joinRepeated(headers: FastifyRequest['headers']): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

export const ingestRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  // `avviso api` always passes its integrations, checked at start; without them (the tests, the
  // drill, the benchmarks build the app themselves) this is a development stack, example tokens included.
  const integrations =
    deps.integrations ??
    (await loadIntegrations(integrationsPathFromEnv(process.env), process.env, { development: true }));
  for (const warning of integrations.warnings) app.log.warn(warning);
  const processor = createAlertProcessor({
    store: deps.store,
    incidents: createIncidentService(deps),
    settleSeconds: deps.alertSettleSeconds,
  });
  const intake = createIntake({
    store: deps.store,
    processor,
    log: (err, eventId) => app.log.error({ err, eventId }, 'alert not decided; it is tried again later'),
  });
  // Alerts stored but not decided (a previous process stopped first) are decided at start and now and then.
  const resume = () =>
    void intake
      .resume((source, name) => integrations.find(source, name))
      .catch((err: unknown) => app.log.error({ err }, 'resuming undecided alerts failed'));
  const resumeTimer = setInterval(resume, RESUME_EVERY_MS);
  resumeTimer.unref();
  app.addHook('onReady', async () => resume());
  app.addHook('onClose', async () => clearInterval(resumeTimer));

  // Tools send JSON, forms, multipart and text: keep every body as raw bytes, decode per tool.
  // Encapsulated: the rest of the API keeps its parsers.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.post<{ Params: Params; Querystring: { token?: string }; Body: Buffer }>(
    '/v1/ingest/:source/:integration',
    {
      attachValidation: true,
      // The request log carries no token given in the query string: the app's request serializer
      // removes it (api/app.ts), with no serializer of this route's own (a child logger per request).
      schema: {
        tags: ['ingest'],
        summary: 'A monitoring tool reports alerts',
        description: `Normalizes the payload to alert events, stores each with the raw body, deduplicates repeats, and opens, updates or resolves incidents.\n\n${TOOL_BODIES}`,
        params: {
          type: 'object',
          required: ['source', 'integration'],
          properties: {
            source: { type: 'string', enum: [...ALERT_SOURCES], description: 'The sending tool' },
            integration: {
              type: 'string',
              pattern: '^[a-z0-9][a-z0-9_-]{0,62}$',
              description: 'The integration name, from the integrations file',
            },
          },
        },
        querystring: {
          type: 'object',
          properties: {
            token: { type: 'string', description: 'The integration token, for tools that cannot set headers (PRTG)' },
          },
        },
        response: {
          200: { description: 'Every alert was a repeat of one received before', ...accepted },
          202: {
            description:
              'Stored; one result per alert: what became of it, or `accepted` when its network tree is busy (decided right after, in order)',
            ...accepted,
          },
          400: { $ref: 'Error#' },
          401: { $ref: 'Error#' },
          403: { $ref: 'Error#' },
          404: { $ref: 'Error#' },
          415: { $ref: 'Error#' },
          422: { $ref: 'Error#' },
        },
      },
    },
    async (req, reply) => {
      const receivedAt = new Date();
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const integration = req.validationError
        ? undefined
        : integrations.find(req.params.source, req.params.integration);
      const token = presentedToken(req.headers, req.query ?? {});
      // An ingest API key bound to this integration (verified by api/plugins/auth.ts) stands for its token.
      const keyed =
        integration !== undefined &&
        req.apiKey?.role === 'ingest' &&
        req.apiKey.integration === `${integration.source}/${integration.name}`;
      const authenticated =
        keyed || (integration !== undefined && token !== undefined && secretsEqual(token.token, integration.token));
      const raw: RawDelivery = {
        body: body.toString('utf8'),
        contentType: req.headers['content-type'] ?? '',
        headers: keptHeaders(req, integration),
      };

      const refuse = async (err: IngestError): Promise<never> => {
        const truncated = !authenticated && raw.body.length > UNAUTHENTICATED_BODY_LIMIT;
        await storeRejectedPayload(deps.store, {
          receivedAt,
          source: String(req.params.source ?? ''),
          integration: String(req.params.integration ?? ''),
          status: err.statusCode,
          code: err.code,
          message: err.message,
          ...(err.field ? { field: err.field } : {}),
          raw: truncated ? { ...raw, body: raw.body.slice(0, UNAUTHENTICATED_BODY_LIMIT), truncated } : raw,
          remoteAddress: req.ip,
          ...(token ? { tokenVia: token.via } : {}),
        });
        req.log.warn(
          { source: req.params.source, integration: req.params.integration, code: err.code, field: err.field },
          'monitoring payload refused',
        );
        const details = { ...(err.field ? { field: err.field } : {}), ...err.details };
        throw new ApiError(
          err.statusCode,
          err.code,
          err.message,
          Object.keys(details).length > 0 ? details : undefined,
        );
      };

      if (!integration) {
        return refuse(
          new IngestError(
            'unknown_integration',
            `No integration ${req.params.source}/${req.params.integration} is configured: the URL is /v1/ingest/<source>/<name>, with source one of ${ALERT_SOURCES.join(', ')} and a name from the integrations file.`,
          ),
        );
      }
      if (!token && !keyed)
        return refuse(
          new IngestError(
            'bad_token',
            'No token: send it as "Authorization: Bearer <token>", as the Basic auth password, in X-Avviso-Token, or as ?token=',
          ),
        );
      if (!authenticated)
        return refuse(
          new IngestError(
            'bad_token',
            `The token does not match integration ${integration.source}/${integration.name}.`,
          ),
        );
      if (integration.signature) {
        const problem = signatureProblem(integration.signature, body, req.headers, receivedAt);
        if (problem) return refuse(new IngestError('bad_signature', `Grafana signature refused: ${problem}.`));
      }

      try {
        // A resend of a body already answered (most of an alert storm) is answered without parsing it again.
        const result =
          intake.answerResend(integration, raw) ??
          (await intake.accept({
            integration,
            payload: await decodeBody(body, raw.contentType, raw.body),
            raw,
            headers: lowerCaseHeaders(req),
            receivedAt,
          }));
        const actions = result.body.results.map((r) => r.action + (r.duplicate ? '(repeat)' : ''));
        req.log.info(
          { integration: `${integration.source}/${integration.name}`, alerts: result.body.received, actions },
          'monitoring alerts received',
        );
        req.webhookOutcomes = result.body.results; // counted by api/plugins/metrics.ts
        return reply.status(result.status).send(result.body);
      } catch (err) {
        if (err instanceof IngestError) return refuse(err);
        throw err;
      }
    },
  );
};
