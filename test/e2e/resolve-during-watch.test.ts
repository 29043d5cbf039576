/**
 * A resolve that arrives while the open phase's watch sweep is running (at a few thousand SMS a
 * sweep applies the receipts streaming in and takes seconds): the workflow cancels the sweep and
 * goes on to the restoration at once, instead of waiting for the sweep to end. Real parts: Temporal,
 * the store, the simulator's receipts, a real audience large enough to make the sweep long.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { WorkflowHandle } from '@temporalio/client';
import type { Site, Subscriber } from '../../domain/types';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';

const SUBSCRIBERS = Number(process.env.AVVISO_TEST_AUDIENCE ?? 2000);

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

describe('a resolve during a watch sweep', () => {
  let stack: TestStack;
  const site: Site = { _id: 'tower-watch-01', name: 'Watched tower', area: 'Lodi', kind: 'tower', uplink: null };
  const phone = (i: number) => `+39349${String(i).padStart(7, '0')}`;

  before(async () => {
    stack = await startTestStack(__filename, {
      deliveryPolicy: { deliveryTimeoutMs: 60_000, maxAttempts: 3, sweepEveryMs: 200 },
    });
    await stack.store.sites.insertOne(site);
    const subscribers: Subscriber[] = Array.from({ length: SUBSCRIBERS }, (_, i) => ({
      _id: `WATCH-${i}`,
      name: `Cliente ${i}`,
      phones: [phone(i)],
      language: 'it',
      siteId: site._id,
      segment: 'residential',
      smsAlerts: { active: true, since: new Date('2026-01-01T00:00:00Z') },
      optedOut: false,
    }));
    for (let i = 0; i < subscribers.length; i += 1000)
      await stack.store.subscribers.insertMany(subscribers.slice(i, i + 1000));
  });
  after(async () => stack?.stop());

  test('the sweep is cancelled and the restoration is planned without waiting for it', async () => {
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: [site._id] })).body.id;
    const handle = stack.temporal.workflow.getHandle(`incident:${id}`);

    // A sweep running at the worker (its Started event is written only when it ends: ask the server).
    const deadline = Date.now() + 120_000;
    for (;;) {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      if (pending.some((a) => a.activityType?.name === 'sweepAll' && a.lastStartedTime)) break;
      assert.ok(Date.now() < deadline, 'a watch sweep ran within 2 minutes');
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal((await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {})).status < 300, true);

    const done = await eventually(
      'billed',
      async () => {
        const r = (await call(stack, 'GET', `/v1/incidents/${id}`)).body;
        return r.phase === 'billed' ? r : undefined;
      },
      240_000,
    );

    const events = (await handle.fetchHistory()).events ?? [];
    const name = new Map<number, string>();
    for (const e of events)
      if (e.activityTaskScheduledEventAttributes)
        name.set(Number(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
    const at = (pred: (e: HistoryEvent) => boolean) => events.findIndex(pred);
    const scheduled = (activity: string) =>
      at((e) => !!e.activityTaskScheduledEventAttributes && name.get(Number(e.eventId)) === activity);

    const cancel = at((e) => !!e.activityTaskCancelRequestedEventAttributes);
    assert.ok(cancel >= 0, 'a watch sweep was cancelled');
    const sweepId = Number(events[cancel]!.activityTaskCancelRequestedEventAttributes!.scheduledEventId);
    assert.equal(name.get(sweepId), 'sweepAll');
    // The workflow went on in the same task: the next command after the cancel is the step into resolving.
    const resolving = at(
      (e) => !!e.activityTaskScheduledEventAttributes && Number(e.eventId) > Number(events[cancel]!.eventId),
    );
    assert.equal(name.get(Number(events[resolving]!.eventId)), 'recordIncidentPhase');
    assert.ok(
      events.slice(cancel, resolving).every((e) => !e.workflowTaskStartedEventAttributes),
      'the cancel and the step into resolving are commands of one workflow task',
    );
    // The restoration was planned before the sweep ended, or the sweep stopped short (cancelled).
    const sweepEnd = at((e) =>
      [
        e.activityTaskCompletedEventAttributes,
        e.activityTaskCanceledEventAttributes,
        e.activityTaskFailedEventAttributes,
        e.activityTaskTimedOutEventAttributes,
      ].some((a) => a && Number(a.scheduledEventId) === sweepId),
    );
    const planning = scheduled('prepareResolution');
    const ms = (e: HistoryEvent | undefined) =>
      e ? Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6) : NaN;
    const sweepStart = events.find((e) => Number(e.eventId) === sweepId);
    console.log(
      `sweep scheduled ${ms(sweepStart)}, cancel +${ms(events[cancel]) - ms(sweepStart)} ms, prepareResolution +${ms(events[planning]) - ms(sweepStart)} ms, sweep end +${ms(events[sweepEnd]) - ms(sweepStart)} ms (${sweepEnd >= 0 ? Object.keys(events[sweepEnd]!).find((k) => k.endsWith('EventAttributes')) : 'none'})`,
    );
    assert.ok(planning > cancel, 'the restoration was planned after the cancel');
    assert.ok(
      sweepEnd < 0 || planning < sweepEnd || !!events[sweepEnd]!.activityTaskCanceledEventAttributes,
      'the restoration was planned before the sweep ended, or the sweep stopped short',
    );

    // What the subscribers see: every one told of the outage, then of its end, once each.
    assert.deepEqual(done.deliveries.sms, { outage: { delivered: SUBSCRIBERS }, restored: { delivered: SUBSCRIBERS } });
    const inbox = await stack.inbox();
    const wrong: string[] = [];
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const got = (inbox[phone(i)] ?? []).map((m) =>
        /^Avviso guasto/.test(m.text) ? 'outage' : /ripristinato/.test(m.text) ? 'restored' : m.text,
      );
      if (got.join(',') !== 'outage,restored') wrong.push(`${phone(i)}: ${got.join(',')}`);
    }
    assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} phones did not get exactly outage then restoration`);
  });
});
