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
import { siteRoutes } from './routes/sites';
import { plivoStatusRoutes } from './plivo/status';
import { rulesRoutes } from './routes/rules';
import type { RulesHolder } from '../rules';
import { plivoInboundRoutes } from './plivo/inbound';
import { voiceRoutes } from './routes/voice';
import { voiceCallHandlers } from './plivo/voice-calls';
import { maskPhone } from '../domain/phone';
import { ingestRoutes } from './routes/ingest';
import { startReceiptApplier } from '../store/receipts';
import type { DeliveryPolicy } from '../workflows/incident';

export interface AppDeps {
  store: Store;
  temporal: Client;
  taskQueue: string;
  /** The address Plivo calls back: signatures are computed over it. */
  publicUrl: string;
  plivoAuthToken: string;
  /** Sends a reply SMS (answers to STOP, INFO...); without it, inbound SMS get no reply. */
  replySms?: (to: string, text: string) => Promise<void>;
  /** Given to each new incident's workflow; the workflow's defaults otherwise. */
  deliveryPolicy?: DeliveryPolicy;
  /** How often stored Plivo receipts are applied to delivery records; 0 turns it off. */
  applyReceiptsEveryMs?: number;
  /** Monitoring integrations; the integrations file (AVVISO_INTEGRATIONS, or the development default) otherwise. */
  integrations?: import('../ingest/integrations').IntegrationSet;
  /** The notification rules; the /v1/rules routes are served when given. */
  rules?: RulesHolder;
}

function maskedRequest(req: { method: string; url: string; id?: string }) {
  return { method: req.method, url: req.url.replace(/(\+|%2B)?\d{8,}/gi, (m) => maskPhone(decodeURIComponent(m))), id: req.id };
}

export async function buildApp(deps: AppDeps, logger: FastifyServerOptions['logger'] = false): Promise<FastifyInstance> {
  const app = Fastify({
    logger,
    // Request logs carry method and URL only, and URLs can hold a phone number (a voice call's
    // delivery id, a search): mask every run of 8 or more digits.
    ...(logger ? { logger: typeof logger === 'object' ? { ...logger, serializers: { req: maskedRequest } } : { serializers: { req: maskedRequest } } } : {}),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: true } },
  });
  await app.register(formbody);
  app.addSchema(errorSchema);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Avviso API', version: '0.1.0', description: 'Open and resolve network incidents; Avviso tells the affected subscribers by SMS.' },
      tags: [
        { name: 'incidents', description: 'Outages and their lifecycle' },
        { name: 'network', description: 'Sites and subscribers' },
        { name: 'plivo', description: 'Callbacks from Plivo' },
        { name: 'operations', description: 'Health and documentation' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  installErrorHandler(app);
  await app.register(healthRoutes, deps);
  await app.register(incidentRoutes, deps);
  await app.register(siteRoutes, deps);
  await app.register(plivoStatusRoutes, deps);
  if (deps.rules) await app.register(rulesRoutes, { rules: deps.rules });
  await app.register(plivoInboundRoutes, deps);
  await app.register(voiceRoutes, { publicUrl: deps.publicUrl, plivoAuthToken: deps.plivoAuthToken, ...voiceCallHandlers(deps.store) });
  await app.register(ingestRoutes, deps);
  if (deps.applyReceiptsEveryMs !== 0) {
    const applier = startReceiptApplier(deps.store, (err) => app.log.error({ err }, 'applying receipts failed; will retry'), deps.applyReceiptsEveryMs ?? 500);
    app.addHook('onClose', async () => applier.stop());
  }
  return app;
}
