/**
 * The sender's look for due messages skips pages it found quiet (store/quiet-pages.ts): an incident
 * whose messages are all on their way keeps every record planned until its receipt, and reading
 * them all each round was most of the database's work at 100,000. What users depend on: nothing
 * due is missed for it. A retry, a deferred message whose time comes, a new planning and a notice
 * handed over from another outage are found at once, by this worker or another one.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import { countWrites } from '../../bench/write-counter';
import { insertPlanned, nextDueAt, plannedRecord, sweepUndelivered } from '../../store/deliveries';
import { anyDue, dueCandidates, recordAnswers, reserveNextBatch } from '../../store/send-requests';
import { applyReceipts } from '../../store/receipts';
import { handOverNotice } from '../../store/coverage';
import { connectStore, type Store } from '../../store/db';
import type { Delivery } from '../../domain/types';
import { QUIET_FOR_MS } from '../../store/quiet-pages';
import { createDeliveryActivities, type SweepAllResult } from '../../activities/delivery';
import { createLogger } from '../../domain/log';
import { MockActivityEnvironment } from '@temporalio/testing';

let env: IsolatedEnv;
/** The sender's worker, its commands watched; the other changes come from env.store (another worker). */
let watched: Store;
before(async () => {
  env = await isolatedEnv(__filename);
  watched = await connectStore(env.servers.mongoUri, env.dbName, { monitorCommands: true });
});
after(async () => {
  await watched?.close();
  await env?.close();
});

const scope = (incidentId: string) => ({ incidentId, kind: 'outage' as const, channel: 'sms' as const });

function records(incidentId: string, n: number, now: Date, extra: Partial<Delivery> = {}, from = 0): Delivery[] {
  return Array.from({ length: n }, (_, i) => ({
    ...plannedRecord(
      {
        incidentId,
        kind: 'outage',
        subscriberId: `Q-${from + i}`,
        channel: 'sms',
        to: `+3934700030${from + i}`,
        language: 'it',
      },
      now,
    ),
    ...extra,
  }));
}

/** Plans n records on a page of their own, sends them all and records Plivo's answers: every record on its way. */
async function planAndSend(incidentId: string, n: number, now: Date): Promise<string[]> {
  const docs = records(incidentId, n, now);
  await insertPlanned(env.store, docs);
  const { records: taken } = await reserveNextBatch(watched, scope(incidentId), 100, now);
  assert.equal(taken.length, n);
  await recordAnswers(
    watched,
    taken,
    taken.map((d) => ({ id: d._id, providerMessageId: `uuid-${d._id}` })),
    [],
    now,
    'accepted by the provider',
  );
  return docs.map((d) => d._id).sort();
}

/** The sender's look for due records, and which collections it read for it. */
async function look(incidentId: string, now = new Date()) {
  const reads = countWrites(watched.client);
  const r = await dueCandidates(watched, scope(incidentId), 100, now);
  reads.stop();
  const read = (coll: string) => Object.keys(reads.timeByTarget).some((t) => t.startsWith(`${coll} `));
  return {
    due: r.found.map((d) => d._id).sort(),
    readRecords: read('deliveries'),
    readRequests: read('send_requests'),
  };
}

test('a page whose messages are all on their way is read once, then skipped until something changes on it', async () => {
  await planAndSend('inc_quiet', 3, new Date());
  assert.deepEqual(await look('inc_quiet'), { due: [], readRecords: true, readRequests: true }, 'read once');
  assert.deepEqual(await look('inc_quiet'), { due: [], readRecords: false, readRequests: false }, 'then skipped');
  assert.equal(await anyDue(watched, scope('inc_quiet'), new Date()), false);
});

test("a message the watchdog retries is found at once on a quiet page, though another worker's watchdog retried it", async () => {
  const ids = await planAndSend('inc_quiet_retry', 3, new Date());
  await look('inc_quiet_retry');
  assert.equal((await look('inc_quiet_retry')).readRecords, false, 'quiet');
  await applyReceipts(
    env.store,
    [{ messageUuid: `uuid-${ids[1]}`, status: 'undelivered', receivedAt: new Date() }],
    new Date(),
  );
  assert.equal((await look('inc_quiet_retry')).readRecords, false, 'an undelivered receipt makes nothing due yet');
  const sweep = await sweepUndelivered(
    env.store,
    scope('inc_quiet_retry'),
    { deliveryTimeoutMs: 60_000, maxAttempts: 3 },
    new Date(),
  );
  assert.equal(sweep.retried, 1);
  assert.deepEqual(await look('inc_quiet_retry'), { due: [ids[1]], readRecords: true, readRequests: true });
  const { records: taken } = await reserveNextBatch(watched, scope('inc_quiet_retry'), 100, new Date());
  assert.deepEqual(
    taken.map((d) => [d._id, d.attempts]),
    [[ids[1], 2]],
    'sent again, on its second attempt',
  );
});

test('a deferred message on a quiet page is found when its time comes, not before, and without reading meanwhile', async () => {
  const now = new Date();
  const soon = new Date(now.getTime() + 10_000);
  const docs = records('inc_quiet_deferred', 2, now, { notBefore: soon });
  await insertPlanned(env.store, docs);
  assert.deepEqual(await look('inc_quiet_deferred', now), { due: [], readRecords: true, readRequests: true });
  assert.deepEqual(
    await look('inc_quiet_deferred', new Date(now.getTime() + 5_000)),
    { due: [], readRecords: false, readRequests: false },
    'not due yet: not read',
  );
  assert.deepEqual(
    (await look('inc_quiet_deferred', new Date(soon.getTime() + 1))).due,
    docs.map((d) => d._id).sort(),
    'due once its time has come',
  );
});

