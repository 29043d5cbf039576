/**
 * Notices due at once go out while the rest of the audience is planned (delivery/sender.ts
 * `whilePlanning`): each batch is taken with a request of its new page as it is inserted, and sent
 * without reading its page back. What users depend on: every phone is told once and in order
 * (outage, then restoration), in the configured batch size, nothing is left for the workflow's
 * rounds to send again, and an outage resolved before its notices went out still becomes one
 * combined message, not an outage notice and a restoration a second apart.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Site, Subscriber } from '../../domain/types';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';
import { writeTestRules } from '../support/scenario';
import { setFaults } from '../delivery/sim-record';
import { recipientsOf } from '../../store/send-requests';

const policy = { deliveryTimeoutMs: 20_000, maxAttempts: 3, sweepEveryMs: 300, batchSize: 10 };

/** What each activity of a workflow run returned, by activity type, in the order they completed. */
async function activityResults(stack: TestStack, incidentId: string): Promise<Map<string, unknown[]>> {
  const history = await stack.temporal.workflow.getHandle(`incident:${incidentId}`).fetchHistory();
  const typeOf = new Map<string, string>();
  const results = new Map<string, unknown[]>();
  for (const e of history.events ?? []) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) typeOf.set(String(e.eventId), scheduled.activityType!.name!);
    const done = e.activityTaskCompletedEventAttributes;
    if (done) {
      const type = typeOf.get(String(done.scheduledEventId))!;
      const payload = done.result?.payloads?.[0]?.data;
      const value: unknown = payload?.length ? JSON.parse(Buffer.from(payload).toString('utf8')) : undefined;
      results.set(type, [...(results.get(type) ?? []), value]);
    }
  }
  return results;
}

