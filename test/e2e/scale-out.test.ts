/**
 * The production deployment scaled out (deploy/README.md): two `avviso api` processes behind a
 * round-robin proxy (nginx's part, played here by a few lines of node) and two `avviso worker`
 * processes, against one Temporal and one database, every process in production mode with the
 * operator's own files (integrations with token_env, rules with a real contact). Incidents are
 * opened and resolved alternately through both APIs; the same monitoring alert and the same
 * manual open are sent to both at once; Plivo's receipts reach both through the proxy. In the end
 * each paying subscriber has exactly one outage and one restoration SMS, and nobody else any.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Site, Subscriber } from '../../domain/types';
import { freePort } from '../../dev/process';
import { eventually } from '../support/env';
import { startTestStack, TEST_RULES, type TestStack } from '../support/stack';

const AVVISO = path.join(__dirname, '..', '..', 'bin', 'avviso.js');
const PAYING = 30;
const NOT_PAYING = 5;
const SITES = ['tower-scale-a', 'tower-scale-b'];
const phone = (site: number, i: number) => `+39347${site}${String(100000 + i).padStart(6, '0')}`;

interface Proc {
  name: string;
  child: ChildProcess;
  output: () => string;
}

/** A round-robin HTTP proxy: each request to the next backend in turn, as nginx's upstream does. */
async function roundRobinProxy(backends: string[]): Promise<{ url: string; served: number[]; close(): Promise<void> }> {
  const served = backends.map(() => 0);
  let next = 0;
  const server = http.createServer((req, res) => {
    const i = next++ % backends.length;
    served[i]!++;
    const target = new URL(req.url ?? '/', backends[i]);
    const upstream = http.request(target, { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    served,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('two APIs and two workers on one Temporal and one database', () => {
  let stack: TestStack;
  let proxy: Awaited<ReturnType<typeof roundRobinProxy>>;
  const procs: Proc[] = [];
  const apis: string[] = [];
  const token = randomBytes(16).toString('hex');

  function start(name: string, command: string, env: NodeJS.ProcessEnv): Proc {
    const child = spawn(process.execPath, [AVVISO, command], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    const p = { name, child, output: () => out };
    procs.push(p);
    return p;
  }
  const outputs = () =>
    procs
      .map((p) => `--- ${p.name} (exit ${p.child.exitCode ?? p.child.signalCode ?? 'running'}):\n${p.output()}`)
      .join('\n');

  /** JSON over HTTP to one API (or the proxy), with the admin key unless headers carry their own. */
  async function send(
    base: string,
    method: string,
    urlPath: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) {
    const res = await fetch(base + urlPath, {
      method,
      headers: {
        authorization: `Bearer ${stack.adminKey}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  before(async () => {
    stack = await startTestStack(__filename, { inProcessWorker: false });
    // The operator's own files, as deploy/README.md has them: tokens from the environment, a real contact.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'avviso-scale-out-'));
    writeFileSync(
      path.join(dir, 'integrations.yaml'),
      'integrations:\n  - { name: noc, source: alertmanager, token_env: AVVISO_TOKEN_ALERTMANAGER_NOC, site: { label: device } }\n',
    );
    const devRules = readFileSync(path.join(TEST_RULES, 'avviso.yaml'), 'utf8')
      .replace('../default/contacts.yaml', 'contacts.yaml')
      .replace('../default/templates/', path.join(TEST_RULES, '..', 'default', 'templates') + '/');
    writeFileSync(path.join(dir, 'avviso.yaml'), devRules);
    writeFileSync(
      path.join(dir, 'contacts.yaml'),
      'contacts:\n  noc-oncall: { name: NOC reperibile, phone: "+390577123456" }\n',
    );

    const sites: Site[] = SITES.map((id) => ({ _id: id, name: id, area: 'Borgo Prova', uplink: null }));
    await stack.store.sites.insertMany(sites);
    const subs: Subscriber[] = SITES.flatMap((siteId, s) =>
      Array.from({ length: PAYING + NOT_PAYING }, (_, i) => ({
        _id: `S${s}-${String(i).padStart(3, '0')}`,
        name: `Subscriber ${s}/${i}`,
        phones: [phone(s, i)],
        language: 'it' as const,
        siteId,
        segment: 'residential' as const,
        smsAlerts: { active: i < PAYING },
        optedOut: false,
      })),
    );
    await stack.store.subscribers.insertMany(subs);

    const ports = [await freePort(), await freePort()];
    apis.push(...ports.map((p) => `http://127.0.0.1:${p}`));
    proxy = await roundRobinProxy(apis);
    const env: NodeJS.ProcessEnv = {
      ...stack.workerEnv,
      AVVISO_MODE: 'production',
      AVVISO_RULES: dir,
      AVVISO_INTEGRATIONS: path.join(dir, 'integrations.yaml'),
      AVVISO_TOKEN_ALERTMANAGER_NOC: token,
      AVVISO_PUBLIC_URL: proxy.url,
      AVVISO_ALERT_SETTLE_SECONDS: '0',
      API_RATE_LIMIT_PER_MINUTE: '100000',
      HOST: '127.0.0.1',
    };
    ports.forEach((port, i) => start(`api-${i + 1}`, 'api', { ...env, PORT: String(port) }));
    start('worker-1', 'worker', env);
    start('worker-2', 'worker', env);
    for (const api of apis) {
      await eventually(
        `${api} ready`,
        async () => ((await fetch(`${api}/readyz`).catch(() => undefined))?.ok ? true : undefined),
        60_000,
      ).catch((err) => {
        throw new Error(`${(err as Error).message}\n${outputs()}`);
      });
    }
  });

  after(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    await Promise.all(
      procs.map((p) =>
        p.child.exitCode === null && p.child.signalCode === null
          ? new Promise((r) => p.child.once('exit', r))
          : undefined,
      ),
    );
    await proxy?.close();
    await stack?.stop();
  });

  async function billed(id: string, via: string) {
    return eventually(
      `incident ${id} billed`,
      async () => {
        const r = (await send(via, 'GET', `/v1/incidents/${id}`)).body;
        return r?.phase === 'billed' ? r : undefined;
      },
      180_000,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n${outputs()}`);
    });
  }

  test('every paying subscriber gets exactly one outage and one restoration SMS', async () => {
    // Site A: opened by hand, the same request (one Idempotency-Key) sent to both APIs at once.
    const opened = await Promise.all(
      apis.map((api) =>
        send(api, 'POST', '/v1/incidents', { siteIds: [SITES[0]] }, { 'idempotency-key': 'scale-out-a' }),
      ),
    );
    for (const o of opened) assert.ok([200, 201, 202].includes(o.status), JSON.stringify(o.body));
    assert.equal(opened[0]!.body.id, opened[1]!.body.id, 'one incident, whichever API answered');
    const manual = opened[0]!.body.id as string;

    // Site B: the monitoring tool's alert, delivered to both APIs at once (a retry, two NOC servers).
    // One payload, byte for byte the same to both APIs.
    const startsAt = new Date(Date.now() - 5000).toISOString();
    const alert = (status: 'firing' | 'resolved') => ({
      version: '4',
      status,
      receiver: 'avviso',
      groupKey: '{}:{alertname="TowerDown"}',
      alerts: [
        {
          status,
          labels: { alertname: 'TowerDown', device: SITES[1], severity: 'critical' },
          annotations: { summary: 'tower down' },
          startsAt,
          endsAt: status === 'resolved' ? new Date().toISOString() : '0001-01-01T00:00:00Z',
          fingerprint: 'fp-scale-out',
        },
      ],
    });
    const auth = { authorization: `Bearer ${token}` };
    const firing = alert('firing');
    const fired = await Promise.all(apis.map((api) => send(api, 'POST', '/v1/ingest/alertmanager/noc', firing, auth)));
    // Accepted by both (200 when recognised as a repeat), acted on once.
    for (const f of fired) assert.ok([200, 202].includes(f.status), JSON.stringify(f.body));
    const monitored = fired[0]!.body.results?.[0]?.incidentId as string;
    assert.ok(monitored, JSON.stringify(fired[0]!.body));
    assert.equal(fired[1]!.body.results?.[0]?.incidentId, monitored, 'the repeated alert reaches the same incident');

    // Every outage notice out (the receipts come back through the proxy, to either API), then resolve
    // each through the other API than the one that opened it.
    for (const id of [manual, monitored]) {
      await eventually(
        `outage notices of ${id} delivered`,
        async () => {
          const d = (await send(proxy.url, 'GET', `/v1/incidents/${id}`)).body?.deliveries;
          return d?.sms?.outage?.delivered === PAYING ? true : undefined;
        },
        120_000,
      ).catch((err) => {
        throw new Error(`${(err as Error).message}\n${outputs()}`);
      });
    }
    const resolved = await send(apis[1]!, 'POST', `/v1/incidents/${manual}/resolve`, {});
    assert.equal(resolved.status, 202, JSON.stringify(resolved.body));
    const resolvedAlert = alert('resolved');
    const cleared = await Promise.all(
      apis.map((api) => send(api, 'POST', '/v1/ingest/alertmanager/noc', resolvedAlert, auth)),
    );
    for (const c of cleared) assert.ok([200, 202].includes(c.status), JSON.stringify(c.body));

    for (const id of [manual, monitored]) {
      const done = await billed(id, proxy.url);
      assert.deepEqual(done.deliveries.sms, { outage: { delivered: PAYING }, restored: { delivered: PAYING } });
    }
    const listed = await stack.store.incidents.countDocuments({});
    assert.equal(listed, 2, 'two incidents in all: neither repeat made another');

    // The simulator's own record: each paying phone one outage then one restoration, the others nothing.
    const inbox = await stack.inbox();
    const problems: string[] = [];
    SITES.forEach((_, s) => {
      for (let i = 0; i < PAYING + NOT_PAYING; i++) {
        const texts = (inbox[phone(s, i)] ?? []).map((m) =>
          /guasto/.test(m.text) ? 'outage' : /ripristinato/.test(m.text) ? 'restored' : m.text,
        );
        const expected = i < PAYING ? 'outage,restored' : '';
        if (texts.join(',') !== expected) problems.push(`${phone(s, i)}: ${texts.join(', ') || 'nothing'}`);
      }
    });
    assert.deepEqual(problems, [], 'each paying phone: one outage, then one restoration; nobody else anything');
    assert.ok(
      proxy.served.every((n) => n > 0),
      `the proxy reached both APIs (${proxy.served.join(', ')})`,
    );
    const workerLines = procs.filter((p) => p.name.startsWith('worker')).map((p) => p.output());
    assert.ok(
      workerLines.every((out) => !/\+39 ?347/.test(out)),
      "no phone number in the workers' logs",
    );
  });
});
