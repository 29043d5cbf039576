/**
 * Fan-out benchmark: an outage on a tower with N paying subscribers, from the API call to the last
 * outage SMS accepted by the Plivo simulator, then from resolve to the last restoration SMS; side
 * by side, in the same run, a plain script that sends the same N messages through the same SDK to
 * the same simulator in bulk requests of 1,000 with no durability. Prints a table with the ratio
 * and writes JSON to bench/results/fanout-<timestamp>.json.
 *
 *   npm run bench:fanout -- --n 4000
 *
 * Everything is real and on loopback: a Temporal dev server and FerretDB started here (temporary
 * folder, free ports), the simulator without artificial limits and the API in this process, one
 * worker (with the receipt applier) in a child process (bench/fanout-worker.ts), so that the
 * worker's peak RSS (`workerPeakRssMb`) is its own; `peakRssMb` is this process's (API, simulator
 * and bench client). The documents written are counted in both processes and added up.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { Client } from 'plivo';
import { buildApp } from '../api/app';
import { freePort, type ManagedProcess } from '../dev/process';
import { PROJECT_ROOT, startFerretDb, startTemporalDevServer } from '../dev/services';
import { connectStore } from '../store/db';
import { addTimes, countWrites, perSms } from './write-counter';
import type { BenchWorkerMessage, BenchWorkerSettings } from './fanout-worker';
import { connectTemporal } from '../temporal/client';
import type { WorkflowHandle } from '@temporalio/client';
import { startSimulator } from '../sim/plivo-simulator';
import { RulesHolder } from '../rules';
import type { Subscriber } from '../domain/types';
import { rebuildRosters, subscribersChanged } from '../store/site-roster';
import { createApiKey } from '../store/api-keys';

const { values: args } = parseArgs({
  options: { n: { type: 'string', default: '4000' }, rates: { type: 'string', default: 'none' } },
});
const N = Number(args.n);
if (!Number.isInteger(N) || N < 1) throw new Error('--n must be a positive whole number');
if (args.rates !== 'none' && args.rates !== 'plivo')
  throw new Error(
    "--rates must be none (the simulator without limits) or plivo (Plivo's default account rates: 300 requests per 5 s, 5 SMS per second)",
  );
/**
 * With Plivo's default rates the simulator queues SMS beyond 5 a second, as Plivo does: what
 * counts then is when the last message leaves the queue (is sent), not when it was accepted.
 */
const PLIVO_RATES = args.rates === 'plivo';
const SIM_LIMITS = { requestsPer5s: 300, messagesPerSecond: 5 };
const AUTH_ID = 'MABENCHSIMULATOR00001';
const AUTH_TOKEN = 'bench-simulator-token';

/** An admin key for this run's API (the API answers nothing without one). */
async function benchKey(store: Awaited<ReturnType<typeof connectStore>>): Promise<string> {
  return (await createApiKey(store, { name: 'bench', role: 'operator', createdBy: 'bench' })).key;
}

const phone = (i: number) => `+39347${String(3000000 + i).padStart(7, '0')}`;

