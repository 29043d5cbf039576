/**
 * The fault drill: one incident with N paying subscribers, handled by several `avviso worker`
 * processes at once, while at random moments a worker is killed (SIGKILL) and started again,
 * FerretDB is restarted, the Temporal dev server (file-backed) is restarted, and the Plivo
 * simulator fails a share of requests (5xx, 429 with Retry-After, connections dropped before and
 * after accepting) and reports a share of messages undelivered, with delayed, duplicated and
 * reordered receipts. The verdict comes from the simulator's own record (./check.ts).
 *
 * "Random moments" are drawn from a seeded PRNG as points in the sending: each fault fires when
 * the simulator has accepted that share of the messages the drill expects, so every fault lands
 * while messages are going out, whatever the speed of the machine.
 *
 * Everything is real and on loopback: servers in a temporary folder on free ports, the API and the
 * simulator in this process (the simulator's record is the referee, so it is not restarted), the
 * workers as child processes exactly as production runs them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, restartablePort, spawnManaged, type ManagedProcess } from '../dev/process';
import { PROJECT_ROOT, startFerretDb, startTemporalDevServer } from '../dev/services';
import { buildApp } from '../api/app';
import { connectStore, type Store } from '../store/db';
import { connectTemporal } from '../temporal/client';
import { startSimulator } from '../sim/plivo-simulator';
import { RulesHolder } from '../rules';
import { createApiKey } from '../store/api-keys';
import { mulberry32 } from '../domain/prng';
import type { Site, Subscriber } from '../domain/types';
import { subscribersChanged } from '../store/site-roster';
import { judge, type NoticeKind, type RecordedMessage, type Verdict } from './check';

export interface DrillOptions {
  subscribers: number;
  workers: number;
  workerKills: number;
  ferretRestarts: number;
  temporalRestarts: number;
  /** Share of send requests that fail, split evenly over 500, 503, 429, dropped before and after accepting. */
  requestFailShare: number;
  undeliveredRate: number;
  seed: number;
  batchSize: number;
  /** Give up after this long (the verdict is still computed, with what was delivered by then). */
  timeoutMs: number;
  log?: (line: string) => void;
}

export const DRILL_DEFAULTS: DrillOptions = {
  subscribers: 20_000,
  workers: 2,
  workerKills: 3,
  ferretRestarts: 1,
  temporalRestarts: 1,
  requestFailShare: 0.2,
  undeliveredRate: 0.1,
  seed: 20261202,
  batchSize: 1000,
  timeoutMs: 3 * 3600_000,
};

export interface DrillEvent {
  atMs: number;
  what: string;
  progress: number;
}

export interface DrillReport extends Verdict {
  durationMs: number;
  outageMs: number;
  restorationMs: number;
  timedOut: boolean;
  events: DrillEvent[];
  simulator: unknown;
  options: Omit<DrillOptions, 'log'>;
}

const AUTH_ID = 'MADRILLSIMULATOR0001';
const AUTH_TOKEN = 'drill-simulator-token';
const SITE: Site = { _id: 'tower-drill', name: 'Drill tower', area: 'Borgo Prova', kind: 'tower', uplink: null };
const phone = (i: number) => `+39347${String(6000000 + i).padStart(7, '0')}`;

