/**
 * A page of charges that fails half-way is retried by Temporal and carries on from the last batch
 * it wrote (its heartbeat), so a retry neither skips nor repeats anybody.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NativeConnection, Worker } from '@temporalio/worker';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import { quietTemporalRuntime, subscriber } from './helpers';
import { createBillingActivities } from '../../activities/billing';
import { createLogger } from '../../domain/log';
import { DEFAULT_BILLING } from '../../billing/settings';
import type { Store } from '../../store/db';
import type { billingMonthWorkflow } from '../../workflows/billing';

let env: IsolatedEnv;
let connection: NativeConnection;

before(async () => {
  env = await isolatedEnv(__filename);
  quietTemporalRuntime();
  await env.store.subscribers.insertMany(
    Array.from({ length: 2500 }, (_, i) =>
      subscriber(`R-${String(i).padStart(5, '0')}`, { active: true, since: new Date('2020-01-01T00:00:00Z') }),
    ),
  );
  connection = await NativeConnection.connect({ address: env.servers.temporalAddress });
});
after(async () => {
  await connection?.close();
  await env?.close();
});

test('the page fails after its second batch; the retry writes the rest, once', async () => {
  let inserts = 0;
  let failed = false;
  // The ledger's second insert fails once, after it wrote (the worst case: written, but not known).
  const ledger = new Proxy(env.store.ledger, {
    get(target, prop, receiver) {
      if (prop !== 'insertMany') return Reflect.get(target, prop, receiver);
      return async (...args: Parameters<typeof target.insertMany>) => {
        const r = await target.insertMany(...args);
        if (++inserts === 2 && !failed) {
          failed = true;
          throw new Error('connection lost after the insert');
        }
        return r;
      };
    },
  });
  const store = { ...env.store, ledger } as Store;
  const taskQueue = `${env.taskQueue}-flaky`;
  const worker = await Worker.create({
    connection,
    taskQueue,
    workflowBundle: { codePath: env.servers.workflowBundlePath },
    activities: createBillingActivities({ store, logger: createLogger('test', 'silent'), billing: DEFAULT_BILLING }),
  });
  const result = await worker.runUntil(
    env.temporal.workflow.execute<typeof billingMonthWorkflow>('billingMonthWorkflow', {
      taskQueue,
      workflowId: `billing-retry-${env.name}`,
      args: [{ month: '2024-10' }],
    }),
  );
  assert.ok(failed, 'the failure happened');
  assert.equal(result.charged, 2500);
  assert.equal(await env.store.ledger.countDocuments({ type: 'subscription', period: '2024-10' }), 2500);
  assert.equal(result.summary.lines, 2500);
  // The retry began after the first batch (its heartbeat), so only the failed batch was written twice.
  assert.equal(
    result.existing,
    1000,
    `the retry re-read only the batch whose answer was lost (${result.existing} already there)`,
  );
  assert.equal(result.added, 1500);
});
