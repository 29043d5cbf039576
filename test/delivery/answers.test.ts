/**
 * An SMS batch's answer goes into its request, not onto each record (store/send-requests.ts): the
 * record is written once, by its final receipt, or by the watchdog when no receipt comes. What
 * users depend on: a message on its way is never sent again (it is not due), resolution counts it
 * as told, every receipt still lands on the right attempt, and a receipt racing the watchdog
 * leaves the record in its final state.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, isolatedEnv, type IsolatedEnv } from '../support/env';
import { MockActivityEnvironment } from '@temporalio/testing';
import { startSimulator } from '../../sim/plivo-simulator';
import { PlivoSmsChannel } from '../../channels/sms-plivo';
import { createDeliveryActivities, type SweepAllResult } from '../../activities/delivery';
import { countWrites } from '../../bench/write-counter';
import { plannedRecord } from '../../store/deliveries';
import {
  answeredOverlay,
  answersOf,
  dueCandidates,
  pendingAnswers,
  recordAnswers,
  reserveNextBatch,
  settleAnswered,
  waitingAnswers,
} from '../../store/send-requests';
import { applyReceipts, type Receipt } from '../../store/receipts';
import { connectStore, type Store } from '../../store/db';
import { transition } from '../../store/deliveries';
import { deliveryCounts } from '../../store/incidents';
import { listDeliveries } from '../../store/incident-queries';
import { createBillingActivities } from '../../activities/billing';
import { createLogger } from '../../domain/log';
import { parseRates, type RateTable } from '../../billing/costs';
import { DEFAULT_BILLING } from '../../billing/settings';

let env: IsolatedEnv;
let other: Store;
before(async () => {
  env = await isolatedEnv(__filename);
  // Another worker on the same database: it did not send, so it knows the answers only from the requests.
  other = await connectStore(env.servers.mongoUri, env.dbName);
});
after(async () => {
  await other?.close();
  await env?.close();
});

const SIM_AUTH_ID = 'MATESTANSWERS0000001';
const scope = (incidentId: string) => ({ incidentId, kind: 'outage' as const, channel: 'sms' as const });

/** Planned records of one incident, taken by one request and answered by the provider; returns their ids. */
async function sendAndAnswer(incidentId: string, n: number, now: Date): Promise<string[]> {
  const docs = Array.from({ length: n }, (_, i) =>
    plannedRecord(
      { incidentId, kind: 'outage', subscriberId: `A-${i}`, channel: 'sms', to: `+3934700020${i}`, language: 'it' },
      new Date(now.getTime() - 120_000),
    ),
  );
  await env.store.deliveries.insertMany(docs);
  const { records } = await reserveNextBatch(env.store, scope(incidentId), 100, now);
  await recordAnswers(
    env.store,
    records,
    records.map((d) => ({ id: d._id, providerMessageId: `uuid-${d._id}` })),
    [],
    now,
    'accepted by the provider',
  );
  return docs.map((d) => d._id).sort();
}

const receipt = (uuid: string, status: string, at = new Date()): Receipt => ({
  messageUuid: uuid,
  status,
  receivedAt: at,
});

test('the answer is one write of the request: the records stay untouched, not due, and resolution reads them as accepted', async () => {
  const now = new Date();
  const ids = await sendAndAnswer('inc_one_write', 3, now);
  const records = await env.store.deliveries.find({ incidentId: 'inc_one_write' }).toArray();
  assert.ok(
    records.every((d) => d.state === 'planned' && d.attempts === 0 && d.history.length === 1),
    'no record written',
  );
  const request = (await env.store.sendRequests.findOne({ incidentId: 'inc_one_write' }))!;
  assert.equal(request.open, false);
  assert.equal(request.pending, true);
  assert.deepEqual(
    answersOf(request).map((o) => [o.id, o.attempt, o.uuid]),
    ids.map((id) => [id, 1, `uuid-${id}`]),
  );
  const due = await dueCandidates(env.store, scope('inc_one_write'), 10, new Date());
  assert.equal(due.found.length, 0, 'on its way: nobody sends it again');
  assert.equal(due.held, 0, 'nor held by another sender: nothing to come back for');
  assert.deepEqual(
    await deliveryCounts(env.store, 'inc_one_write'),
    { sms: { outage: { accepted: 3 } } },
    'the operator sees them on their way, not planned',
  );
  // The API's listing (GET /v1/incidents/:id/deliveries) shows them on their way too, and filters by that state.
  const listed = async (states?: ('planned' | 'accepted')[]) =>
    (await listDeliveries(env.store, 'inc_one_write', { states, limit: 10 })).items.map((d) => [d._id, d.state]);
  assert.deepEqual(
    await listed(),
    ids.map((id) => [id, 'accepted']),
  );
  assert.deepEqual(
    await listed(['accepted']),
    ids.map((id) => [id, 'accepted']),
  );
  assert.deepEqual(await listed(['planned']), [], 'none reads as planned');
  const seen = await answeredOverlay(env.store, 'inc_one_write', 'outage');
  for (const d of records) {
    const v = seen(d);
    assert.equal(v.state, 'accepted');
    assert.equal(v.providerMessageId, `uuid-${d._id}`);
    assert.deepEqual(
      v.history.map((h) => h.state),
      ['planned', 'sending', 'accepted'],
    );
  }
});

