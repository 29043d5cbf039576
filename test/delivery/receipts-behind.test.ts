/**
 * An applier behind its receipts (at 100,000 messages, minutes behind) holds an intermediate word
 * (`sent`) by the receipts' own time, not by the wall clock: the final word came seconds after it,
 * in a batch the applier has not read yet, and the record is written once, `delivered`. By the wall
 * clock every `sent` read late was old, was written, and its record was written again by the final
 * word: a write per message for nothing, on the server that sets the pace.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ObjectId } from 'mongodb';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import { applyStoredReceipts, insertReceipts, type Receipt } from '../../store/receipts';
import { plannedRecord } from '../../store/deliveries';

let env: IsolatedEnv;
before(async () => (env = await isolatedEnv(__filename)));
after(async () => env?.close());

async function acceptedRecord(n: number): Promise<string> {
  const d = plannedRecord(
    {
      incidentId: 'inc_behind',
      kind: 'outage',
      subscriberId: `C-${n}`,
      channel: 'sms',
      to: `+39347200${String(n).padStart(4, '0')}`,
      language: 'it',
    },
    new Date(),
  );
  await env.store.deliveries.insertOne({ ...d, state: 'accepted', providerMessageId: `uuid-${n}`, attempts: 1 });
  return d._id;
}

test('an applier minutes behind holds a `sent` until it has read the final word that came after it', async () => {
  const id = await acceptedRecord(1);
  await acceptedRecord(2);
  const t0 = Date.now() - 10 * 60_000; // ten minutes ago: by the wall clock, every receipt here is old
  const word = (n: number, status: string, sequence: number, at: number): Receipt => ({
    messageUuid: `uuid-${n}`,
    status,
    sequence,
    receivedAt: new Date(at),
  });
  // Six group commits five seconds apart, 1,000 receipts each (more than a round reads): message 1's
  // `sent` in the first, its `delivered` in the last, twenty-five seconds later; the rest repeat message 2's.
  for (let i = 0; i < 6; i++) {
    const at = t0 + i * 5000;
    const filler = Array.from({ length: i === 0 || i === 5 ? 999 : 1000 }, () => word(2, 'delivered', 2, at));
    const own = i === 0 ? [word(1, 'sent', 1, at)] : i === 5 ? [word(1, 'delivered', 2, at)] : [];
    await insertReceipts(env.store, [...own, ...filler], ObjectId.createFromTime(Math.floor(at / 1000)));
  }
  assert.equal(await applyStoredReceipts(env.store), 5, 'the first round reads five of the six batches');
  assert.equal((await env.store.deliveries.findOne({ _id: id }))!.state, 'accepted', 'its `sent` is held');
  assert.equal(await applyStoredReceipts(env.store), 1, 'the next round reads the last');
  const record = (await env.store.deliveries.findOne({ _id: id }))!;
  assert.equal(record.state, 'delivered');
  assert.deepEqual(
    record.history.map((h) => h.state),
    ['planned', 'delivered'],
    'written once, by its final word',
  );
});
