/**
 * The rules Avviso ships with implement the service as sold: paying subscribers get SMS about
 * their own sites after a grace delay, updates and a restoration notice, nothing at night
 * unless the outage is critical; everyone gets the status feed; the NOC is phoned after 30
 * minutes. Checked through decide, explain and simulate, as operations staff would.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DateTime } from 'luxon';
import {
  checkRules,
  DEFAULT_RULES_PATH,
  firstNoticeTime,
  loadRuleSet,
  syntheticSubscribers,
  type IncidentFacts,
  type RuleSet,
} from '../../rules';
import { romeTime, subscriber } from './helpers';

let rules: RuleSet;
before(async () => {
  rules = await loadRuleSet(); // no path: the shipped rules
});

const at2300 = romeTime('2025-03-12T23:00');
const outageAt = (severity: IncidentFacts['severity'], opened: Date): IncidentFacts => ({
  kind: 'outage',
  severity,
  siteIds: ['S1', 'S2'],
  areas: ['Siena'],
  openedAt: opened.toISOString(),
  title: 'Ponte radio',
});
/** The line of the shipped main file that contains `text`, so that the tests follow edits of it. */
const lineOf = (text: string) =>
  readFileSync(DEFAULT_RULES_PATH, 'utf8')
    .split('\n')
    .findIndex((l) => l.includes(text)) + 1;
const rome = (d: Date | string) =>
  DateTime.fromJSDate(new Date(d), { zone: 'Europe/Rome' }).toFormat("yyyy-MM-dd'T'HH:mm");

test('the shipped rules check clean: no errors, no warnings, every text in one SMS part', async () => {
  const report = await checkRules(DEFAULT_RULES_PATH);
  assert.deepEqual([report.ok, report.errors, report.warnings], [true, [], []]);
  assert.equal(rules.version, report.version);
  assert.deepEqual(
    rules.files.map((f) => f.name),
    ['avviso.yaml', 'contacts.yaml', 'templates/feed-and-staff.yaml', 'templates/sms.yaml'],
  );
});

describe('quiet hours', () => {
  test("at 23:00 a major outage's SMS waits until 07:00", async () => {
    const incident = outageAt('major', at2300);
    const d = await rules.decideOne(incident, subscriber(), { at: at2300 });
    const sms = d.notices.find((n) => n.channel === 'sms')!;
    assert.deepEqual(sms.hold, { start: '21:00', end: '07:00', timeZone: 'Europe/Rome', from: 'rule' });
    const when = firstNoticeTime(sms, incident, at2300);
    assert.equal(rome(when.plannedAt), '2025-03-12T23:10', 'after the 10-minute grace delay');
    assert.equal(rome(when.sendAt), '2025-03-13T07:00', 'held until the morning');
  });

  test("at 23:00 a critical outage's SMS goes out after the grace delay", async () => {
    const incident = outageAt('critical', at2300);
    const sms = (await rules.decideOne(incident, subscriber(), { at: at2300 })).notices.find(
      (n) => n.channel === 'sms',
    )!;
    assert.deepEqual(
      sms.hold?.atOnce,
      ['outage', 'restored', 'outage-restored', 'withdrawn'],
      'the notice (and the end, to those it woke) breaks quiet hours; updates do not',
    );
    const when = firstNoticeTime(sms, incident, at2300);
    assert.equal(rome(when.sendAt), '2025-03-12T23:10');
    assert.equal(when.heldUntil, null);
  });

  test("in the afternoon nothing is held; a subscriber's own quiet hours are honoured", async () => {
    const afternoon = romeTime('2025-03-12T15:00');
    const incident = outageAt('major', afternoon);
    const sms = (await rules.decideOne(incident, subscriber(), { at: afternoon })).notices[0]!;
    assert.equal(rome(firstNoticeTime(sms, incident, afternoon).sendAt), '2025-03-12T15:10');
    const own = (await rules.decideOne(incident, subscriber({ quietHours: '14:00-16:30' }), { at: afternoon }))
      .notices[0]!;
    assert.equal(rome(firstNoticeTime(own, incident, afternoon).sendAt), '2025-03-12T16:30');
  });
});