describe('notices due at once are sent while they are planned', () => {
  let stack: TestStack;
  const towerDigit: Record<string, number> = { 'tower-wp-a': 1, 'tower-wp-b': 2, 'tower-wp-c': 3, 'tower-wp-d': 4 };
  const phone = (site: string, i: number) => `+39349${towerDigit[site]}${String(i).padStart(6, '0')}`;

  async function addTower(siteId: string, n: number): Promise<string[]> {
    const site: Site = { _id: siteId, name: siteId, area: 'Lodi', kind: 'tower', uplink: null };
    await stack.store.sites.insertOne(site);
    const subscribers: Subscriber[] = Array.from({ length: n }, (_, i) => ({
      _id: `${siteId}-${i}`,
      name: `Cliente ${i}`,
      phones: [phone(siteId, i)],
      language: 'it',
      siteId,
      segment: 'residential',
      smsAlerts: { active: true, since: new Date('2026-01-01T00:00:00Z') },
      optedOut: false,
    }));
    await stack.store.subscribers.insertMany(subscribers);
    return subscribers.map((s) => s.phones[0]!);
  }

  before(async () => {
    // A group window of 2 s (what a burst of alerts settles in), then no grace delay: due at once.
    const rulesPath = writeTestRules(
      'send-while-planning',
      `  sms: { maxParts: 2 }
  groupWait: 2s
  wait: 0
  restoration: true
rules:
  - name: paid-sms
    when:
      subscriber.paidSms: true
      subscriber.onAffectedSite: true
    notify: sms
`,
    );
    stack = await startTestStack(__filename, { deliveryPolicy: policy, rulesPath });
  });
  after(async () => stack?.stop());

  test('25 phones: told by the planning in batches of 10, none left to the rounds, outage then restoration once each', async () => {
    const phones = await addTower('tower-wp-a', 25);
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-wp-a'] })).body.id as string;
    await eventually(
      'every outage notice delivered',
      async () => {
        const d = (await call(stack, 'GET', `/v1/incidents/${id}`)).body.deliveries;
        return d.sms?.outage?.delivered === phones.length ? true : undefined;
      },
      60_000,
    );
    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    const done = await eventually(
      'billed',
      async () => {
        const r = (await call(stack, 'GET', `/v1/incidents/${id}`)).body;
        return r.phase === 'billed' ? r : undefined;
      },
      60_000,
    );
    assert.deepEqual(done.deliveries.sms, { outage: { delivered: 25 }, restored: { delivered: 25 } });

    const results = await activityResults(stack, id);
    const plan = results.get('planNotices')![0] as { sent: Record<string, number> };
    assert.deepEqual(plan.sent, { outage: 25 }, 'the planning sent every outage notice');
    const resolution = results.get('prepareResolution')![0] as { sent: Record<string, number> };
    assert.deepEqual(resolution.sent, { restored: 25 }, 'the resolution sent every restoration');
    const byRounds = (results.get('sendDue') ?? []).map((r) => r as { accepted: Record<string, number> });
    assert.deepEqual(
      byRounds.filter((r) => Object.values(r.accepted).some((n) => n > 0)),
      [],
      'the rounds found nothing left to send',
    );
    // The configured batch size: three requests on the outage's page (10, 10 and 5).
    const requests = await stack.store.sendRequests.find({ incidentId: id, kind: 'outage' }).sort({ seq: 1 }).toArray();
    assert.deepEqual(
      requests.map((q) => [q.seq, recipientsOf(q).length]),
      [
        [1, 10],
        [2, 10],
        [3, 5],
      ],
    );
    // Nothing can be overdue right after the planning sent it all: the first look waits (a timer) before its sweep.
    const events = (await stack.temporal.workflow.getHandle(`incident:${id}`).fetchHistory()).events ?? [];
    const activityAt = (type: string) =>
      events.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type);
    const planned = activityAt('planNotices');
    const firstSweep = activityAt('sweepAll');
    assert.ok(planned >= 0 && firstSweep > planned, 'the planning, then a sweep');
    assert.ok(
      events.slice(planned, firstSweep).some((e) => e.timerStartedEventAttributes),
      'a wait between the planning and the first sweep',
    );
    // The workflow's own counts include what the planning sent.
    const status = (await stack.temporal.workflow.getHandle(`incident:${id}`).query('status')) as {
      sent: Record<string, number>;
    };
    assert.deepEqual(status.sent, { outage: 25, restored: 25 });

    const inbox = await stack.inbox();
    const wrong = phones.filter((p) => {
      const got = (inbox[p] ?? []).map((m) => (/ripristinat/i.test(m.text) ? 'restored' : 'outage'));
      return got.join(',') !== 'outage,restored';
    });
    assert.deepEqual(wrong, [], 'each phone: one outage notice, then one restoration');
  });

  for (const [refusal, tower] of [
    [503, 'tower-wp-c'],
    [429, 'tower-wp-d'],
  ] as const)
    test(`a request refused with ${refusal} leaves the rest of its page to the rounds; the next page is still sent while planned`, async () => {
      // Two pages (1,000 and 10 records); the last request of the first page is refused by Plivo (a 429 is waited out).
      const phones = await addTower(tower, 1010);
      await setFaults(stack, { script: { message: [...Array.from({ length: 99 }, () => 'ok'), refusal] } });
      try {
        const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: [tower] })).body.id as string;
        // Every phone has its message at Plivo (their receipts are not waited for).
        const inbox = await eventually(
          'every outage notice at Plivo',
          async () => {
            const got = await stack.inbox();
            return phones.every((p) => got[p]?.length) ? got : undefined;
          },
          120_000,
        );
        const plan = (await activityResults(stack, id)).get('planNotices')![0] as {
          sent: Record<string, number>;
          leftDue: number;
        };
        assert.deepEqual(
          { sent: plan.sent, leftDue: plan.leftDue },
          { sent: { outage: 1000 }, leftDue: 10 },
          "990 of the first page and the second page's 10 sent by the planning; the refused batch of 10 left to the rounds",
        );
        const notOnce = phones.filter((p) => (inbox[p] ?? []).length !== 1);
        assert.deepEqual(notOnce, [], 'each phone told once');
      } finally {
        await setFaults(stack, {});
      }
    });

  test('resolved within the group window: nothing goes out while planning, one combined message each', async () => {
    const phones = await addTower('tower-wp-b', 6);
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-wp-b'] })).body.id as string;
    const resolved = await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    assert.ok(resolved.status < 300, JSON.stringify(resolved.body));
    const done = await eventually(
      'billed',
      async () => {
        const r = (await call(stack, 'GET', `/v1/incidents/${id}`)).body;
        return r.phase === 'billed' ? r : undefined;
      },
      60_000,
    );
    const plan = (await activityResults(stack, id)).get('planNotices')![0] as { sent: Record<string, number> };
    assert.deepEqual(plan.sent, {}, 'the planning sent nothing: the incident was being resolved');
    assert.deepEqual(done.deliveries.sms?.['outage-restored'], { delivered: 6 });
    const inbox = await stack.inbox();
    assert.deepEqual(
      phones.map((p) => (inbox[p] ?? []).length),
      phones.map(() => 1),
      'one message per phone',
    );
  });
});
