/**
 * `avviso test` (the last step of `npm test`): starts one Temporal dev server and one FerretDB on
 * free ports for the whole run, bundles the workflows once, runs every test file with node's own
 * test runner, and stops the servers at the end, whether the tests pass, fail or are interrupted.
 * Each test file isolates itself with its own database and task queue (see ./env.ts).
 */
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { freePort, type ManagedProcess } from '../../dev/process';
import { PROJECT_ROOT, startFerretDb, startTemporalDevServer } from '../../dev/services';
import { bundleWorkflows } from '../../worker/worker';

function findTestFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) return name === 'support' || name === 'fixtures' ? [] : findTestFiles(p);
      return name.endsWith('.test.ts') ? [p] : [];
    })
    .sort();
}

export async function runTests(args: string[]): Promise<number> {
  const files = args.length > 0 ? args.map((a) => path.resolve(a)) : findTestFiles(path.join(PROJECT_ROOT, 'test'));
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'avviso-test-'));
  const servers: ManagedProcess[] = [];
  let testRun: ReturnType<typeof spawn> | undefined;
  const cleanup = async () => {
    testRun?.kill('SIGTERM');
    await Promise.all(servers.map((s) => s.stop(5000)));
    rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = () => void cleanup().then(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const started = Date.now();
    const [temporalPort, ferretPort] = [await freePort(), await freePort()];
    const [temporal, ferret, bundle] = await Promise.all([
      startTemporalDevServer({ port: temporalPort, output: 'ignore' }).then((p) => (servers.push(p), p)),
      startFerretDb({ port: ferretPort, dir: path.join(tmp, 'ferretdb'), output: 'ignore' }).then((p) => (servers.push(p), p)),
      bundleWorkflows(),
    ]);
    const bundlePath = path.join(tmp, 'workflow-bundle.js');
    writeFileSync(bundlePath, bundle.code);
    console.log(`test servers: Temporal on 127.0.0.1:${temporalPort} (pid ${temporal.pid}), FerretDB on 127.0.0.1:${ferretPort} (pid ${ferret.pid}), ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const env = {
      ...process.env,
      AVVISO_TEST_TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
      AVVISO_TEST_MONGODB_URI: `mongodb://127.0.0.1:${ferretPort}/`,
      AVVISO_TEST_WORKFLOW_BUNDLE: bundlePath,
      AVVISO_TEST_TMP: tmp,
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    };
    const code = await new Promise<number>((resolve) => {
      testRun = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files], { env, stdio: 'inherit', cwd: PROJECT_ROOT });
      testRun.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
    });
    return code;
  } finally {
    await cleanup();
  }
}
