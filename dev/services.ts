/**
 * Starting the two servers Avviso depends on, from the binaries tools/bootstrap.sh installed:
 * the Temporal dev server and FerretDB. Shared by `avviso dev` and the test harness. And the
 * tests' second MongoDB-wire server, mongo-java-server (docs/second-engine.md).
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { MongoClient } from 'mongodb';
import { freePort, spawnManaged, waitUntilHealthy, type ManagedProcess, type SpawnOptions } from './process';

export const PROJECT_ROOT = path.resolve(__dirname, '..');
const TOOLS = process.env.AVVISO_TOOLS_DIR ?? path.join(PROJECT_ROOT, '.tools');

export const TOOL_PATHS = {
  temporal: path.join(TOOLS, 'venv', 'bin', 'temporal'),
  temporalTestServer: path.join(TOOLS, 'venv', 'bin', 'temporal-test-server'),
  ferretdb: path.join(TOOLS, 'bin', 'avviso-ferretdb'),
  /** Our launcher (tools/mongo-java-server); the server's jars are in `dependency/` beside it. */
  mongoJavaServer: path.join(TOOLS, 'mongo-java-server', 'avviso-mongo-java-server.jar'),
};

/** Fails with what to run when a binary the bootstrap installs is missing. */
export function requireTool(tool: keyof typeof TOOL_PATHS): string {
  const p = TOOL_PATHS[tool];
  if (!existsSync(p))
    throw new Error(`${tool} is not installed (no ${p}): run \`npm run bootstrap\` (tools/bootstrap.sh) first.`);
  return p;
}

export interface TemporalServerOptions {
  port: number;
  /** The web UI's port; omit for a headless server. */
  uiPort?: number;
  /** SQLite file that keeps the server's state across restarts; omit for an in-memory server. */
  dbFile?: string;
  output?: SpawnOptions['output'];
}

/** `count` distinct free ports, none of them in `taken`. */
async function freePortsOtherThan(taken: number[], count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const p = await freePort();
    if (!taken.includes(p) && !ports.includes(p)) ports.push(p);
  }
  return ports;
}

export async function startTemporalDevServer(o: TemporalServerOptions): Promise<ManagedProcess> {
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(o.port),
    '--namespace',
    'default',
    '--log-level',
    'warn',
    '--log-format',
    'pretty',
  ];
  // Left to itself the CLI picks free ports for its HTTP API and metrics when it starts, and may pick
  // the gRPC port we chose but it has not bound yet ("bind: address already in use", seen in CI).
  const [httpPort, metricsPort] = await freePortsOtherThan([o.port, o.uiPort ?? 0], 2);
  args.push('--http-port', String(httpPort), '--metrics-port', String(metricsPort));
  if (o.uiPort) args.push('--ui-port', String(o.uiPort));
  else args.push('--headless');
  if (o.dbFile) {
    mkdirSync(path.dirname(o.dbFile), { recursive: true });
    args.push('--db-filename', o.dbFile);
  }
  // Workflows of large incidents page through their audience; keep the dev server's defaults otherwise.
  const proc = spawnManaged('temporal', requireTool('temporal'), args, { output: o.output });
  const address = `127.0.0.1:${o.port}`;
  await waitUntilHealthy(
    `Temporal dev server on ${address}`,
    async () => {
      const connection = await Connection.connect({ address, connectTimeout: '1 second' });
      try {
        await connection.workflowService.getSystemInfo({});
      } finally {
        await connection.close();
      }
    },
    { proc, timeoutMs: 60_000 },
  );
  return proc;
}

/**
 * FerretDB's storage: `postgresql` (the default) is a private PostgreSQL cluster that
 * avviso-ferretdb creates and runs in `<dir>/postgresql`; `sqlite` keeps one SQLite file per
 * database in `<dir>`, needs nothing else, and reads the whole collection for every filter but
 * {_id} (docs/ferretdb-notes.md). AVVISO_FERRETDB_BACKEND chooses for every script.
 */
export type FerretDbBackend = 'postgresql' | 'sqlite';

