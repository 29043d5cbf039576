/**
 * Grouped evaluation gives every subscriber exactly the decision that running json-rules-engine
 * for that subscriber alone gives, while running it only once per distinct combination of the
 * facts the rules read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { syntheticSubscribers, type IncidentFacts, type SubscriberDecision, type SubscriberFacts } from '../../rules';
import { load, romeTime } from './helpers';

const RULES = `defaults:
  wait: 10m
  quietHours: { window: "21:00-07:00", unlessSeverity: critical }
  updates: { every: 2h }
contacts:
  noc: { phone: "+390577000001" }
rules:
  - name: feed
    notify: feed
    continue: true
  - name: noc
    when: { incident.severity: { atLeast: major } }
    escalate: { after: 30m, contact: noc, channel: voice }
    continue: true
  - name: business-voice
    when:
      subscriber.business: true
      incident.severity: critical
      subscriber.channels: { contains: sms }
    notify: [voice, sms]
    continue: true
  - name: paying
    when:
      subscriber.paidSms: true
      subscriber.onAffectedSite: true
    notify: sms
    rules:
      - name: paying-english-evening
        when:
          subscriber.language: en
          time.localTime: { within: "18:00-23:00" }
        wait: 20m
      - name: paying-wants-all
        when:
          any:
            - subscriber.preferences.updates: all
            - subscriber.area: { in: [Siena, Colle] }
        notify: [sms, email]
        updates: { every: 1h }
      - name: paying-other
  - name: business-email
    when:
      subscriber.segment: business
      not: { subscriber.hasQuietHours: true }
    notify: email
`;

function population(n: number, seed: number): SubscriberFacts[] {
  const base = syntheticSubscribers(n, {
    siteIds: ['S1', 'S2', 'S3', 'S4'],
    areas: ['Siena', 'Colle', 'Poggibonsi', 'Monteriggioni'],
    seed,
    businessShare: 0.3,
    quietHoursShare: 0.2,
  });
  return base.map((s, i) => (i % 7 === 0 ? { ...s, preferences: { updates: i % 2 ? 'all' : 'none' } } : s));
}

for (const [label, incident, at] of [
  [
    'major outage in the evening',
    {
      kind: 'outage',
      severity: 'major',
      siteIds: ['S1', 'S2'],
      areas: ['Siena', 'Colle'],
      openedAt: '2025-03-12T18:30:00Z',
    },
    romeTime('2025-03-12T19:45'),
  ],
  [
    'critical outage at night',
    {
      kind: 'outage',
      severity: 'critical',
      siteIds: ['S2', 'S3', 'S4'],
      areas: ['Colle'],
      openedAt: '2025-03-12T22:00:00Z',
    },
    romeTime('2025-03-12T23:10'),
  ],
  [
    'maintenance in the morning',
    {
      kind: 'maintenance',
      severity: 'minor',
      siteIds: ['S4'],
      areas: ['Monteriggioni'],
      startsAt: '2025-03-14T02:00:00Z',
    },
    romeTime('2025-03-12T09:00'),
  ],
] as [string, IncidentFacts, Date][]) {
  test(`grouped and per-subscriber evaluation agree on a random population: ${label}`, async () => {
    const rules = await load(RULES);
    const subscribers = population(1500, label.length);
    const grouped = await rules.decide(incident, subscribers, { at });

    const bySubscriber = new Map<string, SubscriberDecision>();
    for (const g of grouped.groups) for (const id of g.subscriberIds) bySubscriber.set(id, g.decision);
    assert.equal(bySubscriber.size, subscribers.length, 'every subscriber is in exactly one group');
    assert.equal(grouped.subscribers, subscribers.length);

    const alone = rules.decider({ ...incident, subscribers: subscribers.length }, { at });
    for (const s of subscribers)
      assert.deepEqual(bySubscriber.get(s.id), await alone.evaluate(s), `subscriber ${s.id}`);

    // Nine subscriber facts are read here, so there are a few hundred combinations at most, however large the audience.
    assert.ok(
      grouped.evaluations < subscribers.length / 5,
      `the engine ran ${grouped.evaluations} times for ${subscribers.length} subscribers`,
    );
    const more = await rules.decide(incident, population(6000, label.length + 1), { at });
    assert.ok(more.evaluations < 400, `${more.evaluations} runs for 6000 subscribers`);
    assert.ok(
      grouped.groups.some((g) => g.decision.notify),
      'some subscribers are notified',
    );
    assert.ok(
      grouped.groups.some((g) => !g.decision.notify),
      'and some are not',
    );
  });
}

test('the engine runs once per distinct combination of the facts the rules read', async () => {
  const rules = await load('rules:\n  - name: paying\n    when: { subscriber.paidSms: true }\n    notify: sms\n');
  assert.deepEqual(rules.subscriberFactsRead, ['subscriber.paidSms']);
  const subscribers = population(10_000, 7);
  const d = await rules.decide({ kind: 'outage', severity: 'major', siteIds: ['S1'] }, subscribers, {
    at: romeTime('2025-03-12T12:00'),
  });
  // paid or not, times each language, reachable channels and own quiet hours: the only things a decision can depend on here.
  assert.ok(d.evaluations <= 2 * 2 * 2 * 2, `${d.evaluations} engine runs`);
});

test('subscribers can come from an async source, such as a database cursor', async () => {
  const rules = await load('rules:\n  - name: paying\n    when: { subscriber.paidSms: true }\n    notify: sms\n');
  const subscribers = population(300, 3);
  async function* cursor() {
    for (const s of subscribers) yield s;
  }
  const fromCursor = await rules.decide({ kind: 'outage', severity: 'major', siteIds: ['S1'] }, cursor(), {
    at: '2025-03-12T12:00:00Z',
  });
  const fromArray = await rules.decide(
    { kind: 'outage', severity: 'major', siteIds: ['S1'], subscribers: 300 },
    subscribers,
    { at: '2025-03-12T12:00:00Z' },
  );
  assert.deepEqual(fromCursor.groups, fromArray.groups);
});

test('a decision is shared by its group, so it cannot be changed by one of them', async () => {
  const rules = await load('rules:\n  - name: all\n    notify: sms\n');
  const d = await rules.decideOne(
    { kind: 'outage', severity: 'major', siteIds: ['S1'] },
    { id: 'a', paidSms: true, language: 'it', segment: 'residential', siteId: 'S1' },
  );
  assert.throws(() => {
    (d.notices[0] as { graceSeconds: number }).graceSeconds = 5;
  }, TypeError);
});
