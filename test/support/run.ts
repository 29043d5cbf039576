/**
 * `avviso test [--engine ferretdb|mongo-java-server] [file or directory ...]` (the last step of
 * `npm test`): starts one Temporal dev server and one MongoDB-wire server on free ports, bundles the
 * workflows once, runs the test files with node's own test runner, and stops the servers at the end,
 * whether the tests pass, fail or are interrupted. Each test file isolates itself with its own
 * database and task queue (see ./env.ts).
 *
 * The engine is FerretDB unless `--engine` or AVVISO_TEST_ENGINE says otherwise (./engine.ts). A run
 * of the whole suite on FerretDB is followed by a second pass of the store's and the delivery tests
 * on mongo-java-server, on the same Temporal server and bundle (docs/second-engine.md);
 * AVVISO_TEST_SECOND_ENGINE=0 leaves it out.
 */
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { freePort, type ManagedProcess } from '../../dev/process';
import { PROJECT_ROOT, startFerretDb, startMongoJavaServer, startTemporalDevServer } from '../../dev/services';
import { bundleWorkflows } from '../../worker/worker';
import { parseTestEngine, type TestEngine } from './engine';

/** What the second pass runs: the tests of the store and of delivery, the code that talks to the database most. */
export const SECOND_ENGINE_DIRS = ['test/store', 'test/delivery'];

function findTestFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) return name === 'support' || name === 'fixtures' ? [] : findTestFiles(p);
      return name.endsWith('.test.ts') ? [p] : [];
    })
    .sort();
}

/** A directory stands for the test files under it. */
function expand(paths: string[]): string[] {
  return paths.flatMap((p) => {
    const abs = path.resolve(p);
    return statSync(abs, { throwIfNoEntry: false })?.isDirectory() ? findTestFiles(abs) : [abs];
  });
}

export interface Pass {
  engine: TestEngine;
  files: string[];
}

export function planPasses(args: string[], env: NodeJS.ProcessEnv = process.env): Pass[] {
  let engine: TestEngine | undefined;
  const paths: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--engine') {
      const v = args[++i];
      if (v === undefined) throw new Error('avviso test --engine: give the engine, ferretdb or mongo-java-server');
      engine = parseTestEngine(v, '--engine');
    } else if (a.startsWith('--engine=')) engine = parseTestEngine(a.slice('--engine='.length), '--engine');
    else paths.push(a);
  }
  engine ??= env.AVVISO_TEST_ENGINE ? parseTestEngine(env.AVVISO_TEST_ENGINE, 'AVVISO_TEST_ENGINE') : 'ferretdb';
  if (paths.length > 0) return [{ engine, files: expand(paths) }];
  const passes: Pass[] = [{ engine, files: findTestFiles(path.join(PROJECT_ROOT, 'test')) }];
  if (engine === 'ferretdb' && env.AVVISO_TEST_SECOND_ENGINE !== '0') {
    passes.push({
      engine: 'mongo-java-server',
      files: SECOND_ENGINE_DIRS.flatMap((d) => findTestFiles(path.join(PROJECT_ROOT, d))),
    });
  }
  return passes;
}

export async function runTests(args: string[]): Promise<number> {
  return runPasses(planPasses(args));
}

/** Runs the passes one after the other, each on a server of its engine, and fails if any failed. */
export async function runPasses(passes: Pass[]): Promise<number> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'avviso-test-'));
  const servers = new Set<ManagedProcess>();
  let testRun: ReturnType<typeof spawn> | undefined;
  const cleanup = async () => {
    testRun?.kill('SIGTERM');
    await Promise.all([...servers].map((s) => s.stop(5000)));
    rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = () => void cleanup().then(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const startEngine = async (engine: TestEngine, port: number, dir: string) => {
    const proc =
      engine === 'ferretdb'
        ? await startFerretDb({ port, dir, output: 'ignore' })
        : await startMongoJavaServer({ port, output: 'ignore' });
    servers.add(proc);
    return proc;
  };

  try {
    const started = Date.now();
    const [temporalPort, mongoPort] = [await freePort(), await freePort()];
    const first = passes[0]!;
    const [temporal, mongo, bundle] = await Promise.all([
      startTemporalDevServer({ port: temporalPort, output: 'ignore' }).then((p) => (servers.add(p), p)),
      startEngine(first.engine, mongoPort, path.join(tmp, first.engine)),
      bundleWorkflows(),
    ]);
    const bundlePath = path.join(tmp, 'workflow-bundle.js');
    writeFileSync(bundlePath, bundle.code);
    console.log(
      `test servers: Temporal on 127.0.0.1:${temporalPort} (pid ${temporal.pid}), ${first.engine} on 127.0.0.1:${mongoPort} (pid ${mongo.pid}), ready in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );

    const outcomes: string[] = [];
    let failed = 0;
    for (const [i, pass] of passes.entries()) {
      let port = mongoPort;
      let server = mongo;
      if (i > 0) {
        port = await freePort();
        server = await startEngine(pass.engine, port, path.join(tmp, pass.engine));
        console.log(
          `\npass ${i + 1}: ${pass.files.length} test files on ${pass.engine} (127.0.0.1:${port}, pid ${server.pid})`,
        );
      }
      const passStarted = Date.now();
      const env = {
        ...process.env,
        AVVISO_TEST_ENGINE: pass.engine,
        AVVISO_TEST_TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
        AVVISO_TEST_MONGODB_URI: `mongodb://127.0.0.1:${port}/`,
        AVVISO_TEST_WORKFLOW_BUNDLE: bundlePath,
        AVVISO_TEST_TMP: tmp,
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      };
      const code = await new Promise<number>((resolve) => {
        testRun = spawn(
          process.execPath,
          ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...pass.files],
          { env, stdio: 'inherit', cwd: PROJECT_ROOT },
        );
        testRun.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
      });
      testRun = undefined;
      // Each engine's server goes when its pass is done: the machine is small.
      servers.delete(server);
      await server.stop(5000);
      if (code !== 0) failed = failed || code;
      outcomes.push(
        `${pass.engine}: ${pass.files.length} files, ${code === 0 ? 'passed' : `FAILED (exit ${code})`} in ${((Date.now() - passStarted) / 1000).toFixed(0)} s`,
      );
    }
    if (passes.length > 1) console.log(`\ntest passes: ${outcomes.join('; ')}`);
    return failed;
  } finally {
    await cleanup();
  }
}
