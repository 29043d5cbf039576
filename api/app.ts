/**
 * Builds the Fastify app without listening, so that tests drive the same app the server runs.
 * Every route declares JSON schemas: they validate requests and make the OpenAPI document
 * served at /openapi.json (browsable at /docs).
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import formbody from '@fastify/formbody';
import type { Client } from '@temporalio/client';
import type { Store } from '../store/db';
import { errorSchema, installErrorHandler } from './errors';
import { healthRoutes } from './routes/health';
import { incidentRoutes } from './routes/incidents';
import { incidentActionRoutes } from './routes/incident-actions';
import { maintenanceRoutes } from './routes/maintenances';
import { maintenancePreviewRoutes } from './routes/maintenance-preview';
import { siteRoutes } from './routes/sites';
import { subscriberRoutes } from './routes/subscribers';
import { contactRoutes } from './routes/contacts';
import { importRoutes } from './routes/import';
import { plivoStatusRoutes } from './plivo/status';
import { rulesRoutes } from './routes/rules';
import { listContacts } from '../store/contacts';
import { audienceFacts } from '../store/audience';
import type { IncidentFacts } from '../rules';
import type { RulesHolder } from '../rules';
import { plivoInboundRoutes } from './plivo/inbound';
import { voiceRoutes } from './routes/voice';
import { voiceCallHandlers } from './plivo/voice-calls';
import { maskPhone } from '../domain/phone';
import { ingestRoutes, withoutToken } from './routes/ingest';
import { billingRoutes } from './routes/billing';
import { consolePlugin } from './console';
import { authPlugin, type AuthOptions } from './plugins/auth';
import { metricsPlugin } from './plugins/metrics';
import { echoRequestIds, requestIdOf } from './plugins/request-id';
import { keyRoutes } from './routes/keys';
import { statusPageRoutes } from './routes/status-page';
import { statusFeedCollections } from '../channels/status-feed';
import { startReceiptApplier } from '../store/receipts';
import type { DeliveryPolicy } from '../workflows/incident';

export interface AppDeps {
  store: Store;
  /** Signs the console's cookies (AVVISO_CONSOLE_SECRET); absent: a random key per process. */
  consoleSecret?: string;
  temporal: Client;
  taskQueue: string;
  /** The address Plivo calls back: signatures are computed over it. */
  publicUrl: string;
  plivoAuthToken: string;
  /** Sends a reply SMS (answers to STOP, INFO...); without it, inbound SMS get no reply. */
  replySms?: (to: string, text: string) => Promise<void>;
  /** Given to each new incident's workflow; the workflow's defaults otherwise. */
  deliveryPolicy?: DeliveryPolicy;
  /** How long a monitoring resolve settles before restoration notices (default 300 s; ingest/process.ts). */
  alertSettleSeconds?: number;
  /** How often stored Plivo receipts are applied to delivery records; 0 turns it off. */
  applyReceiptsEveryMs?: number;
  /** Monitoring integrations; the integrations file (AVVISO_INTEGRATIONS, or the development default) otherwise. */
  integrations?: import('../ingest/integrations').IntegrationSet;
  /** The notification rules; the /v1/rules routes are served when given. */
  rules?: RulesHolder;
  /** API keys: requests per minute per key (default 600), failed attempts per address (default 60). */
  access?: Omit<AuthOptions, 'store'>;
  /** The largest request body, in bytes (default 1 MiB); some routes take less (api/plugins/auth.ts). */
  bodyLimit?: number;
  /** The public status page's name (default "Avviso") and time zone (default Europe/Rome). */
  statusPage?: { siteName?: string; timeZone?: string };
}

function maskedRequest(req: { method: string; url: string; id?: string }) {
  return {
    method: req.method,
    url: withoutToken(req.url).replace(/(\+|%2B)?\d{8,}/gi, (m) => maskPhone(decodeURIComponent(m))),
    id: req.id,
  };
}

