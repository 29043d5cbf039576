/** The fan-out benchmark's count of documents written per SMS: which phase a write is, and how many documents the server says it wrote. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { documentsWritten, perSms, phaseOf, targetOf } from '../../bench/write-counter';

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
