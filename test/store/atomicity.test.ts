/**
 * Writes on the embedded server are atomic where MongoDB's are (issue 18, item 4). FerretDB 1.24
 * updates a document by reading it and then writing it in another statement, with no lock in
 * between: 20 concurrent conditional findOneAndUpdate calls on one document had 2 to 20 winners,
 * and 20 clients x 100 `$inc` kept about 127 of 2,000. avviso-ferretdb serializes conflicting
 * writes in front of FerretDB (tools/ferretdb/serialize.go; docs/ferretdb-serialization.md): a
 * write by `_id` locks its documents, any other write its collection. It also splits large update
 * commands, since FerretDB holds a pooled connection per statement until the command ends and a
 * bulkWrite of 500 updates used to wedge the whole server.
 *
 * The clients below are separate MongoClients, so that the writes really travel on different
 * connections at once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient, type AnyBulkWriteOperation, type Collection, type Document } from 'mongodb';
import { isolatedEnv, type IsolatedEnv } from '../support/env';

let env: IsolatedEnv;
let clients: MongoClient[] = [];
before(async () => {
  env = await isolatedEnv(__filename);
  clients = await Promise.all(
    Array.from({ length: 20 }, () =>
      new MongoClient(env.servers.mongoUri, { maxPoolSize: 5, serverMonitoringMode: 'poll' }).connect(),
    ),
  );
});
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await env?.close();
});

/** The same collection through each of the 20 clients. */
function through<T extends Document>(name: string): Collection<T>[] {
  return clients.map((c) => c.db(env.dbName).collection<T>(name));
}

interface Claim {
  _id: string;
  key: string;
  state: string;
  by?: number;
}

test(
  '20 concurrent conditional updates of one document by {_id, state}: exactly one wins, 20 times over',
  { timeout: 120_000 },
  async () => {
    const cs = through<Claim>('claims_by_id');
    for (let round = 0; round < 20; round++) {
      const _id = `c${round}`;
      await cs[0]!.insertOne({ _id, key: _id, state: 'planned' });
      const results = await Promise.all(
        cs.map((c, i) => c.findOneAndUpdate({ _id, state: 'planned' }, { $set: { state: 'sending', by: i } })),
      );
      const winners = results.flatMap((r, i) => (r ? [i] : []));
      assert.equal(winners.length, 1, `round ${round}: winners ${JSON.stringify(winners)}`);
      assert.deepEqual(await cs[0]!.findOne({ _id }), { _id, key: _id, state: 'sending', by: winners[0] });
    }
  },
);

test(
  'the same by another field ({key, state}, the collection-wide path): exactly one wins, 20 times over',
  { timeout: 120_000 },
  async () => {
    const cs = through<Claim>('claims_by_key');
    for (let round = 0; round < 20; round++) {
      const key = `k${round}`;
      await cs[0]!.insertOne({ _id: `d${round}`, key, state: 'planned' });
      const results = await Promise.all(
        cs.map((c, i) => c.updateOne({ key, state: 'planned' }, { $set: { state: 'sending', by: i } })),
      );
      assert.equal(
        results.reduce((n, r) => n + r.modifiedCount, 0),
        1,
        `round ${round}`,
      );
    }
  },
);

test(
  '2,000 concurrent $inc of one document from 20 clients keep all 2,000; 500 by another filter keep 500',
  { timeout: 180_000 },
  async () => {
    const cs = through<{ _id: string; name: string; n: number }>('counters');
    await cs[0]!.insertMany([
      { _id: 'by_id', name: 'a', n: 0 },
      { _id: 'by_name', name: 'b', n: 0 },
    ]);
    await Promise.all(
      cs.flatMap((c) => Array.from({ length: 100 }, () => c.updateOne({ _id: 'by_id' }, { $inc: { n: 1 } }))),
    );
    assert.equal((await cs[0]!.findOne({ _id: 'by_id' }))?.n, 2000);
    await Promise.all(
      cs.flatMap((c) => Array.from({ length: 25 }, () => c.updateOne({ name: 'b' }, { $inc: { n: 1 } }))),
    );
    assert.equal((await cs[0]!.findOne({ _id: 'by_name' }))?.n, 500);
  },
);

test('concurrent upserts of one _id make one document and count every increment', { timeout: 60_000 }, async () => {
  const cs = through<{ _id: string; n: number }>('upserts');
  await Promise.all(cs.map((c) => c.updateOne({ _id: 'u' }, { $inc: { n: 1 } }, { upsert: true })));
  assert.deepEqual(await cs[0]!.find({}).toArray(), [{ _id: 'u', n: 20 }]);
});

test(
  'a bulkWrite of 500 updates completes, and four of them at once on four collections too',
  { timeout: 120_000 },
  async () => {
    const c = env.store.db.collection<{ _id: string; n: number }>('bulk_500');
    await c.insertMany(Array.from({ length: 500 }, (_, i) => ({ _id: `b${i}`, n: 0 })));
    const incAll = (): AnyBulkWriteOperation<{ _id: string; n: number }>[] =>
      Array.from({ length: 500 }, (_, i) => ({ updateOne: { filter: { _id: `b${i}` }, update: { $inc: { n: 1 } } } }));
    const r = await c.bulkWrite(incAll(), { ordered: false });
    assert.equal(r.matchedCount, 500);
    assert.equal(r.modifiedCount, 500);

    const four = await Promise.all(
      [0, 1, 2, 3].map(async (k) => {
        const ck = through<{ _id: string; n: number }>(`bulk_500_${k}`)[k]!;
        await ck.insertMany(Array.from({ length: 500 }, (_, i) => ({ _id: `b${i}`, n: 0 })));
        return ck.bulkWrite(incAll(), { ordered: false });
      }),
    );
    assert.deepEqual(
      four.map((x) => x.modifiedCount),
      [500, 500, 500, 500],
    );
  },
);

test('a bulk of 120 upserts split in parts reports every upserted document', { timeout: 60_000 }, async () => {
  const c = env.store.db.collection<{ _id: string; n: number }>('bulk_upserts');
  const r = await c.bulkWrite(
    Array.from({ length: 120 }, (_, i) => ({
      updateOne: { filter: { _id: `u${i}` }, update: { $set: { n: i } }, upsert: true },
    })),
    { ordered: false },
  );
  assert.equal(r.upsertedCount, 120);
  assert.equal(await c.countDocuments({}), 120);
});
