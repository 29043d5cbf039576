/**
 * The send path takes a batch with one request document per page (store/send-requests.ts) and
 * writes each record once, when the provider has answered. What users depend on: two senders
 * never take the same message (each is texted once), a batch whose sender died is settled by the
 * next sender and never left behind, a failed request makes its messages due again, and the
 * history of a message reads as before (planned > sending > accepted). Likewise the watchdog must
 * not report "nothing due" while planned records are due now (a 20,000 drill stopped so with
 * 2,877 retries planned).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import { ANSWER_TIMEOUT_MS } from '../../store/sender-lease';
import { MockActivityEnvironment } from '@temporalio/testing';
import { planAll, plannedRecord, type PlanInput } from '../../store/deliveries';
import {
  closeRequests,
  dueCandidates,
  recordSendResults,
  releaseReservations,
  recipientsOf,
  reserveNextBatch,
  unfinishedReservations,
  abandonRequests,
} from '../../store/send-requests';
import { createDeliveryActivities, type SweepAllResult } from '../../activities/delivery';
import { createLogger } from '../../domain/log';
import type { RulesResolver } from '../../store/rule-versions';

let env: IsolatedEnv;
before(async () => (env = await isolatedEnv(__filename)));
after(async () => env?.close());

/** Five planned records of one incident; returns their ids in id order. */
async function plan(incidentId: string, now: Date): Promise<string[]> {
  const docs = Array.from({ length: 5 }, (_, i) =>
    plannedRecord(
      { incidentId, kind: 'outage', subscriberId: `A-${i}`, channel: 'sms', to: `+3934700010${i}`, language: 'it' },
      new Date(now.getTime() - 120_000),
    ),
  );
  await env.store.deliveries.insertMany(docs);
  return docs.map((d) => d._id).sort();
}
const scope = (incidentId: string) => ({ incidentId, kind: 'outage' as const, channel: 'sms' as const });

test('a batch is taken by one request, without writing its records; nobody else can take them while it is open', async () => {
  const now = new Date();
  const ids = await plan('inc_take', now);
  const r = await reserveNextBatch(env.store, scope('inc_take'), 10, now);
  assert.deepEqual(
    r.records.map((d) => d._id),
    ids,
  );
  assert.ok(
    r.records.every((d) => d.attempts === 1 && d.request),
    'each on its first attempt, with the request that took it',
  );
  const requests = await env.store.sendRequests.find({ incidentId: 'inc_take' }).toArray();
  assert.equal(requests.length, 1);
  assert.deepEqual(
    recipientsOf(requests[0]!),
    ids.map((id) => ({ id, attempt: 1 })),
  );
  assert.equal(
    await env.store.deliveries.countDocuments({ incidentId: 'inc_take', state: 'planned', attempts: 0 }),
    5,
    'the records are not written when taken',
  );

  const again = await reserveNextBatch(env.store, scope('inc_take'), 10, now);
  assert.equal(again.records.length, 0);
  assert.equal(again.held, 5, 'held by the open request: the caller must come back');
});

test('six senders at once over 1,200 records on two pages: every record is taken exactly once', async () => {
  const now = new Date();
  const N = 1200;
  const inputs: PlanInput[] = Array.from({ length: N }, (_, i) => ({
    incidentId: 'inc_race',
    kind: 'outage',
    subscriberId: `R-${String(i).padStart(5, '0')}`,
    channel: 'sms',
    to: `+39348${String(i).padStart(7, '0')}`,
    language: 'it',
  }));
  await planAll(env.store, inputs, now);
  const takenBy = new Map<string, number>();
  await Promise.all(
    Array.from({ length: 6 }, async (_, sender) => {
      // Until every record is taken: the requests stay open (nobody answers here), so what the
      // others took stays held, and a sender with nothing left to take stops.
      for (let round = 0; round < 30 && takenBy.size < N; round++) {
        const r = await reserveNextBatch(env.store, scope('inc_race'), 200, now);
        for (const d of r.records) {
          assert.equal(takenBy.get(d._id), undefined, `${d._id} taken by senders ${takenBy.get(d._id)} and ${sender}`);
          takenBy.set(d._id, sender);
        }
      }
    }),
  );
  assert.equal(takenBy.size, N, 'none left behind');
  // And as stored: each record named by exactly one request.
  const named = (await env.store.sendRequests.find({ incidentId: 'inc_race' }).toArray()).flatMap((q) =>
    recipientsOf(q).map((p) => p.id),
  );
  assert.equal(named.length, N);
  assert.equal(new Set(named).size, N);
  assert.equal(
    (await reserveNextBatch(env.store, scope('inc_race'), 200, now)).held,
    N,
    'all held by their open requests',
  );
});