/** What the dev rules' Italian texts say (rules/default/templates/sms.yaml). */
export function noticeKind(text: string): NoticeKind {
  if (/è stato interrotto/.test(text)) return 'combined';
  if (/guasto/.test(text)) return 'outage';
  if (/ripristinato/.test(text)) return 'restored';
  return 'other';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retries a call that may meet a server being restarted. */
async function persist<T>(what: string, f: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await f();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(err as Error).message}`);
      await sleep(500);
    }
  }
}

export async function runDrill(o: DrillOptions): Promise<DrillReport> {
  const log = o.log ?? ((line: string) => process.stderr.write(`drill: ${line}\n`));
  const random = mulberry32(o.seed);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'avviso-drill-'));
  const [temporalPort, ferretPort, apiPort] = [await restartablePort(), await restartablePort(), await freePort()];
  const temporalAddress = `127.0.0.1:${temporalPort}`;
  const mongoUri = `mongodb://127.0.0.1:${ferretPort}/`;
  const dbName = 'drill';
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const startTemporal = () =>
    startTemporalDevServer({ port: temporalPort, dbFile: path.join(tmp, 'temporal.db'), output: 'ignore' });
  const startFerret = () =>
    startFerretDb({
      port: ferretPort,
      dir: path.join(tmp, 'ferretdb'),
      output: process.env.DRILL_WORKER_OUTPUT === 'prefix' ? 'prefix' : 'ignore',
    });

  let temporal: ManagedProcess = await startTemporal();
  let ferret: ManagedProcess = await startFerret();
  const workers: ManagedProcess[] = [];
  let store: Store | undefined;
  let cleanup: (() => Promise<void>)[] = [];
  const started = Date.now();
  const events: DrillEvent[] = [];
  // The API's error log, printed as it comes and kept: a call that keeps failing says why.
  const apiErrors: string[] = [];
  const apiLog = {
    write(line: string) {
      let brief = line.trim();
      try {
        const entry = JSON.parse(line) as {
          msg?: string;
          err?: { type?: string; message?: string };
          req?: { method?: string; url?: string };
        };
        brief = `${entry.msg ?? ''}${entry.req ? ` (${entry.req.method} ${entry.req.url})` : ''}: ${entry.err?.type ?? ''} ${entry.err?.message ?? ''}`;
      } catch {
        /* not JSON: keep the line */
      }
      apiErrors.push(brief);
      if (apiErrors.length > 20) apiErrors.shift();
      log(`api: ${brief}`);
    },
  };
  try {
    store = await connectStore(mongoUri, dbName);
    // How the API's database client sees FerretDB come and go: the first thing to read when the
    // API stays unavailable after a restart.
    let lastType = '';
    store.client.on('serverDescriptionChanged', (e) => {
      if (e.newDescription.type === lastType) return;
      lastType = e.newDescription.type;
      log(`api database client: ${lastType}${e.newDescription.error ? ` (${e.newDescription.error.message})` : ''}`);
    });
    store.client.on('serverHeartbeatFailed', (e) => log(`api database client: heartbeat failed: ${e.failure.message}`));
    await store.sites.insertOne(SITE);
    const audience = Array.from({ length: o.subscribers }, (_, i) => phone(i));
    for (let i = 0; i < o.subscribers; i += 1000) {
      const subs: Subscriber[] = audience.slice(i, i + 1000).map((p, j) => ({
        _id: `D-${String(i + j).padStart(6, '0')}`,
        name: `Subscriber ${i + j}`,
        phones: [p],
        language: 'it',
        siteId: SITE._id,
        segment: 'residential',
        smsAlerts: { active: true, since: new Date('2026-01-01T00:00:00Z') },
        optedOut: false,
      }));
      await store.subscribers.insertMany(subs);
    }
    await subscribersChanged(store, [SITE._id]);
    const share = o.requestFailShare / 5;
    const sim = await startSimulator({
      authId: AUTH_ID,
      authToken: AUTH_TOKEN,
      host: '127.0.0.1',
      port: 0,
      callbackDelayMs: 20,
      faults: {
        seed: o.seed,
        errorRate: { '500': share, '503': share },
        rateLimit: { rate429: share, retryAfterSeconds: 1 },
        dropBeforeAcceptRate: share,
        dropAfterAcceptRate: share,
        undeliveredRate: o.undeliveredRate,
        callbacks: { duplicateRate: 0.1, reorder: 0.2, delayMs: { min: 0, max: 500 } },
      },
    });
    cleanup.push(() => sim.close());
    const temporalClient = await connectTemporal({
      address: temporalAddress,
      namespace: 'default',
      taskQueue: 'drill',
    });
    cleanup.push(() => temporalClient.connection.close());
    const rules = await RulesHolder.open({ path: path.join(PROJECT_ROOT, 'rules', 'dev') });
    const api = await buildApp(
      {
        store,
        temporal: temporalClient,
        taskQueue: 'drill',
        publicUrl: apiUrl,
        plivoAuthToken: AUTH_TOKEN,
        rules,
        deliveryPolicy: { deliveryTimeoutMs: 20_000, maxAttempts: 8, sweepEveryMs: 2000, batchSize: o.batchSize },
        alertSettleSeconds: 0,
        access: { rateLimitPerMinute: 1_000_000 },
      },
      { level: 'error', name: 'drill-api', stream: apiLog },
    );
    await api.listen({ host: '127.0.0.1', port: apiPort });
    cleanup.unshift(() => api.close());
    const key = (await createApiKey(store, { name: 'drill', role: 'operator', createdBy: 'drill' })).key;
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };

    const workerEnv: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_TASK_QUEUE: 'drill',
      MONGODB_URI: mongoUri,
      MONGODB_DB: dbName,
      PLIVO_AUTH_ID: AUTH_ID,
      PLIVO_AUTH_TOKEN: AUTH_TOKEN,
      PLIVO_BASE_URL: sim.url,
      PLIVO_REQUESTS_PER_5S: '0',
      PLIVO_MESSAGES_PER_SECOND: '0',
      AVVISO_RULES: path.join(PROJECT_ROOT, 'rules', 'dev'),
      AVVISO_PUBLIC_URL: apiUrl,
      AVVISO_RECEIPTS_EVERY_MS: '200',
      LOG_LEVEL: process.env.DRILL_WORKER_LOG_LEVEL ?? 'error',
      // rules/dev escalates to the shipped placeholder contact: a development stack, explicitly.
      AVVISO_MODE: 'development',
    };
    let workerCount = 0;
    const startWorker = () =>
      spawnManaged(
        `worker-${++workerCount}`,
        process.execPath,
        [path.join(PROJECT_ROOT, 'bin', 'avviso.js'), 'worker'],
        { env: workerEnv, output: process.env.DRILL_WORKER_OUTPUT === 'prefix' ? 'prefix' : 'ignore' },
      );
    for (let i = 0; i < o.workers; i++) workers.push(startWorker());

    // The faults, each at a random point of the sending (a share of the messages expected).
    const expected = 2 * o.subscribers;
    const plan = [
      ...Array.from({ length: o.workerKills }, () => 'kill a worker'),
      ...Array.from({ length: o.ferretRestarts }, () => 'restart FerretDB'),
      ...Array.from({ length: o.temporalRestarts }, () => 'restart Temporal'),
    ]
      .map((what) => ({ what, at: 0.05 + random() * 0.85 }))
      .sort((a, b) => a.at - b.at);
    log(
      `${o.subscribers} subscribers, ${o.workers} workers; faults at ${plan.map((p) => `${Math.round(p.at * 100)}% (${p.what})`).join(', ')}`,
    );
    const accepted = async () =>
      ((await (await fetch(`${sim.url}/control/stats`)).json()) as { messages: { accepted: number } }).messages
        .accepted;
    let chaosDone = false;
    let chaosError: Error | undefined;
    // A server that does not come back is the drill's failure, not the system's: try again, say so.
    const startAgain = async (what: string, start: () => Promise<ManagedProcess>): Promise<ManagedProcess> => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await start();
        } catch (err) {
          log(`${what} did not start again (attempt ${attempt}): ${(err as Error).message}`);
          if (attempt >= 5) throw err;
          await sleep(2000);
        }
      }
    };
    const chaos = (async () => {
      let floor = 0;
      for (const step of plan) {
        // Two faults never land on the same moment: each waits for some sending after the last one.
        const at = Math.max(step.at, floor + 0.03);
        while ((await accepted()) < at * expected) {
          if (chaosDone) return;
          await sleep(100);
        }
        const progress = (await accepted()) / expected;
        const t = Date.now();
        if (step.what === 'kill a worker') {
          const i = Math.floor(random() * workers.length);
          workers[i]!.child.kill('SIGKILL');
          await workers[i]!.exited;
          workers[i] = startWorker();
        } else if (step.what === 'restart FerretDB') {
          await ferret.stop();
          ferret = await startAgain('FerretDB', startFerret);
        } else {
          await temporal.stop();
          temporal = await startAgain('Temporal', startTemporal);
        }
        floor = progress;
        events.push({ atMs: t - started, what: step.what, progress });
        log(
          `${step.what} at ${(progress * 100).toFixed(0)}% of the messages (${((Date.now() - t) / 1000).toFixed(1)} s)`,
        );
      }
    })().catch((err: Error) => {
      chaosError = err;
      log(`the faults stopped: ${err.message}`);
    });

    const opened = await persist('open the incident', async () => {
      const r = await fetch(`${apiUrl}/v1/incidents`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ siteIds: [SITE._id], key: `drill-${o.seed}` }),
      });
      if (r.status >= 300) throw new Error(`POST /v1/incidents: ${r.status} ${await r.text()}`);
      return (await r.json()) as { id: string };
    });
    const deadline = started + o.timeoutMs;
    const counts = async () =>
      persist(
        'read the incident',
        async () => {
          const r = await fetch(`${apiUrl}/v1/incidents/${opened.id}`, { headers });
          if (r.status !== 200)
            throw new Error(
              `GET incident: ${r.status} ${(await r.text()).slice(0, 500)}; the API's last errors: ${apiErrors.slice(-3).join(' | ')}`,
            );
          return (await r.json()) as { phase: string; deliveries: { sms?: Record<string, Record<string, number>> } };
        },
        600_000,
      );
    let timedOut = false;
    const waitFor = async (what: string, done: (i: Awaited<ReturnType<typeof counts>>) => boolean) => {
      let last = 0;
      for (;;) {
        if (chaosError) throw new Error(`a fault could not be carried out: ${chaosError.message}`);
        const i = await counts();
        if (done(i)) return;
        if (Date.now() > deadline) {
          timedOut = true;
          log(`gave up waiting for ${what}: ${JSON.stringify(i.deliveries.sms)}`);
          return;
        }
        if (Date.now() - last > 30_000) {
          last = Date.now();
          log(`waiting for ${what}: ${JSON.stringify(i.deliveries.sms ?? {})}`);
        }
        await sleep(1000);
      }
    };
    await waitFor('every outage notice delivered', (i) => (i.deliveries.sms?.outage?.delivered ?? 0) === o.subscribers);
    const outageMs = Date.now() - started;
    log(`outage notices delivered in ${(outageMs / 1000).toFixed(1)} s`);
    await persist('resolve', async () => {
      const r = await fetch(`${apiUrl}/v1/incidents/${opened.id}/resolve`, { method: 'POST', headers, body: '{}' });
      if (r.status !== 202) throw new Error(`resolve: ${r.status} ${await r.text()}`);
    });
    if (!timedOut) await waitFor('the incident billed', (i) => i.phase === 'billed');
    const durationMs = Date.now() - started;
    chaosDone = true;
    await chaos;
    if (events.length < plan.length) log(`only ${events.length} of ${plan.length} faults fired`);
    // Late receipts of resends: let the simulator settle before judging.
    await sleep(1000);
    const inbox = (
      (await (await fetch(`${sim.url}/inbox.json`)).json()) as { phones: Record<string, RecordedMessage[]> }
    ).phones;
    const simulator = await (await fetch(`${sim.url}/control/stats`)).json();
    const verdict = judge(audience, inbox, noticeKind);
    return {
      ...verdict,
      durationMs,
      outageMs,
      restorationMs: durationMs - outageMs,
      timedOut,
      events,
      simulator,
      options: { ...o, log: undefined } as Omit<DrillOptions, 'log'>,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop(5000)));
    for (const c of cleanup) await c().catch(() => undefined);
    await store?.close().catch(() => undefined);
    cleanup = [];
    await ferret.stop();
    await temporal.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}
