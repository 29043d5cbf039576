/**
 * The alerts of concurrent webhooks are stored in groups (one insertMany) and the unique event id
 * still decides: of two first deliveries of one alert, in one group or across groups, exactly one
 * is first and the other reports its document; a repeat of an alert stored before reports it too.
 * Real FerretDB.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createAlertEventInserter, insertAlertEvent, type AlertEventDoc } from '../../ingest/store';
import { NORMALIZERS } from '../../ingest/normalizers';
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
});
