/**
 * Benchmark of the ingest endpoint: an Alertmanager alert storm on loopback.
 *
 *   npm run bench:ingest -- --requests 2000 --concurrency 20 --distinct 200
 *   npm run bench:ingest -- --profile   # also: the storm's database commands by kind and collection, with their time
 *   npm run bench:ingest -- --cpu-profile storm.cpuprofile   # the API's CPU profile during the storm
 *
 * Starts its own FerretDB and Temporal dev server (in a temporary folder, on free ports) and the
 * API in this process, with the demo network; the requests are posted from a process of their
 * own (bench/ingest-client.ts), so that the figures are the API's. No worker runs, on purpose: a
 * webhook must never wait for one (issue 19), so the benchmark measures intake (normalize, store, deduplicate, then
 * correlate: open, join or absorb, start the workflow or signal it) with every request answered
 * while the workflows it starts wait in Temporal's task queue (they vanish with the server).
 * Targets: every request answered, at 1,000 requests/s or more, p99 under 100 ms.
 *
 * The storm: `distinct` alerts (fingerprints spread over the demo sites), each posted
 * requests/distinct times in a shuffled order, as Alertmanager's resends and retries would: the
 * first post of an alert opens an incident (202), the others are recognised repeats (200).
 * Prints requests per second and latency percentiles, and writes them as JSON to
 * bench/results/ingest-<timestamp>.json.
 */
import { fork } from 'node:child_process';
import { Session } from 'node:inspector/promises';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { CommandStartedEvent, CommandSucceededEvent, MongoClient } from 'mongodb';
import { buildApp } from '../api/app';
import { freePort, type ManagedProcess } from '../dev/process';
import { ferretDbBackend, PROJECT_ROOT, startFerretDb, startTemporalDevServer } from '../dev/services';
import { parseIntegrations } from '../ingest/integrations';
import { connectStore } from '../store/db';
import { DEMO_SITES, loadDemoDataIfEmpty } from '../store/demo';
import { connectTemporal } from '../temporal/client';
import { mulberry32 } from '../domain/prng';
import type { StormRequest, StormResult } from './ingest-client';

const TOKEN = 'bench-token-alertmanager';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '20' },
    distinct: { type: 'string', default: '200' },
    warmup: { type: 'string', default: '20' },
    /** Also count the database commands of the storm, and the time they took, per command and collection. */
    profile: { type: 'boolean', default: false },
    /** Write a CPU profile of the API's process during the storm (open it in Chrome's DevTools). */
    'cpu-profile': { type: 'string' },
  },
});
const REQUESTS = Number(args.requests);
const CONCURRENCY = Number(args.concurrency);
const DISTINCT = Number(args.distinct);
const WARMUP = Number(args.warmup);
for (const [name, v] of Object.entries({
  requests: REQUESTS,
  concurrency: CONCURRENCY,
  distinct: DISTINCT,
  warmup: WARMUP,
})) {
  if (!Number.isInteger(v) || v < 0 || (name !== 'warmup' && v < 1))
    throw new Error(`--${name} must be a positive whole number`);
}
if (DISTINCT > REQUESTS) throw new Error('--distinct cannot exceed --requests');

/** Seeded, so that two runs post the same storm. */
const prng = mulberry32;

function alertPayload(n: number, tag: string): string {
  const device = DEMO_SITES[n % DEMO_SITES.length]!._id;
  const fingerprint = `${tag}${n.toString(16).padStart(15, '0')}`.slice(-16);
  return JSON.stringify({
    version: '4',
    groupKey: `{}:{alertname="TowerDown",device="${device}"}`,
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'avviso',
    groupLabels: { alertname: 'TowerDown' },
    commonLabels: { alertname: 'TowerDown', device },
    commonAnnotations: {},
    externalURL: 'http://am.noc:9093',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'TowerDown', device, severity: 'critical', instance: `10.20.${n % 250}.1:9100` },
        annotations: { summary: `${device} unreachable (bench alert ${n})` },
        startsAt: '2026-05-04T13:02:11.4Z',
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://prom:9090/graph',
        fingerprint,
      },
    ],
  });
}

