/**
 * The worker dies in the middle of sending (SIGKILL: no shutdown, an activity cut off between two
 * batches or inside one) and a new worker process takes over. Twice: once while the outage notices
 * go out, once while the restoration notices do. Temporal retries the cut-off activity on the new
 * worker; the delivery records and send claims in MongoDB make the retry send only what had not
 * gone out, and reconciliation with Plivo's message list covers a batch that Plivo accepted just
 * before the kill. In the end every subscriber has exactly one outage notice and then exactly one
 * restoration notice, as the simulator recorded them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Site, Subscriber } from '../../domain/types';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';

const SUBSCRIBERS = 200;
const BATCH = 10;
const phone = (i: number) => `+39347${String(5000000 + i).padStart(7, '0')}`;
const AVVISO = path.join(__dirname, '..', '..', 'bin', 'avviso.js');

interface WorkerProcess {
  child: ChildProcess;
  output: () => string;
}

describe('a worker killed while sending', () => {
  let stack: TestStack;
  const workers: WorkerProcess[] = [];

  /** `avviso worker` as production runs it, on this stack's database, task queue and simulator. */
  function startWorker(): WorkerProcess {
    const child = spawn(process.execPath, [AVVISO, 'worker'], {
      env: stack.workerEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    const w = { child, output: () => out };
    workers.push(w);
    return w;
  }

  async function kill(w: WorkerProcess): Promise<void> {
    const exited = new Promise((resolve) => w.child.once('exit', resolve));
    w.child.kill('SIGKILL');
    await exited;
  }

  /** Messages the simulator accepted, by kind, from its own record. */
  async function accepted(): Promise<{ outage: number; restored: number }> {
    const inbox = await stack.inbox();
    let outage = 0;
    let restored = 0;
    for (const messages of Object.values(inbox)) {
      outage += messages.filter((m) => /guasto/.test(m.text)).length;
      restored += messages.filter((m) => /ripristinato/.test(m.text)).length;
    }
    return { outage, restored };
  }

  /** For a timeout's message: where the records stand, and one history of a record left behind. */
  async function recordsByState(): Promise<string> {
    const records = await stack.store.deliveries.find({ channel: 'sms' }).toArray();
    const counts: Record<string, number> = {};
    for (const d of records) counts[`${d.kind}/${d.state}`] = (counts[`${d.kind}/${d.state}`] ?? 0) + 1;
    const behind = records.find((d) => d.state !== 'delivered');
    return `records: ${JSON.stringify(counts)}${behind ? `\n${behind._id}: ${JSON.stringify(behind.history)}` : ''}`;
  }

  before(async () => {
    stack = await startTestStack(__filename, {
      inProcessWorker: false,
      // Small batches, each request a little slow: sending takes long enough to be cut in the middle.
      deliveryPolicy: { deliveryTimeoutMs: 60_000, maxAttempts: 3, sweepEveryMs: 500, batchSize: BATCH },
      simulator: { faults: { seed: 20261202, latencyMs: { min: 150, max: 300 } } },
    });
    const site: Site = { _id: 'tower-kill', name: 'Kill tower', area: 'Borgo Prova', uplink: null };
    await stack.store.sites.insertOne(site);
    const subs: Subscriber[] = Array.from({ length: SUBSCRIBERS }, (_, i) => ({
      _id: `K-${String(i).padStart(4, '0')}`,
      name: `Subscriber ${i}`,
      phones: [phone(i)],
      language: 'it',
      siteId: site._id,
      segment: 'residential',
      smsAlerts: { active: true },
      optedOut: false,
    }));
    await stack.store.subscribers.insertMany(subs);
  });
  after(async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await stack?.stop();
  });

  test('every subscriber ends with exactly one outage and one restoration notice', async () => {
    let worker = startWorker();
    const opened = await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-kill'] });
    assert.equal(opened.status, 202);
    const id = opened.body.id as string;

    // Kill it once some outage notices are out, well before all are.
    const before1 = await eventually(
      'the first outage notices',
      async () => {
        const a = await accepted();
        return a.outage >= 3 * BATCH ? a : undefined;
      },
      120_000,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\nworker output:\n${worker.output()}`);
    });
    await kill(worker);
    assert.ok(
      before1.outage < SUBSCRIBERS,
      `the worker was killed in the middle of sending (${before1.outage} of ${SUBSCRIBERS} out)`,
    );
    worker = startWorker();

    await eventually(
      'every outage notice delivered',
      async () => {
        const d = (await call(stack, 'GET', `/v1/incidents/${id}`)).body.deliveries;
        return d.sms?.outage?.delivered === SUBSCRIBERS ? true : undefined;
      },
      300_000,
    ).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${await recordsByState()}\nworker output:\n${worker.output()}`);
    });

    const resolved = await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    assert.equal(resolved.status, 202);
    const before2 = await eventually(
      'the first restoration notices',
      async () => {
        const a = await accepted();
        return a.restored >= 3 * BATCH ? a : undefined;
      },
      120_000,
    );
    await kill(worker);
    assert.ok(
      before2.restored < SUBSCRIBERS,
      `the worker was killed in the middle of the restoration (${before2.restored} of ${SUBSCRIBERS} out)`,
    );
    worker = startWorker();

    const done = await eventually(
      'the incident billed',
      async () => {
        const r = (await call(stack, 'GET', `/v1/incidents/${id}`)).body;
        return r.phase === 'billed' ? r : undefined;
      },
      300_000,
    ).catch(async (err) => {
      throw new Error(`${(err as Error).message}\n${await recordsByState()}\nworker output:\n${worker.output()}`);
    });
    assert.deepEqual(done.deliveries.sms, { outage: { delivered: SUBSCRIBERS }, restored: { delivered: SUBSCRIBERS } });

    // The simulator's own record: one outage notice, then one restoration notice, per phone.
    const inbox = await stack.inbox();
    const problems: string[] = [];
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const texts = (inbox[phone(i)] ?? []).map((m) =>
        /guasto/.test(m.text) ? 'outage' : /ripristinato/.test(m.text) ? 'restored' : m.text,
      );
      if (texts.join(',') !== 'outage,restored') problems.push(`${phone(i)}: ${texts.join(', ') || 'nothing'}`);
    }
    assert.deepEqual(problems, [], 'each phone received exactly one outage notice, then one restoration notice');
    await kill(worker);
  });
});
