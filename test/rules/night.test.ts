/**
 * The night policy (rules/night.ts): per message kind and severity, what happens inside quiet
 * hours, as a rule file sets it and as the records planned from it carry it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  closingHold,
  firstNoticeTime,
  nightDue,
  nightOutcome,
  NIGHT_KINDS,
  SEVERITIES,
  type HoldWindow,
  type IncidentFacts,
} from '../../rules';
import { errorsOf, load, romeTime, subscriber, warningsOf } from './helpers';
import { origin } from '../../delivery/fallback';
import type { Delivery } from '../../domain/types';

const rome = (d: Date | null) =>
  d && new Date(d).toLocaleString('sv-SE', { timeZone: 'Europe/Rome' }).slice(0, 16).replace(' ', 'T');
const night = (atOnce?: HoldWindow['atOnce']): HoldWindow => ({
  start: '21:00',
  end: '07:00',
  timeZone: 'Europe/Rome',
  from: 'rule',
  ...(atOnce ? { atOnce } : {}),
});
const outage = (severity: IncidentFacts['severity']): IncidentFacts => ({
  kind: 'outage',
  severity,
  siteIds: ['S1'],
  areas: ['Siena'],
  openedAt: romeTime('2025-03-12T23:00').toISOString(),
});

describe('the table: message kind x severity x what happens at night', () => {
  test('the default (unlessSeverity: critical): a critical outage notice at once, its updates wait, its end at once only after a notice at night; warnings of work move earlier', () => {
    const q = { unlessSeverity: 'critical' as const };
    const table = Object.fromEntries(
      NIGHT_KINDS.map((kind) => [kind, SEVERITIES.map((s) => nightOutcome(q, kind, s))]),
    );
    const wait = 'waits for the end';
    const earlier = 'moves before the window';
    const ifNight = 'at once if the notice went at night';
    assert.deepEqual(table, {
      outage: [wait, wait, 'at once'],
      update: [wait, wait, wait],
      restored: [wait, wait, ifNight],
      'outage-restored': [wait, wait, ifNight],
      withdrawn: [wait, wait, ifNight],
      maintenance: [earlier, earlier, earlier],
      reminder: [earlier, earlier, earlier],
      started: [wait, wait, wait],
      completed: [wait, wait, wait],
      rescheduled: [wait, wait, wait],
      cancelled: [wait, wait, wait],
    });
  });

  test('atOnce in the rule file overrides the default kind by kind, and a group passes it on', async () => {
    const rules = await load(`defaults:
  quietHours: { window: "21:00-07:00", unlessSeverity: critical }
rules:
  - name: business
    quietHours:
      atOnce: { update: major, restored: never }
    rules:
      - name: business-sms
        notify: sms
`);
    const hold = (await rules.decideOne(outage('major'), subscriber(), { at: romeTime('2025-03-12T23:00') }))
      .notices[0]!.hold!;
    assert.deepEqual(
      hold.atOnce,
      ['update'],
      'a major outage: its updates at once (overridden), not its notice (critical only)',
    );
    const critical = (await rules.decideOne(outage('critical'), subscriber(), { at: romeTime('2025-03-12T23:00') }))
      .notices[0]!.hold!;
    assert.deepEqual(
      critical.atOnce,
      ['outage', 'update', 'outage-restored', 'withdrawn'],
      'restored: never, whatever unlessSeverity says',
    );
  });

  test('a wrong kind or severity under atOnce is an error at its line, naming what is allowed', async () => {
    const errors = await errorsOf(`defaults:
  quietHours:
    window: "21:00-07:00"
    atOnce: { outage: urgent, updates: critical }
rules:
  - name: r
    notify: sms
`);
    const found = errors.map((e) => `${path.basename(e.file)}:${e.line} ${e.message}`);
    assert.equal(found.length, 2, found.join(' | '));
    assert.match(
      found.find((f) => f.includes('urgent'))!,
      /^avviso\.yaml:5 "urgent" is not a severity \(minor, major, critical\) or never/,
    );
    assert.match(
      found.find((f) => f.includes('updates'))!,
      /^avviso\.yaml:5 unknown setting "updates"; did you mean "update"\?/,
    );
  });
});

describe('when a message inside the window goes', () => {
  const at0300 = romeTime('2025-03-13T03:00');

  test('an update of a critical outage waits for 07:00; its notice goes at once', () => {
    const hold = night(['outage', 'restored', 'outage-restored', 'withdrawn']);
    assert.equal(nightDue(hold, 'outage', at0300), null);
    assert.equal(rome(nightDue(hold, 'update', at0300)), '2025-03-13T07:00');
    assert.equal(nightDue(hold, 'update', romeTime('2025-03-13T12:00')), null, 'by day nothing waits');
  });

  test('a record planned before the policy (a window, no list) holds every kind, as it did', () => {
    assert.equal(rome(nightDue(night(), 'outage', at0300)), '2025-03-13T07:00');
  });

  test('the end of an outage goes at once at night only to those whose outage notice went at night', () => {
    const hold = night(['outage', 'restored', 'outage-restored', 'withdrawn']);
    const wokenUp = closingHold(hold, romeTime('2025-03-13T01:00'));
    assert.equal(nightDue(wokenUp, 'restored', at0300), null);
    const toldByDay = closingHold(hold, romeTime('2025-03-12T18:00'));
    assert.equal(rome(nightDue(toldByDay, 'restored', at0300)), '2025-03-13T07:00');
    assert.deepEqual(toldByDay!.atOnce, ['outage'], 'stored on the record: a fallback of it decides the same');
    assert.equal(
      rome(nightDue(closingHold(hold, undefined), 'outage-restored', at0300)),
      '2025-03-13T07:00',
      'never sent: held like the rest',
    );
  });

  test('a reminder of midnight work falls in quiet hours: it goes the minute before the window, never after the work', () => {
    const hold = night();
    const oneHourBefore = romeTime('2025-03-12T23:00');
    assert.equal(rome(nightDue(hold, 'reminder', oneHourBefore, romeTime('2025-03-12T10:00'))), '2025-03-12T20:59');
    assert.equal(
      rome(nightDue(hold, 'reminder', romeTime('2025-03-12T00:00'), romeTime('2025-03-11T10:00'))),
      '2025-03-11T20:59',
      '24 hours before: the evening before',
    );
    // Planned when the window has begun already: at once, rather than after the work.
    assert.equal(rome(nightDue(hold, 'reminder', oneHourBefore, romeTime('2025-03-12T22:30'))), '2025-03-12T22:30');
  });

  test('a maintenance notice that would fall at night is planned before the window', async () => {
    const rules = await load(`defaults:
  quietHours: "21:00-07:00"
  maintenance: { notice: 48h }
rules:
  - name: r
    notify: sms
`);
    const work: IncidentFacts = {
      kind: 'maintenance',
      severity: 'minor',
      siteIds: ['S1'],
      startsAt: romeTime('2025-03-14T00:00').toISOString(),
    };
    const decidedAt = romeTime('2025-03-10T10:00');
    const plan = (await rules.decideOne(work, subscriber(), { at: decidedAt })).notices[0]!;
    assert.equal(rome(firstNoticeTime(plan, work, decidedAt).sendAt), '2025-03-11T20:59');
  });
});

describe('a fallback inside quiet hours', () => {
  const failed = (kind: Delivery['kind'], hold: HoldWindow) =>
    ({
      _id: `inc_f|${kind}|S-1|sms:+393470000009`,
      incidentId: 'inc_f',
      kind,
      subscriberId: 'S-1',
      channel: 'sms',
      to: '+393470000009',
      language: 'it',
      hold,
      state: 'expired',
      attempts: 3,
      history: [],
      createdAt: new Date(),
      updatedAt: new Date(),
    }) as Delivery;
  const at0300 = romeTime('2025-03-13T03:00');

  test('the call that replaces an SMS is held like the SMS: an update waits for 07:00, a critical outage notice goes at once', () => {
    const critical = night(['outage', 'restored', 'outage-restored', 'withdrawn']);
    assert.equal(rome(origin(failed('update', critical), at0300).notBefore ?? null), '2025-03-13T07:00');
    assert.equal(origin(failed('outage', critical), at0300).notBefore, undefined);
    const toldByDay = closingHold(critical, romeTime('2025-03-12T18:00'))!;
    assert.equal(
      rome(origin(failed('restored', toldByDay), at0300).notBefore ?? null),
      '2025-03-13T07:00',
      'a restoration to someone told by day waits, by call too',
    );
  });
});

describe('rules check', () => {
  test('warns of a channel that reaches nobody: subscribers have no webhook address', async () => {
    const warnings = await warningsOf(`rules:
  - name: hooks
    notify: [sms, webhook]
`);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.line, 4);
    assert.match(warnings[0]!.message, /rule "hooks": notify webhook reaches nobody/);
  });
});
