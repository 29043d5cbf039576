/**
 * `avviso dev` as a person runs it: the whole stack starts as real processes, an incident on a
 * demo site reaches that site's subscribers in the simulator's inbox, SIGTERM stops every
 * process it started, and the data is still there after a restart.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../../dev/process';
import { PROJECT_ROOT } from '../../dev/services';
import { eventually, sharedServers } from '../support/env';

const BIN = path.join(PROJECT_ROOT, 'bin', 'avviso.js');
/** The admin key `avviso dev` makes from AVVISO_ADMIN_KEY, as a script driving it would. */
const ADMIN_KEY = 'avk_devtest_0123456789abcdef0123456789abcdef';
const AUTH = { authorization: `Bearer ${ADMIN_KEY}` };

interface DevRun {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** The environment of a person's shell: none of the harness's or production's settings. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env))
    if (/^(TEMPORAL_|MONGODB_|PLIVO_|AVVISO_|SIM_|FERRETDB_|PORT$|HOST$)/.test(k)) delete env[k];
  return { ...env, LOG_LEVEL: 'warn', ...extra };
}

function startDev(env: NodeJS.ProcessEnv): DevRun {
  const child = spawn(process.execPath, [BIN, 'dev'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('avviso dev', () => {
  const dataDir = path.join(sharedServers().tmpDir, `dev-${process.pid}`);
  const running: DevRun[] = [];
  after(() => running.forEach((r) => r.child.kill('SIGKILL')));

  async function ports() {
    return {
      PORT: String(await freePort()),
      SIM_PORT: String(await freePort()),
      TEMPORAL_PORT: String(await freePort()),
      TEMPORAL_UI_PORT: String(await freePort()),
      FERRETDB_PORT: String(await freePort()),
    };
  }

  async function up(env: NodeJS.ProcessEnv) {
    const run = startDev(env);
    running.push(run);
    await eventually(
      '"Avviso is running."',
      async () => {
        if (run.child.exitCode !== null) throw new Error(`avviso dev exited ${run.child.exitCode}:\n${run.output()}`);
        return run.output().includes('Press Ctrl-C to stop.') ? true : undefined;
      },
      90_000,
    );
    const pids = Object.fromEntries(
      [...run.output().matchAll(/(\w+)=(\d+)/g)]
        .filter((m) => ['temporal', 'ferretdb', 'sim', 'worker', 'api'].includes(m[1]!))
        .map((m) => [m[1]!, Number(m[2])]),
    );
    return { run, pids };
  }

  test("starts everything, sends an incident's SMS, stops without leftovers, keeps its data", async () => {
    const p = await ports();
    const env = cleanEnv({ ...p, AVVISO_DATA_DIR: dataDir, AVVISO_ADMIN_KEY: ADMIN_KEY });
    const api = `http://127.0.0.1:${p.PORT}`;
    const inbox = `http://127.0.0.1:${p.SIM_PORT}/inbox.json`;

    const first = await up(env);
    assert.deepEqual(Object.keys(first.pids).sort(), ['api', 'ferretdb', 'sim', 'temporal', 'worker']);
    for (const url of [`${api}/docs`, `http://127.0.0.1:${p.TEMPORAL_UI_PORT}`, `http://127.0.0.1:${p.SIM_PORT}/inbox`])
      assert.match(first.run.output(), new RegExp(url.replace(/[.]/g, '\\.')));
    assert.match(first.run.output(), /Demo data +loaded/);

    const anonymous = await fetch(`${api}/v1/incidents`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ siteIds: ['tower-crema-01'] }),
    });
    assert.equal(anonymous.status, 401, 'the API wants a key');
    const opened = await fetch(`${api}/v1/incidents`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...AUTH },
      body: JSON.stringify({ siteIds: ['tower-crema-01'] }),
    });
    assert.equal(opened.status, 202);
    const { id } = (await opened.json()) as { id: string };
    const phones = await eventually(
      'the Crema outage SMS',
      async () => {
        const box = (await (await fetch(inbox)).json()) as { phones: Record<string, { text: string }[]> };
        const keys = Object.keys(box.phones).sort();
        return keys.length === 2 ? keys : undefined;
      },
      60_000,
    );
    // Crema: C-2001 and C-2003 pay for the option; C-2002 does not.
    assert.deepEqual(phones, ['+393471000101', '+393471000103']);
    await fetch(`${api}/v1/incidents/${id}/resolve`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...AUTH },
      body: '{}',
    });
    await eventually(
      'the restoration SMS',
      async () => {
        const box = (await (await fetch(inbox)).json()) as { phones: Record<string, { text: string }[]> };
        return phones.every((ph) => box.phones[ph]?.length === 2) ? true : undefined;
      },
      60_000,
    );

    await eventually(
      'the incident to be resolved',
      async () => {
        const r = (await (await fetch(`${api}/v1/incidents/${id}`, { headers: AUTH })).json()) as { phase: string };
        return r.phase === 'resolved' || r.phase === 'billed' ? true : undefined;
      },
      60_000,
    );
    // A development stack keeps the example integrations of rules/integrations.yaml (refused in production).
    const now = new Date().toISOString();
    const webhook = await fetch(`${api}/v1/ingest/alertmanager/noc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer dev-token-alertmanager' },
      body: JSON.stringify({
        status: 'resolved',
        alerts: [
          {
            status: 'resolved',
            fingerprint: 'dev-check',
            labels: { alertname: 'Check', device: 'tower-crema-01' },
            startsAt: now,
            endsAt: now,
          },
        ],
      }),
    });
    assert.ok([200, 202].includes(webhook.status), `the dev token is accepted (${webhook.status})`);
    first.run.child.kill('SIGTERM');
    assert.equal(await first.run.exited, 0, first.run.output());
    // FerretDB's warnings (a JSON dump per endSessions) went to its log file, not to the terminal.
    assert.doesNotMatch(first.run.output(), /\[ferretdb\] .*level=WARN/);
    assert.match(first.run.output(), /FerretDB log .*ferretdb\.log/);
    for (const [name, pid] of Object.entries(first.pids))
      assert.equal(alive(pid), false, `${name} (pid ${pid}) must be stopped`);

    // Same data folder: the incident, the network and the inbox survive the restart.
    const second = await up(env);
    assert.match(second.run.output(), /Demo data +already there/);
    const again = (await (await fetch(`${api}/v1/incidents/${id}`, { headers: AUTH })).json()) as { phase: string };
    assert.ok(['resolved', 'billed'].includes(again.phase), again.phase);
    const box = (await (await fetch(inbox)).json()) as { phones: Record<string, unknown[]> };
    assert.equal(box.phones['+393471000101']?.length, 2);
    second.run.child.kill('SIGINT');
    assert.equal(await second.run.exited, 0, second.run.output());
    for (const [name, pid] of Object.entries(second.pids))
      assert.equal(alive(pid), false, `${name} (pid ${pid}) must be stopped`);
  });

  test('a missing tool, a bad setting or a taken port stops it before anything starts, saying what to do', async () => {
    const p = await ports();
    const noTools = startDev(cleanEnv({ ...p, AVVISO_DATA_DIR: dataDir, AVVISO_TOOLS_DIR: '/nonexistent' }));
    assert.equal(await noTools.exited, 2);
    assert.match(noTools.output(), /temporal is not installed .*run `npm run bootstrap`/);

    const badPort = startDev(cleanEnv({ ...p, AVVISO_DATA_DIR: dataDir, SIM_PORT: 'ninety' }));
    assert.equal(await badPort.exited, 2);
    assert.match(badPort.output(), /SIM_PORT is "ninety": it must be a port number/);

    const badUrl = startDev(cleanEnv({ ...p, AVVISO_DATA_DIR: dataDir, AVVISO_PUBLIC_URL: 'not a url' }));
    assert.equal(await badUrl.exited, 2);
    assert.match(badUrl.output(), /AVVISO_PUBLIC_URL is "not a url": must be an http\(s\) URL/);

    const { createServer } = await import('node:net');
    const blocker = createServer().listen(Number(p.FERRETDB_PORT), '127.0.0.1');
    try {
      const taken = startDev(cleanEnv({ ...p, AVVISO_DATA_DIR: dataDir }));
      assert.equal(await taken.exited, 2);
      assert.match(taken.output(), new RegExp(`port ${p.FERRETDB_PORT} .*FerretDB.*already in use.*FERRETDB_PORT`));
    } finally {
      blocker.close();
    }
  });
});