test('the final receipt writes the record once, with its answer; on another worker too', async () => {
  const now = new Date();
  const ids = await sendAndAnswer('inc_receipt', 2, now);
  await applyReceipts(env.store, [receipt(`uuid-${ids[0]}`, 'delivered')], new Date());
  // The request counts the answers written with their receipts; one of two: still pending.
  const half = (await env.store.sendRequests.findOne({ incidentId: 'inc_receipt' }))!;
  assert.deepEqual([half.answersWritten, half.pending], [1, true]);
  // The same receipt again (Plivo repeats callbacks) writes nothing and counts nothing.
  await applyReceipts(env.store, [receipt(`uuid-${ids[0]}`, 'delivered')], new Date());
  assert.equal((await env.store.sendRequests.findOne({ incidentId: 'inc_receipt' }))!.answersWritten, 1);
  // The other worker never saw the answer: it reads it from the pending request.
  assert.equal((await pendingAnswers(other, [`uuid-${ids[1]}`])).get(`uuid-${ids[1]}`)?.id, ids[1]);
  await applyReceipts(other, [receipt(`uuid-${ids[1]}`, 'undelivered')], new Date());
  const [a, b] = await Promise.all(ids.map((_id) => env.store.deliveries.findOne({ _id })));
  assert.equal(a!.state, 'delivered');
  assert.equal(a!.providerMessageId, `uuid-${ids[0]}`);
  assert.equal(a!.attempts, 1);
  assert.deepEqual(
    a!.history.map((h) => h.state),
    ['planned', 'sending', 'accepted', 'delivered'],
  );
  assert.equal(b!.state, 'undelivered');
  assert.equal(b!.attempts, 1);
  assert.deepEqual(await deliveryCounts(env.store, 'inc_receipt'), {
    sms: { outage: { delivered: 1, undelivered: 1 } },
  });
  // Every record carries its answer: the applier ended the request's pending state.
  assert.equal((await env.store.sendRequests.findOne({ incidentId: 'inc_receipt' }))!.pending, false);
  // And the watchdog finds nothing to write.
  const before = await env.store.deliveries.find({ incidentId: 'inc_receipt' }).toArray();
  assert.equal(await settleAnswered(env.store, scope('inc_receipt'), new Date(0), new Date()), 0);
  assert.equal((await env.store.sendRequests.findOne({ incidentId: 'inc_receipt' }))!.pending, false);
  assert.deepEqual(await env.store.deliveries.find({ incidentId: 'inc_receipt' }).toArray(), before);
  // The same receipt again, and a late `sent`: nothing moves back.
  await applyReceipts(
    env.store,
    [receipt(`uuid-${ids[0]}`, 'delivered'), receipt(`uuid-${ids[0]}`, 'sent')],
    new Date(),
  );
  const again = await env.store.deliveries.findOne({ _id: ids[0] });
  assert.equal(again!.state, 'delivered');
  assert.equal(again!.history.length, 4);
});

