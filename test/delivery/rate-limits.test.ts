/**
 * The account limits are shared by every worker through MongoDB: two limiters on the same key
 * (two workers) take turns, and each reservation says how long its holder must wait.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedRateLimiter } from '../../store/rate-limits';
import { isolatedEnv, type IsolatedEnv } from '../support/env';

let env: IsolatedEnv;
before(async () => (env = await isolatedEnv(__filename)));
after(async () => env?.close());

test('two workers share one budget: 10 SMS per second with one second of burst', async () => {
  let now = 1_000_000;
  const clock = () => now;
  const limit = { units: 10, perMs: 1000, burstMs: 1000 };
  const workerA = new SharedRateLimiter(env.store.rateLimits, 'acct:messages', limit, clock);
  const workerB = new SharedRateLimiter(env.store.rateLimits, 'acct:messages', limit, clock);

  assert.equal(await workerA.reserve(10), 0, 'the first second of burst is free');
  assert.equal(await workerB.waitFor(5), 500, 'B sees what A took');
  assert.equal(await workerB.reserve(5), 500);
  assert.equal(await workerA.reserve(5), 1000, 'and A waits behind B');
  now += 2000;
  assert.equal(await workerA.waitFor(10), 0, 'capacity comes back with time');
});

test('concurrent reservations never hand out the same capacity', async () => {
  const now = () => 5_000_000;
  const limiters = Array.from(
    { length: 8 },
    () => new SharedRateLimiter(env.store.rateLimits, 'acct:requests', { units: 300, perMs: 5000, burstMs: 0 }, now),
  );
  const waits = await Promise.all(limiters.flatMap((l) => [l.reserve(1), l.reserve(1), l.reserve(1)]));
  // 24 requests at 60 per second: each gets its own slot, 1000/60 ms apart.
  const slots = waits.map((w) => Math.round(w / (5000 / 300))).sort((a, b) => a - b);
  assert.deepEqual(
    slots,
    Array.from({ length: 24 }, (_, i) => i + 1),
  );
});

test('a limit of 0 means no limit', async () => {
  const l = new SharedRateLimiter(env.store.rateLimits, 'acct:none', { units: 0, perMs: 1000, burstMs: 0 });
  assert.equal(await l.reserve(1_000_000), 0);
});
