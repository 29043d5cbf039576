/**
 * Plivo's receipt callbacks are stored by group commit (api/plivo/receipt-buffer.ts). What users depend on:
 * a callback is answered only once its receipt is stored, callbacks arriving together cost one insert, those
 * arriving while a batch is written go into the next one (no receipt waits for a timer when nothing is being
 * written), and no batch holds more than its bound.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import { connectStore, type Store } from '../../store/db';
import { ReceiptBuffer } from '../../api/plivo/receipt-buffer';
import type { Receipt } from '../../store/receipts';

let env: IsolatedEnv;
let watched: Store;
/** The size of every receipt batch inserted through `watched`, in order. */
const inserts: number[] = [];
before(async () => {
  env = await isolatedEnv(__filename);
  watched = await connectStore(env.servers.mongoUri, env.dbName, { monitorCommands: true });
  watched.client.on('commandStarted', (e) => {
    if (e.commandName === 'insert' && e.command.insert === watched.receiptBatches.collectionName)
      inserts.push((e.command.documents as { receipts: unknown[] }[])[0]!.receipts.length);
  });
});
after(async () => {
  await watched?.close();
  await env?.close();
});

const receipt = (uuid: string): Receipt => ({ messageUuid: uuid, status: 'delivered', receivedAt: new Date() });

async function storedUuids(prefix: string): Promise<string[]> {
  const batches = await env.store.receiptBatches.find({}).toArray();
  return batches
    .flatMap((b) => b.receipts.map((r) => r.messageUuid))
    .filter((u) => u.startsWith(prefix))
    .sort();
}

test('callbacks arriving together are stored in one insert, each answered once it is stored', async () => {
  inserts.length = 0;
  const buffer = new ReceiptBuffer(watched);
  const uuids = Array.from({ length: 120 }, (_, i) => `together-${String(i).padStart(3, '0')}`);
  await Promise.all(
    uuids.map(async (u) => {
      await buffer.add(receipt(u));
      // Answered: the receipt is in the database already.
      const found = await env.store.receiptBatches.countDocuments({ 'receipts.messageUuid': u });
      assert.equal(found, 1, `${u} stored before its answer`);
    }),
  );
  assert.deepEqual(inserts, [120]);
  assert.deepEqual(await storedUuids('together-'), uuids);
});

test('callbacks arriving while a batch is written go together into the next one', async () => {
  inserts.length = 0;
  const buffer = new ReceiptBuffer(watched);
  const first = buffer.add(receipt('next-000'));
  // The first insert is under way once the tick ends; these come while it is written.
  await new Promise((r) => setImmediate(r));
  const later = Array.from({ length: 30 }, (_, i) => buffer.add(receipt(`next-${String(i + 1).padStart(3, '0')}`)));
  await Promise.all([first, ...later]);
  assert.deepEqual(inserts, [1, 30]);
  assert.equal((await storedUuids('next-')).length, 31);
});

test('no batch holds more than its bound; flush stores everything received', async () => {
  inserts.length = 0;
  const buffer = new ReceiptBuffer(watched, 50);
  const adds = Array.from({ length: 120 }, (_, i) => buffer.add(receipt(`bound-${String(i).padStart(3, '0')}`)));
  await buffer.flush();
  assert.equal((await storedUuids('bound-')).length, 120, 'flush returns once all are stored');
  await Promise.all(adds);
  assert.deepEqual(inserts, [50, 50, 20]);
});

test('a batch the database refuses is answered with its error, and the next batch is still written', async () => {
  // A database that fails its first insert (a fault injected in front of the real one).
  let calls = 0;
  const flaky = {
    receiptBatches: {
      insertOne: async (doc: Parameters<Store['receiptBatches']['insertOne']>[0]) => {
        if (++calls === 1) throw new Error('connection closed');
        return env.store.receiptBatches.insertOne(doc);
      },
    },
  } as unknown as Store;
  const buffer = new ReceiptBuffer(flaky);
  await assert.rejects(buffer.add(receipt('flaky-000')), /connection closed/);
  await buffer.add(receipt('flaky-001'));
  assert.deepEqual(await storedUuids('flaky-'), ['flaky-001']);
});
