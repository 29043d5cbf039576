/**
 * Each construct of the rules language, exercised through `decide`, `render` and the incident
 * plan: what a rule file says is what a subscriber gets.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncidentFacts } from '../../rules';
import { errorsOf, load, romeTime, subscriber, writeRules, TEMPLATES_FILE } from './helpers';
import { loadRuleSet } from '../../rules';

const outage: IncidentFacts = {
  kind: 'outage',
  severity: 'major',
  siteIds: ['S1'],
  areas: ['Siena'],
  source: 'zabbix',
  openedAt: '2025-03-12T10:00:00Z',
};
const noon = romeTime('2025-03-12T12:00'); // a Wednesday

async function rulesThatApply(
  yaml: string,
  incident: IncidentFacts = outage,
  sub = subscriber(),
  at = noon,
): Promise<string[]> {
  const rules = await load(yaml);
  return (await rules.decideOne(incident, sub, { at })).rules;
}

describe('conditions', () => {
  test('a mapping is "all of"; a bare value is equality; a list is "one of"', async () => {
    const yaml = `rules:
  - name: r
    when:
      incident.kind: outage
      incident.severity: [major, critical]
      subscriber.segment: residential
    notify: sms
`;
    assert.deepEqual(await rulesThatApply(yaml), ['r']);
    assert.deepEqual(await rulesThatApply(yaml, { ...outage, severity: 'minor' }), []);
    assert.deepEqual(await rulesThatApply(yaml, outage, subscriber({ segment: 'business' })), []);
  });

  test('all, any and not combine', async () => {
    const yaml = `rules:
  - name: r
    when:
      any:
        - subscriber.paidSms: true
        - all:
            - subscriber.business: true
            - incident.severity: critical
      not:
        subscriber.language: en
    notify: sms
`;
    assert.deepEqual(await rulesThatApply(yaml, outage, subscriber({ paidSms: true })), ['r']);
    assert.deepEqual(await rulesThatApply(yaml, outage, subscriber({ paidSms: false, segment: 'business' })), []);
    assert.deepEqual(
      await rulesThatApply(
        yaml,
        { ...outage, severity: 'critical' },
        subscriber({ paidSms: false, segment: 'business' }),
      ),
      ['r'],
    );
    assert.deepEqual(await rulesThatApply(yaml, outage, subscriber({ language: 'en' })), []);
  });

  test('severities are ordered: atLeast, moreThan, atMost, lessThan', async () => {
    const yaml = (op: string, v: string) =>
      `rules:\n  - name: r\n    when: { incident.severity: { ${op}: ${v} } }\n    notify: sms\n`;
    const applies = async (op: string, v: string, severity: IncidentFacts['severity']) =>
      (await rulesThatApply(yaml(op, v), { ...outage, severity })).length === 1;
    assert.equal(await applies('atLeast', 'major', 'major'), true);
    assert.equal(await applies('atLeast', 'major', 'minor'), false);
    assert.equal(await applies('moreThan', 'major', 'major'), false);
    assert.equal(await applies('moreThan', 'major', 'critical'), true);
    assert.equal(await applies('atMost', 'major', 'critical'), false);
    assert.equal(await applies('lessThan', 'major', 'minor'), true);
  });

  test('incident.openFor is not a fact (decisions are taken at the opening, when it was always 0): the error says what to use', async () => {
    const yaml = `rules:\n  - name: long\n    when: { incident.openFor: { atLeast: 1h30m } }\n    notify: sms\n`;
    await assert.rejects(
      load(yaml),
      /avviso\.yaml:4:\d+.*incident\.openFor is no longer a fact: .*wait: .*escalate: after:/,
    );
  });

  test('numbers: how many subscribers the incident affects (counted by decide when not given)', async () => {
    const rules = await load(
      `rules:\n  - name: big\n    when: { incident.subscribers: { moreThan: 2 } }\n    notify: sms\n`,
    );
    const three = [subscriber({ id: 'a' }), subscriber({ id: 'b' }), subscriber({ id: 'c' })];
    assert.equal((await rules.decide(outage, three, { at: noon })).groups[0]!.decision.notify, true);
    assert.equal((await rules.decide(outage, three.slice(0, 2), { at: noon })).groups[0]!.decision.notify, false);
  });

  test('time windows span midnight; local time is Europe/Rome with daylight saving', async () => {
    const yaml = `rules:\n  - name: night\n    when: { time.localTime: { within: "21:00-07:00" } }\n    notify: sms\n`;
    assert.deepEqual(await rulesThatApply(yaml, outage, subscriber(), romeTime('2025-07-01T23:30')), ['night']);
    assert.deepEqual(await rulesThatApply(yaml, outage, subscriber(), romeTime('2025-07-01T06:59')), ['night']);
    assert.deepEqual(await rulesThatApply(yaml, outage, subscriber(), romeTime('2025-07-01T07:00')), []);
    // 20:30 UTC is 22:30 in Rome in summer, 21:30 in winter: both inside the window, 19:30 UTC is not in winter.
    assert.deepEqual(await rulesThatApply(yaml, outage, subscriber(), new Date('2025-01-15T19:30:00Z')), []);
    assert.deepEqual(await rulesThatApply(yaml, outage, subscriber(), new Date('2025-07-15T19:30:00Z')), ['night']);
  });

  test('weekday and holidays, yearly or on one date', async () => {
    const yaml = `holidays: ["12-25", "2025-04-21"]
rules:
  - name: weekend-or-holiday
    when:
      any:
        - time.weekday: [sat, sun]
        - time.holiday: true
    notify: sms
`;
    assert.deepEqual(await rulesThatApply(yaml, outage, subscriber(), romeTime('2025-03-15T12:00')), [
      'weekend-or-holiday',
    ]); // Saturday
    assert.deepEqual(await rulesThatApply(yaml, outage, subscriber(), romeTime('2026-12-25T12:00')), [
      'weekend-or-holiday',
    ]); // Friday, Christmas
    assert.deepEqual(await rulesThatApply(yaml, outage, subscriber(), romeTime('2025-04-21T12:00')), [
      'weekend-or-holiday',
    ]); // Easter Monday
    assert.deepEqual(await rulesThatApply(yaml, outage, subscriber(), romeTime('2025-04-22T12:00')), []);
  });

  test('lists: areas, sites and channels with contains / containsAny; site, area and preferences', async () => {
    const yaml = `rules:
  - name: r
    when:
      incident.areas: Siena
      incident.sites: { containsAny: [S1, S9] }
      subscriber.channels: { contains: email }
      subscriber.area: Siena
      subscriber.site: { in: [S1, S2] }
      subscriber.onAffectedSite: true
      subscriber.preferences.updates: all
    notify: email
`;
    const sub = subscriber({ channels: ['sms', 'email'], preferences: { updates: 'all' } });
    assert.deepEqual(await rulesThatApply(yaml, outage, sub), ['r']);
    assert.deepEqual(await rulesThatApply(yaml, outage, { ...sub, channels: ['sms'] }), []);
    assert.deepEqual(await rulesThatApply(yaml, outage, { ...sub, preferences: { updates: 'none' } }), []);
    assert.deepEqual(await rulesThatApply(yaml, { ...outage, siteIds: ['S2'] }, sub), []);
  });

  test('json-rules-engine operators and decorators can be used by name', async () => {
    const yaml = `rules:
  - name: r
    when:
      incident.source: { notIn: [manual, test] }
      incident.sites: { "everyFact:notEqual": S7 }
    notify: sms
`;
    assert.deepEqual(await rulesThatApply(yaml), ['r']);
    assert.deepEqual(await rulesThatApply(yaml, { ...outage, siteIds: ['S1', 'S7'] }), []);
  });
});

describe('actions', () => {
  test('notify: channels, template set and priority, with defaults from defaults:', async () => {
    const rules = await load(`defaults: { priority: low }
rules:
  - name: r
    notify: [sms, { channel: email, priority: high }, { channel: voice, template: standard }]
`);
    const d = await rules.decideOne(outage, subscriber(), { at: noon });
    assert.deepEqual(
      d.notices.map((n) => [n.channel, n.priority, n.templateSet]),
      [
        ['sms', 'low', 'standard'],
        ['email', 'high', 'standard'],
        ['voice', 'low', 'standard'],
      ],
    );
    const smsOnly = await rules.decideOne(outage, subscriber({ channels: ['sms'] }), { at: noon });
    assert.deepEqual(
      smsOnly.notices.map((n) => n.channel),
      ['sms'],
      'channels the subscriber cannot be reached on are left out',
    );
  });

  test('wait, restoration (on unless turned off), updates every N and on a new estimate', async () => {
    const rules = await load(`defaults: { wait: 5m, updates: { every: 2h, onEtaChange: true } }
rules:
  - name: quiet-blip
    when: { incident.severity: minor }
    notify: sms
    restoration: false
    updates: off
  - name: normal
    notify: sms
`);
    const minor = (await rules.decideOne({ ...outage, severity: 'minor' }, subscriber(), { at: noon })).notices[0]!;
    assert.deepEqual(
      [minor.graceSeconds, minor.restoration, minor.updates],
      [300, false, { everySeconds: null, onEtaChange: false }],
    );
    const major = (await rules.decideOne(outage, subscriber(), { at: noon })).notices[0]!;
    assert.deepEqual(
      [major.graceSeconds, major.restoration, major.updates],
      [300, true, { everySeconds: 7200, onEtaChange: true }],
    );
  });

  test("quiet hours: held unless the severity says otherwise; the subscriber's own window replaces the rule's", async () => {
    const rules = await load(`defaults:
  quietHours: { window: "21:00-07:00", unlessSeverity: critical }
rules:
  - name: r
    notify: sms
`);
    const major = (await rules.decideOne(outage, subscriber(), { at: noon })).notices[0]!;
    assert.deepEqual(major.hold, { start: '21:00', end: '07:00', timeZone: 'Europe/Rome', from: 'rule' });
    assert.deepEqual(
      (await rules.decideOne({ ...outage, severity: 'critical' }, subscriber(), { at: noon })).notices[0]!.hold?.atOnce,
      ['outage', 'restored', 'outage-restored', 'withdrawn'],
    );
    const own = (await rules.decideOne(outage, subscriber({ quietHours: '22:30-08:00' }), { at: noon })).notices[0]!;
    assert.deepEqual(own.hold, { start: '22:30', end: '08:00', timeZone: 'Europe/Rome', from: 'subscriber' });
  });

  test('maintenance: notice ahead, reminder, started and completed', async () => {
    const rules = await load(`rules:
  - name: m
    when: { incident.kind: maintenance }
    notify: sms
    maintenance: { notice: 48h, reminder: 2h, started: true }
`);
    const plan = (await rules.decideOne({ ...outage, kind: 'maintenance' }, subscriber(), { at: noon })).notices[0]!;
    assert.deepEqual(plan.maintenance, {
      noticeBeforeSeconds: 172800,
      reminderBeforeSeconds: 7200,
      remindersBeforeSeconds: [7200],
      started: true,
      completed: true,
    });
  });

  test('maintenance: several reminders as a list, earliest first; a group sets them, a rule turns them off', async () => {
    const rules = await load(`defaults:
  maintenance: { notice: 72h, reminder: [1h, 24h, 30m] }
rules:
  - name: quiet
    when: { subscriber.segment: business }
    notify: sms
    maintenance: { reminder: off }
  - name: m
    notify: sms
`);
    const incident: IncidentFacts = { ...outage, kind: 'maintenance' };
    const plan = (await rules.decideOne(incident, subscriber(), { at: noon })).notices[0]!;
    assert.deepEqual(plan.maintenance, {
      noticeBeforeSeconds: 259200,
      reminderBeforeSeconds: 86400,
      remindersBeforeSeconds: [86400, 3600, 1800],
      started: false,
      completed: true,
    });
    const business = (await rules.decideOne(incident, subscriber({ segment: 'business' }), { at: noon })).notices[0]!;
    assert.deepEqual(
      [business.maintenance.reminderBeforeSeconds, business.maintenance.remindersBeforeSeconds],
      [null, []],
    );
  });

  test('maintenance reminders: a bad duration, an empty list and a zero are errors, at their line', async () => {
    const bad = await errorsOf(`rules:
  - name: m
    notify: sms
    maintenance: { reminder: [24h, soon] }
`);
    assert.equal(bad.length, 1, JSON.stringify(bad));
    assert.match(bad[0]!.message, /"soon" is not a duration/);
    assert.equal(bad[0]!.line, 5, 'the reminder line (after the include line the helper adds)');
    const empty = await errorsOf(`rules:
  - name: m
    notify: sms
    maintenance: { reminder: [] }
`);
    assert.match(empty[0]!.message, /empty|reminder|duration/, JSON.stringify(empty));
    const zero = await errorsOf(`rules:
  - name: m
    notify: sms
    maintenance: { reminder: [1h, 0] }
`);
    assert.match(zero[0]!.message, /started: true/, JSON.stringify(zero));
  });

  test('escalate: to a contact, after a delay, on a channel, repeated', async () => {
    const rules = await load(`contacts:
  noc: { name: NOC, phone: "+390577000001", email: noc@example.net }
rules:
  - name: page-noc
    when: { incident.kind: outage }
    escalate:
      - { after: 30m, contact: noc, channel: voice, repeat: { every: 15m, times: 3 } }
      - { after: 10m, contact: noc, channel: email }
`);
    const d = await rules.decide(outage, [], { at: noon });
    assert.deepEqual(
      d.incident.escalations.map((e) => [e.afterSeconds, e.channel, e.address, e.repeat]),
      [
        [600, 'email', 'noc@example.net', null],
        [1800, 'voice', '+390577000001', { everySeconds: 900, times: 3 }],
      ],
    );
  });

  test('the first rule that applies stops the others, unless it says continue; a channel keeps its first plan', async () => {
    const yaml = (cont: boolean) => `rules:
  - name: first
    notify: sms
    wait: 1m
    continue: ${cont}
  - name: second
    notify: [sms, email]
    wait: 9m
`;
    const stopped = await (await load(yaml(false))).decideOne(outage, subscriber(), { at: noon });
    assert.deepEqual(stopped.rules, ['first']);
    const both = await (await load(yaml(true))).decideOne(outage, subscriber(), { at: noon });
    assert.deepEqual(both.rules, ['first', 'second']);
    assert.deepEqual(
      both.notices.map((n) => [n.channel, n.rule, n.graceSeconds]),
      [
        ['sms', 'first', 60],
        ['email', 'second', 540],
      ],
    );
  });

  test('defaults.continue lets every rule apply', async () => {
    const rules = await load(
      `defaults: { continue: true }\nrules:\n  - name: a\n    notify: sms\n  - name: b\n    notify: email\n`,
    );
    assert.deepEqual((await rules.decideOne(outage, subscriber(), { at: noon })).rules, ['a', 'b']);
  });

  test('groups: their rules inherit the condition and the settings; the group sends nothing itself', async () => {
    const rules = await load(`rules:
  - name: paying
    when: { subscriber.paidSms: true }
    notify: sms
    wait: 15m
    rules:
      - name: critical
        when: { incident.severity: critical }
        wait: 0
      - name: other
  - name: fallback
    notify: email
`);
    const critical = await rules.decideOne({ ...outage, severity: 'critical' }, subscriber(), { at: noon });
    assert.deepEqual(
      [critical.rules, critical.notices[0]!.graceSeconds, critical.notices[0]!.channel],
      [['critical'], 0, 'sms'],
    );
    const other = await rules.decideOne(outage, subscriber(), { at: noon });
    assert.deepEqual([other.rules, other.notices[0]!.graceSeconds], [['other'], 900]);
    const unpaid = await rules.decideOne(outage, subscriber({ paidSms: false }), { at: noon });
    assert.deepEqual(unpaid.rules, ['fallback'], 'a group none of whose rules applied does not stop its siblings');
  });

  test('the public status feed is decided once per incident', async () => {
    const rules = await load(
      `rules:\n  - name: feed\n    notify: feed\n    continue: true\n  - name: paying\n    when: { subscriber.paidSms: true }\n    notify: sms\n`,
    );
    const d = await rules.decide(outage, [subscriber({ id: 'a' }), subscriber({ id: 'b', paidSms: false })], {
      at: noon,
    });
    assert.equal(d.incident.feed?.rule, 'feed');
    const byId = new Map(d.groups.flatMap((g) => g.subscriberIds.map((id) => [id, g.decision] as const)));
    assert.deepEqual(
      byId.get('a')!.notices.map((n) => n.channel),
      ['sms'],
      'the feed is not a subscriber channel',
    );
    assert.equal(byId.get('b')!.notify, false);
  });
});

describe('templates', () => {
  test("variables and filters write times and durations in the reader's language and the rule set's time zone", async () => {
    const rules = await load(`templates:
  custom:
    outage:
      it: "Guasto a {{ area }} dalle {{ start | time }} di {{ start | weekday }} ({{ start | date }}), da {{ duration | duration }}{% if eta %}, fine {{ eta | datetime }}{% endif %}."
      en: "Outage in {{ area }} since {{ start | time }} on {{ start | weekday }} ({{ start | date }}), for {{ duration | duration }}{% if eta %}, until {{ eta | datetime }}{% endif %}."
`);
    const vars = {
      area: 'Siena',
      start: '2025-03-12T22:05:00Z',
      duration: 2 * 3600 + 15 * 60,
      eta: '2025-03-13T01:00:00Z',
    };
    assert.equal(
      rules.render({ set: 'custom', kind: 'outage' }, 'it', vars).text,
      'Guasto a Siena dalle 23:05 di mercoledì (mer 12 mar), da 2 ore e 15 minuti, fine gio 13 mar 02:00.',
    );
    assert.equal(
      rules.render({ set: 'custom', kind: 'outage' }, 'en', { ...vars, eta: undefined }).text,
      'Outage in Siena since 23:05 on Wednesday (Wed 12 Mar), for 2 hours and 15 minutes.',
    );
    assert.equal(
      rules.render({ set: 'custom', kind: 'outage' }, 'de', vars).text.startsWith('Guasto'),
      true,
      'a language the rules lack falls back to the default',
    );
  });

  test('areas are joined in words; render(kind) uses the default template set', async () => {
    const rules = await load(`defaults: { template: short }
templates:
  short:
    extends: standard
    outage: { it: "Guasto: {{ areas }}", en: "Outage: {{ areas }}" }
`);
    assert.equal(
      rules.render('outage', 'it', { areas: ['Siena', 'Colle', 'Poggibonsi'] }).text,
      'Guasto: Siena, Colle e Poggibonsi',
    );
    assert.equal(
      rules.render('restored', 'en', { area: 'Siena', start: '2025-03-12T22:05:00Z' }).text,
      'restored in Siena since 23:05',
      'kinds not written come from the set it extends',
    );
  });
});

describe('defaults and includes', () => {
  test("folders and nested files can be included; included rules follow the main file's", async () => {
    const dir = writeRules({
      'avviso.yaml': `include: [parts/, more.yaml]\ndefaults: { timeZone: Europe/London, senderId: ISPNET, language: en, languages: [it, en] }\nrules:\n  - name: main\n    when: { incident.severity: critical }\n    notify: sms\n`,
      'parts/templates.yaml': TEMPLATES_FILE,
      'parts/contacts.yaml': 'contacts:\n  noc: { phone: "+390577000001" }\n',
      'more.yaml': 'include: deeper/rules.yaml\n',
      'deeper/rules.yaml': 'rules:\n  - name: included\n    notify: email\n',
    });
    const rules = await loadRuleSet(dir);
    assert.deepEqual(
      rules.files.map((f) => f.name),
      ['avviso.yaml', 'parts/contacts.yaml', 'parts/templates.yaml', 'more.yaml', 'deeper/rules.yaml'],
    );
    assert.deepEqual(rules.ruleNames, ['main', 'included']);
    assert.equal(rules.settings.timeZone, 'Europe/London');
    assert.equal(rules.settings.senderId, 'ISPNET');
    assert.equal(
      (await rules.decideOne(outage, subscriber({ language: 'fr' }), { at: noon })).language,
      'en',
      'the default language for others',
    );
    assert.equal(
      rules.render('outage', 'en', { area: 'X', start: '2025-03-12T22:05:00Z' }).text,
      'outage in X since 22:05',
      'times in the configured time zone',
    );
  });

  test('the version is a hash of the content: same files, same version; any change, a new one', async () => {
    const yaml = 'rules:\n  - name: r\n    notify: sms\n';
    const a = await load(yaml);
    const b = await load(yaml);
    const c = await load(`${yaml}    wait: 1m\n`);
    assert.equal(a.version, b.version);
    assert.notEqual(a.version, c.version);
    assert.match(a.version, /^[0-9a-f]{12}$/);
  });
});