/** Database commands by kind and collection: how many, and their total and mean time as the driver saw it. */
function commandProfile(client: MongoClient) {
  let counts = new Map<string, { n: number; ms: number }>();
  const names = new Map<number, string>();
  client.on('commandStarted', (e: CommandStartedEvent) =>
    names.set(e.requestId, `${e.commandName} ${String(e.command[e.commandName] ?? '')}`),
  );
  client.on('commandSucceeded', (e: CommandSucceededEvent) => {
    const name = names.get(e.requestId) ?? e.commandName;
    names.delete(e.requestId);
    const c = counts.get(name) ?? { n: 0, ms: 0 };
    c.n++;
    c.ms += e.duration;
    counts.set(name, c);
  });
  return {
    reset: () => (counts = new Map()),
    snapshot: () =>
      Object.fromEntries(
        [...counts]
          .sort((a, b) => b[1].ms - a[1].ms)
          .map(([k, c]) => [k, { count: c.n, totalMs: round(c.ms), meanMs: round(c.ms / c.n) }]),
      ),
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round = (v: number) => Math.round(v * 100) / 100;

/**
 * CPU time (ms, user + system) of a process and all its descendants so far, from /proc (Linux);
 * undefined elsewhere. For FerretDB (with its PostgreSQL) and the Temporal dev server, which share
 * the machine's cores with the API during the storm.
 */
function processTreeCpuMs(rootPid: number): number | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return undefined;
  }
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const pid of entries) {
    try {
      // After the command's closing parenthesis: state, ppid, ..., utime (14th field), stime (15th).
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      stats.set(Number(pid), { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // gone meanwhile
    }
  }
  if (!stats.has(rootPid)) return undefined;
  let ticks = 0;
  const tree = new Set([rootPid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, st] of stats)
      if (!tree.has(pid) && tree.has(st.ppid)) {
        tree.add(pid);
        grew = true;
      }
  }
  for (const pid of tree) ticks += stats.get(pid)!.ticks;
  return ticks * 10; // USER_HZ is 100 on Linux
}

/** A CPU profile of this process (the API) from now until stop(). */
async function startCpuProfile() {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    async stop() {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      return profile;
    },
  };
}

