/**
 * The whole system in one test process, each part real: the API (Fastify, listening on a free
 * port), a Temporal worker, the Plivo simulator (spoken to through the real plivo SDK), on the
 * harness's Temporal dev server and FerretDB, with this file's own database and task queue.
 */
import type { FastifyInstance } from 'fastify';
import { DefaultLogger, Runtime, type Worker } from '@temporalio/worker';
import { buildApp, type AppDeps } from '../../api/app';
import { buildDeliveryDeps } from '../../worker/delivery-deps';
import { RulesHolder } from '../../rules';
import { closeChannels, createChannels, type SocialSettings } from '../../channels';
import { socialCollections } from '../../channels/social/posts';
import type { SmtpEmailSettings } from '../../channels/email-smtp';
import { statusFeedCollections } from '../../channels/status-feed';
import { rulesResolver } from '../../store/rule-versions';
import path from 'node:path';

/** The end-to-end tests' rules (those of `avviso dev`): the service as sold, without grace delay or quiet hours. */
export const TEST_RULES = path.join(__dirname, '..', '..', 'rules', 'dev');
import { createLogger } from '../../domain/log';
import { startSimulator, type SimulatorOptions } from '../../sim/plivo-simulator';
import type { DeliveryPolicy } from '../../workflows/incident';
import { PlivoSmsChannel } from '../../channels/sms-plivo';
import { createWorker } from '../../worker/worker';
import { freePort } from '../../dev/process';
import { isolatedEnv, type IsolatedEnv } from './env';
import { createApiKey } from '../../store/api-keys';
import { startReceiptApplier } from '../../store/receipts';

export const SIM_AUTH_ID = 'MATESTSIMULATOR000001';
export const SIM_AUTH_TOKEN = 'test-simulator-token';

export interface InboxMessage {
  messageUuid: string;
  from: string;
  text: string;
  units: number;
  status: string;
  acceptedAt: string;
}

export interface TestStack extends IsolatedEnv {
  apiUrl: string;
  simUrl: string;
  api: FastifyInstance;
  /** The in-process worker; undefined with `inProcessWorker: false` (the test runs its own, see `workerEnv`). */
  worker: Worker | undefined;
  /** The environment an `avviso worker` process needs to serve this stack (its database, task queue, simulator). */
  workerEnv: NodeJS.ProcessEnv;
  /** What each phone received, in order, from the simulator's own record. */
  inbox(): Promise<Record<string, InboxMessage[]>>;
  /** An admin API key, which `call` sends unless told otherwise. */
  adminKey: string;
  /** Makes another API key (role operator, viewer, admin, or ingest with an integration). */
  createKey(role: string, opts?: { name?: string; integration?: string; rateLimitPerMinute?: number }): Promise<string>;
  stop(): Promise<void>;
}

export interface TestStackOptions {
  /** Plivo account limits the worker respects (default: none). */
  plivoLimits?: { requestsPer5s?: number; messagesPerSecond?: number; queueSeconds?: number };
  deliveryPolicy?: DeliveryPolicy;
  /** Faults and other settings for the simulator. */
  simulator?: Partial<SimulatorOptions>;
  /** Rule file or folder; the test rules (no grace delay, no quiet hours) by default. */
  rulesPath?: string;
  /** Monitoring integrations for the ingest routes (default: the integrations file). */
  integrations?: AppDeps['integrations'];
  /** How long monitoring resolves settle (default 0: restoration at once, as most tests expect). */
  alertSettleSeconds?: number;
  /** API key limits (default: no practical rate limit, so that polling tests are not throttled). */
  access?: AppDeps['access'];
  /** Channels besides SMS and the status feed (default: none): voice calls through the simulator, e-mail through an SMTP relay. */
  channels?: { voiceCallerId?: string; email?: SmtpEmailSettings; social?: Omit<SocialSettings, 'statusPageUrl'> };
  /** Run a worker in this process (default true); false when the test starts `avviso worker` processes itself. */
  inProcessWorker?: boolean;
}

let runtimeInstalled = false;
/** The SDK logs every worker state change at INFO: keep test output to what matters. */
function quietTemporalRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger((process.env.TEMPORAL_LOG_LEVEL as 'WARN' | undefined) ?? 'WARN') });
}