test('a quiet page is read again after QUIET_FOR_MS at most, in case a change was not noted (a worker died between its writes)', async () => {
  const now = new Date();
  const ids = await planAndSend('inc_quiet_lapse', 2, now);
  await look('inc_quiet_lapse', now);
  // Written behind the sender's back, as a worker that died before noting it would leave it.
  await env.store.deliveries.updateOne({ _id: ids[0] }, { $set: { state: 'planned', attempts: 1 } });
  const at = (ms: number) => new Date(now.getTime() + ms);
  assert.deepEqual((await look('inc_quiet_lapse', at(QUIET_FOR_MS - 1000))).due, [], 'within the bound: skipped');
  assert.equal(await anyDue(watched, scope('inc_quiet_lapse'), now, true), true, 'found by a look that reads them all');
  assert.deepEqual((await look('inc_quiet_lapse', at(QUIET_FOR_MS + 1000))).due, [ids[0]], 'after: found');
});

test('the watchdog does not report "nothing left" from quiet pages: with nothing in flight it reads them', async () => {
  const id = 'inc_quiet_idle';
  const docs = records(id, 2, new Date(), { channel: 'email', to: 'q@example.org' });
  docs[1]!.to = 'r@example.org';
  await insertPlanned(env.store, docs);
  const email = { incidentId: id, kind: 'outage' as const, channel: 'email' as const };
  await env.store.deliveries.updateMany({ incidentId: id }, { $set: { state: 'delivered' } });
  assert.equal((await dueCandidates(watched, email, 10, new Date())).found.length, 0, 'seen quiet');
  // Back to planned behind the sender's back (a note lost): the look that trusts quiet pages misses it.
  await env.store.deliveries.updateOne({ _id: docs[0]!._id }, { $set: { state: 'planned' } });
  assert.equal(await anyDue(watched, email, new Date()), false);
  const acts = createDeliveryActivities({
    store: watched,
    channels: {},
    logger: createLogger('quiet-pages-test', 'warn'),
    rules: async () => {
      throw new Error('the sweep renders no text');
    },
  });
  const r: SweepAllResult = await new MockActivityEnvironment().run(acts.sweepAll, {
    incidentId: id,
    kinds: ['outage' as const],
    deliveryTimeoutMs: 60_000,
    maxAttempts: 3,
  });
  assert.equal(r.inFlight, 0);
  assert.ok(r.nextDueAt && Math.abs(Date.parse(r.nextDueAt) - Date.now()) < 10_000, `due now: ${r.nextDueAt}`);
});

test('a new planning on a quiet incident is found, and only its page is read', async () => {
  await planAndSend('inc_quiet_more', 2, new Date());
  await look('inc_quiet_more');
  const more = records('inc_quiet_more', 2, new Date(), {}, 2);
  await insertPlanned(env.store, more);
  const reads = countWrites(watched.client);
  const r = await dueCandidates(watched, scope('inc_quiet_more'), 100, new Date());
  reads.stop();
  assert.deepEqual(r.found.map((d) => d._id).sort(), more.map((d) => d._id).sort());
  assert.deepEqual(
    [...r.pages.keys()],
    [2],
    'only the new page is read: page 1 (on its way) and page 0 (empty) were seen quiet',
  );
});

test('a notice handed over from an outage that ended is found at once on the quiet page of the outage still open', async () => {
  const now = new Date();
  const covered = records('inc_quiet_open', 1, now, { state: 'expired', coveredBy: 'inc_quiet_ending' }, 5);
  await insertPlanned(env.store, covered);
  await planAndSend('inc_quiet_open', 1, now);
  await look('inc_quiet_open');
  assert.equal((await look('inc_quiet_open')).readRecords, false, 'quiet');
  const revived = await handOverNotice(
    env.store,
    'inc_quiet_ending',
    [{ id: 'inc_quiet_open', sites: new Set() }],
    'sms',
    covered[0]!.to,
    new Date(),
  );
  assert.equal(revived, 1);
  assert.deepEqual((await look('inc_quiet_open')).due, [covered[0]!._id]);
});

test('when the next deferred message falls due: not read for an incident with nothing planned past now, found once one is', async () => {
  const id = 'inc_next_due';
  // Due at once: the planner writes its own time as the time to send.
  await insertPlanned(env.store, records(id, 2, new Date(), { notBefore: new Date(Date.now() - 1) }));
  const reads = countWrites(watched.client);
  assert.equal(await nextDueAt(watched, id, ['outage'], new Date()), null);
  reads.stop();
  assert.equal(
    Object.keys(reads.timeByTarget).some((t) => t.startsWith('deliveries ')),
    false,
    'nothing was planned to wait: no record read',
  );
  const at = new Date(Date.now() + 3_600_000);
  await insertPlanned(env.store, records(id, 1, new Date(), { notBefore: at }, 2));
  assert.equal((await nextDueAt(watched, id, ['outage'], new Date()))?.getTime(), at.getTime());
  // An incident whose records came before the note (no page document) is asked its records.
  const legacy = records('inc_next_due_legacy', 1, new Date(), { notBefore: at, page: 0 });
  await env.store.deliveries.insertMany(legacy);
  assert.equal((await nextDueAt(watched, 'inc_next_due_legacy', ['outage'], new Date()))?.getTime(), at.getTime());
});
