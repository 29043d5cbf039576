/**
 * Plivo's account limits, kept by the app and enforced by the simulator as Plivo does (it answers
 * 429 beyond its requests per 5 s, and queues SMS beyond its per-second rate, failing those that
 * wait too long): with the account's limits set low, the simulator's own timestamps show that it
 * never saw more requests than allowed, and that no message waited in its queue longer than we
 * allow. Then 429 bursts with Retry-After (a simulator fault): they delay messages but neither lose
 * nor duplicate one, no request arrives before the Retry-After has elapsed, and a message whose
 * requests met 429s still has its resends when it is reported undelivered.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';
import { phoneOf, setFaults, simInbox, simRequests, simStats, site, subscriber, type RequestEntry } from './sim-record';

const REQUESTS_PER_5S = 5;
const MESSAGES_PER_SECOND = 10;
const QUEUE_SECONDS = 2;
const LIMITS = {
  requestsPer5s: REQUESTS_PER_5S,
  messagesPerSecond: MESSAGES_PER_SECOND,
  queueExpirySeconds: QUEUE_SECONDS + 2,
};
const BATCH = 20;
/** Six requests: one more than the 5 s allow, and 20 SMS a second offered against 10 allowed. */
const PACED = 120;
const BURST = 60;

/** The most requests the simulator saw in any 5 s (its own rolling window: (t - 5 s, t]). */
function busiestWindow(requests: RequestEntry[]): { count: number; at: number } {
  const times = requests.map((r) => r.at).sort((a, b) => a - b);
  let best = { count: 0, at: 0 };
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[j]! <= times[i]! - 5000) j++;
    if (i - j + 1 > best.count) best = { count: i - j + 1, at: times[i]! };
  }
  return best;
}