export function ferretDbBackend(): FerretDbBackend {
  const v = process.env.AVVISO_FERRETDB_BACKEND || 'postgresql';
  if (v !== 'postgresql' && v !== 'sqlite') throw new Error(`AVVISO_FERRETDB_BACKEND=${v}: want postgresql or sqlite`);
  return v;
}

export interface FerretDbOptions {
  port: number;
  /** Where its data lives; kept across restarts. */
  dir: string;
  backend?: FerretDbBackend;
  output?: SpawnOptions['output'];
  /** Its whole log, appended (with `show`, the lines not shown are there). */
  logFile?: string;
  show?: SpawnOptions['show'];
}

/**
 * FerretDB at `--log-level warn` still logs a warning, with the whole wire message as JSON, for
 * every command it does not implement (the driver's endSessions on every close) and for every
 * connection a client closes. These lines pass: errors, and anything not in its log format
 * (a panic, the wrapper's own fatal messages).
 */
export function ferretDbLineMatters(line: string): boolean {
  const m = /^time=\S+ level=([A-Z]+)/.exec(line);
  return !m || !['DEBUG', 'INFO', 'WARN'].includes(m[1]!);
}

export async function startFerretDb(o: FerretDbOptions): Promise<ManagedProcess> {
  mkdirSync(o.dir, { recursive: true });
  const backend = o.backend ?? ferretDbBackend();
  const storage = backend === 'sqlite' ? ['--sqlite-dir', o.dir] : ['--postgresql-dir', path.join(o.dir, 'postgresql')];
  const proc = spawnManaged(
    'ferretdb',
    requireTool('ferretdb'),
    ['--listen-addr', `127.0.0.1:${o.port}`, ...storage, '--log-level', 'warn'],
    // Go's collector at GOGC=400 instead of 100: FerretDB spends most of its CPU decoding documents into
    // short-lived values, and collecting a quarter as often cut that CPU by 15-20% for the same reads
    // (peak memory 69 -> 167 MiB; docs/performance-history.md). An operator's own GOGC wins.
    { output: o.output, logFile: o.logFile, show: o.show, env: { ...process.env, GOGC: process.env.GOGC ?? '400' } },
  );
  // The first start of a PostgreSQL backend runs initdb (about a second; more on a busy machine).
  await waitUntilHealthy(
    `FerretDB (${backend}) on 127.0.0.1:${o.port}`,
    () => pingMongo(`mongodb://127.0.0.1:${o.port}/`),
    { proc, timeoutMs: 90_000 },
  );
  return proc;
}

export async function pingMongo(uri: string): Promise<void> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 1000, connectTimeoutMS: 1000 });
  try {
    await client.connect();
    await client.db('admin').command({ ping: 1 });
  } finally {
    await client.close();
  }
}

export async function httpOk(url: string): Promise<void> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
}

export interface MongoJavaServerOptions {
  port: number;
  output?: SpawnOptions['output'];
}

/**
 * mongo-java-server with its memory backend (nothing is kept when it stops), on 127.0.0.1: a
 * MongoDB-wire server with other internals than FerretDB, for tests only (docs/second-engine.md).
 * It exits when our end of its standard input closes, so it never outlives this process.
 */
export async function startMongoJavaServer(o: MongoJavaServerOptions): Promise<ManagedProcess> {
  const jar = requireTool('mongoJavaServer');
  const classpath = [jar, path.join(path.dirname(jar), 'dependency', '*')].join(path.delimiter);
  const jvm = [
    // Light on a small, shared machine: one GC thread, no optimizing compiler for a short run.
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-Xmx2g',
    // slf4j-simple logs every connection at info.
    '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
  ];
  const proc = spawnManaged(
    'mongo-java-server',
    'java',
    [...jvm, '-cp', classpath, 'avviso.Launcher', String(o.port)],
    { output: o.output, stdin: 'pipe' },
  );
  await waitUntilHealthy(
    `mongo-java-server on 127.0.0.1:${o.port}`,
    () => pingMongo(`mongodb://127.0.0.1:${o.port}/`),
    { proc, timeoutMs: 60_000 },
  );
  return proc;
}