test('a receipt naming its send request is matched by reading that request alone, on a worker that did not send it', async () => {
  const now = new Date();
  const ids = await sendAndAnswer('inc_named', 3, now);
  const request = (await env.store.sendRequests.find({}).toArray()).find((q) => q._id.startsWith('inc_named|'))!._id;
  const fresh = await connectStore(env.servers.mongoUri, env.dbName, { monitorCommands: true });
  try {
    const reads: unknown[] = [];
    fresh.client.on('commandStarted', (e) => {
      if (e.commandName === 'find' && e.command.find === 'send_requests') reads.push(e.command.filter);
    });
    const named = (uuid: string, status: string, req: string): Receipt => ({ ...receipt(uuid, status), request: req });
    await applyReceipts(fresh, [named(`uuid-${ids[0]}`, 'delivered', request)], new Date());
    const a = await env.store.deliveries.findOne({ _id: ids[0] });
    assert.deepEqual([a!.state, a!.providerMessageId], ['delivered', `uuid-${ids[0]}`]);
    assert.ok(
      reads.length > 0 && reads.every((f) => JSON.stringify(f).includes(request)),
      `send requests read by their id only: ${JSON.stringify(reads)}`,
    );
    // A receipt naming a request that does not hold its message (a hint, not a proof) is still matched, by every pending request.
    await applyReceipts(fresh, [named(`uuid-${ids[1]}`, 'undelivered', 'inc_other|outage/sms|p0|1')], new Date());
    assert.equal((await env.store.deliveries.findOne({ _id: ids[1] }))!.state, 'undelivered');
  } finally {
    await fresh.close();
  }
});

test('requests stored by the version before (one sub-document per record) are read as they were; one answered now trips a reader of that version', async () => {
  const now = new Date();
  const records = Array.from({ length: 5 }, (_, i) =>
    plannedRecord(
      {
        incidentId: 'inc_old_shape',
        kind: 'outage',
        subscriberId: `O-${i}`,
        channel: 'sms',
        to: `+3934700030${i}`,
        language: 'it',
      },
      new Date(now.getTime() - 120_000),
    ),
  ).sort((a, b) => (a._id < b._id ? -1 : 1));
  await env.store.deliveries.insertMany(records);
  const [held1, held2, answered1, answered2, free] = records.map((d) => d._id);
  const base = {
    incidentId: 'inc_old_shape',
    kind: 'outage' as const,
    channel: 'sms' as const,
    page: 0,
    reservedAt: now,
  };
  // As the version before wrote them: an open request (its sender at work) and an answered one.
  await env.store.sendRequests.insertMany([
    {
      ...base,
      _id: 'inc_old_shape|outage/sms|p0|1',
      seq: 1,
      recipients: [held1, held2].map((id) => ({ id, attempt: 1 })),
      open: true,
    },
    {
      ...base,
      _id: 'inc_old_shape|outage/sms|p0|2',
      seq: 2,
      recipients: [answered1, answered2].map((id) => ({ id, attempt: 1 })),
      open: false,
      pending: true,
      answeredAt: now,
      note: 'accepted by the provider',
      outcomes: [answered1, answered2].map((id) => ({ id, attempt: 1, uuid: `uuid-${id}` })),
    },
  ]);
  const due = await dueCandidates(env.store, scope('inc_old_shape'), 10, now);
  assert.deepEqual(
    due.found.map((d) => d._id),
    [free],
    'held and answered ones are not due',
  );
  assert.equal(due.held, 2);
  const seen = await answeredOverlay(env.store, 'inc_old_shape', 'outage');
  assert.deepEqual(
    records.map((d) => seen(d).state),
    records.map((d) => (d._id === answered1 || d._id === answered2 ? 'accepted' : 'planned')),
  );
  assert.equal((await pendingAnswers(other, [`uuid-${answered2}`])).get(`uuid-${answered2}`)?.id, answered2);
  await applyReceipts(other, [receipt(`uuid-${answered1}`, 'delivered')], new Date());
  const a = await env.store.deliveries.findOne({ _id: answered1 });
  assert.equal(a!.state, 'delivered');
  assert.equal(a!.providerMessageId, `uuid-${answered1}`);

  // Answered now: arrays of plain values, and `outcomes` holds a string, so that the version before,
  // still running during a rolling upgrade, fails where it read the answers (and its activity is
  // retried) instead of finding none and sending those messages again.
  const ids = await sendAndAnswer('inc_new_shape', 2, now);
  const request = (await env.store.sendRequests.findOne({ incidentId: 'inc_new_shape' }))!;
  assert.deepEqual(request.answerIds, ids);
  assert.equal(request.recipients, undefined);
  const asReadBefore = request as unknown as { outcomes?: { uuid: string }[]; recipients?: { id: string }[] };
  assert.throws(() => (asReadBefore.outcomes ?? []).map((o) => o.uuid), TypeError);
  assert.throws(() => new Map(asReadBefore.recipients!.map((p) => [p.id, p])), TypeError);
});