test('the answer is written once per record, as planned > sending > accepted; the closed request frees nothing', async () => {
  const now = new Date();
  const ids = await plan('inc_answer', now);
  const { records } = await reserveNextBatch(env.store, scope('inc_answer'), 10, now);
  const later = new Date(now.getTime() + 500);
  await recordSendResults(
    env.store,
    records,
    ids.slice(0, 4).map((id, i) => ({ id, providerMessageId: `uuid-answer-${i}` })),
    [{ id: ids[4]!, error: 'invalid number' }],
    later,
    'accepted by the provider',
    'accepted',
  );
  await closeRequests(
    env.store,
    records.map((d) => d.request!),
    later,
  );
  const stored = new Map(
    (await env.store.deliveries.find({ incidentId: 'inc_answer' }).toArray()).map((d) => [d._id, d]),
  );
  for (const [i, id] of ids.slice(0, 4).entries()) {
    const d = stored.get(id)!;
    assert.equal(d.state, 'accepted');
    assert.equal(d.providerMessageId, `uuid-answer-${i}`);
    assert.equal(d.attempts, 1);
    assert.deepEqual(
      d.history.map((h) => h.state),
      ['planned', 'sending', 'accepted'],
    );
    assert.equal(d.history[1]!.at.getTime(), now.getTime(), 'sending at the reservation');
  }
  assert.equal(stored.get(ids[4]!)!.state, 'failed');
  assert.equal(stored.get(ids[4]!)!.invalidRecipient, true);
  assert.equal((await env.store.sendRequests.findOne({ incidentId: 'inc_answer' }))!.open, false);
  assert.equal((await dueCandidates(env.store, scope('inc_answer'), 10, later)).found.length, 0, 'nothing due again');
});

test('a request that failed before the provider took anything: its messages are due again on the same attempt', async () => {
  const now = new Date();
  const ids = await plan('inc_release', now);
  const { records } = await reserveNextBatch(env.store, scope('inc_release'), 10, now);
  await releaseReservations(env.store, records, now, 'Plivo 503');
  await closeRequests(
    env.store,
    records.map((d) => d.request!),
    now,
  );
  const again = await reserveNextBatch(env.store, scope('inc_release'), 10, now);
  assert.deepEqual(
    again.records.map((d) => d._id),
    ids,
  );
  assert.ok(
    again.records.every((d) => d.attempts === 1),
    'still their first attempt: the provider never had them',
  );
  const d = (await env.store.deliveries.findOne({ _id: ids[0] }))!;
  assert.deepEqual(
    d.history.map((h) => h.state),
    ['planned', 'sending', 'planned'],
  );
  assert.equal(d.history[2]!.note, 'Plivo 503');
});

