/**
 * `avviso dev` (`npm run dev`): the whole system on 127.0.0.1 with embedded defaults.
 *
 * Starts, in order, each waited on until healthy: the Temporal dev server (state in a SQLite
 * file, web UI on), FerretDB (SQLite), the Plivo simulator, then the worker and the API as
 * child `avviso` processes. Loads the demo network on first start. On Ctrl-C or SIGTERM it stops
 * them in reverse order and waits until each has exited.
 *
 * Setting TEMPORAL_ADDRESS, MONGODB_URI or PLIVO_AUTH_ID uses that service instead of starting one.
 */
import path from 'node:path';
import { loadConfig } from '../config';
import { connectStore } from '../store/db';
import { loadDemoDataIfEmpty } from '../store/demo';
import { ensureApiKey } from '../store/api-keys';
import { assertPortFree, spawnManaged, waitUntilHealthy, type ManagedProcess } from './process';
import {
  ferretDbLineMatters,
  httpOk,
  PROJECT_ROOT,
  requireTool,
  startFerretDb,
  startTemporalDevServer,
} from './services';

import {
  DEV_SIMULATOR_AUTH_ID as SIM_AUTH_ID,
  DEV_SIMULATOR_AUTH_TOKEN as SIM_AUTH_TOKEN,
} from '../config/example-secrets';

function portFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new Error(`${name} is ${JSON.stringify(raw)}: it must be a port number from 1 to 65535.`);
  return n;
}

export async function runDevStack(args: string[] = []): Promise<number> {
  const unknown = args.filter((a) => a !== '--verbose');
  if (unknown.length > 0) {
    process.stderr.write(`avviso dev: unknown option ${unknown.join(' ')} (usage: avviso dev [--verbose])\n`);
    return 2;
  }
  let plan: Awaited<ReturnType<typeof planStack>> & { verbose: boolean };
  try {
    plan = { ...(await planStack()), verbose: args.includes('--verbose') };
  } catch (err) {
    // A missing tool, a taken port or a bad setting: say what to do, start nothing.
    process.stderr.write(`avviso dev: ${(err as Error).message}\n`);
    return 2;
  }
  return runStack(plan);
}

/** Works out addresses and checks tools, ports and configuration, starting nothing. */
async function planStack() {
  const host = '127.0.0.1';
  const dataDir = path.resolve(process.env.AVVISO_DATA_DIR ?? path.join(PROJECT_ROOT, '.data', 'dev'));
  const ports = {
    api: portFromEnv('PORT', 3000),
    sim: portFromEnv('SIM_PORT', 8090),
    temporal: portFromEnv('TEMPORAL_PORT', 7233),
    temporalUi: portFromEnv('TEMPORAL_UI_PORT', 8233),
    ferretdb: portFromEnv('FERRETDB_PORT', 27017),
  };
  const external = {
    temporal: !!process.env.TEMPORAL_ADDRESS,
    mongo: !!process.env.MONGODB_URI,
    plivo: !!process.env.PLIVO_AUTH_ID,
  };

  // The environment every child gets: the embedded services' addresses unless one is external.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS || `${host}:${ports.temporal}`,
    MONGODB_URI: process.env.MONGODB_URI || `mongodb://${host}:${ports.ferretdb}/avviso`,
    PLIVO_AUTH_ID: process.env.PLIVO_AUTH_ID || SIM_AUTH_ID,
    PLIVO_AUTH_TOKEN: external.plivo ? process.env.PLIVO_AUTH_TOKEN : SIM_AUTH_TOKEN,
    PLIVO_BASE_URL: external.plivo ? process.env.PLIVO_BASE_URL : `http://${host}:${ports.sim}`,
    HOST: process.env.HOST || host,
    // A demo answers at once: no grace delay, no quiet hours (rules/default is the policy as sold).
    AVVISO_RULES: process.env.AVVISO_RULES || path.join(PROJECT_ROOT, 'rules', 'dev'),
    PORT: String(ports.api),
    AVVISO_PARENT_PID: String(process.pid),
    // A development stack: the example integrations (rules/integrations.yaml), the simulator's
    // credentials and the placeholder contacts are accepted here, and only here and in the tests.
    AVVISO_MODE: 'development',
  };
  // Check the whole configuration before starting anything: a bad value stops here, named.
  const config = loadConfig(env);

  // Fail before starting anything when a binary is missing or a port is taken.
  if (!external.temporal) requireTool('temporal');
  if (!external.mongo) requireTool('ferretdb');
  const wanted: [boolean, number, string, string][] = [
    [!external.temporal, ports.temporal, 'the Temporal dev server', 'TEMPORAL_PORT'],
    [!external.temporal, ports.temporalUi, 'the Temporal web UI', 'TEMPORAL_UI_PORT'],
    [!external.mongo, ports.ferretdb, 'FerretDB', 'FERRETDB_PORT'],
    [!external.plivo, ports.sim, 'the Plivo simulator', 'SIM_PORT'],
    [true, ports.api, 'the API', 'PORT'],
  ];
  for (const [mine, port, what, envVar] of wanted) if (mine) await assertPortFree(config.http.host, port, what, envVar);
  return { host, dataDir, ports, external, env, config };
}

