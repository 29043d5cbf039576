/**
 * The API's readers of an incident's message counts (the incident, the maintenance, the console's
 * progress) share one count per incident (sharedDeliveryCounts in store/incidents.ts). On FerretDB a
 * count decodes every record of the incident; what users depend on: the counts are right, readers
 * asking at the same moment cost one count, and a count is not given again once it is older than
 * twice its counting time, so new records show at the next read.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import { connectStore, type Store } from '../../store/db';
import { planAll, type PlanInput } from '../../store/deliveries';
import { deliveryCounts, sharedDeliveryCounts } from '../../store/incidents';
import { incidentProgress } from '../../api/console/components';

let env: IsolatedEnv;
let watched: Store;
const aggregates: string[] = [];
before(async () => {
  env = await isolatedEnv(__filename);
  watched = await connectStore(env.servers.mongoUri, env.dbName, { monitorCommands: true });
  watched.client.on('commandStarted', (e) => {
    if (e.commandName === 'aggregate' && e.command.aggregate === 'deliveries')
      aggregates.push(JSON.stringify(e.command));
  });
});
after(async () => {
  await watched?.close();
  await env?.close();
});

function inputs(incidentId: string, from: number, n: number): PlanInput[] {
  return Array.from({ length: n }, (_, i) => ({
    incidentId,
    kind: 'outage',
    subscriberId: `C-${String(from + i).padStart(5, '0')}`,
    channel: 'sms',
    to: `+39348${String(from + i).padStart(7, '0')}`,
    language: 'it',
  }));
}

test('readers asking at once share one count; a count older than twice its counting time is made again', async () => {
  const id = 'inc_shared_counts';
  await planAll(env.store, inputs(id, 0, 1500), new Date());
  const expected = { sms: { outage: { planned: 1500 } } };
  assert.deepEqual(await deliveryCounts(env.store, id), expected);

  aggregates.length = 0;
  const t0 = Date.now();
  const together = await Promise.all(Array.from({ length: 8 }, () => sharedDeliveryCounts(watched, id, { now: t0 })));
  for (const counts of together) assert.deepEqual(counts, expected);
  assert.equal(aggregates.length, 1, 'eight readers at once: one count');

  // At the moment the count started, it is given again without counting.
  await planAll(env.store, inputs(id, 1500, 10), new Date());
  assert.deepEqual(await sharedDeliveryCounts(watched, id, { now: t0 }), expected);
  assert.equal(aggregates.length, 1);

  // Long after, the count is made again and shows the new records.
  assert.deepEqual(await sharedDeliveryCounts(watched, id, { now: Date.now() + 3_600_000 }), {
    sms: { outage: { planned: 1510 } },
  });
  assert.equal(aggregates.length, 2);
});

test('a count begun in an earlier phase is not given for the next: a billed incident shows its last writes', async () => {
  const id = 'inc_counts_phase';
  await planAll(env.store, inputs(id, 0, 4), new Date());
  aggregates.length = 0;
  const t0 = Date.now();
  assert.deepEqual(await sharedDeliveryCounts(watched, id, { phase: 'resolving', now: t0 }), {
    sms: { outage: { planned: 4 } },
  });
  await env.store.deliveries.updateMany({ incidentId: id }, { $set: { state: 'delivered' } });
  assert.deepEqual(
    await sharedDeliveryCounts(watched, id, { phase: 'resolving', now: t0 }),
    { sms: { outage: { planned: 4 } } },
    'the same phase at the same moment: the count is shared',
  );
  assert.deepEqual(await sharedDeliveryCounts(watched, id, { phase: 'billed', now: t0 }), {
    sms: { outage: { delivered: 4 } },
  });
  assert.equal(aggregates.length, 2);
});

test('each incident has its own count', async () => {
  await planAll(env.store, inputs('inc_counts_a', 0, 3), new Date());
  await planAll(env.store, inputs('inc_counts_b', 0, 5), new Date());
  const now = Date.now();
  const [a, b] = await Promise.all([
    sharedDeliveryCounts(watched, 'inc_counts_a', { now }),
    sharedDeliveryCounts(watched, 'inc_counts_b', { now }),
  ]);
  assert.deepEqual(a, { sms: { outage: { planned: 3 } } });
  assert.deepEqual(b, { sms: { outage: { planned: 5 } } });
});

test("the console's progress: viewers of one incident at once cost one count and one look at the held messages", async () => {
  const id = 'inc_console_progress';
  const later = new Date(Date.now() + 3_600_000);
  await planAll(
    env.store,
    [...inputs(id, 0, 4), ...inputs(id, 4, 2).map((p) => ({ ...p, notBefore: later }))],
    new Date(),
  );
  aggregates.length = 0;
  const viewers = await Promise.all(Array.from({ length: 6 }, () => incidentProgress(watched, id)));
  for (const progress of viewers)
    assert.deepEqual(progress, { sms: { planned: 6, sent: 0, delivered: 0, failed: 0, held: 2 } });
  assert.equal(aggregates.length, 2, aggregates.join('\n'));
});