test('a record on its way again reads as its latest attempt; late words after its final one move nothing', async () => {
  const ids = await sendAndAnswer('inc_way_again', 2, new Date());
  // The first message is lost and retried while the second still waits for its receipt: the first request stays pending.
  await applyReceipts(env.store, [receipt(`uuid-${ids[0]}`, 'undelivered')], new Date());
  await transition(env.store, { _id: ids[0], state: 'undelivered' }, 'planned', new Date(), 'retry');
  const { records } = await reserveNextBatch(env.store, scope('inc_way_again'), 100, new Date());
  assert.deepEqual(
    records.map((d) => [d._id, d.attempts]),
    [[ids[0], 2]],
  );
  const retry = `uuid-${ids[0]}-2`;
  await recordAnswers(env.store, records, [{ id: ids[0], providerMessageId: retry }], [], new Date(), 'accepted');
  const seen = await answeredOverlay(env.store, 'inc_way_again', 'outage');
  const [first, second] = await Promise.all(
    ids.map(async (_id) => seen((await env.store.deliveries.findOne({ _id }))!)),
  );
  assert.deepEqual([first.state, first.attempts, first.providerMessageId], ['accepted', 2, retry]);
  assert.deepEqual([second.state, second.attempts, second.providerMessageId], ['accepted', 1, `uuid-${ids[1]}`]);
  // The retry is delivered; then its late `sent`, and the first attempt's `undelivered` again, on this worker and another.
  await applyReceipts(env.store, [receipt(retry, 'delivered')], new Date());
  const late = [receipt(retry, 'sent'), receipt(`uuid-${ids[0]}`, 'undelivered')];
  await applyReceipts(env.store, late, new Date());
  await applyReceipts(other, late, new Date());
  const d = (await env.store.deliveries.findOne({ _id: ids[0] }))!;
  assert.deepEqual([d.state, d.attempts, d.providerMessageId], ['delivered', 2, retry]);
  assert.deepEqual(
    d.history.map((h) => h.state),
    ['planned', 'sending', 'accepted', 'undelivered', 'planned', 'sending', 'accepted', 'delivered'],
  );
});

test('no receipt within the wait: the watchdog writes the answer, and a receipt after it moves the record on', async () => {
  const now = new Date(Date.now() - 90_000);
  const ids = await sendAndAnswer('inc_settle', 2, now);
  const young = await sendAndAnswer('inc_settle_young', 1, new Date());
  const inFlight = await settleAnswered(env.store, scope('inc_settle'), new Date(Date.now() - 60_000), new Date());
  assert.equal(inFlight, 0);
  for (const _id of ids) {
    const d = (await env.store.deliveries.findOne({ _id }))!;
    assert.equal(d.state, 'accepted');
    assert.equal(d.providerMessageId, `uuid-${_id}`);
    assert.equal(d.updatedAt.getTime(), now.getTime(), 'its delivery timeout counts from the answer');
  }
  assert.equal((await env.store.sendRequests.findOne({ incidentId: 'inc_settle' }))!.pending, false);
  assert.equal(
    await settleAnswered(env.store, scope('inc_settle_young'), new Date(Date.now() - 60_000), new Date()),
    1,
    'a younger answer stays in flight, unwritten',
  );
  assert.equal((await env.store.deliveries.findOne({ _id: young[0] }))!.state, 'planned');
  await applyReceipts(env.store, [receipt(`uuid-${ids[0]}`, 'delivered')], new Date());
  const d = (await env.store.deliveries.findOne({ _id: ids[0] }))!;
  assert.equal(d.state, 'delivered');
  assert.deepEqual(
    d.history.map((h) => h.state),
    ['planned', 'sending', 'accepted', 'delivered'],
  );
});

