/**
 * The promise under fire: 30% of send requests fail (5xx, 429 with Retry-After, connections
 * dropped before and after Plivo accepted the batch) and 10% of messages are reported
 * undelivered, with duplicated and reordered receipts. Every paying subscriber still ends with
 * exactly one delivered outage notice and, after it, one delivered restoration notice; every
 * extra message the simulator recorded is a justified resend of an undelivered one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Site, Subscriber } from '../../domain/types';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';

const SUBSCRIBERS = 300;

describe('delivery under provider faults', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(__filename, {
      deliveryPolicy: { deliveryTimeoutMs: 4000, maxAttempts: 6, sweepEveryMs: 300, batchSize: 25 },
      simulator: {
        faults: {
          seed: 20261124,
          errorRate: { '500': 0.06, '503': 0.06 },
          rateLimit: { rate429: 0.06, retryAfterSeconds: 1 },
          dropBeforeAcceptRate: 0.06,
          dropAfterAcceptRate: 0.06,
          undeliveredRate: 0.1,
          callbacks: { duplicateRate: 0.2, reorder: 0.3, delayMs: { min: 0, max: 300 } },
        },
      },
    });
    const site: Site = { _id: 'tower-test', name: 'Test tower', area: 'Borgo Prova', uplink: null };
    await stack.store.sites.insertOne(site);
    const subs: Subscriber[] = Array.from({ length: SUBSCRIBERS }, (_, i) => ({
      _id: `F-${String(i).padStart(4, '0')}`,
      name: `Subscriber ${i}`,
      phones: [`+39347${String(2000000 + i).padStart(7, '0')}`],
      language: 'it',
      siteId: 'tower-test',
      segment: 'residential',
      smsAlerts: { active: true },
      optedOut: false,
    }));
    await stack.store.subscribers.insertMany(subs);
  });
  after(async () => stack?.stop());

  test('every subscriber ends with one delivered outage notice, then one delivered restoration notice', async () => {
    const opened = await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-test'] });
    assert.equal(opened.status, 202);
    const id = opened.body.id;
    // Resolve only once every outage notice is delivered: the restoration must follow it.
    await eventually(
      'all outage notices delivered',
      async () => {
        const d = (await call(stack, 'GET', `/v1/incidents/${id}`)).body.deliveries;
        return d.sms?.outage?.delivered === SUBSCRIBERS ? true : undefined;
      },
      300_000,
    );
    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    const done = await eventually(
      'resolved',
      async () => {
        const r = (await call(stack, 'GET', `/v1/incidents/${id}`)).body;
        return r.phase === 'billed' ? r : undefined;
      },
      300_000,
    ).catch(async (err) => {
      const r = (await call(stack, 'GET', `/v1/incidents/${id}`)).body;
      const stuck = await stack.store.deliveries
        .find({ incidentId: id, kind: 'restored', state: { $ne: 'delivered' } })
        .limit(3)
        .toArray();
      throw new Error(
        `${(err as Error).message}\n${JSON.stringify({ phase: r.phase, deliveries: r.deliveries, live: r.live, stuck }, null, 1)}`,
      );
    });
    assert.deepEqual(done.deliveries.sms, { outage: { delivered: SUBSCRIBERS }, restored: { delivered: SUBSCRIBERS } });

    const inbox = await stack.inbox();
    let resends = 0;
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const phone = `+39347${String(2000000 + i).padStart(7, '0')}`;
      const messages = inbox[phone] ?? [];
      const outage = messages.filter((m) => /guasto/.test(m.text));
      const restored = messages.filter((m) => /ripristinato/.test(m.text));
      for (const [name, list] of [
        ['outage', outage],
        ['restoration', restored],
      ] as const) {
        const delivered = list.filter((m) => m.status === 'delivered');
        assert.equal(
          delivered.length,
          1,
          `${phone}: exactly one delivered ${name} notice, got ${list.map((m) => m.status).join(', ')}`,
        );
        assert.equal(list.at(-1)!.status, 'delivered', `${phone}: a ${name} resend only after an undelivered one`);
        assert.ok(
          list.slice(0, -1).every((m) => m.status === 'undelivered'),
          `${phone}: every earlier ${name} message was undelivered (no duplicate)`,
        );
        resends += list.length - 1;
      }
      const outageAt = Date.parse(outage.at(-1)!.acceptedAt);
      assert.ok(
        restored.every((m) => Date.parse(m.acceptedAt) > outageAt),
        `${phone}: restoration after the outage notice`,
      );
    }

    // The report of the attempts: what the records and the simulator say happened.
    const stats = (await (await fetch(`${stack.simUrl}/control/stats`)).json()) as Record<string, unknown>;
    const attempts = await stack.store.deliveries
      .aggregate<{ _id: number; n: number }>([
        { $match: { channel: 'sms' } },
        { $group: { _id: '$attempts', n: { $sum: 1 } } },
        { $sort: { _id: 1 } },
      ])
      .toArray();
    console.log(
      `fault drill: ${SUBSCRIBERS} subscribers x 2 notices; resends after undelivered: ${resends}; records by attempts: ${attempts.map((a) => `${a._id}:${a.n}`).join(' ')}; simulator: ${JSON.stringify(stats)}`,
    );
    assert.ok(resends > 0, 'the fault mix did make some messages undelivered');
    const sends = (
      stats as {
        requests: {
          message: {
            total: number;
            tooManyRequests: number;
            serverErrors: Record<string, number>;
            droppedBeforeAccept: number;
            droppedAfterAccept: number;
          };
        };
      }
    ).requests.message;
    assert.ok(
      sends.tooManyRequests > 0 &&
        Object.keys(sends.serverErrors).length > 0 &&
        sends.droppedBeforeAccept > 0 &&
        sends.droppedAfterAccept > 0,
      'every kind of request fault happened at least once',
    );
  });
});
