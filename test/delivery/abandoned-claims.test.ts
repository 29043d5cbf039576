/**
 * A sender that dies between claiming a batch (the unique `send_claims` inserts) and marking its
 * records `sending` leaves planned records whose claims no one will use. The next sender must
 * take them over once the claims are a minute old, in the same call, and must never report "no
 * more due" while claims younger than that hold due records: the incident's workflow would take
 * that for "all sent" and the held subscribers would never be told (a worker-kill run stalled so,
 * with 170 of 200 outage notices never sent). Likewise the watchdog must not report "nothing
 * due" while planned records are due now (a 20,000 drill stopped so with 2,877 retries planned).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import { MockActivityEnvironment } from '@temporalio/testing';
import { plannedRecord, reserveNextBatch } from '../../store/deliveries';
import { createDeliveryActivities, type SweepAllResult } from '../../activities/delivery';
import { createLogger } from '../../domain/log';
import type { RulesResolver } from '../../store/rule-versions';

let env: IsolatedEnv;
before(async () => (env = await isolatedEnv(__filename)));
after(async () => env?.close());

/** Five planned records of one incident; returns their ids in reservation (id) order. */
async function plan(incidentId: string, now: Date): Promise<string[]> {
  const docs = Array.from({ length: 5 }, (_, i) =>
    plannedRecord({ incidentId, kind: 'outage', subscriberId: `A-${i}`, channel: 'sms', to: `+3934700010${i}`, language: 'it' }, new Date(now.getTime() - 120_000)),
  );
  await env.store.deliveries.insertMany(docs);
  return docs.map((d) => d._id).sort();
}
const scope = (incidentId: string) => ({ incidentId, kind: 'outage' as const, channel: 'sms' as const });

test('a whole batch claimed by a sender that died a minute ago is reserved by the next call', async () => {
  const now = new Date();
  const ids = await plan('inc_dead_all', now);
  await env.store.sendClaims.insertMany(ids.map((id) => ({ _id: `${id}#1`, at: new Date(now.getTime() - 61_000) })));

  const r = await reserveNextBatch(env.store, scope('inc_dead_all'), 10, now);
  assert.deepEqual(r.records.map((d) => d._id).sort(), ids, 'every record reserved, none left behind');
  assert.equal(r.held, 0);
  assert.ok(r.records.every((d) => d.state === 'sending' && d.attempts === 2), 'each on its next attempt number (the dead claim was the first)');
  const stored = await env.store.deliveries.find({ incidentId: 'inc_dead_all' }).toArray();
  assert.ok(stored.every((d) => d.state === 'sending' && d.history.some((h) => /claimed again/.test(h.note ?? ''))));
});

test('part of a batch claimed by a dead sender: the free ones and the taken-over ones go in the same call', async () => {
  const now = new Date();
  const ids = await plan('inc_dead_some', now);
  await env.store.sendClaims.insertMany(ids.slice(0, 3).map((id) => ({ _id: `${id}#1`, at: new Date(now.getTime() - 61_000) })));

  const r = await reserveNextBatch(env.store, scope('inc_dead_some'), 10, now);
  assert.deepEqual(r.records.map((d) => d._id).sort(), ids);
  assert.equal(r.held, 0);
  const stored = new Map((await env.store.deliveries.find({ incidentId: 'inc_dead_some' }).toArray()).map((d) => [d._id, d]));
  assert.deepEqual(ids.map((id) => stored.get(id)!.attempts), [2, 2, 2, 1, 1], 'taken-over records on their second attempt, the others on their first');
  assert.equal(await env.store.deliveries.countDocuments({ incidentId: 'inc_dead_some', state: 'planned' }), 0);
});

test('a batch partly held by a live sender: the rest is reserved and the held ones are counted', async () => {
  const now = new Date();
  const ids = await plan('inc_live_some', now);
  await env.store.sendClaims.insertMany(ids.slice(0, 2).map((id) => ({ _id: `${id}#1`, at: new Date(now.getTime() - 1_000) })));

  const r = await reserveNextBatch(env.store, scope('inc_live_some'), 10, now);
  assert.deepEqual(r.records.map((d) => d._id).sort(), ids.slice(2));
  assert.equal(r.held, 2);
});

test('claims younger than a minute hold their records: nothing reserved, and the call says how many are held', async () => {
  const now = new Date();
  const ids = await plan('inc_live', now);
  await env.store.sendClaims.insertMany(ids.map((id) => ({ _id: `${id}#1`, at: new Date(now.getTime() - 5_000) })));

  const r = await reserveNextBatch(env.store, scope('inc_live'), 10, now);
  assert.equal(r.records.length, 0);
  assert.equal(r.held, 5, 'still due: the caller must come back');
  assert.equal(await env.store.deliveries.countDocuments({ incidentId: 'inc_live', state: 'planned', attempts: 0 }), 5, 'left as they were');

  // A minute later the claims are abandoned: the next look takes them all.
  const later = await reserveNextBatch(env.store, scope('inc_live'), 10, new Date(now.getTime() + 60_000));
  assert.equal(later.records.length, 5);
});

test('the watchdog reports records already due as due now, not "nothing due": the workflow must send them before calling the notices sent', async () => {
  const now = new Date();
  // Retries an earlier attempt of the sweep moved back to planned, on a channel of their own.
  const docs = Array.from({ length: 3 }, (_, i) => plannedRecord({ incidentId: 'inc_due_now', kind: 'outage', subscriberId: `D-${i}`, channel: 'email', to: `d${i}@example.org`, language: 'it' }, now));
  await env.store.deliveries.insertMany(docs);
  const noRules: RulesResolver = async () => {
    throw new Error('the sweep renders no text');
  };
  const acts = createDeliveryActivities({ store: env.store, channels: {}, logger: createLogger('abandoned-claims-test', 'warn'), rules: noRules });
  const r: SweepAllResult = await new MockActivityEnvironment().run(acts.sweepAll, { incidentId: 'inc_due_now', kinds: ['outage' as const], deliveryTimeoutMs: 60_000, maxAttempts: 3 });
  assert.equal(r.inFlight, 0);
  assert.ok(r.nextDueAt, 'something is due');
  assert.ok(Math.abs(Date.parse(r.nextDueAt) - Date.now()) < 10_000, `due now, not later: ${r.nextDueAt}`);

  // Once they are gone (sent), nothing is due.
  await env.store.deliveries.updateMany({ incidentId: 'inc_due_now' }, { $set: { state: 'delivered' } });
  const after: SweepAllResult = await new MockActivityEnvironment().run(acts.sweepAll, { incidentId: 'inc_due_now', kinds: ['outage' as const], deliveryTimeoutMs: 60_000, maxAttempts: 3 });
  assert.equal(after.nextDueAt, null);
});
