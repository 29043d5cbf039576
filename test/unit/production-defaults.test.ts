/**
 * Safe by default: outside `avviso dev` and the tests (AVVISO_MODE=development), the processes refuse
 * the secrets the repository ships as examples, at start and before any connection, naming the
 * variable to set: the simulator's credentials, the integrations' dev-token-*, every placeholder
 * of deploy/avviso.env.example, and rules that escalate to the placeholder contact.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig, mongoFromEnv } from '../../config';
import { integrationsAtStart, refusePlaceholderContacts } from '../../config/start-checks';
import { loadRuleSet } from '../../rules';

const ROOT = path.join(__dirname, '..', '..');
const good = {
  TEMPORAL_ADDRESS: '127.0.0.1:7233',
  MONGODB_URI: 'mongodb://db1:27017/isp',
  PLIVO_AUTH_ID: 'MAXXXXXXXXXXXXXXXXXX',
  PLIVO_AUTH_TOKEN: 'a-secret-token',
};

/** The KEY=VALUE lines of an environment file, as systemd's EnvironmentFile reads them. */
function envFile(file: string): Record<string, string> {
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l));
  return Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

function configProblems(env: NodeJS.ProcessEnv): string {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems.join('\n');
  }
  return '';
}

describe('the environment', () => {
  test("the simulator's credentials of `avviso dev` are refused, naming both variables; development accepts them", () => {
    const dev = { ...good, PLIVO_AUTH_ID: 'MADEVSIMULATOR0000000', PLIVO_AUTH_TOKEN: 'dev-simulator-token' };
    const problems = configProblems(dev);
    assert.match(
      problems,
      /^PLIVO_AUTH_ID is the Plivo simulator's credentials of `avviso dev`, public in the repository: set it to your Plivo Auth ID/m,
    );
    assert.match(
      problems,
      /^PLIVO_AUTH_TOKEN is the Plivo simulator's credentials .*: set it to your Plivo Auth Token/m,
    );
    assert.doesNotMatch(problems, /dev-simulator-token/, 'the message does not repeat the secret');
    assert.equal(loadConfig({ ...dev, AVVISO_MODE: 'development' }).mode, 'development');
    assert.equal(loadConfig(good).mode, 'production', 'production is the default');
  });

  test('every placeholder of deploy/avviso.env.example is refused, each naming its variable', () => {
    const example = envFile(path.join(ROOT, 'deploy', 'avviso.env.example'));
    const problems = configProblems(example);
    for (const name of ['PLIVO_AUTH_ID', 'PLIVO_AUTH_TOKEN', 'MONGODB_URI', 'WEBHOOK_SECRET', 'SMTP_PASS']) {
      assert.match(
        problems,
        new RegExp(`^${name} is the placeholder of deploy/avviso\\.env\\.example: set it to`, 'm'),
      );
    }
    assert.throws(
      () => mongoFromEnv({ MONGODB_URI: example.MONGODB_URI }),
      /MONGODB_URI is the placeholder/,
      'the CLI tools that need only MongoDB refuse it too',
    );
    // With every placeholder replaced, the same file is a valid configuration.
    // (The TLS files it names are the operator's, not on this machine.)
    const filled = Object.fromEntries(
      Object.entries(example)
        .filter(([k]) => !k.startsWith('TEMPORAL_TLS'))
        .map(([k, v]) => [
          k,
          v.replace(/change-me-[a-z-]+/g, 'x7Kq2pW9sLm4vN8r').replace('CHANGEME0PLIVO0AUTHID', 'MAZDQ1ODRLNTRKOTYXMJ'),
        ]),
    );
    assert.equal(loadConfig(filled).temporal.namespace, 'avviso');
    assert.equal(mongoFromEnv(filled).db, 'avviso');
  });
});

