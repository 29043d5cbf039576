/**
 * FerretDB's storage as Avviso runs it (tools/ferretdb): on PostgreSQL, an equality filter on an
 * indexed field is answered from the GIN index avviso-ferretdb keeps (without it, every filtered
 * query reads the whole table); a bulk of more updates than FerretDB's old pool of 50 connections
 * goes through (FerretDB holds one connection per statement of a bulk until it ends, and a bulk
 * larger than the pool hung the server); and the store knows which backend it talks to, since the
 * hot paths pick their filter shapes by it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, isolatedEnv, type IsolatedEnv } from '../support/env';
import { findByValues, serverKind } from '../../store/backend';
import { ferretDbBackend } from '../../dev/services';
import { planValues } from '../support/explain';
import { testEngine } from '../support/engine';

let env: IsolatedEnv;
before(async () => (env = await isolatedEnv(__filename)));
after(async () => env?.close());

const onFerretDb = testEngine() === 'ferretdb';
const postgres = onFerretDb && ferretDbBackend() === 'postgresql';
/** Why a FerretDB-on-PostgreSQL test is skipped here. */
const notPostgres = onFerretDb ? 'FerretDB runs on SQLite here' : `the tests run on ${testEngine()}, not FerretDB`;

test('the store knows the backend the harness started', async () => {
  // mongo-java-server is served as a real MongoDB is: every filter shape as it is.
  assert.equal(
    await serverKind(env.store),
    !onFerretDb ? 'mongodb' : postgres ? 'ferretdb-postgresql' : 'ferretdb-sqlite',
  );
});

/** The indexes PostgreSQL chose for a find. */
const indexesUsed = (plan: unknown) => planValues(plan, 'Index Name');

test(
  'on PostgreSQL, equality filters on indexed fields and on _id are served by a GIN index; others are not',
  { skip: postgres ? false : notPostgres },
  async () => {
    const c = env.store.db.collection<{ _id: string; state: string; n: number }>('gin_probe');
    await c.createIndex({ state: 1 });
    await c.insertMany(Array.from({ length: 5000 }, (_, i) => ({ _id: `r${i}`, state: `s${i % 500}`, n: i })));
    // avviso-ferretdb looks for new indexes every second.
    const plan = await eventually(
      'a GIN index on state',
      async () => {
        const p = (await c.find({ state: 's7' }).explain()).queryPlanner;
        return indexesUsed(p).some((n) => n.startsWith('avviso_gin_')) ? p : undefined;
      },
      20_000,
    );
    assert.ok(indexesUsed(plan).length > 0);
    assert.ok(
      indexesUsed((await c.find({ _id: 'r42' }).explain()).queryPlanner).some((n) => n.startsWith('avviso_gin_')),
      'the _id lookup uses the GIN index',
    );
    assert.deepEqual(
      indexesUsed((await c.find({ n: 42 }).explain()).queryPlanner),
      [],
      'a field no index names is read from the table',
    );
    assert.equal((await c.find({ state: 's7' }).toArray()).length, 10, 'and the answers are right');
  },
);

test(
  "a bulk of 120 updates goes through (more than FerretDB's default pool of 50 connections)",
  { skip: postgres || !onFerretDb ? false : "on SQLite FerretDB's pool is 100 connections: such a bulk hangs there" },
  async () => {
    const c = env.store.db.collection<{ _id: string; n: number }>('bulk_probe');
    await c.insertMany(Array.from({ length: 120 }, (_, i) => ({ _id: `b${i}`, n: 0 })));
    const r = await c.bulkWrite(
      Array.from({ length: 120 }, (_, i) => ({ updateOne: { filter: { _id: `b${i}` }, update: { $inc: { n: 1 } } } })),
      { ordered: false },
    );
    assert.equal(r.modifiedCount, 120);
  },
);

test('findByValues finds the same documents whatever the server (one $in, or one indexed query per value)', async () => {
  const c = env.store.db.collection<{ _id: string; uuid: string; state: string }>('by_values');
  await c.createIndex({ uuid: 1 });
  await c.insertMany(
    Array.from({ length: 200 }, (_, i) => ({ _id: `m${i}`, uuid: `u${i % 100}`, state: i % 2 ? 'sent' : 'accepted' })),
  );
  const found = await findByValues(env.store, c, 'uuid', ['u1', 'u2', 'u2', 'nope'], { state: 'sent' });
  assert.deepEqual(found.map((d) => d._id).sort(), ['m1', 'm101']);
  assert.deepEqual(await findByValues(env.store, c, 'uuid', []), []);
});