export async function buildApp(
  deps: AppDeps,
  logger: FastifyServerOptions['logger'] = false,
): Promise<FastifyInstance> {
  const app = Fastify({
    logger,
    // Request logs carry method and URL only, and URLs can hold a phone number (a voice call's
    // delivery id, a search): mask every run of 8 or more digits; and a webhook's ?token=.
    ...(logger
      ? {
          logger:
            typeof logger === 'object'
              ? { ...logger, serializers: { req: maskedRequest } }
              : { serializers: { req: maskedRequest } },
        }
      : {}),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: true } },
    bodyLimit: deps.bodyLimit ?? 1024 * 1024,
    // Every log line of a request carries its id as reqId; callers may bring their own (X-Request-Id).
    genReqId: requestIdOf,
  });
  echoRequestIds(app);
  // Before any route: a route keeps the error handler of when it was declared.
  installErrorHandler(app);
  // First, so that their hooks see every route: keys and roles, rate limits, body limits, audit log; metrics.
  await app.register(authPlugin, { store: deps.store, ...deps.access });
  await app.register(metricsPlugin, { store: deps.store });
  await app.register(formbody);
  app.addSchema(errorSchema);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Avviso API',
        version: '0.1.0',
        description: 'Open and resolve network incidents; Avviso tells the affected subscribers by SMS.',
      },
      tags: [
        { name: 'incidents', description: 'Outages and their lifecycle' },
        {
          name: 'maintenance',
          description: 'Planned maintenance: notice, reminders, start, completion, reschedule, cancel',
        },
        { name: 'network', description: 'Sites and subscribers' },
        { name: 'plivo', description: 'Callbacks from Plivo' },
        { name: 'operations', description: 'Health, readiness, metrics and documentation' },
        { name: 'access', description: 'API keys (admin) and the audit log' },
        { name: 'status', description: 'The public status page and its feeds' },
      ],
      // Most routes want an API key (api/plugins/auth.ts says which role); the docs page offers to send one.
      components: {
        securitySchemes: {
          apiKey: {
            type: 'http',
            scheme: 'bearer',
            description: 'avk_<id>_<secret>, from `avviso keys create` or POST /v1/keys',
          },
        },
      },
      security: [{ apiKey: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(healthRoutes, deps);
  await app.register(keyRoutes, deps);
  await app.register(statusPageRoutes, {
    feed: statusFeedCollections(deps.store),
    publicUrl: deps.publicUrl,
    ...deps.statusPage,
    areas: async () =>
      (await deps.store.sites.distinct('area')).filter((a): a is string => typeof a === 'string' && a !== '').sort(),
  });
  await app.register(incidentRoutes, deps);
  await app.register(incidentActionRoutes, deps);
  await app.register(maintenanceRoutes, deps);
  await app.register(maintenancePreviewRoutes, deps);
  await app.register(siteRoutes, deps);
  await app.register(subscriberRoutes, deps);
  await app.register(contactRoutes, deps);
  await app.register(importRoutes, deps);
  await app.register(plivoStatusRoutes, deps);
  if (deps.rules) {
    // Simulate without an audience of its own: the real subscribers of the sites, as a live incident would see them.
    const audience = (incident: IncidentFacts) =>
      audienceFacts(deps.store, incident.siteIds, incident.openedAt ? new Date(incident.openedAt) : new Date());
    await app.register(rulesRoutes, {
      rules: deps.rules,
      audience,
      storedContacts: () => listContacts(deps.store, {}),
    });
  }
  await app.register(plivoInboundRoutes, deps);
  await app.register(voiceRoutes, {
    publicUrl: deps.publicUrl,
    plivoAuthToken: deps.plivoAuthToken,
    ...voiceCallHandlers(deps.store),
  });
  await app.register(ingestRoutes, deps);
  await app.register(billingRoutes, deps);
  await app.register(consolePlugin, { ...deps, prefix: '/console' });
  // Off unless asked for: the worker applies receipts (worker/main.ts); the API only stores them.
  if (deps.applyReceiptsEveryMs) {
    const applier = startReceiptApplier(
      deps.store,
      (err) => app.log.error({ err }, 'applying receipts failed; will retry'),
      deps.applyReceiptsEveryMs ?? 500,
    );
    app.addHook('onClose', async () => applier.stop());
  }
  return app;
}