describe('account limits through the simulator', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(__filename, {
      plivoLimits: {
        requestsPer5s: REQUESTS_PER_5S,
        messagesPerSecond: MESSAGES_PER_SECOND,
        queueSeconds: QUEUE_SECONDS,
      },
      deliveryPolicy: { deliveryTimeoutMs: 30_000, maxAttempts: 2, sweepEveryMs: 500, batchSize: BATCH },
      simulator: { faults: { limits: LIMITS } },
    });
    await stack.store.sites.insertMany([site('tower-paced', 'Borgo Lento'), site('tower-burst', 'Borgo Pieno')]);
    await stack.store.subscribers.insertMany([
      ...Array.from({ length: PACED }, (_, i) =>
        subscriber(`P-${String(i).padStart(3, '0')}`, phoneOf(5_000_000, i), 'tower-paced'),
      ),
      ...Array.from({ length: BURST }, (_, i) =>
        subscriber(`Q-${String(i).padStart(3, '0')}`, phoneOf(5_100_000, i), 'tower-burst'),
      ),
    ]);
  });
  after(async () => stack?.stop());

  async function deliveredCount(id: string): Promise<number> {
    return stack.store.deliveries.countDocuments({ incidentId: id, channel: 'sms', state: 'delivered' });
  }

  test(`the simulator never sees more than ${REQUESTS_PER_5S} requests in 5 s, nor an SMS queued longer than ${QUEUE_SECONDS} s`, async () => {
    const started = Date.now();
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-paced'] })).body.id as string;
    await eventually(
      'every SMS delivered',
      async () => ((await deliveredCount(id)) === PACED ? true : undefined),
      45_000,
    );

    const requests = (await simRequests(stack)).filter((r) => r.at >= started);
    const sends = requests.filter((r) => r.kind === 'message' && r.method === 'POST');
    assert.equal(
      sends.length,
      PACED / BATCH,
      `one request per batch of ${BATCH}: ${sends.map((r) => r.status).join(',')}`,
    );
    const busiest = busiestWindow(requests);
    assert.ok(
      busiest.count <= REQUESTS_PER_5S,
      `at most ${REQUESTS_PER_5S} requests in any 5 s; ${busiest.count} in the 5 s before ${new Date(busiest.at).toISOString()}: ${requests.map((r) => r.at - started).join(', ')} ms`,
    );
    const stats = await simStats(stack);
    assert.equal(
      stats.requests.message.limitRejections +
        stats.requests.read.limitRejections +
        stats.requests.call.limitRejections,
      0,
      'the simulator refused nothing for the account limit',
    );
    assert.equal(stats.messages.expiredInQueue, 0, "no message expired in Plivo's queue");

    const inbox = await simInbox(stack);
    for (let i = 0; i < PACED; i++) {
      const got = inbox.phones[phoneOf(5_000_000, i)] ?? [];
      assert.equal(got.length, 1, `${phoneOf(5_000_000, i)}: one message`);
      const queued = Date.parse(got[0]!.sentAt!) - Date.parse(got[0]!.acceptedAt);
      // The simulator moves a message to `sent` when its per-second pacing gets to it.
      assert.ok(
        queued <= QUEUE_SECONDS * 1000 + 500,
        `${phoneOf(5_000_000, i)} waited ${queued} ms in Plivo's queue, at most ${QUEUE_SECONDS} s`,
      );
    }
  });

  test('429 bursts with Retry-After delay messages but neither lose nor duplicate any, and Retry-After is waited out', async () => {
    // Of every 4 send requests the last 2 get 429 with Retry-After: 2 s. Batch 3 (Q-040..Q-059)
    // meets both before it goes out; one of its numbers is then reported undelivered once.
    const unlucky = phoneOf(5_100_000, 45);
    await setFaults(stack, {
      limits: LIMITS,
      rateLimit: { burstEvery: 4, burstLength: 2, retryAfterSeconds: 2 },
      numbers: { [unlucky]: { sms: 'undelivered', smsTimes: 1 } },
    });
    const started = Date.now();
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-burst'] })).body.id as string;
    await eventually(
      'every SMS delivered',
      async () => ((await deliveredCount(id)) === BURST ? true : undefined),
      50_000,
    ).catch(async (err) => {
      const stuck = await stack.store.deliveries
        .find({ incidentId: id, channel: 'sms', state: { $ne: 'delivered' } })
        .toArray();
      throw new Error(
        `${(err as Error).message}\n${stuck.map((d) => `${d.to}: ${d.history.map((h) => `${h.state}${h.note ? ` (${h.note})` : ''}`).join(' > ')}`).join('\n')}`,
      );
    });

    const requests = (await simRequests(stack)).filter((r) => r.at >= started);
    const sends = requests.filter((r) => r.kind === 'message' && r.method === 'POST');
    const refused = sends.filter((r) => r.status === 429);
    assert.equal(refused.length, 2, `the burst happened: ${sends.map((r) => r.status).join(',')}`);
    for (const r of refused) {
      assert.equal(r.retryAfterSeconds, 2);
      // Plivo's 429 is for the account: no request of any kind until the Retry-After has passed.
      const next = requests.find((s) => s.seq > r.seq);
      assert.ok(next, `a request followed the 429 of request ${r.seq}`);
      assert.ok(
        next.at >= r.answeredAt! + r.retryAfterSeconds! * 1000,
        `request ${next.seq} came ${next.at - r.answeredAt!} ms after the 429 of request ${r.seq}, before its Retry-After of ${r.retryAfterSeconds} s`,
      );
    }
    const busiest = busiestWindow((await simRequests(stack)).filter((r) => r.at >= started));
    assert.ok(
      busiest.count <= REQUESTS_PER_5S,
      `still at most ${REQUESTS_PER_5S} requests in any 5 s: ${busiest.count}`,
    );

    const inbox = await simInbox(stack);
    for (let i = 0; i < BURST; i++) {
      const phone = phoneOf(5_100_000, i);
      const got = inbox.phones[phone] ?? [];
      const expected = phone === unlucky ? ['undelivered', 'delivered'] : ['delivered'];
      assert.deepEqual(
        got.map((m) => m.status),
        expected,
        `${phone}: ${expected.join(' then ')}`,
      );
    }
    const accepted = sends.filter((r) => r.status === 202).flatMap((r) => r.destinations!);
    assert.equal(accepted.length, BURST + 1, 'every number in exactly one accepted request, the unlucky one in two');
    const record = await stack.store.deliveries.findOne({ incidentId: id, channel: 'sms', to: unlucky });
    assert.equal(record?.state, 'delivered', 'the resend after the 429s and the undelivered message went out');
  });
});
