/**
 * The alerts of concurrent webhooks are stored in groups (one insertMany) and the unique event id
 * still decides: of two first deliveries of one alert, in one group or across groups, exactly one
 * is first and the other reports its document; a repeat of an alert stored before reports it too.
 * In one process, resends that arrive while the first copy is being stored wait for its insert.
 * Real FerretDB and Temporal (no worker: deciding needs none).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createAlertEventInserter, insertAlertEvent, type AlertEventDoc } from '../../ingest/store';
import { createIntake } from '../../ingest/intake';
import { parseIntegrations } from '../../ingest/integrations';
import { NORMALIZERS } from '../../ingest/normalizers';
import { createAlertProcessor } from '../../ingest/process';
import { createIncidentService } from '../../services/incidents';
import { loadDemoDataIfEmpty } from '../../store/demo';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import * as p from './payloads';

function alertDoc(fingerprint: string): AlertEventDoc {
  const [event] = NORMALIZERS.alertmanager(p.alertmanager({ device: 'tower-lodi-01', fingerprint }), {
    integration: 'noc',
    timeZone: 'UTC',
    receivedAt: new Date(),
    headers: {},
  });
  return {
    _id: event!.eventId,
    ...event!,
    raw: { body: '{}', contentType: 'application/json', headers: {} },
    siteIds: ['tower-lodi-01'],
  };
}

describe('grouped inserts of alert events', () => {
  let env: IsolatedEnv;
  before(async () => {
    env = await isolatedEnv(__filename);
    await loadDemoDataIfEmpty(env.store);
  });
  after(async () => env?.close());

  test('concurrent first deliveries: one first per alert, the others read its document', async () => {
    const insert = createAlertEventInserter(env.store);
    const stored = alertDoc('a000000000000001');
    assert.deepEqual(await insertAlertEvent(env.store, stored), { first: true });
    const fresh = Array.from({ length: 6 }, (_, i) => alertDoc(`b00000000000000${i}`));
    // Each fresh alert posted three times at once, mixed with repeats of the stored one.
    const attempts = [...fresh, stored, ...fresh, stored, ...fresh];
    const outcomes = await Promise.all(attempts.map((d) => insert(d)));

    for (const doc of [...fresh, stored]) {
      const mine = outcomes.filter((_, i) => attempts[i]!._id === doc._id);
      const firsts = mine.filter((o) => o.first).length;
      assert.equal(firsts, doc === stored ? 0 : 1, `${doc._id}: exactly one first delivery`);
      for (const o of mine) if (!o.first) assert.equal(o.existing._id, doc._id);
    }
    const inDb = await env.store.alertEvents.find({ _id: { $in: fresh.map((d) => d._id) } }).toArray();
    assert.equal(inDb.length, fresh.length);
    assert.ok(
      inDb.every((d) => d.undecided === true),
      'stored with the undecided marker the sweep looks for',
    );
  });

  test('one process, one alert posted ten times at once: stored and decided once, nine answers are repeats', async () => {
    const noc = parseIntegrations(
      'integrations:\n  - { name: noc, source: alertmanager, token: am-token-123, site: { label: device } }\n',
      'test-integrations.yaml',
      {},
    ).find('alertmanager', 'noc')!;
    const incidents = createIncidentService({ store: env.store, temporal: env.temporal, taskQueue: env.taskQueue });
    const intake = createIntake({
      store: env.store,
      processor: createAlertProcessor({ store: env.store, incidents, settleSeconds: 0 }),
      decisionWaitMs: 60_000,
    });
    const payload = p.alertmanager({ device: 'tower-crema-01', fingerprint: 'c000000000000001' });
    const answers = await Promise.all(
      Array.from({ length: 10 }, () =>
        intake.accept({
          integration: noc,
          payload,
          raw: { body: JSON.stringify(payload), contentType: 'application/json', headers: {} },
          headers: {},
          receivedAt: new Date(),
        }),
      ),
    );
    const results = answers.map((a) => a.body.results[0]!);
    assert.equal(results.filter((r) => !r.duplicate).length, 1, JSON.stringify(results));
    assert.equal(answers.filter((a) => a.status === 202).length, 1);
    const eventId = results[0]!.eventId;
    assert.equal(await env.store.alertEvents.countDocuments({ _id: eventId }), 1);
    while (intake.pending() > 0) await new Promise((r) => setTimeout(r, 50));
    const stored = await env.store.alertEvents.findOne({ _id: eventId });
    assert.ok(stored?.result && stored.result.action !== 'accepted', 'decided');
    assert.equal(await env.store.alertIncidents.countDocuments({ dedupKey: stored.dedupKey }), 1, 'one episode');
  });
});
