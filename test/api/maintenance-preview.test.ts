/**
 * A maintenance's preview: before it is scheduled (nothing stored, nobody told) and once it is,
 * who will be told and when (the notice, each reminder, the start notice) by channel; the notice
 * counts are those the workflow then plans.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDemoDataIfEmpty } from '../../store/demo';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';

const HOUR = 3_600_000;

interface Round {
  kind: string;
  beforeSeconds?: number;
  sendAt: string;
  past: boolean;
  byChannel: Record<string, number>;
  total: number;
}

describe('maintenance preview', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(__filename);
    await loadDemoDataIfEmpty(stack.store);
  });
  after(async () => stack?.stop());

  test('before scheduling and once scheduled: the notice, each reminder and the start, with send times and counts per channel', async () => {
    const startsAt = new Date(Math.ceil((Date.now() + 48 * HOUR) / 60_000) * 60_000);
    const body = {
      siteIds: ['tower-lodi-02'],
      startsAt: startsAt.toISOString(),
      endsAt: new Date(startsAt.getTime() + 2 * HOUR).toISOString(),
      title: 'Sostituzione antenna',
    };
    const operator = await stack.createKey('operator');

    const dry = await call(stack, 'POST', '/v1/maintenances/preview', body, {}, { key: operator });
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(await stack.store.incidents.countDocuments({ kind: 'maintenance' }), 0, 'a preview stores nothing');
    const rounds = dry.body.rounds as Round[];
    // rules/dev: the notice at once (7 days ahead at most), reminders 24 h and 1 h before, a notice at the start.
    assert.deepEqual(
      rounds.map((r) => [r.kind, r.beforeSeconds ?? null]),
      [
        ['maintenance', null],
        ['reminder', 86400],
        ['reminder', 3600],
        ['started', null],
      ],
    );
    assert.ok(Math.abs(Date.parse(rounds[0]!.sendAt) - Date.now()) < 60_000, 'the notice goes at once');
    assert.equal(rounds[1]!.sendAt, new Date(startsAt.getTime() - 24 * HOUR).toISOString());
    assert.equal(rounds[2]!.sendAt, new Date(startsAt.getTime() - HOUR).toISOString());
    assert.equal(rounds[3]!.sendAt, startsAt.toISOString());
    assert.ok(rounds[0]!.byChannel.sms! > 0);
    assert.deepEqual(dry.body.areas, ['Lodi Vecchio']);

    const created = await call(stack, 'POST', '/v1/maintenances', body, {}, { key: operator });
    assert.equal(created.status, 202);
    const id = created.body.id as string;
    const planned = await eventually('the notices planned', async () => {
      const m = (await call(stack, 'GET', `/v1/maintenances/${id}`)).body;
      const sms = m.deliveries?.sms?.maintenance as Record<string, number> | undefined;
      return sms ? Object.values(sms).reduce((a, b) => a + b, 0) : undefined;
    });
    assert.equal(rounds[0]!.byChannel.sms, planned, 'the preview counts the SMS the workflow plans');

    const shown = await call(
      stack,
      'GET',
      `/v1/maintenances/${id}/preview`,
      undefined,
      {},
      { key: await stack.createKey('viewer') },
    );
    assert.equal(shown.status, 200);
    assert.equal(shown.body.maintenanceId, id);
    assert.equal(shown.body.rounds.length, 4);
    assert.deepEqual(
      shown.body.rounds.slice(1).map((r: Round) => [r.sendAt, r.byChannel]),
      rounds.slice(1).map((r) => [r.sendAt, r.byChannel]),
    );
    assert.equal(shown.body.rounds[0].past, true, 'the notice has gone by now');
    await call(stack, 'POST', `/v1/maintenances/${id}/cancel`, {});
  });

  test('bad input is named', async () => {
    const start = new Date(Date.now() + 5 * HOUR).toISOString();
    const unknown = await call(stack, 'POST', '/v1/maintenances/preview', {
      siteIds: ['nowhere'],
      startsAt: start,
      endsAt: new Date(Date.now() + 6 * HOUR).toISOString(),
    });
    assert.equal(unknown.status, 422);
    assert.equal(unknown.body.error.details.field, 'body.siteIds');
    const backwards = await call(stack, 'POST', '/v1/maintenances/preview', {
      siteIds: ['tower-lodi-02'],
      startsAt: start,
      endsAt: new Date(Date.now() + HOUR).toISOString(),
    });
    assert.equal(backwards.status, 422);
    assert.equal(backwards.body.error.details.field, 'body.endsAt');
    assert.equal((await call(stack, 'GET', '/v1/maintenances/mnt_0000000000000000/preview')).status, 404);
  });
});
