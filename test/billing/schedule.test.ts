/**
 * The monthly Schedule, on the Temporal dev server (the time-skipping server has no Schedules):
 * it is created once and updated after, fires at 02:00 Italian time on the 1st, and a run it
 * starts bills the month that ended before its nominal time.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ScheduleHandle } from '@temporalio/client';
import { eventually, isolatedEnv, type IsolatedEnv } from '../support/env';
import { startBillingWorker, subscriber } from './helpers';
import { ensureBillingSchedule } from '../../billing/schedule';
import { monthJustEnded } from '../../billing/month';
import { DEFAULT_BILLING } from '../../billing/settings';
import type { BillingMonthResult } from '../../workflows/billing';

let env: IsolatedEnv;
let worker: Awaited<ReturnType<typeof startBillingWorker>>;
let schedule: ScheduleHandle | undefined;

before(async () => {
  env = await isolatedEnv(__filename);
  await env.store.subscribers.insertMany([
    subscriber('S-001', { active: true, since: new Date('2020-01-01T00:00:00Z') }),
    subscriber('S-002', { active: true, since: new Date('2020-01-01T00:00:00Z') }),
    subscriber('S-003', { active: false }),
  ]);
  worker = await startBillingWorker(env, DEFAULT_BILLING);
});
after(async () => {
  await schedule?.delete().catch(() => undefined);
  await worker?.stop();
  await env?.close();
});

test('the Schedule is created once, then updated; it fires on the 1st at 02:00, Europe/Rome', async () => {
  const scheduleId = `avviso-monthly-billing-${env.name}`;
  assert.deepEqual(await ensureBillingSchedule(env.temporal, 'some-old-queue', { scheduleId }), {
    scheduleId,
    created: true,
  });
  assert.deepEqual(
    await ensureBillingSchedule(env.temporal, env.taskQueue, { scheduleId }),
    { scheduleId, created: false },
    'a second worker start updates it',
  );
  schedule = env.temporal.schedule.getHandle(scheduleId);
  const d = await schedule.describe();
  assert.equal(d.spec.timezone, 'Europe/Rome');
  assert.equal(d.spec.calendars?.length, 1);
  assert.deepEqual(d.spec.calendars![0]!.dayOfMonth, [{ start: 1, end: 1, step: 1 }]);
  assert.deepEqual(d.spec.calendars![0]!.hour, [{ start: 2, end: 2, step: 1 }]);
  assert.equal(d.action.type, 'startWorkflow');
  assert.equal(d.action.type === 'startWorkflow' && d.action.workflowType, 'billingMonthWorkflow');
  assert.equal(
    d.action.type === 'startWorkflow' && d.action.taskQueue,
    env.taskQueue,
    'the update moved it to the new task queue',
  );
  assert.equal(d.policies.overlap, 'BUFFER_ALL');
  // Its next action is at 02:00 Italian time on a 1st.
  const next = d.info.nextActionTimes[0]!;
  const local = new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Europe/Rome',
    day: 'numeric',
    hour: '2-digit',
    hourCycle: 'h23',
    minute: '2-digit',
  }).format(next);
  assert.equal(local, '1, 02:00');
});

test('a run the Schedule starts bills the month just ended, read from its scheduled time', async () => {
  assert.ok(schedule, 'the previous test made the schedule');
  const triggeredAt = new Date();
  await schedule.trigger();
  const workflowId = await eventually(
    'the schedule to start a run',
    async () => (await schedule!.describe()).info.recentActions[0]?.action.workflow.workflowId,
  );
  assert.match(workflowId, /^billing:scheduled-/);
  const result: BillingMonthResult = await env.temporal.workflow.getHandle(workflowId).result();
  const month = monthJustEnded(triggeredAt);
  assert.equal(result.decidedBy, 'schedule', 'the month comes from TemporalScheduledStartTime');
  assert.equal(result.month, month);
  assert.equal(result.charged, 2);
  const lines = await env.store.ledger.find({ type: 'subscription', period: month }).sort({ _id: 1 }).toArray();
  assert.deepEqual(
    lines.map((l) => l._id),
    [`sub:S-001:${month}`, `sub:S-002:${month}`],
  );
  assert.ok((await env.store.billingRuns.findOne({ _id: month }))?.completedAt);

  // Triggered again (a catch-up, a double click): the same month, nothing new.
  await schedule.trigger();
  const second = await eventually('a second run', async () => {
    const actions = (await schedule!.describe()).info.recentActions;
    return actions.length >= 2 ? actions[actions.length - 1]!.action.workflow.workflowId : undefined;
  });
  const again: BillingMonthResult = await env.temporal.workflow.getHandle(second).result();
  assert.equal(again.month, month);
  assert.equal(again.added, 0);
  assert.equal(await env.store.ledger.countDocuments({ type: 'subscription', period: month }), 2);
});
