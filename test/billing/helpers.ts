/** What the billing tests share: a worker with the billing activities, subscribers, the billing routes alone. */
import Fastify, { type FastifyInstance } from 'fastify';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { ActivityDeps } from '../../activities';
import { createWorker } from '../../worker/worker';
import { createLogger } from '../../domain/log';
import { errorSchema, installErrorHandler } from '../../api/errors';
import { billingRoutes } from '../../api/routes/billing';
import type { AppDeps } from '../../api/app';
import type { Subscriber } from '../../domain/types';
import type { BillingSettings } from '../../billing/settings';
import type { IsolatedEnv } from '../support/env';

let runtimeInstalled = false;

/** The SDK logs every worker state change at INFO: warnings only (once per process). */
export function quietTemporalRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger('WARN') });
}

/** A worker on the test file's task queue, with these billing settings; it needs no channels or rules. */
export async function startBillingWorker(env: IsolatedEnv, billing: BillingSettings) {
  quietTemporalRuntime();
  const logger = createLogger(`test-billing-${env.name}`, process.env.LOG_LEVEL ?? 'warn');
  const deps: ActivityDeps & { billing: BillingSettings } = {
    store: env.store,
    logger,
    channels: {},
    rules: (() => Promise.reject(new Error('the billing tests load no rules'))) as unknown as ActivityDeps['rules'],
    billing,
  };
  const { worker, connection } = await createWorker({
    temporal: { address: env.servers.temporalAddress, namespace: 'default', taskQueue: env.taskQueue },
    workflowBundle: { codePath: env.servers.workflowBundlePath },
    deps,
  });
  const running = worker.run();
  return {
    worker,
    async stop() {
      worker.shutdown();
      await running;
      await connection.close();
    },
  };
}

/** The billing routes on an app of their own (no API keys), as api/app.ts registers them. */
export async function billingApp(env: IsolatedEnv, billing: BillingSettings): Promise<FastifyInstance> {
  const app = Fastify({
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: true } },
  });
  app.addSchema(errorSchema);
  installErrorHandler(app);
  const deps = {
    store: env.store,
    temporal: env.temporal,
    taskQueue: env.taskQueue,
    publicUrl: 'http://127.0.0.1',
    plivoAuthToken: 'x',
    billing,
  } as AppDeps & { billing: BillingSettings };
  await app.register(billingRoutes, deps);
  return app;
}

export function subscriber(
  id: string,
  smsAlerts: Subscriber['smsAlerts'],
  extra: Partial<Subscriber> = {},
): Subscriber {
  return {
    _id: id,
    name: `Test ${id}`,
    phones: ['+393470000000'],
    language: 'it',
    siteId: 'site-1',
    segment: 'residential',
    smsAlerts,
    optedOut: false,
    ...extra,
  };
}