test('no receipt within the wait: the watchdog asks Plivo before writing; a delivered message is written once, one Plivo does not know is sent again', async () => {
  // Plivo (the simulator) with no status callbacks: no receipt ever comes, as when the API was down.
  const sim = await startSimulator({ authId: SIM_AUTH_ID, authToken: 'answers-token', host: '127.0.0.1', port: 0 });
  const sms = new PlivoSmsChannel({
    authId: SIM_AUTH_ID,
    authToken: 'answers-token',
    baseUrl: sim.url,
    sender: 'Avviso',
  });
  const watched = await connectStore(env.servers.mongoUri, env.dbName, { monitorCommands: true });
  try {
    const answeredAt = new Date(Date.now() - 90_000);
    const docs = Array.from({ length: 3 }, (_, i) =>
      plannedRecord(
        {
          incidentId: 'inc_ask',
          kind: 'outage',
          subscriberId: `Q-${i}`,
          channel: 'sms',
          to: `+3934700030${i}`,
          language: 'it',
        },
        new Date(answeredAt.getTime() - 60_000),
      ),
    );
    await env.store.deliveries.insertMany(docs);
    const { records } = await reserveNextBatch(env.store, scope('inc_ask'), 100, answeredAt);
    const sent = await sms.send(
      records
        .slice(0, 2)
        .map((d) => ({ deliveryId: d._id, to: d.to, text: 'Guasto in zona', language: 'it' as const })),
    );
    const uuidOf = new Map(sent.map((o) => [o.deliveryId, o.outcome === 'accepted' ? o.providerMessageId! : '']));
    const lostId = records[2]!._id;
    uuidOf.set(lostId, 'uuid-plivo-never-had');
    await recordAnswers(
      env.store,
      records,
      records.map((d) => ({ id: d._id, providerMessageId: uuidOf.get(d._id)! })),
      [],
      answeredAt,
      'accepted by the provider',
    );
    for (const d of records.slice(0, 2))
      await eventually('delivered at Plivo', async () =>
        (await sms.messageState(uuidOf.get(d._id)!)).state === 'delivered' ? true : undefined,
      );

    const writes = countWrites(watched.client);
    const acts = createDeliveryActivities({
      store: watched,
      channels: { sms },
      sms,
      logger: createLogger('answers-test', 'warn'),
      rules: async () => {
        throw new Error('the sweep renders no text');
      },
    });
    const r: SweepAllResult = await new MockActivityEnvironment().run(acts.sweepAll, {
      incidentId: 'inc_ask',
      kinds: ['outage' as const],
      deliveryTimeoutMs: 60_000,
      maxAttempts: 3,
    });
    writes.stop();

    for (const d of records.slice(0, 2)) {
      const after = (await env.store.deliveries.findOne({ _id: d._id }))!;
      assert.equal(after.state, 'delivered');
      assert.equal(after.providerMessageId, uuidOf.get(d._id));
      assert.deepEqual(
        after.history.map((h) => h.state),
        ['planned', 'sending', 'accepted', 'delivered'],
      );
      assert.equal(after.history[2]!.at.getTime(), answeredAt.getTime(), 'accepted when Plivo answered the request');
    }
    const lost = (await env.store.deliveries.findOne({ _id: lostId }))!;
    assert.equal(lost.state, 'planned', 'Plivo does not know it: it goes out again');
    assert.equal(lost.attempts, 1);
    assert.equal(r.retried, 1);
    // One write for each delivered record (its answer and Plivo's word at once); two for the lost one
    // (its answer, then the retry). Writing the answers first made it five.
    const onRecords = Object.entries(writes.byTarget)
      .filter(([target]) => target.startsWith('deliveries update'))
      .reduce((n, [, k]) => n + k, 0);
    assert.equal(onRecords, 4, JSON.stringify(writes.byTarget));
    assert.equal((await env.store.sendRequests.findOne({ incidentId: 'inc_ask' }))!.pending, false);
  } finally {
    await watched.close();
    await sim.close();
  }
});

test('a receipt racing the watchdog: the record ends delivered, once, whichever writes first', async () => {
  const now = new Date(Date.now() - 90_000);
  const ids = await sendAndAnswer('inc_race', 40, now);
  await Promise.all([
    settleAnswered(env.store, scope('inc_race'), new Date(), new Date()),
    applyReceipts(
      other,
      ids.map((id) => receipt(`uuid-${id}`, 'delivered')),
      new Date(),
    ),
  ]);
  const records = await env.store.deliveries.find({ incidentId: 'inc_race' }).toArray();
  assert.deepEqual(
    records.map((d) => d.state),
    ids.map(() => 'delivered'),
  );
  for (const d of records)
    assert.equal(d.history.filter((h) => h.state === 'delivered').length, 1, `${d._id}: one delivered step`);
});