/** The client process: each storm posted from it, so that the API's event loop serves requests only. */
function startClient() {
  const child = fork(path.join(PROJECT_ROOT, 'bench', 'ingest-client.ts'), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return {
    storm(url: string, bodies: string[]): Promise<StormResult> {
      return new Promise((resolve, reject) => {
        child.once('message', (m: { result?: StormResult; error?: string }) =>
          m.result ? resolve(m.result) : reject(new Error(`bench client: ${m.error}`)),
        );
        child.send({ url, token: TOKEN, concurrency: CONCURRENCY, bodies } satisfies StormRequest);
      });
    },
    stop: async () => void child.kill(),
  };
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'avviso-bench-'));
  const servers: ManagedProcess[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await Promise.all(servers.map((s) => s.stop(5000)));
    rmSync(tmp, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    const [temporalPort, ferretPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    console.log('starting FerretDB and the Temporal dev server...');
    let temporalPid = -1;
    let ferretPid = -1;
    await Promise.all([
      startTemporalDevServer({ port: temporalPort, output: 'ignore' }).then((p) => {
        servers.push(p);
        temporalPid = p.pid;
      }),
      startFerretDb({ port: ferretPort, dir: path.join(tmp, 'ferretdb'), output: 'ignore' }).then((p) => {
        servers.push(p);
        ferretPid = p.pid;
      }),
    ]);
    const store = await connectStore(`mongodb://127.0.0.1:${ferretPort}/`, 'bench_ingest', {
      monitorCommands: args.profile,
    });
    const commands = args.profile ? commandProfile(store.client) : undefined;
    cleanups.push(() => store.close());
    const temporal = await connectTemporal({
      address: `127.0.0.1:${temporalPort}`,
      namespace: 'default',
      taskQueue: 'bench-ingest',
    });
    cleanups.push(() => temporal.connection.close());
    await loadDemoDataIfEmpty(store);

    const integrations = parseIntegrations(
      `integrations:\n  - { name: bench, source: alertmanager, token: ${TOKEN}, site: { label: device } }\n`,
      'bench-integrations.yaml',
      {},
    );
    const app = await buildApp({
      store,
      temporal,
      taskQueue: 'bench-ingest',
      publicUrl: `http://127.0.0.1:${apiPort}`,
      plivoAuthToken: 'bench-unused-token',
      applyReceiptsEveryMs: 0,
      integrations,
    });
    cleanups.push(() => app.close());
    await app.listen({ host: '127.0.0.1', port: apiPort });
    const url = `http://127.0.0.1:${apiPort}/v1/ingest/alertmanager/bench`;

    const client = startClient();
    cleanups.push(client.stop);

    // Warm-up on alerts of their own (connection pools, JIT), not counted.
    await client.storm(
      url,
      Array.from({ length: WARMUP }, (_, i) => alertPayload(i, 'f')),
    );

    const random = prng(42);
    const bodies = Array.from({ length: REQUESTS }, (_, i) => alertPayload(i % DISTINCT, 'a'));
    for (let i = bodies.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [bodies[i], bodies[j]] = [bodies[j]!, bodies[i]!];
    }
    console.log(
      `storm: ${REQUESTS} requests (${DISTINCT} distinct alerts, each posted ~${round(REQUESTS / DISTINCT)} times), concurrency ${CONCURRENCY}, loopback`,
    );
    commands?.reset();
    const started = performance.now();
    const cpuProfile = args['cpu-profile'] ? await startCpuProfile() : undefined;
    const serverCpu = process.cpuUsage();
    const servicesCpu = [processTreeCpuMs(ferretPid), processTreeCpuMs(temporalPid)];
    const { latencies, statuses, wallMs, clientCpuMs } = await client.storm(url, bodies);
    const serverCpuUsed = process.cpuUsage(serverCpu);
    if (cpuProfile) writeFileSync(args['cpu-profile']!, JSON.stringify(await cpuProfile.stop()));
    const serverCpuMs = (serverCpuUsed.user + serverCpuUsed.system) / 1000;
    const [ferretCpuMs, temporalCpuMs] = [ferretPid, temporalPid].map((pid, i) => {
      const [now, then] = [processTreeCpuMs(pid), servicesCpu[i]];
      return now === undefined || then === undefined ? undefined : now - then;
    });

    // Answered: the alerts are stored. Their decisions (open, join, absorb) run on, one tree at a time.
    const duringStorm = commands?.snapshot();
    const decideStarted = performance.now();
    const undecided = () =>
      store.alertEvents.countDocuments({
        dedupKey: { $regex: '^alertmanager:bench:a' },
        'result.action': { $exists: true, $ne: 'accepted' },
      });
    for (
      let decided = await undecided();
      decided < DISTINCT && performance.now() - decideStarted < 300_000;
      decided = await undecided()
    )
      await new Promise((r) => setTimeout(r, 200));
    const decidedSeconds = round((performance.now() - started) / 1000);

    const sorted = [...latencies].sort((a, b) => a - b);
    const incidents = await store.incidents.countDocuments({
      source: 'alertmanager/bench',
      key: { $regex: '^alertmanager:bench:a' },
    });
    // Every distinct alert must be tracked on an incident; alerts on the same tower (or downstream of
    // one already down) share that tower's incident (correlation), so incidents are fewer.
    const alertsTracked = await store.alertIncidents.countDocuments({ dedupKey: { $regex: '^alertmanager:bench:a' } });
    const result = {
      benchmark: 'ingest-alertmanager-storm',
      at: new Date().toISOString(),
      config: {
        requests: REQUESTS,
        concurrency: CONCURRENCY,
        distinctAlerts: DISTINCT,
        warmup: WARMUP,
        worker: false,
        database: `FerretDB (${ferretDbBackend()})`,
        transport: 'HTTP/1.1 loopback, keep-alive, client in its own process',
      },
      machine: {
        node: process.version,
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        platform: `${os.platform()} ${os.release()}`,
      },
      requestsPerSecond: round(REQUESTS / (wallMs / 1000)),
      wallSeconds: round(wallMs / 1000),
      /** From the first request until every alert's incident was decided (opened, joined or absorbed). */
      allDecidedSeconds: decidedSeconds,
      latencyMs: {
        p50: round(percentile(sorted, 50)),
        p95: round(percentile(sorted, 95)),
        p99: round(percentile(sorted, 99)),
        max: round(sorted.at(-1)!),
        mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
      },
      /** CPU time during the storm, in ms and in cores (ms per ms of the storm's wall time). */
      cpu: {
        apiMs: round(serverCpuMs),
        apiCores: round(serverCpuMs / wallMs),
        clientMs: round(clientCpuMs),
        clientCores: round(clientCpuMs / wallMs),
        ...(ferretCpuMs === undefined ? {} : { ferretDbMs: ferretCpuMs, ferretDbCores: round(ferretCpuMs / wallMs) }),
        ...(temporalCpuMs === undefined
          ? {}
          : { temporalMs: temporalCpuMs, temporalCores: round(temporalCpuMs / wallMs) }),
      },
      statuses,
      incidentsOpened: incidents,
      alertsTracked,
      ...(duringStorm ? { databaseCommandsDuringStorm: duringStorm } : {}),
      loadAverage: os.loadavg().map(round),
    };
    console.log(`\n${result.requestsPerSecond} requests/s over ${result.wallSeconds} s`);
    console.log(
      `latency ms: p50 ${result.latencyMs.p50}  p95 ${result.latencyMs.p95}  p99 ${result.latencyMs.p99}  max ${result.latencyMs.max}`,
    );
    console.log(
      `CPU during the storm, in cores: API ${result.cpu.apiCores}, client ${result.cpu.clientCores}, FerretDB and PostgreSQL ${result.cpu.ferretDbCores ?? '?'}, Temporal ${result.cpu.temporalCores ?? '?'}`,
    );
    console.log(`every alert decided ${decidedSeconds} s after the first request (no worker running)`);
    if (duringStorm) console.table(duringStorm);
    console.log(`load average (1, 5, 15 min): ${result.loadAverage.join(', ')} on ${os.cpus().length} cores`);
    console.log(
      `statuses: ${JSON.stringify(statuses)}; alerts tracked on an incident: ${alertsTracked} (expected ${DISTINCT}); incidents opened: ${incidents} (alerts on one tower share its incident)`,
    );
    const dir = path.join(PROJECT_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `ingest-${result.at.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`written to ${path.relative(PROJECT_ROOT, file)}`);
    if (alertsTracked !== DISTINCT || statuses['202'] !== DISTINCT || latencies.length !== REQUESTS)
      process.exitCode = 1;
  } finally {
    await cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
