/**
 * A webhook never waits for a worker (issue 19, item 6). With no worker running, monitoring
 * requests are all answered at once (stored, decided, handed to Temporal as starts and signals),
 * an operator's request is answered within its bounded wait as queued, and once a worker starts
 * the incidents open and every paying subscriber is told once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { loadDemoDataIfEmpty } from '../../store/demo';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';
import { parseIntegrations } from '../../ingest/integrations';
import * as p from './payloads';

const AVVISO = path.join(__dirname, '..', '..', 'bin', 'avviso.js');
const INTEGRATIONS = parseIntegrations(
  'integrations:\n  - { name: noc, source: alertmanager, token: am-token-123, site: { label: device } }\n',
  'test-integrations.yaml',
  {},
);
const SITES = ['tower-lodi-01', 'ap-lodi-01-a', 'tower-lodi-02', 'ap-lodi-02-a', 'tower-crema-01', 'ap-crema-01-a'];
/** Every paying subscriber of the demo network (C-1006 opted out; C-1003 and C-2002 do not pay). */
const PAYING = [
  '+393471000001',
  '+393471000002',
  '+393471000004',
  '+393471000005',
  '+393471000007',
  '+393471000101',
  '+393471000103',
];

describe('with no worker running', () => {
  let stack: TestStack;
  let worker: ChildProcess | undefined;
  before(async () => {
    stack = await startTestStack(__filename, {
      inProcessWorker: false,
      deliveryPolicy: { deliveryTimeoutMs: 10_000, maxAttempts: 3, sweepEveryMs: 200 },
      integrations: INTEGRATIONS,
    });
    await loadDemoDataIfEmpty(stack.store);
  });
  after(async () => {
    if (worker && worker.exitCode === null) {
      const exited = new Promise((r) => worker!.once('exit', r));
      worker.kill('SIGTERM');
      await exited;
    }
    await stack?.stop();
  });

  async function post(
    body: unknown,
  ): Promise<{ status: number; ms: number; body: { results: { action: string; incidentId?: string }[] } }> {
    const t0 = Date.now();
    const res = await fetch(`${stack.apiUrl}/v1/ingest/alertmanager/noc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer am-token-123' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: (await res.json()) as never, ms: Date.now() - t0 };
  }

  test('monitoring requests are answered at once; the incidents open once a worker starts', async () => {
    // 60 alerts over both trees, each posted twice, in parallel; then their resolution for one of them.
    const alerts = Array.from({ length: 60 }, (_, i) => ({ device: SITES[i % SITES.length]!, fingerprint: `nw-${i}` }));
    const answers = await Promise.all([...alerts, ...alerts].map((a) => post(p.alertmanager(a))));
    for (const a of answers) assert.ok(a.status === 202 || a.status === 200, `answered ${a.status}`);
    const slowest = Math.max(...answers.map((a) => a.ms));
    assert.ok(slowest < 5_000, `every request answered without a worker (slowest ${slowest} ms)`);

    // Decided without a worker: one incident per tree, the workflows started and waiting.
    await eventually('every alert decided', async () =>
      (await stack.store.alertEvents.countDocuments({
        $or: [{ result: { $exists: false } }, { 'result.action': 'accepted' }],
      })) === 0
        ? true
        : undefined,
    );
    const open = await stack.store.incidents.find({ mergedInto: { $exists: false } }).toArray();
    assert.equal(open.length, 2, `one incident per tree: ${JSON.stringify(open.map((i) => i.siteIds))}`);
    for (const i of open) assert.equal(i.phase, 'detected', 'nothing runs them yet');

    // A joined alert's resolution, and an operator's request: no wait either.
    const left = await post(p.alertmanager({ device: 'ap-crema-01-a', fingerprint: 'nw-5', status: 'resolved' }));
    assert.equal(left.status, 202);
    const t0 = Date.now();
    const update = await call(stack, 'POST', `/v1/incidents/${open[0]!._id}/updates`, { text: 'Tecnici sul posto' });
    assert.equal(update.status, 202, JSON.stringify(update.body));
    assert.equal(update.body.queued, true, 'recorded, applied when a worker runs');
    assert.ok(Date.now() - t0 < 10_000);

    worker = spawn(process.execPath, [AVVISO, 'worker'], { env: stack.workerEnv, stdio: 'ignore' });
    for (const i of open)
      await eventually(
        `incident ${i._id} notified`,
        async () => ((await stack.store.incidents.findOne({ _id: i._id }))?.phase === 'notified' ? true : undefined),
        90_000,
      );
    const inbox = await stack.inbox();
    for (const phone of PAYING) assert.equal(inbox[phone]?.length, 1, `${phone} told once`);
    await eventually(
      'the queued update applied',
      async () =>
        (await stack.store.incidents.findOne({ _id: open[0]!._id }))?.updates?.some(
          (u) => u.text === 'Tecnici sul posto',
        )
          ? true
          : undefined,
      30_000,
    );
  });
});