test('a sender that died with its request open: the next one finds its records (and old-shape reservations) to reconcile', async () => {
  const now = new Date();
  const ids = await plan('inc_dead', now);
  await reserveNextBatch(env.store, scope('inc_dead'), 3, now);
  // A record reserved by a version before send requests.
  await env.store.deliveries.updateOne({ _id: ids[4] }, { $set: { state: 'sending', attempts: 1, reservedAt: now } });
  // Its request is older than any answer takes (this process's own lease still runs: the age decides).
  const later = new Date(now.getTime() + ANSWER_TIMEOUT_MS + 1000);
  const open = await unfinishedReservations(env.store, scope('inc_dead'), later);
  assert.deepEqual(open.records.map((d) => d._id).sort(), [...ids.slice(0, 3), ids[4]!].sort());
  assert.ok(open.records.every((d) => d.attempts === 1 && d.reservedAt?.getTime() === now.getTime()));
  assert.equal(open.requests.length, 1);

  // Found at the provider for one, not for the others: recorded, released, closed.
  const found = open.records.find((d) => d._id === ids[0])!;
  await recordSendResults(
    env.store,
    open.records,
    [{ id: found._id, providerMessageId: 'uuid-found' }],
    [],
    now,
    'found at the provider after a lost answer',
    'accepted',
  );
  await releaseReservations(
    env.store,
    open.records.filter((d) => d !== found),
    now,
    'not found at the provider after a lost answer',
  );
  await closeRequests(env.store, open.requests, now);
  assert.deepEqual((await unfinishedReservations(env.store, scope('inc_dead'))).records, []);
  const due = (await dueCandidates(env.store, scope('inc_dead'), 10, now)).found.map((d) => d._id);
  assert.deepEqual(due, ids.slice(1), 'the four not found are due again, the one found is not');
});

test("a live sender's recent request is left to it; once it lost the answer, or its lease lapsed, it is settled", async () => {
  const now = new Date();
  await plan('inc_live', now);
  const taken = await reserveNextBatch(env.store, scope('inc_live'), 3, now);
  const request = taken.records[0]!.request!;
  assert.deepEqual(
    await unfinishedReservations(env.store, scope('inc_live'), now),
    { records: [], requests: [] },
    'its sender (this process) is alive and may still get the answer: not settled beside it',
  );
  await abandonRequests(env.store, [request]);
  assert.equal(
    (await unfinishedReservations(env.store, scope('inc_live'), now)).records.length,
    3,
    'given up by its sender',
  );

  // Another process's request whose lease lapsed (it died): settled too.
  await env.store.sendRequests.updateOne({ _id: request }, { $set: { sender: 'sender-gone' } });
  await env.store.db
    .collection<{ _id: string; expiresAt: Date }>('sender_leases')
    .insertOne({ _id: 'sender-gone', expiresAt: new Date(now.getTime() - 1000) });
  assert.deepEqual(
    (await unfinishedReservations(env.store, scope('inc_live'), now)).requests,
    [request],
    'a sender whose lease lapsed is gone',
  );
});

test('the watchdog reports records already due as due now, not "nothing due": the workflow must send them before calling the notices sent', async () => {
  const now = new Date();
  // Retries an earlier attempt of the sweep moved back to planned, on a channel of their own.
  const docs = Array.from({ length: 3 }, (_, i) =>
    plannedRecord(
      {
        incidentId: 'inc_due_now',
        kind: 'outage',
        subscriberId: `D-${i}`,
        channel: 'email',
        to: `d${i}@example.org`,
        language: 'it',
      },
      now,
    ),
  );
  await env.store.deliveries.insertMany(docs);
  const noRules: RulesResolver = async () => {
    throw new Error('the sweep renders no text');
  };
  const acts = createDeliveryActivities({
    store: env.store,
    channels: {},
    logger: createLogger('abandoned-claims-test', 'warn'),
    rules: noRules,
  });
  const r: SweepAllResult = await new MockActivityEnvironment().run(acts.sweepAll, {
    incidentId: 'inc_due_now',
    kinds: ['outage' as const],
    deliveryTimeoutMs: 60_000,
    maxAttempts: 3,
  });
  assert.equal(r.inFlight, 0);
  assert.ok(r.nextDueAt, 'something is due');
  assert.ok(Math.abs(Date.parse(r.nextDueAt) - Date.now()) < 10_000, `due now, not later: ${r.nextDueAt}`);

  // Once they are gone (sent), nothing is due.
  await env.store.deliveries.updateMany({ incidentId: 'inc_due_now' }, { $set: { state: 'delivered' } });
  const after: SweepAllResult = await new MockActivityEnvironment().run(acts.sweepAll, {
    incidentId: 'inc_due_now',
    kinds: ['outage' as const],
    deliveryTimeoutMs: 60_000,
    maxAttempts: 3,
  });
  assert.equal(after.nextDueAt, null);
});
