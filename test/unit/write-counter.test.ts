/** The fan-out benchmark's count of documents written per SMS: which phase a write is, and how many documents the server says it wrote. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { MongoClient } from 'mongodb';
import { addTimes, countWrites, documentsWritten, perSms, phaseOf, targetOf } from '../../bench/write-counter';

test('writes are sorted into planning, sending, receipts and other by collection and the state they set', () => {
  assert.equal(phaseOf({ insert: 'deliveries', documents: [] }), 'planning');
  assert.equal(phaseOf({ findAndModify: 'delivery_pages', update: { $inc: { last: 1 } } }), 'planning');
  assert.equal(phaseOf({ insert: 'send_claims' }), 'sending');
  assert.equal(phaseOf({ insert: 'send_requests' }), 'sending');
  assert.equal(phaseOf({ update: 'deliveries', updates: [{ q: {}, u: { $set: { state: 'sending' } } }] }), 'sending');
  assert.equal(phaseOf({ update: 'deliveries', updates: [{ q: {}, u: { $set: { state: 'accepted' } } }] }), 'sending');
  assert.equal(
    phaseOf({ update: 'deliveries', updates: [{ q: {}, u: { $set: { state: 'delivered' } } }] }),
    'receipts',
  );
  assert.equal(phaseOf({ insert: 'receipts' }), 'receipts');
  assert.equal(phaseOf({ update: 'incidents', updates: [{ q: {}, u: { $set: { phase: 'notified' } } }] }), 'other');
  assert.equal(
    targetOf('update', { update: 'deliveries', updates: [{ q: {}, u: { $set: { state: 'accepted' } } }] }),
    'deliveries update state=accepted',
  );
});

test("documents written come from the server's reply: inserted, modified, upserted, deleted", () => {
  assert.equal(documentsWritten('insert', { n: 1000 }), 1000);
  assert.equal(
    documentsWritten('update', { n: 30, nModified: 25, upserted: [{ index: 0 }] }),
    26,
    'matched but unchanged documents are not written',
  );
  assert.equal(documentsWritten('findAndModify', { lastErrorObject: { n: 1 } }), 1);
  assert.equal(documentsWritten('findAndModify', { lastErrorObject: { n: 0 } }), 0);
  assert.equal(documentsWritten('delete', { n: 3 }), 3);
  assert.deepEqual(perSms({ planning: 4000, sending: 12000, receipts: 14600, other: 40 }, 4000), {
    planning: 1,
    sending: 3,
    receipts: 3.65,
    other: 0.01,
    total: 7.66,
  });
});

test("every command's time is tallied by collection, command and the fields of its filter; a getMore goes with its find", () => {
  const client = new EventEmitter();
  const writes = countWrites(client as unknown as MongoClient);
  const command = (requestId: number, commandName: string, cmd: object, reply: object, duration: number) => {
    client.emit('commandStarted', { requestId, commandName, command: cmd });
    client.emit('commandSucceeded', { requestId, commandName, reply, duration });
  };
  command(1, 'find', { find: 'deliveries', filter: { incidentId: 'i', state: 'planned' } }, firstBatch(2, 77n), 4);
  command(2, 'getMore', { getMore: 77n, collection: 'deliveries' }, { cursor: { id: 0n, nextBatch: [{}, {}, {}] } }, 6);
  command(3, 'aggregate', { aggregate: 'deliveries', pipeline: [{ $match: { incidentId: 'i' } }] }, firstBatch(1), 9);
  const update = { update: 'deliveries', updates: [{ q: {}, u: { $set: { state: 'delivered' } } }] };
  command(4, 'update', update, { n: 1, nModified: 1 }, 3);
  command(5, 'update', update, { n: 1, nModified: 1 }, 2);
  writes.stop();
  assert.deepEqual(writes.timeByTarget, {
    'deliveries find {incidentId,state}': { commands: 1, ms: 4, returned: 2 },
    'deliveries find {incidentId,state} (more)': { commands: 1, ms: 6, returned: 3 },
    'deliveries aggregate {incidentId}': { commands: 1, ms: 9, returned: 1 },
    'deliveries update state=delivered': { commands: 2, ms: 5, returned: 0 },
  });
  assert.equal(writes.counts.receipts, 2);
  assert.deepEqual(
    addTimes(writes.timeByTarget, { 'deliveries aggregate {incidentId}': { commands: 2, ms: 1, returned: 2 } })[
      'deliveries aggregate {incidentId}'
    ],
    { commands: 3, ms: 10, returned: 3 },
  );
});

function firstBatch(n: number, id = 0n) {
  return { cursor: { id, firstBatch: Array.from({ length: n }, () => ({})) } };
}