export async function startTestStack(testFile: string, opts: TestStackOptions = {}): Promise<TestStack> {
  quietTemporalRuntime();
  const env = await isolatedEnv(testFile);
  const createKey = async (
    role: string,
    o: { name?: string; integration?: string; rateLimitPerMinute?: number } = {},
  ) =>
    (
      await createApiKey(env.store, {
        name: o.name ?? `test ${role}`,
        role,
        integration: o.integration,
        rateLimitPerMinute: o.rateLimitPerMinute,
        createdBy: 'test',
      })
    ).key;
  const adminKey = await createKey('admin');
  const sim = await startSimulator({
    authId: SIM_AUTH_ID,
    authToken: SIM_AUTH_TOKEN,
    host: '127.0.0.1',
    port: 0,
    callbackDelayMs: 20,
    ...opts.simulator,
  });
  const apiPort = await freePort();
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const rules = await RulesHolder.open({ path: opts.rulesPath ?? TEST_RULES });
  const replies = new PlivoSmsChannel({
    authId: SIM_AUTH_ID,
    authToken: SIM_AUTH_TOKEN,
    baseUrl: sim.url,
    sender: 'Avviso',
  });
  const api = await buildApp({
    store: env.store,
    temporal: env.temporal,
    taskQueue: env.taskQueue,
    publicUrl: apiUrl,
    plivoAuthToken: SIM_AUTH_TOKEN,
    rules,
    deliveryPolicy: opts.deliveryPolicy,
    integrations: opts.integrations,
    alertSettleSeconds: opts.alertSettleSeconds ?? 0,
    access: { rateLimitPerMinute: 1_000_000, ...opts.access },
    replySms: async (to, text) => void (await replies.send([{ deliveryId: 'reply', to, text, language: 'it' }])),
  });
  await api.listen({ host: '127.0.0.1', port: apiPort });

  const logger = createLogger(`test-worker-${env.name}`, process.env.LOG_LEVEL ?? 'warn');
  const otherChannels = createChannels(
    {
      ...(opts.channels?.voiceCallerId
        ? {
            voice: {
              authId: SIM_AUTH_ID,
              authToken: SIM_AUTH_TOKEN,
              baseUrl: sim.url,
              callerId: opts.channels.voiceCallerId,
              publicUrl: apiUrl,
            },
          }
        : {}),
      ...(opts.channels?.email ? { email: opts.channels.email } : {}),
      ...(opts.channels?.social ? { social: { ...opts.channels.social, statusPageUrl: `${apiUrl}/status` } } : {}),
    },
    {
      statusFeed: statusFeedCollections(env.store),
      socialPosts: socialCollections(env.store),
      socialRefused: (r) => logger.error(r, `${r.network} refused the post for good`),
    },
  );
  const plivo = {
    authId: SIM_AUTH_ID,
    authToken: SIM_AUTH_TOKEN,
    baseUrl: sim.url,
    sender: 'Avviso',
    requestsPer5s: 0,
    messagesPerSecond: 0,
    queueSeconds: 600,
    ...opts.plivoLimits,
  };
  const inProcess =
    opts.inProcessWorker === false
      ? undefined
      : await createWorker({
          temporal: { address: env.servers.temporalAddress, namespace: 'default', taskQueue: env.taskQueue },
          workflowBundle: { codePath: env.servers.workflowBundlePath },
          deps: buildDeliveryDeps({
            store: env.store,
            logger,
            rules: rulesResolver(env.store, rules),
            otherChannels: Object.fromEntries(otherChannels),
            publicUrl: apiUrl,
            plivo,
          }),
        });
  const running = inProcess?.worker.run();
  // The worker applies receipts (as `avviso worker` does); a worker process of the test's own gets AVVISO_RECEIPTS_EVERY_MS.
  const applier = inProcess
    ? startReceiptApplier(env.store, (err) => logger.error({ err }, 'applying receipts failed'), 100)
    : undefined;
  const workerEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TEMPORAL_ADDRESS: env.servers.temporalAddress,
    TEMPORAL_TASK_QUEUE: env.taskQueue,
    MONGODB_URI: env.servers.mongoUri,
    MONGODB_DB: env.dbName,
    PLIVO_AUTH_ID: SIM_AUTH_ID,
    PLIVO_AUTH_TOKEN: SIM_AUTH_TOKEN,
    PLIVO_BASE_URL: sim.url,
    PLIVO_REQUESTS_PER_5S: String(plivo.requestsPer5s),
    PLIVO_MESSAGES_PER_SECOND: String(plivo.messagesPerSecond),
    AVVISO_RULES: opts.rulesPath ?? TEST_RULES,
    AVVISO_PUBLIC_URL: apiUrl,
    AVVISO_RECEIPTS_EVERY_MS: '100',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    // The test rules escalate to the shipped placeholder contact: a development stack, explicitly.
    AVVISO_MODE: 'development',
  };

  let stopped: Promise<void> | undefined;
  return {
    ...env,
    apiUrl,
    simUrl: sim.url,
    api,
    worker: inProcess?.worker,
    workerEnv,
    adminKey,
    createKey,
    async inbox() {
      const res = await fetch(`${sim.url}/inbox.json`);
      return ((await res.json()) as { phones: Record<string, InboxMessage[]> }).phones;
    },
    stop() {
      return (stopped ??= (async () => {
        inProcess?.worker.shutdown();
        await running;
        await applier?.stop();
        await inProcess?.connection.close();
        await closeChannels(otherChannels);
        await api.close();
        await sim.close();
        await env.close();
      })());
    },
  };
}

/**
 * JSON over HTTP against the test API, with the stack's admin key unless `opts.key` says another
 * (null: no key) or the headers carry their own Authorization or X-Api-Key.
 */
export async function call(
  stack: TestStack,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  opts: { key?: string | null } = {},
) {
  const key = opts.key === undefined ? stack.adminKey : opts.key;
  const own = Object.keys(headers).some((h) => ['authorization', 'x-api-key'].includes(h.toLowerCase()));
  const auth: Record<string, string> = key && !own ? { authorization: `Bearer ${key}` } : {};
  const res = await fetch(stack.apiUrl + path, {
    method,
    headers: body === undefined ? { ...auth, ...headers } : { 'content-type': 'application/json', ...auth, ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}