describe('who gets what', () => {
  test('a paying subscriber on an affected site: SMS after 10 minutes, updates every 2 hours and on a new estimate, restoration', async () => {
    const d = await rules.decideOne(outageAt('major', at2300), subscriber(), { at: at2300 });
    assert.deepEqual(d.rules, ['status-feed', 'noc-oncall', 'paid-sms-outage']);
    assert.deepEqual(
      d.notices.map((n) => n.channel),
      ['sms'],
    );
    const sms = d.notices[0]!;
    assert.deepEqual(
      [sms.graceSeconds, sms.restoration, sms.updates, sms.templateSet, sms.maxParts],
      [600, true, { everySeconds: 7200, onEtaChange: true }, 'sms', 1],
    );
  });

  test('no SMS for those who do not pay, nor for payers elsewhere; the feed and the NOC call are for the incident', async () => {
    const incident = outageAt('major', at2300);
    const d = await rules.decide(
      incident,
      [subscriber({ id: 'unpaid', paidSms: false }), subscriber({ id: 'elsewhere', siteId: 'S9' })],
      { at: at2300 },
    );
    assert.deepEqual(
      d.groups.map((g) => g.decision.notify),
      [false],
    );
    assert.equal(d.incident.feed?.templateSet, 'feed');
    assert.deepEqual(
      d.incident.escalations.map((e) => [e.contact, e.channel, e.afterSeconds, e.repeat]),
      [['noc-oncall', 'voice', 1800, { everySeconds: 900, times: 4 }]],
    );
  });

  test('maintenance: the notice 48 hours ahead, reminders 24 hours and 1 hour before, start and completion; the NOC is told of an overrun', async () => {
    const monday = romeTime('2025-03-10T10:00');
    const incident: IncidentFacts = {
      kind: 'maintenance',
      severity: 'minor',
      siteIds: ['S1'],
      areas: ['Siena'],
      startsAt: romeTime('2025-03-13T02:00').toISOString(),
      estimatedEnd: romeTime('2025-03-13T04:00').toISOString(),
    };
    const d = await rules.decide(incident, [subscriber()], { at: monday });
    const sms = d.groups[0]!.decision.notices[0]!;
    assert.equal(sms.rule, 'paid-sms-maintenance');
    assert.deepEqual(
      [
        sms.maintenance.noticeBeforeSeconds,
        sms.maintenance.remindersBeforeSeconds,
        sms.maintenance.started,
        sms.maintenance.completed,
      ],
      [172800, [86400, 3600], true, true],
    );
    assert.equal(
      rome(firstNoticeTime(sms, incident, monday).sendAt),
      '2025-03-10T20:59',
      '48 hours before 02:00 is night: sent before the window starts, not after',
    );
    // For maintenance, `after` counts from the planned end: 15 minutes into an overrun, then twice more.
    assert.deepEqual(
      d.incident.escalations.map((e) => [e.rule, e.contact, e.channel, e.afterSeconds, e.repeat]),
      [['noc-maintenance-overrun', 'noc-oncall', 'sms', 900, { everySeconds: 1800, times: 2 }]],
    );
    const text = rules.render({ set: sms.templateSet, kind: 'maintenance' }, 'it', {
      area: 'Siena',
      start: incident.startsAt,
      eta: incident.estimatedEnd,
    });
    assert.equal(
      text.text,
      'Manutenzione programmata a Siena: internet sospeso dal gio 13 mar 02:00 al gio 13 mar 04:00. Ci scusiamo per il disagio.',
    );
  });
});