describe('the files read at start', () => {
  test("without AVVISO_INTEGRATIONS the API refuses to start, pointing at the operator's own file", async () => {
    await assert.rejects(integrationsAtStart(loadConfig(good), {}), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(
        err.message,
        /AVVISO_INTEGRATIONS is not set: the example set rules\/integrations\.yaml holds tokens public in the repository/,
      );
      return true;
    });
    const dev = await integrationsAtStart(loadConfig({ ...good, AVVISO_MODE: 'development' }), {});
    assert.equal(dev.find('alertmanager', 'noc')?.token, 'dev-token-alertmanager', 'avviso dev keeps the example set');
  });

  test("the repository's example file, pointed at explicitly, is refused token by token; the deploy example needs real tokens", async () => {
    const pointed = loadConfig({ ...good, AVVISO_INTEGRATIONS: path.join(ROOT, 'rules', 'integrations.yaml') });
    await assert.rejects(
      integrationsAtStart(pointed, {}),
      /AVVISO_INTEGRATIONS: .*integrations\.yaml:\d+:\d+: token of zabbix\/noc is an example token .*token_env: AVVISO_TOKEN_ZABBIX_NOC/,
    );
    const example = envFile(path.join(ROOT, 'deploy', 'avviso.env.example'));
    const deployConfig = loadConfig({
      ...good,
      AVVISO_INTEGRATIONS: path.join(ROOT, 'deploy', 'integrations.example.yaml'),
    });
    await assert.rejects(
      integrationsAtStart(deployConfig, example),
      /token_env: AVVISO_TOKEN_ALERTMANAGER_NOC is the placeholder of deploy\/avviso\.env\.example/,
    );
    const set = await integrationsAtStart(deployConfig, {
      AVVISO_TOKEN_ALERTMANAGER_NOC: 'q8Zr3LwT5yXc1Vb7',
      AVVISO_TOKEN_ZABBIX_NOC: 'Hn4Jd9Ks2Pf6Tg1M',
    });
    assert.equal(set.find('zabbix', 'noc')?.token, 'Hn4Jd9Ks2Pf6Tg1M');
    assert.deepEqual(set.warnings, [], 'no literal secret in the deploy example');
  });

  test('rules escalating to the placeholder contact are refused outside development', async () => {
    const rules = await loadRuleSet(path.join(ROOT, 'rules', 'dev'));
    assert.throws(
      () => refusePlaceholderContacts(loadConfig(good), rules),
      /AVVISO_RULES: .*rules\/default\/contacts\.yaml:3:3: error: contact "noc-oncall" has the shipped placeholder phone \+390577000000/,
    );
    assert.doesNotThrow(() => refusePlaceholderContacts(loadConfig({ ...good, AVVISO_MODE: 'development' }), rules));
  });
});

describe('the processes', () => {
  /** `avviso <command>` as systemd starts it, with MongoDB and Temporal on ports where nothing listens. */
  function start(
    command: string,
    extra: Record<string, string>,
  ): Promise<{ code: number | null; out: string; ms: number }> {
    const started = Date.now();
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...good,
      TEMPORAL_ADDRESS: '127.0.0.1:9',
      MONGODB_URI: 'mongodb://127.0.0.1:9/avviso?serverSelectionTimeoutMS=60000',
      ...extra,
    };
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'avviso.js'), command], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    return new Promise((resolve) => child.once('exit', (code) => resolve({ code, out, ms: Date.now() - started })));
  }

  test('`avviso api` and `avviso worker` refuse example secrets at once, before connecting to anything', async () => {
    const [api, worker, plivo] = await Promise.all([
      start('api', {}),
      start('worker', { AVVISO_RULES: path.join(ROOT, 'rules', 'dev') }),
      start('worker', { PLIVO_AUTH_TOKEN: 'dev-simulator-token' }),
    ]);
    assert.equal(api.code, 1, api.out);
    assert.match(api.out, /Configuration is not valid:\n {2}- AVVISO_INTEGRATIONS is not set/);
    assert.equal(worker.code, 1, worker.out);
    assert.match(
      worker.out,
      /AVVISO_RULES: .*contacts\.yaml:3:3: error: contact "noc-oncall" has the shipped placeholder phone/,
    );
    assert.equal(plivo.code, 1, plivo.out);
    assert.match(plivo.out, /PLIVO_AUTH_TOKEN is the Plivo simulator's credentials/);
    // A connection attempt would wait the 60 s server selection timeout of the URI above.
    for (const r of [api, worker, plivo]) assert.ok(r.ms < 30_000, `refused before any connection (${r.ms} ms)`);
  });
});