test('a message given up while on its way (a STOP) still gets the truth of its receipt; a receipt of an earlier attempt moves nothing', async () => {
  const now = new Date();
  const ids = await sendAndAnswer('inc_gone', 2, now);
  await transition(env.store, { _id: ids[0], state: 'planned' }, 'expired', new Date(), 'opted out (STOP)');
  await applyReceipts(env.store, [receipt(`uuid-${ids[0]}`, 'delivered')], new Date());
  assert.equal((await env.store.deliveries.findOne({ _id: ids[0] }))!.state, 'delivered', 'it was sent: it says so');
  // The second message was lost and is on its next attempt (planned again, attempts 1): the first attempt's late receipt must not move it.
  await applyReceipts(env.store, [receipt(`uuid-${ids[1]}`, 'undelivered')], new Date());
  await transition(env.store, { _id: ids[1], state: 'undelivered' }, 'planned', new Date(), 'retry');
  await applyReceipts(env.store, [receipt(`uuid-${ids[1]}`, 'delivered')], new Date());
  const d = (await env.store.deliveries.findOne({ _id: ids[1] }))!;
  assert.equal(d.state, 'planned', 'the retry goes out; the old receipt does not count for it');
});

test('billing counts a message whose answer still waits for its receipt (written as accepted first)', async () => {
  const id = 'inc_bill_pending';
  await env.store.incidents.insertOne({
    _id: id,
    key: id,
    kind: 'outage',
    severity: 'major',
    siteIds: ['s'],
    areas: ['Borgo'],
    title: 'test',
    source: 'test',
    phase: 'resolved',
    openedAt: new Date(),
    workflowId: `incident:${id}`,
    timeline: [],
  });
  const ids = await sendAndAnswer(id, 2, new Date());
  await applyReceipts(
    env.store,
    [{ ...receipt(`uuid-${ids[0]}`, 'delivered'), units: 1, totalAmount: '0.00500' }],
    new Date(),
  );
  const rates: RateTable = { currency: 'USD', rates: parseRates('sms=0.0500') as RateTable['rates'] };
  const billing = createBillingActivities({
    store: env.store,
    logger: createLogger('test', 'silent'),
    billing: { ...DEFAULT_BILLING, rates },
  });
  const cost = await billing.billIncident({ incidentId: id });
  const sms = cost.channels.find((c) => c.channel === 'sms')!;
  assert.equal(sms.messages, 2, 'both messages reached Plivo: both are billed');
  assert.equal(sms.fromReceipts, 1);
  assert.equal(sms.fromRateTable, 1);
  assert.equal((await env.store.deliveries.findOne({ _id: ids[1] }))!.state, 'accepted');
});

test("the watchdog counts a young request's messages on their way from the request, without reading their records", async () => {
  const watched = await connectStore(env.servers.mongoUri, env.dbName, { monitorCommands: true });
  try {
    const ids = await sendAndAnswer('inc_young', 3, new Date());
    const look = async () => {
      const reads = countWrites(watched.client);
      const r = await waitingAnswers(watched, scope('inc_young'), new Date(Date.now() - 60_000), 10, new Date());
      reads.stop();
      const recordReads = Object.keys(reads.timeByTarget).filter((t) => t.startsWith('deliveries '));
      return { ...r, recordReads };
    };
    assert.deepEqual(await look(), { waiting: 3, overdue: [], recordReads: [] });
    await applyReceipts(env.store, [receipt(`uuid-${ids[0]}`, 'delivered')], new Date());
    assert.deepEqual(await look(), { waiting: 2, overdue: [], recordReads: [] });
    // Once old enough to be overdue, the records are read: the two still waiting are the ones to ask Plivo about.
    const old = await waitingAnswers(watched, scope('inc_young'), new Date(Date.now() + 60_000), 10, new Date());
    assert.equal(old.waiting, 2);
    assert.deepEqual(old.overdue.map((o) => o.record._id).sort(), ids.slice(1));
  } finally {
    await watched.close();
  }
});