describe('explain', () => {
  test("says which rules matched, which did not and why, with the facts' values", async () => {
    const e = await rules.explain(outageAt('major', at2300), subscriber({ paidSms: false }), { at: at2300 });
    const outcome = Object.fromEntries(e.rules.map((r) => [r.name, r.outcome.status]));
    assert.deepEqual(outcome, {
      'status-feed': 'applied',
      'noc-oncall': 'applied',
      'noc-maintenance-overrun': 'no-match',
      'paid-sms': 'no-match',
      'paid-sms-outage': 'no-match',
      'paid-sms-maintenance': 'no-match',
    });
    const paid = e.rules.find((r) => r.name === 'paid-sms')!;
    const failing = paid.conditions!.children!.find((c) => c.result === false)!;
    assert.deepEqual(
      [failing.text, failing.actual, failing.at.line],
      ['subscriber.paidSms is true', 'false', lineOf('subscriber.paidSms: true')],
    );
    assert.equal(e.decision.notify, false);
    assert.equal(e.facts['time.localTime'], '23:00');

    const text = rules.formatExplanation(e);
    assert.ok(text.includes(`group "paid-sms" (line ${lineOf('name: paid-sms\n'.trim())}): did not match`), text);
    assert.ok(
      text.includes(`✗ subscriber.paidSms is true  (is false; line ${lineOf('subscriber.paidSms: true')})`),
      text,
    );
    assert.match(text, /this subscriber gets:\n {2}nothing/);
    assert.match(text, /escalate to NOC reperibile by voice after 30m unresolved, then every 15m up to 4 times/);
  });

  test('a later rule that an earlier one stopped is "not reached"', async () => {
    const e = await rules.explain(outageAt('major', at2300), subscriber(), { at: at2300 });
    const maintenance = e.rules.find((r) => r.name === 'paid-sms-maintenance')!;
    assert.deepEqual(maintenance.outcome, { status: 'not-reached', stoppedBy: 'paid-sms-outage' });
    assert.equal(rome(e.schedule[0]!.sendAt), '2025-03-13T07:00');
    assert.match(
      rules.formatExplanation(e),
      /sms \(rule "paid-sms-outage", templates "sms", it\): first notice at 13 Mar 2025, 07:00 \(held by quiet hours\)/,
    );
  });
});

describe('simulate', () => {
  test('an outage on two sites at 23:00: who gets what, when, the texts, SMS parts and cost', async () => {
    const incident = outageAt('major', at2300);
    const audience = syntheticSubscribers(3000, {
      siteIds: ['S1', 'S2', 'S3'],
      areas: ['Siena', 'Siena', 'Colle'],
      seed: 1,
      quietHoursShare: 0,
    });
    const affectedPayers = audience.filter((s) => s.paidSms && ['S1', 'S2'].includes(s.siteId));
    const sim = await rules.simulate(incident, audience, { at: at2300 });

    assert.equal(sim.subscribers, 3000);
    assert.equal(sim.notified, affectedPayers.length);
    // paid or not, on an affected site or not, Italian or English, SMS only or SMS and e-mail.
    assert.ok(sim.evaluations <= 16, `${sim.evaluations} engine runs`);
    assert.deepEqual(new Set(sim.rows.map((r) => r.channel)), new Set(['sms']));
    assert.equal(
      sim.rows.reduce((n, r) => n + r.subscribers, 0),
      affectedPayers.length,
    );
    const english = affectedPayers.filter((s) => s.language === 'en').length;
    assert.equal(
      sim.rows.filter((r) => r.language === 'en').reduce((n, r) => n + r.subscribers, 0),
      english,
    );

    const it = sim.rows.find((r) => r.language === 'it')!;
    assert.equal(it.first.text, 'Avviso guasto: internet interrotto a Siena dalle 23:00. Vi avviseremo al ripristino.');
    assert.deepEqual([it.first.encoding, it.first.parts, it.restoration?.parts], ['GSM', 1, 1]);
    assert.equal(rome(it.sendAt), '2025-03-13T07:00');
    assert.equal(rome(it.heldUntil!), '2025-03-13T07:00');

    // One SMS part for the outage notice and one for the restoration, at 0.0475 EUR a part.
    assert.equal(sim.totals.smsParts, affectedPayers.length * 2);
    assert.equal(sim.totals.cost, Math.round(affectedPayers.length * 2 * 0.0475 * 10000) / 10000);
    assert.equal(sim.totals.currency, 'EUR');
    assert.match(sim.feed!.text, /^Guasto in corso: Ponte radio\. Zone interessate: Siena\./);
    assert.deepEqual(
      sim.escalations.map((e) => [e.contact, e.channel, rome(e.at)]),
      [['NOC reperibile', 'voice', '2025-03-12T23:30']],
    );
  });

  test('a critical outage is not held', async () => {
    const sim = await rules.simulate(
      outageAt('critical', at2300),
      syntheticSubscribers(500, { siteIds: ['S1'], seed: 2, quietHoursShare: 0 }),
      { at: at2300 },
    );
    assert.ok(sim.rows.length > 0);
    for (const r of sim.rows) assert.deepEqual([rome(r.sendAt), r.heldUntil], ['2025-03-12T23:10', null]);
  });
});