/** Waits until the simulator has accepted (no limits) or sent (Plivo's rates) `total` messages. */
async function waitForAccepted(simUrl: string, total: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stats = (await (await fetch(`${simUrl}/control/stats`)).json()) as {
      messages: { accepted: number; byStatus: Record<string, number> };
    };
    const b = stats.messages.byStatus;
    const count = PLIVO_RATES
      ? (b.sent ?? 0) + (b.delivered ?? 0) + (b.undelivered ?? 0) + (b.failed ?? 0)
      : stats.messages.accepted;
    if (count >= total) return;
    if (Date.now() > deadline)
      throw new Error(
        `only ${count} of ${total} messages ${PLIVO_RATES ? 'sent' : 'accepted'} after ${timeoutMs / 1000} s`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until `total` delivery records of the incident are delivered (their receipts applied); returns how many are. */
async function waitForDelivered(
  store: Awaited<ReturnType<typeof connectStore>>,
  incidentId: string,
  total: number,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = await store.deliveries.countDocuments({ incidentId, state: 'delivered' });
    if (n >= total || Date.now() > deadline) return n;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The servers this run started, stopped however it ends (a 100,000 run is often stopped by hand). */
const servers: ManagedProcess[] = [];

/** The worker's child process, while it runs. */
let workerChild: ChildProcess | undefined;

/** The heap limit of the shipped worker, read from the unit that starts it, so that both stay alike. */
const WORKER_HEAP_FLAG = /--max-old-space-size=\d+/.exec(
  readFileSync(path.join(PROJECT_ROOT, 'deploy', 'systemd', 'avviso-worker@.service'), 'utf8'),
)![0];

/** Starts bench/fanout-worker.ts in a child process and waits until its worker runs. */
async function startWorkerProcess(settings: BenchWorkerSettings): Promise<ChildProcess> {
  const child = fork(path.join(PROJECT_ROOT, 'bench', 'fanout-worker.ts'), [JSON.stringify(settings)], {
    // The heap limit the shipped worker runs with (deploy/systemd/avviso-worker@.service): without one, V8 lets
    // garbage pile up to a fraction of the machine's memory before it collects, and the peak RSS says little.
    execArgv: ['--import', 'tsx', WORKER_HEAP_FLAG],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  workerChild = child;
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the worker process exited (${code}) before it was ready`)));
    child.on('message', (m: BenchWorkerMessage) => m.type === 'ready' && resolve());
  });
  return child;
}

/** Asks the worker process for its write counts and peak RSS. */
function workerReport(child: ChildProcess): Promise<Extract<BenchWorkerMessage, { type: 'report' }>> {
  return new Promise((resolve) => {
    const onMessage = (m: BenchWorkerMessage) => {
      if (m.type !== 'report') return;
      child.off('message', onMessage);
      resolve(m);
    };
    child.on('message', onMessage);
    child.send({ type: 'report' });
  });
}

/** Stops the worker process (SIGTERM, then SIGKILL after `graceMs`) and waits for it to end. */
async function stopWorkerProcess(graceMs: number): Promise<void> {
  const child = workerChild;
  workerChild = undefined;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Ctrl-C or SIGTERM stops the worker process and the servers, and exits: a stopped run was seen to
 * stay alive, using CPU, long after its servers were gone.
 */
function exitOnSignals(tmp: string): void {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      // The worker first: with Temporal gone it would only retry.
      void stopWorkerProcess(5000)
        .then(() => Promise.all(servers.map((s) => s.stop(5000))))
        .finally(() => {
          rmSync(tmp, { recursive: true, force: true });
          process.exit(code);
        });
    });
  }
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'avviso-bench-fanout-'));
  exitOnSignals(tmp);
  try {
    const [tPort, fPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    servers.push(await startTemporalDevServer({ port: tPort, output: 'ignore' }));
    servers.push(await startFerretDb({ port: fPort, dir: path.join(tmp, 'ferretdb'), output: 'ignore' }));
    const store = await connectStore(`mongodb://127.0.0.1:${fPort}/`, 'bench', { monitorCommands: true });
    const temporal = await connectTemporal({ address: `127.0.0.1:${tPort}`, namespace: 'default', taskQueue: 'bench' });
    const sim = await startSimulator({
      authId: AUTH_ID,
      authToken: AUTH_TOKEN,
      host: '127.0.0.1',
      port: 0,
      callbackDelayMs: 50,
      ...(PLIVO_RATES ? { faults: { limits: SIM_LIMITS } } : {}),
    });
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const rules = await RulesHolder.open({ path: path.join(PROJECT_ROOT, 'rules', 'dev') });
    const app = await buildApp({
      store,
      temporal,
      taskQueue: 'bench',
      publicUrl: apiUrl,
      plivoAuthToken: AUTH_TOKEN,
      rules,
      deliveryPolicy: { deliveryTimeoutMs: 600_000, maxAttempts: 3, sweepEveryMs: 1000 },
    });
    await app.listen({ host: '127.0.0.1', port: apiPort });
    const plivo = {
      authId: AUTH_ID,
      authToken: AUTH_TOKEN,
      baseUrl: sim.url,
      sender: 'Avviso',
      requestsPer5s: PLIVO_RATES ? SIM_LIMITS.requestsPer5s : 0,
      messagesPerSecond: PLIVO_RATES ? SIM_LIMITS.messagesPerSecond : 0,
      queueSeconds: 600,
    };
    // As `avviso worker` does: the worker runs the activities and applies the receipts the API stores.
    const child = await startWorkerProcess({
      temporalAddress: `127.0.0.1:${tPort}`,
      taskQueue: 'bench',
      mongoUri: `mongodb://127.0.0.1:${fPort}/`,
      mongoDb: 'bench',
      apiUrl,
      rulesPath: path.join(PROJECT_ROOT, 'rules', 'dev'),
      plivo,
    });

    await store.sites.insertOne({ _id: 'tower-bench', name: 'Bench tower', area: 'Borgo Bench', uplink: null });
    const subs: Subscriber[] = Array.from({ length: N }, (_, i) => ({
      _id: `B-${String(i).padStart(6, '0')}`,
      name: `S${i}`,
      phones: [phone(i)],
      language: 'it',
      siteId: 'tower-bench',
      segment: 'residential',
      smsAlerts: { active: true },
      optedOut: false,
    }));
    for (let i = 0; i < subs.length; i += 5000) await store.subscribers.insertMany(subs.slice(i, i + 5000));
    // As an import leaves them (import/: rosters rebuilt at its end, so that the first planning reads them).
    await subscribersChanged(store, ['tower-bench']);
    await rebuildRosters(store, ['tower-bench']);

    // The plain sender: same SDK, same simulator, bulk requests of 1,000, nothing stored.
    await fetch(`${sim.url}/inbox`, { method: 'DELETE' });
    const client = new Client(AUTH_ID, AUTH_TOKEN, { url: `${sim.url}/v1/Account/${AUTH_ID}` });
    let t = performance.now();
    for (let i = 0; i < N; i += 1000)
      await client.messages.create(
        'Avviso',
        subs.slice(i, i + 1000).map((s) => s.phones[0]!.slice(1)),
        'Avviso guasto: internet interrotto a Borgo Bench. Vi avviseremo al ripristino.',
      );
    if (PLIVO_RATES) await waitForAccepted(sim.url, N, 3 * 3600_000);
    const plainMs = performance.now() - t;
    await fetch(`${sim.url}/inbox`, { method: 'DELETE' });
    await fetch(`${sim.url}/control/stats`, { method: 'DELETE' });

    // Avviso: the API call, the workflow, the audience, the rules, the records, the SDK.
    const auth: Record<string, string> = { authorization: `Bearer ${await benchKey(store)}` };
    const writes = countWrites(store.client);
    child.send({ type: 'count' });
    child.send({ type: 'phase', phase: 'outage' });
    t = performance.now();
    const openedAt = Date.now();
    const opened = await fetch(`${apiUrl}/v1/incidents`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify({ siteIds: ['tower-bench'] }),
    });
    if (opened.status !== 202)
      throw new Error(`opening the incident answered ${opened.status}: ${await opened.text()}`);
    const { id } = (await opened.json()) as { id: string };
    // Two status-feed posts (it, en) go to our own database, not to Plivo.
    await waitForAccepted(sim.url, N, 30 * 60_000);
    const outageMs = performance.now() - t;
    t = performance.now();
    child.send({ type: 'phase', phase: 'restoration' });
    const resolvedAt = Date.now();
    await fetch(`${apiUrl}/v1/incidents/${id}/resolve`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: '{}',
    });
    const resolveAnsweredMs = Date.now() - resolvedAt;
    await waitForAccepted(sim.url, 2 * N, 30 * 60_000);
    const restoreMs = performance.now() - t;
    child.send({ type: 'phase', phase: 'receipts' });
    // Every receipt stored and applied, so that what they cost is counted too.
    const delivered = await waitForDelivered(store, id, 2 * N, 10 * 60_000);
    writes.stop();
    const workerSide = await workerReport(child);
    const documentsWritten = addCounts(writes.counts, workerSide.counts);
    const documentsWrittenBy = addCounts(writes.byTarget, workerSide.byTarget);
    const writesPerSms = perSms(documentsWritten, delivered);
    // Where the database's time went (API and worker; the bench's own polling for the end included).
    const databaseTimeBy = Object.fromEntries(
      Object.entries(addTimes(writes.timeByTarget, workerSide.timeByTarget))
        .sort(([, a], [, b]) => b.ms - a.ms)
        .map(([target, t]) => [target, { ...t, ms: Math.round(t.ms) }]),
    );
    const history = await temporal.workflow.getHandle(`incident:${id}`).fetchHistory();
    const peakRssMb = process.resourceUsage().maxRSS / 1024;

    const result = {
      n: N,
      at: new Date().toISOString(),
      rates: PLIVO_RATES
        ? `plivo (${SIM_LIMITS.requestsPer5s} requests/5 s, ${SIM_LIMITS.messagesPerSecond} SMS/s)`
        : 'none',
      plainSenderSeconds: +(plainMs / 1000).toFixed(2),
      avvisoOutageSeconds: +(outageMs / 1000).toFixed(2),
      avvisoRestorationSeconds: +(restoreMs / 1000).toFixed(2),
      outageMessagesPerSecond: Math.round(N / (outageMs / 1000)),
      ratioToPlain: +(outageMs / plainMs).toFixed(2),
      /** The worker process's peak RSS (Temporal worker, activities, receipt applier). */
      workerPeakRssMb: Math.round(workerSide.peakRssMb),
      /** This process's peak RSS: the API, the simulator and the bench client (not the worker). */
      peakRssMb: Math.round(peakRssMb),
      historyEvents: history.events?.length ?? 0,
      /** The outage's activities, from the call that opens the incident to the resolve call. */
      outageActivities: activitySpans(history, openedAt).filter((a) => openedAt + a.from * 1000 < resolvedAt),
      /** The restoration's activities, from the resolve call: where its time went. */
      restorationActivities: activitySpans(history, resolvedAt),
      /** How long the resolve call took to answer, and the workflow's first events after it (s after the call). */
      resolveAnsweredSeconds: +(resolveAnsweredMs / 1000).toFixed(2),
      restorationFirstEvents: eventsFrom(history, resolvedAt).slice(0, 12),
      /** Documents written (inserted, modified, deleted) per delivered SMS, outage and restoration together. */
      writesPerSms,
      documentsWritten,
      documentsWrittenBy,
      /** Every command by target (collection, command, state set): count, time in ms, documents returned. */
      databaseTimeBy,
    };
    console.log(
      `\nfan-out, ${N} paying subscribers (${PLIVO_RATES ? "simulator with Plivo's default rates: times to the last SMS sent" : 'simulator without limits: times to the last SMS accepted'})`,
    );
    console.table({
      'plain SDK sender': { seconds: result.plainSenderSeconds, 'msg/s': Math.round(N / (plainMs / 1000)) },
      'Avviso outage': { seconds: result.avvisoOutageSeconds, 'msg/s': result.outageMessagesPerSecond },
      'Avviso restoration': { seconds: result.avvisoRestorationSeconds, 'msg/s': Math.round(N / (restoreMs / 1000)) },
    });
    console.log(
      `ratio Avviso/plain (outage): ${result.ratioToPlain}x; worker peak RSS ${result.workerPeakRssMb} MB, API + simulator + client peak RSS ${result.peakRssMb} MB; workflow history ${result.historyEvents} events`,
    );
    console.log(`documents written per delivered SMS (${delivered}): ${JSON.stringify(writesPerSms)}`);
    console.log('database time by command (the sixteen longest; all in the JSON):');
    console.table(Object.fromEntries(Object.entries(databaseTimeBy).slice(0, 16)));
    console.log(
      `outage's activities (start-end s after the call that opens it): ${result.outageActivities.map((a) => `${a.activity} ${a.from}-${a.to}`).join(', ')}`,
    );
    console.log(
      `restoration's activities (start-end s after the resolve call): ${result.restorationActivities.map((a) => `${a.activity} ${a.from}-${a.to}`).join(', ')}`,
    );
    console.log(
      `the resolve call answered in ${result.resolveAnsweredSeconds} s; the workflow's first events after it (s): ${result.restorationFirstEvents.map((e) => `${e.event} ${e.at}`).join(', ')}`,
    );
    mkdirSync(path.join(PROJECT_ROOT, 'bench', 'results'), { recursive: true });
    const file = path.join(PROJECT_ROOT, 'bench', 'results', `fanout-${result.at.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(result, null, 2));
    console.log(`written to ${path.relative(PROJECT_ROOT, file)}`);

    await stopWorkerProcess(30_000);
    await app.close();
    await sim.close();
    await rules.close();
    await temporal.connection.close();
    await store.close();
  } finally {
    await stopWorkerProcess(5000);
    await Promise.all(servers.map((s) => s.stop(5000)));
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

/** Each activity the workflow ran after `fromMs` (or ended after it): its name and when it started and ended, in seconds from `fromMs`. */
function activitySpans(
  history: Awaited<ReturnType<WorkflowHandle['fetchHistory']>>,
  fromMs: number,
): { activity: string; from: number; to: number }[] {
  type HistoryEvent = NonNullable<typeof history.events>[number];
  const ms = (e: HistoryEvent) =>
    Number(e?.eventTime?.seconds ?? 0) * 1000 + Math.floor((e?.eventTime?.nanos ?? 0) / 1e6);
  const scheduled = new Map<number, { activity: string; at: number }>();
  const spans: { activity: string; from: number; to: number }[] = [];
  for (const e of history.events ?? []) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(Number(e.eventId), { activity: s.activityType?.name ?? '?', at: ms(e) });
    const cancelled = e.activityTaskCanceledEventAttributes;
    const done = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? cancelled;
    const started = done && scheduled.get(Number(done.scheduledEventId));
    // One that ended after `fromMs` counts too: a watch sweep running at the resolve (from < 0), cut short or not.
    if (started && ms(e) >= fromMs)
      spans.push({
        activity: cancelled ? `${started.activity}(cancelled)` : started.activity,
        from: +((started.at - fromMs) / 1000).toFixed(2),
        to: +((ms(e) - fromMs) / 1000).toFixed(2),
      });
  }
  return spans;
}

/** The history's events from `fromMs` on: their type and when, in seconds from `fromMs`. */
function eventsFrom(
  history: Awaited<ReturnType<WorkflowHandle['fetchHistory']>>,
  fromMs: number,
): { event: string; at: number }[] {
  const out: { event: string; at: number }[] = [];
  for (const e of history.events ?? []) {
    const ms = Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
    if (ms < fromMs) continue;
    // Each event carries the attributes of its type only: their name is the type's.
    const type = Object.keys(e).find((k) => k.endsWith('EventAttributes') && e[k as keyof typeof e]) ?? '?';
    const activity = e.activityTaskScheduledEventAttributes?.activityType?.name;
    out.push({
      event: `${type.replace(/EventAttributes$/, '')}${activity ? `(${activity})` : ''}`,
      at: +((ms - fromMs) / 1000).toFixed(3),
    });
  }
  return out;
}

/** Two write tallies added up, key by key (the bench process's and the worker process's). */
function addCounts<T extends Record<string, number>>(a: T, b: T): T {
  const sum: Record<string, number> = { ...a };
  for (const [key, n] of Object.entries(b)) sum[key] = (sum[key] ?? 0) + n;
  return sum as T;
}
