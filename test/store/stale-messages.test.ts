/**
 * Messages that would say something stale are not sent: an update held by quiet hours is replaced
 * by the next round's update to the same number (one update after a night, not one per period),
 * and a fallback keeps the quiet hours, words and round of the message it replaces.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import { planAll, supersedeOlderUpdates, type PlanInput } from '../../store/deliveries';
import { origin } from '../../delivery/fallback';
import type { Delivery } from '../../domain/types';

let env: IsolatedEnv;
before(async () => (env = await isolatedEnv(__filename)));
after(async () => env?.close());

const night = { start: '22:00', end: '07:00', timeZone: 'Europe/Rome' };
const update = (round: number, to: string, notBefore: Date): PlanInput => ({
  incidentId: 'inc_night',
  kind: 'update',
  round,
  subscriberId: `S-${to.slice(-2)}`,
  channel: 'sms',
  to,
  language: 'it',
  hold: night,
  notBefore,
});

test('a held update is replaced by the next round for the same number; someone the new round misses keeps theirs', async () => {
  const morning = new Date('2026-12-05T06:00:00Z');
  await planAll(env.store, [update(1, '+393470000001', morning), update(1, '+393470000002', morning)], new Date());
  await planAll(env.store, [update(2, '+393470000001', morning)], new Date());
  assert.equal(await supersedeOlderUpdates(env.store, 'inc_night', 2, new Date()), 1);
  const records = await env.store.deliveries.find({ incidentId: 'inc_night' }).toArray();
  const state = (round: number, to: string) => records.find((d) => d.round === round && d.to === to);
  assert.equal(state(1, '+393470000001')!.state, 'expired');
  assert.equal(state(1, '+393470000001')!.supersededBy, 'inc_night|update#2');
  assert.match(state(1, '+393470000001')!.history.at(-1)!.note!, /superseded by update round 2/);
  assert.equal(state(2, '+393470000001')!.state, 'planned', 'the newest update stays');
  assert.equal(
    state(1, '+393470000002')!.state,
    'planned',
    'round 2 does not reach this number: its update is not lost',
  );
  // Planned again (a retried activity): nothing more to replace.
  assert.equal(await supersedeOlderUpdates(env.store, 'inc_night', 2, new Date()), 0);
});

test('a fallback keeps the template set, area, language, round and quiet hours of the message it replaces', () => {
  const failedAtNight = {
    _id: 'inc_x|restored|S-1|sms:+393470000009',
    incidentId: 'inc_x',
    kind: 'restored',
    subscriberId: 'S-1',
    channel: 'sms',
    to: '+393470000009',
    language: 'en',
    templateSet: 'business',
    area: 'Lodi',
    round: 3,
    hold: night,
    restoration: true,
    state: 'expired',
    attempts: 3,
    history: [],
    createdAt: new Date(),
    updatedAt: new Date(),
  } as Delivery;
  const at3am = new Date('2026-12-05T02:00:00Z'); // 03:00 in Rome
  const kept = origin(failedAtNight, at3am);
  assert.deepEqual(
    {
      templateSet: kept.templateSet,
      area: kept.area,
      language: kept.language,
      round: kept.round,
      hold: kept.hold,
      kind: kept.kind,
    },
    { templateSet: 'business', area: 'Lodi', language: 'en', round: 3, hold: night, kind: 'restored' },
  );
  assert.equal(kept.notBefore?.toISOString(), '2026-12-05T06:00:00.000Z', 'not before 07:00 in Rome');
  assert.equal(origin(failedAtNight, new Date('2026-12-05T12:00:00Z')).notBefore, undefined, 'by day it goes at once');
});
