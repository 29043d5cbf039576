/**
 * Receipts move delivery records forward only: repeated, late and reordered callbacks leave the
 * latest state, with parts and cost recorded, whatever order they arrive and are applied in.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import {
  applyReceipts,
  applyStoredReceipts,
  insertReceipts,
  receiptMoveOps,
  receiptsAppliedUpTo,
  type Receipt,
} from '../../store/receipts';
import { latestWords } from '../../delivery/lifecycle';
import { conditionById } from '../../store/backend';
import { plannedRecord } from '../../store/deliveries';
import { connectStore } from '../../store/db';
import { ObjectId } from 'mongodb';

let env: IsolatedEnv;
before(async () => (env = await isolatedEnv(__filename)));
after(async () => env?.close());

const at = new Date('2026-11-24T10:00:00Z');
async function acceptedRecord(n: number) {
  const d = plannedRecord(
    {
      incidentId: 'inc_r',
      kind: 'outage',
      subscriberId: `C-${n}`,
      channel: 'sms',
      to: `+39347000${String(n).padStart(4, '0')}`,
      language: 'it',
    },
    at,
  );
  await env.store.deliveries.insertOne({ ...d, state: 'accepted', providerMessageId: `uuid-${n}`, attempts: 1 });
  return d._id;
}
const receipt = (n: number, status: string, sequence: number, extra: Partial<Receipt> = {}): Receipt => ({
  messageUuid: `uuid-${n}`,
  status,
  sequence,
  receivedAt: at,
  ...extra,
});

test('in order, reordered, repeated: the final state wins and parts and cost are kept', async () => {
  const ids = [await acceptedRecord(1), await acceptedRecord(2), await acceptedRecord(3)];
  // 1: in order. 2: delivered before sent, in separate flushes. 3: everything twice.
  await applyReceipts(
    env.store,
    [receipt(1, 'sent', 1), receipt(2, 'delivered', 2, { units: 2, totalAmount: '0.01000' })],
    at,
  );
  await applyReceipts(
    env.store,
    [receipt(1, 'delivered', 2, { units: 1, totalAmount: '0.00500' }), receipt(2, 'sent', 1)],
    at,
  );
  await applyReceipts(
    env.store,
    [
      receipt(3, 'sent', 1),
      receipt(3, 'delivered', 2, { units: 1 }),
      receipt(3, 'sent', 1),
      receipt(3, 'delivered', 2, { units: 1 }),
    ],
    at,
  );
  const docs = await env.store.deliveries
    .find({ _id: { $in: ids } })
    .sort({ _id: 1 })
    .toArray();
  assert.deepEqual(
    docs.map((d) => d.state),
    ['delivered', 'delivered', 'delivered'],
  );
  assert.equal(docs[0]!.units, 1);
  assert.equal(docs[0]!.cost, '0.00500');
  assert.equal(docs[1]!.units, 2, 'the late `sent` did not undo the delivered receipt');
  assert.deepEqual(
    docs[0]!.history.map((h) => h.state),
    ['planned', 'sent', 'delivered'],
  );
});

test('undelivered then delivered (a later successful attempt by the carrier) ends delivered, with the error kept in history', async () => {
  const id = await acceptedRecord(4);
  await applyReceipts(env.store, [receipt(4, 'undelivered', 2, { errorCode: '30' })], at);
  let d = await env.store.deliveries.findOne({ _id: id });
  assert.equal(d!.state, 'undelivered');
  assert.match(d!.error!, /30/);
  await applyReceipts(env.store, [receipt(4, 'delivered', 3)], at);
  d = await env.store.deliveries.findOne({ _id: id });
  assert.equal(d!.state, 'delivered');
});

test('stored receipts are applied once they settle, and the applier remembers how far it got', async () => {
  const id = await acceptedRecord(5);
  await insertReceipts(env.store, [receipt(5, 'sent', 1), receipt(5, 'delivered', 2)]);
  assert.equal(
    await applyStoredReceipts(env.store, new Date()),
    0,
    'receipts younger than a second wait for the next round',
  );
  const later = new Date(Date.now() + 5000);
  assert.equal(await applyStoredReceipts(env.store, later), 1, 'one batch');
  assert.equal((await env.store.deliveries.findOne({ _id: id }))!.state, 'delivered');
  assert.equal(await applyStoredReceipts(env.store, later), 0, 'nothing is applied twice');
});

test('a storm of small batches: one round applies up to 5,000 receipts, however they were grouped, and says how far it got', async () => {
  // 40 group commits of 3 receipts each (the API's batches in a storm of callbacks hold tens, not 500).
  const ids: string[] = [];
  for (let i = 0; i < 40; i++) {
    ids.push(await acceptedRecord(100 + i));
    await insertReceipts(env.store, [
      receipt(100 + i, 'sent', 1),
      receipt(100 + i, 'delivered', 2),
      receipt(100 + i, 'delivered', 2),
    ]);
  }
  const later = new Date(Date.now() + 5000);
  assert.equal(await applyStoredReceipts(env.store, later), 40, 'every batch in one round');
  const states = (await env.store.deliveries.find({ _id: { $in: ids } }).toArray()).map((d) => d.state);
  assert.deepEqual(
    states,
    ids.map(() => 'delivered'),
  );
  // Caught up: the watchdog's clock is the round's (a second before it), not a batch behind.
  assert.equal(receiptsAppliedUpTo(env.store, later).getTime(), later.getTime() - 1000);
});

test('the sweeper and the applier asking at once share one round: each record moves once', async () => {
  const id = await acceptedRecord(20);
  await insertReceipts(env.store, [receipt(20, 'delivered', 2)]);
  const later = new Date(Date.now() + 5000);
  const [a, b] = await Promise.all([applyStoredReceipts(env.store, later), applyStoredReceipts(env.store, later)]);
  assert.deepEqual([a, b], [1, 1], 'the second call waited for the first round');
  const d = await env.store.deliveries.findOne({ _id: id });
  assert.deepEqual(
    d!.history.map((h) => h.state),
    ['planned', 'delivered'],
    'one write, not one per caller',
  );
});

test('a `sent` waits for its final word, so the record is written once; alone, it is applied after the hold', async () => {
  const [both, alone] = [await acceptedRecord(21), await acceptedRecord(22)];
  const t0 = Date.now();
  await insertReceipts(env.store, [
    receipt(21, 'sent', 1, { receivedAt: new Date(t0) }),
    receipt(22, 'sent', 1, { receivedAt: new Date(t0) }),
  ]);
  await applyStoredReceipts(env.store, new Date(t0 + 5000));
  assert.equal((await env.store.deliveries.findOne({ _id: both }))!.state, 'accepted', 'held: no write yet');
  await insertReceipts(env.store, [receipt(21, 'delivered', 2, { receivedAt: new Date(t0 + 3000) })]);
  await applyStoredReceipts(env.store, new Date(t0 + 10_000));
  const d21 = (await env.store.deliveries.findOne({ _id: both }))!;
  assert.deepEqual(
    d21.history.map((h) => h.state),
    ['planned', 'delivered'],
    'one write: the final word',
  );
  assert.equal((await env.store.deliveries.findOne({ _id: alone }))!.state, 'accepted');
  await applyStoredReceipts(env.store, new Date(t0 + 31_000));
  assert.equal((await env.store.deliveries.findOne({ _id: alone }))!.state, 'sent', 'no final word in 30 s');
});

test('a receipt read while a record was on its first attempt does not move it once it is retried under a new id', async () => {
  const id = await acceptedRecord(30);
  const asRead = await env.store.deliveries
    .find({ _id: id }, { projection: { _id: 1, state: 1, providerMessageId: 1 } })
    .toArray();
  const ops = receiptMoveOps(
    asRead,
    latestWords([receipt(30, 'undelivered', 2, { errorCode: '30' })]),
    await conditionById(env.store),
    at,
  );
  assert.equal(ops.length, 1, 'as read, the receipt moves the record');
  // Before that write lands: another applier found it undelivered, the watchdog retried it, Plivo accepted the retry.
  await env.store.deliveries.updateOne(
    { _id: id },
    { $set: { state: 'accepted', providerMessageId: 'uuid-30-retry', attempts: 2 } },
  );
  await env.store.deliveries.bulkWrite(ops);
  const d = (await env.store.deliveries.findOne({ _id: id }))!;
  assert.deepEqual(
    [d.state, d.providerMessageId],
    ['accepted', 'uuid-30-retry'],
    'the retry is not marked undelivered',
  );
});

test('a receipt that comes before its record carries the message id is kept and applied once the id is written', async () => {
  const d = plannedRecord(
    { incidentId: 'inc_r', kind: 'outage', subscriberId: 'C-6', channel: 'sms', to: '+393470000006', language: 'it' },
    at,
  );
  await env.store.deliveries.insertOne({ ...d, state: 'sending', attempts: 1 });
  const d7 = plannedRecord(
    { incidentId: 'inc_r', kind: 'outage', subscriberId: 'C-7', channel: 'sms', to: '+393470000007', language: 'it' },
    at,
  );
  await env.store.deliveries.insertOne({ ...d7, state: 'sending', attempts: 1 });
  const now = new Date();
  // Plivo's callbacks for both messages, before the batch's answer is written.
  await insertReceipts(env.store, [
    receipt(6, 'sent', 1, { receivedAt: now }),
    receipt(6, 'delivered', 2, { receivedAt: now, units: 1 }),
    receipt(7, 'delivered', 2, { receivedAt: now }),
  ]);
  const later = new Date(now.getTime() + 5000);
  assert.equal(await applyStoredReceipts(env.store, later), 1, 'one batch');
  assert.equal((await env.store.deliveries.findOne({ _id: d._id }))!.state, 'sending', 'no record carried the id yet');
  assert.equal(await env.store.pendingReceipts.countDocuments({}), 3, 'kept for another try');

  // The sender writes the answer; the applier's next round applies the pending receipts.
  await env.store.deliveries.updateOne({ _id: d._id }, { $set: { state: 'accepted', providerMessageId: 'uuid-6' } });
  await env.store.deliveries.updateOne({ _id: d7._id }, { $set: { state: 'accepted', providerMessageId: 'uuid-7' } });
  assert.equal(await applyStoredReceipts(env.store, later), 0, 'no new receipts');
  const six = (await env.store.deliveries.findOne({ _id: d._id }))!;
  assert.equal(six.state, 'delivered');
  assert.equal(six.units, 1);
  assert.deepEqual(
    six.history.map((h) => h.state),
    ['planned', 'delivered'],
    'applied once',
  );
  assert.equal((await env.store.deliveries.findOne({ _id: d7._id }))!.state, 'delivered');
  assert.equal(await env.store.pendingReceipts.countDocuments({}), 0, 'applied receipts are not tried again');
  assert.equal(await applyStoredReceipts(env.store, later), 0);
  assert.equal((await env.store.deliveries.findOne({ _id: d._id }))!.history.length, 2, 'nothing is applied twice');
});

test('a late receipt for an earlier attempt does not settle the attempt under way', async () => {
  const d = plannedRecord(
    { incidentId: 'inc_r', kind: 'outage', subscriberId: 'C-8', channel: 'sms', to: '+393470000008', language: 'it' },
    at,
  );
  // Attempt 1 (uuid-8) was undelivered and is being resent: reserved, not yet answered.
  await env.store.deliveries.insertOne({ ...d, state: 'sending', attempts: 2, providerMessageId: 'uuid-8' });
  await applyReceipts(env.store, [receipt(8, 'undelivered', 3, { errorCode: '30' }), receipt(8, 'delivered', 4)], at);
  assert.equal((await env.store.deliveries.findOne({ _id: d._id }))!.state, 'sending');
});

test('a receipt for a message that never gets a record is dropped from the pending ones after ten minutes', async () => {
  const now = new Date();
  await insertReceipts(env.store, [receipt(99, 'delivered', 1, { receivedAt: now })]);
  await applyStoredReceipts(env.store, new Date(now.getTime() + 5000));
  assert.equal(await env.store.pendingReceipts.countDocuments({ messageUuid: 'uuid-99' }), 1);
  await applyStoredReceipts(env.store, new Date(now.getTime() + 11 * 60_000));
  assert.equal(await env.store.pendingReceipts.countDocuments({ messageUuid: 'uuid-99' }), 0);
  assert.equal(
    (await env.store.receiptBatches.find({}).toArray())
      .flatMap((b) => b.receipts)
      .filter((r) => r.messageUuid === 'uuid-99').length,
    1,
    'the stored receipt itself stays',
  );
});

// Last in this file: it moves the applier's cursor minutes ahead of the clock.
test('receipts of several minutes are applied in id order in one round, and receipts stored one per document by an older version are applied after the upgrade', async () => {
  const ids = [await acceptedRecord(10), await acceptedRecord(11), await acceptedRecord(12)];
  const t = Math.floor(Date.now() / 1000);
  const idAt = (seconds: number) => ObjectId.createFromTime(t + seconds);
  // Stored while no applier ran: minutes apart, record 12's words out of order across minutes.
  await insertReceipts(env.store, [receipt(10, 'delivered', 2)], idAt(120));
  await insertReceipts(env.store, [receipt(12, 'undelivered', 2, { errorCode: '30' })], idAt(240));
  await insertReceipts(env.store, [receipt(11, 'delivered', 2)], idAt(300));
  await insertReceipts(env.store, [receipt(12, 'delivered', 3)], idAt(360));
  assert.equal(await applyStoredReceipts(env.store, new Date((t + 600) * 1000)), 4);
  const docs = await env.store.deliveries
    .find({ _id: { $in: ids } })
    .sort({ _id: 1 })
    .toArray();
  assert.deepEqual(
    docs.map((d) => d.state),
    ['delivered', 'delivered', 'delivered'],
  );
  assert.deepEqual(
    docs[2]!.history.map((h) => h.state),
    ['planned', 'delivered'],
    'one round, latest word',
  );

  // Receipts an older version stored one per document: two not applied yet when the new version
  // starts (one with its slot, one from before slots), and one it had applied (before its cursor).
  const [old13, old14, applied15] = [await acceptedRecord(13), await acceptedRecord(14), await acceptedRecord(15)];
  const { slotOf } = await import('../../store/receipts');
  await env.store.receipts.insertMany([
    {
      _id: idAt(700),
      slot: slotOf(idAt(700)),
      messageUuid: 'uuid-13',
      status: 'delivered',
      sequence: 2,
      receivedAt: at,
    },
    { _id: idAt(710), messageUuid: 'uuid-14', status: 'delivered', sequence: 2, receivedAt: at },
    { _id: idAt(100), messageUuid: 'uuid-15', status: 'undelivered', sequence: 2, receivedAt: at },
  ]);
  assert.equal(await applyStoredReceipts(env.store, new Date((t + 900) * 1000)), 0, 'not read where batches are');
  await env.store.cursors.deleteOne({ _id: 'migration:receipt-batches' });
  const upgraded = await connectStore(env.servers.mongoUri, env.dbName);
  try {
    assert.equal(await applyStoredReceipts(upgraded, new Date((t + 900) * 1000)), 2, 'two slots, two batches');
    assert.equal((await upgraded.deliveries.findOne({ _id: old13 }))!.state, 'delivered');
    assert.equal((await upgraded.deliveries.findOne({ _id: old14 }))!.state, 'delivered');
    assert.equal(
      (await upgraded.deliveries.findOne({ _id: applied15 }))!.state,
      'accepted',
      'applied before: not again',
    );
  } finally {
    await upgraded.close();
  }
});

// After the test above (whose cursor is 12 minutes ahead of the clock): these batches are stored 20 minutes ahead.
test('an applier behind its receipts says so: the watchdog counts the delivery timeout up to the receipts applied', async () => {
  const id = await acceptedRecord(200);
  const t0 = Date.now() + 20 * 60_000;
  // Six group commits ten seconds apart, 1,000 receipts each (repeats of one message's): more than a round takes.
  for (let i = 0; i < 6; i++)
    await insertReceipts(
      env.store,
      Array.from({ length: 1000 }, () => receipt(200, 'delivered', 2)),
      ObjectId.createFromTime(Math.floor((t0 + i * 10_000) / 1000)),
    );
  const now = new Date(t0 + 120_000);
  assert.equal(await applyStoredReceipts(env.store, now), 5, 'five batches: 5,000 receipts');
  assert.equal((await env.store.deliveries.findOne({ _id: id }))!.state, 'delivered');
  assert.equal(
    receiptsAppliedUpTo(env.store, now).getTime(),
    Math.floor((t0 + 40_000) / 1000) * 1000,
    'applied up to the fifth batch: the sixth is not late, only not applied yet',
  );
  assert.equal(await applyStoredReceipts(env.store, now), 1);
  assert.equal(receiptsAppliedUpTo(env.store, now).getTime(), now.getTime() - 1000, 'caught up');
  // An applier stuck for longer than ten minutes no longer holds the watchdog back.
  assert.equal(
    receiptsAppliedUpTo(env.store, new Date(now.getTime() + 11 * 60_000)).getTime(),
    now.getTime() + 11 * 60_000,
  );
});