async function runStack({
  host,
  dataDir,
  ports,
  external,
  env,
  config,
  verbose,
}: Awaited<ReturnType<typeof planStack>> & { verbose: boolean }): Promise<number> {
  // FerretDB's warnings (one per connection closed, a JSON dump per command it lacks) go to a file;
  // its errors, and everything with --verbose, still show here.
  const ferretLog = path.join(dataDir, 'ferretdb.log');

  const procs: ManagedProcess[] = [];
  let stopping: Promise<void> | undefined;
  const stopAll = () =>
    (stopping ??= (async () => {
      for (const p of [...procs].reverse()) await p.stop();
    })());
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(
      `\navviso dev: ${sig}, stopping ${
        procs
          .filter((p) => p.isRunning())
          .map((p) => p.name)
          .join(', ') || 'nothing'
      }\n`,
    );
    void stopAll().then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const node = (name: string, command: string, extraEnv: NodeJS.ProcessEnv = {}) =>
    spawnManaged(name, process.execPath, [path.join(PROJECT_ROOT, 'bin', 'avviso.js'), command], {
      env: { ...env, ...extraEnv },
    });

  try {
    if (!external.temporal)
      procs.push(
        await startTemporalDevServer({
          port: ports.temporal,
          uiPort: ports.temporalUi,
          dbFile: path.join(dataDir, 'temporal.db'),
        }),
      );
    if (!external.mongo)
      procs.push(
        await startFerretDb({
          port: ports.ferretdb,
          dir: path.join(dataDir, 'ferretdb'),
          logFile: ferretLog,
          show: verbose ? undefined : ferretDbLineMatters,
        }),
      );
    if (!external.plivo) {
      const sim = node('sim', 'sim', {
        SIM_HOST: host,
        SIM_PORT: String(ports.sim),
        SIM_DATA_FILE: path.join(dataDir, 'sim-messages.ndjson'),
      });
      procs.push(sim);
      await waitUntilHealthy('the Plivo simulator', () => httpOk(`http://${host}:${ports.sim}/healthz`), { proc: sim });
    }

    const store = await connectStore(config.mongo.uri, config.mongo.db);
    const loaded = await loadDemoDataIfEmpty(store);
    // AVVISO_ADMIN_KEY: an admin key that scripts driving this stack can use.
    if (config.adminKey)
      await ensureApiKey(store, config.adminKey, {
        name: 'dev admin (AVVISO_ADMIN_KEY)',
        role: 'admin',
        createdBy: 'AVVISO_ADMIN_KEY',
      });
    await store.close();

    const worker = node('worker', 'worker');
    procs.push(worker);
    const api = node('api', 'api');
    procs.push(api);
    await waitUntilHealthy('the API', () => httpOk(`http://${host}:${ports.api}/readyz`), { proc: api });
    // The worker has no port; it is up once it has bundled the workflows and polls (a few seconds).
    if (!worker.isRunning()) throw new Error(`the worker exited (${await worker.exited}); its output is above.`);

    const base = `http://${host}:${ports.api}`;
    console.log(
      [
        '',
        'Avviso is running.',
        `  API          ${base}`,
        `  API docs     ${base}/docs`,
        external.temporal
          ? `  Temporal     ${config.temporal.address} (external)`
          : `  Temporal UI  http://${host}:${ports.temporalUi}`,
        external.plivo
          ? `  Plivo        ${config.plivo.baseUrl} (external)`
          : `  SMS inbox    http://${host}:${ports.sim}/inbox`,
        external.mongo ? '  MongoDB      (external)' : `  Data         ${dataDir} (delete it to start afresh)`,
        ...(external.mongo
          ? []
          : [`  FerretDB log ${ferretLog}${verbose ? '' : ' (its warnings; errors show here; --verbose shows all)'}`]),
        config.adminKey
          ? `  API key      admin key ${config.adminKey.split('_')[1]} from AVVISO_ADMIN_KEY: send -H "authorization: Bearer $AVVISO_ADMIN_KEY"`
          : `  API key      none: set AVVISO_ADMIN_KEY=avk_dev_<24+ characters> before starting, or MONGODB_URI=${config.mongo.uri} avviso keys create --name me --role admin`,
        `  Status page  ${base}/status`,
        loaded
          ? '  Demo data    loaded: try  curl -X POST ' +
            base +
            '/v1/incidents -H "authorization: Bearer $AVVISO_ADMIN_KEY" -H \'content-type: application/json\' -d \'{"siteIds":["tower-lodi-02"]}\''
          : '  Demo data    already there',
        `  Rules        ${path.relative(PROJECT_ROOT, env.AVVISO_RULES!) || env.AVVISO_RULES} (set AVVISO_RULES=rules/default for the policy as sold)`,
        `  pids         ${procs.map((p) => `${p.name}=${p.pid}`).join(' ')}`,
        'Press Ctrl-C to stop.',
        '',
      ].join('\n'),
    );

    // Run until a signal stops us or a child dies on its own (then stop the rest and fail).
    const first = await Promise.race(procs.map((p) => p.exited.then((code) => ({ p, code }))));
    if (stopping) {
      await stopping;
      return 0;
    }
    process.stderr.write(`avviso dev: ${first.p.name} exited (${first.code}); stopping the rest.\n`);
    await stopAll();
    return 1;
  } catch (err) {
    if (stopping) {
      await stopping;
      return 0;
    }
    process.stderr.write(`avviso dev: ${(err as Error).message}\n`);
    await stopAll();
    return 1;
  }
}
