/**
 * Delivery records are planned in pages of up to 1,000, and the sender reads due records page by
 * page (store/deliveries.ts). On FerretDB a query's sort and limit are applied after reading every
 * record its equalities match, so "the next 1,000 planned records, in order" read all 100,000
 * planned records of a large incident for every batch; a page bounds that read. What users depend
 * on: every planned record is found (retries on old pages first, records planned before pages
 * existed too), a retried planning plans nothing twice, and on PostgreSQL the page query is
 * answered from an index.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, isolatedEnv, type IsolatedEnv } from '../support/env';
import { connectStore } from '../../store/db';
import { planAll, plannedRecord, scopesWithRecords, transition, type PlanInput } from '../../store/deliveries';
import { dueCandidates, reserveNextBatch } from '../../store/send-requests';
import { ferretDbBackend } from '../../dev/services';
import { planValues } from '../support/explain';
import { testEngine } from '../support/engine';

let env: IsolatedEnv;
before(async () => (env = await isolatedEnv(__filename)));
after(async () => env?.close());

const scope = (incidentId: string) => ({ incidentId, kind: 'outage' as const, channel: 'sms' as const });

function inputs(incidentId: string, n: number): PlanInput[] {
  return Array.from({ length: n }, (_, i) => ({
    incidentId,
    kind: 'outage',
    subscriberId: `P-${String(i).padStart(5, '0')}`,
    channel: 'sms',
    to: `+39347${String(i).padStart(7, '0')}`,
    language: 'it',
  }));
}

test('2,500 records are planned on three pages; a retried planning adds nothing and every record is still found', async () => {
  const now = new Date();
  assert.deepEqual(await planAll(env.store, inputs('inc_pages', 2500), now), { recipients: 2500, planned: 2500 });
  const perPage = await env.store.deliveries
    .aggregate<{ _id: number; n: number }>([
      { $match: { incidentId: 'inc_pages' } },
      { $group: { _id: '$page', n: { $sum: 1 } } },
      { $sort: { _id: 1 } },
    ])
    .toArray();
  assert.deepEqual(perPage, [
    { _id: 1, n: 1000 },
    { _id: 2, n: 1000 },
    { _id: 3, n: 500 },
  ]);

  assert.deepEqual(
    await planAll(env.store, inputs('inc_pages', 2500), now),
    { recipients: 2500, planned: 0 },
    'the retry plans nothing new',
  );
  assert.equal(
    (await env.store.deliveryPages.findOne({ _id: 'inc_pages' }))?.last,
    3,
    'the retry found its records planned already: it inserted nothing and took no page',
  );
  const all = (await dueCandidates(env.store, scope('inc_pages'), 5000, now)).found;
  assert.equal(all.length, 2500);
  assert.equal(new Set(all.map((d) => d._id)).size, 2500, 'each record once');
  assert.deepEqual(
    await scopesWithRecords(env.store, 'inc_pages', ['outage', 'restored']),
    [{ kind: 'outage', channel: 'sms' }],
    'the planning noted what it planned',
  );
});

test('a retried message on an old page goes before the pages not sent yet; within a page, id order', async () => {
  const now = new Date();
  await planAll(env.store, inputs('inc_order', 2100), now);
  const pages = await env.store.deliveries
    .find({ incidentId: 'inc_order' }, { projection: { _id: 1, page: 1 } })
    .toArray();
  const onPage = (p: number) =>
    pages
      .filter((d) => d.page === p)
      .map((d) => d._id)
      .sort();
  // Pages 1 and 2 were sent; one message of page 1 comes back for a retry.
  await transition(env.store, { incidentId: 'inc_order', page: { $in: [1, 2] } }, 'accepted', now);
  const retried = onPage(1)[500];
  await transition(env.store, { _id: retried }, 'planned', now, 'retry: undelivered');

  const next = (await dueCandidates(env.store, scope('inc_order'), 4, now)).found;
  assert.deepEqual(
    next.map((d) => d._id),
    [retried, ...onPage(3).slice(0, 3)],
  );

  const batch = await reserveNextBatch(env.store, scope('inc_order'), 1000, now);
  assert.equal(batch.records.length, 101, 'the retry and page 3');
  assert.equal(batch.more, false, 'every page was read');
  const first = await reserveNextBatch(env.store, scope('inc_pages'), 1000, now);
  assert.equal(first.records.length, 1000);
  assert.equal(first.more, true, 'pages are left: the caller comes back');
});

test('records planned one by one, and records planned before pages existed, are found too', async () => {
  const now = new Date();
  const single = plannedRecord(
    { incidentId: 'inc_old', kind: 'outage', subscriberId: 'O-1', channel: 'sms', to: '+393470000001', language: 'it' },
    now,
  );
  const { page: _page, ...unpaged } = plannedRecord(
    { incidentId: 'inc_old', kind: 'outage', subscriberId: 'O-2', channel: 'sms', to: '+393470000002', language: 'it' },
    now,
  );
  await env.store.deliveries.insertMany([single, unpaged]);
  assert.deepEqual(
    (await dueCandidates(env.store, scope('inc_old'), 10, now)).found.map((d) => d._id),
    [single._id],
    'the one without a page is not found before the migration',
  );

  // The migration runs when a process connects to a database that has not had it.
  await env.store.cursors.deleteOne({ _id: 'migration:delivery-pages' });
  const again = await connectStore(env.servers.mongoUri, env.dbName);
  try {
    assert.deepEqual(
      (await dueCandidates(again, scope('inc_old'), 10, now)).found.map((d) => d._id).sort(),
      [single._id, unpaged._id].sort(),
    );
    assert.deepEqual(
      await scopesWithRecords(again, 'inc_old', ['outage']),
      [{ kind: 'outage', channel: 'sms' }],
      'and the sender knows the incident has outage SMS to send',
    );
  } finally {
    await again.close();
  }
});

test('records held for later are not due; they are found when their time comes', async () => {
  const now = new Date();
  await planAll(
    env.store,
    inputs('inc_held', 3).map((p, i) => (i === 1 ? { ...p, notBefore: new Date(now.getTime() + 3600_000) } : p)),
    now,
  );
  assert.equal((await dueCandidates(env.store, scope('inc_held'), 10, now)).found.length, 2);
  assert.equal(
    (await dueCandidates(env.store, scope('inc_held'), 10, new Date(now.getTime() + 3600_000))).found.length,
    3,
  );
});

test(
  'on PostgreSQL a page query is answered from an index on the page',
  {
    skip:
      testEngine() !== 'ferretdb'
        ? `asserts PostgreSQL's plan; the tests run on ${testEngine()}`
        : ferretDbBackend() === 'postgresql'
          ? false
          : 'FerretDB runs on SQLite here',
  },
  async () => {
    await planAll(env.store, inputs('inc_plan', 3000), new Date());
    // avviso-ferretdb adds its GIN indexes within a second or two of the collection's indexes, and
    // PostgreSQL learns from autovacuum (every 5 s) that a page is a small part of the records.
    await eventually(
      'an index condition on page',
      async () => {
        const plan = (await env.store.deliveries.find({ ...scope('inc_plan'), state: 'planned', page: 2 }).explain())
          .queryPlanner;
        return planValues(plan, 'Index Cond').some((c) => c.includes("'page'")) ? true : undefined;
      },
      40_000,
    );
  },
);
