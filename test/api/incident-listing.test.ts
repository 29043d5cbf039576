/**
 * What an operator's dashboard reads: incidents listed newest first with filters that combine,
 * paged by a cursor that stays right while new incidents open; and one incident's messages,
 * filtered by state, kind or channel. Past incidents are written as the workflow leaves them (a
 * document per incident); one is opened through the API and shows up as open at once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Delivery, Incident, IncidentPhase, Severity } from '../../domain/types';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';

const DAY = 86_400_000;
const BASE = Date.parse('2026-11-01T08:00:00Z');

function past(i: number, over: Partial<Incident> = {}): Incident {
  const phases: IncidentPhase[] = ['billed', 'notified', 'cancelled', 'escalated', 'resolving'];
  const severities: Severity[] = ['minor', 'major', 'critical'];
  return {
    _id: `inc_${String(i).padStart(16, '0')}`,
    key: `past-${i}`,
    kind: i % 7 === 0 ? 'maintenance' : 'outage',
    severity: severities[i % 3]!,
    siteIds: [i % 2 === 0 ? 'tower-even' : 'tower-odd'],
    affectedSiteIds: [i % 2 === 0 ? 'tower-even' : 'tower-odd', 'cpe-below'],
    areas: [i % 2 === 0 ? 'Lodi' : 'Crema'],
    title: `Past incident ${i}`,
    source: i % 4 === 0 ? 'alertmanager/noc' : 'api',
    phase: phases[i % phases.length]!,
    openedAt: new Date(BASE + i * DAY),
    workflowId: `incident:past-${i}`,
    timeline: [],
    ...over,
  };
}

describe('listing incidents and their messages', () => {
  let stack: TestStack;
  const stored = Array.from({ length: 25 }, (_, i) => past(i));
  // Two incidents opened in the same millisecond: the cursor must not skip or repeat either.
  const twins = [
    past(100, { openedAt: new Date(BASE + 30 * DAY), key: 'twin-a' }),
    past(101, { openedAt: new Date(BASE + 30 * DAY), key: 'twin-b' }),
  ];
  const merged = past(102, { mergedInto: stored[3]!._id, key: 'merged' });

  before(async () => {
    stack = await startTestStack(__filename);
    await stack.store.incidents.insertMany([...stored, ...twins, merged]);
  });
  after(async () => stack?.stop());

  test('newest first, paged without gaps or repeats, and the cursor survives a new incident', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const r = await call(stack, 'GET', `/v1/incidents?limit=4${after ? `&after=${after}` : ''}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      seen.push(...r.body.items.map((i: { id: string }) => i.id));
      after = r.body.next;
      pages++;
      if (pages === 2) {
        // A new incident opens between two pages: it is newer than the cursor, so later pages are unchanged.
        await stack.store.sites.insertOne({ _id: 'tower-live', name: 'Live', area: 'Pavia', uplink: null });
        assert.equal(
          (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-live'], key: 'live-1' })).status,
          202,
        );
      }
    } while (after);
    const expected = [...stored, ...twins]
      .filter((i) => i.kind === 'outage')
      .sort((a, b) => b.openedAt.getTime() - a.openedAt.getTime() || (a._id < b._id ? 1 : -1))
      .map((i) => i._id);
    assert.deepEqual(
      seen,
      expected,
      'every stored outage once, newest first; the absorbed one and planned work are left out',
    );
    assert.equal(pages, Math.ceil(expected.length / 4));

    const first = await call(stack, 'GET', '/v1/incidents?limit=1');
    assert.equal(first.body.items[0].key, 'live-1', 'the new incident now heads the list');
    assert.ok(!['resolved', 'cancelled', 'billed'].includes(first.body.items[0].phase));
  });

  test('filters combine: status, phase, kind (outages unless asked), severity, site (named or downstream), area, source, time range', async () => {
    const ids = async (qs: string) => {
      const r = await call(stack, 'GET', `/v1/incidents?limit=200&${qs}`);
      assert.equal(r.status, 200, `${qs}: ${JSON.stringify(r.body)}`);
      return (r.body.items as { id: string }[])
        .map((i) => i.id)
        .filter((id) => known.has(id))
        .sort();
    };
    const all = [...stored, ...twins];
    const known = new Set([...all, merged].map((i) => i._id));
    // Outages unless kind=maintenance asks for planned work.
    const want = (f: (i: Incident) => boolean, kind = 'outage') =>
      all
        .filter((i) => i.kind === kind && f(i))
        .map((i) => i._id)
        .sort();
    const closed = ['resolved', 'cancelled', 'billed'];
    assert.deepEqual(
      await ids('status=open'),
      want((i) => !closed.includes(i.phase)),
    );
    assert.deepEqual(
      await ids('status=closed'),
      want((i) => closed.includes(i.phase)),
    );
    assert.deepEqual(
      await ids('phase=notified&phase=escalated'),
      want((i) => i.phase === 'notified' || i.phase === 'escalated'),
    );
    assert.deepEqual(
      await ids('kind=maintenance'),
      want(() => true, 'maintenance'),
    );
    assert.ok(
      (await ids('kind=maintenance&status=open')).every(
        (id) => !all.find((i) => i._id === id)!.phase.match(/resolved|cancelled|billed|completed/),
      ),
    );
    assert.deepEqual(
      await ids('severity=critical&status=open'),
      want((i) => i.severity === 'critical' && !closed.includes(i.phase)),
    );
    assert.deepEqual(
      await ids('siteId=tower-odd'),
      want((i) => i.siteIds[0] === 'tower-odd'),
    );
    assert.deepEqual(
      await ids('siteId=cpe-below'),
      want(() => true),
      'a site downstream of the named ones matches through affectedSiteIds',
    );
    assert.deepEqual(
      await ids('area=Lodi&source=alertmanager/noc'),
      want((i) => i.areas[0] === 'Lodi' && i.source === 'alertmanager/noc'),
    );
    const since = new Date(BASE + 10 * DAY).toISOString();
    const until = new Date(BASE + 20 * DAY).toISOString();
    assert.deepEqual(
      await ids(`since=${since}&until=${until}`),
      want((i) => i.openedAt.getTime() >= BASE + 10 * DAY && i.openedAt.getTime() < BASE + 20 * DAY),
    );
    assert.ok((await ids('includeMerged=true')).includes(merged._id), 'includeMerged lists absorbed incidents too');
  });

  test('bad parameters are refused, naming the parameter', async () => {
    const badDate = await call(stack, 'GET', '/v1/incidents?since=yesterday');
    assert.equal(badDate.status, 400);
    assert.match(badDate.body.error.message, /querystring\.since must be an ISO date-time/);
    const badPhase = await call(stack, 'GET', '/v1/incidents?phase=exploded');
    assert.equal(badPhase.status, 400);
    assert.match(badPhase.body.error.message, /phase/);
    const badCursor = await call(stack, 'GET', '/v1/incidents?after=bm9wZQ');
    assert.equal(badCursor.status, 400);
    assert.equal(badCursor.body.error.code, 'invalid_cursor');
    const viewer = await stack.createKey('viewer');
    assert.equal(
      (await call(stack, 'GET', '/v1/incidents', undefined, {}, { key: viewer })).status,
      200,
      'a viewer may list',
    );
    assert.equal(
      (await call(stack, 'GET', '/v1/incidents', undefined, {}, { key: null })).status,
      401,
      'nobody without a key',
    );
  });

  test("an incident's messages, by state, kind and channel, paged in record order", async () => {
    const incident = stored[1]!;
    const now = new Date();
    const record = (n: number, over: Partial<Delivery>): Delivery => ({
      _id: `${incident._id}|${over.kind ?? 'outage'}|S-${String(n).padStart(3, '0')}|${over.channel ?? 'sms'}:+39347000${String(n).padStart(4, '0')}`,
      incidentId: incident._id,
      kind: 'outage',
      subscriberId: `S-${n}`,
      channel: 'sms',
      to: `+39347000${String(n).padStart(4, '0')}`,
      language: 'it',
      state: 'delivered',
      attempts: 1,
      history: [{ at: now, state: 'planned' }],
      createdAt: now,
      updatedAt: now,
      ...over,
    });
    const records = [
      ...Array.from({ length: 12 }, (_, n) => record(n, { state: n % 3 === 0 ? 'undelivered' : 'delivered' })),
      ...Array.from({ length: 5 }, (_, n) => record(n, { kind: 'restored', state: 'accepted' })),
      record(50, { channel: 'voice', state: 'delivered' }),
      { ...record(60, {}), incidentId: stored[2]!._id, _id: `${stored[2]!._id}|outage|S-060|sms:+393470000060` },
    ];
    await stack.store.deliveries.insertMany(records);
    const path = `/v1/incidents/${incident._id}/deliveries`;

    const undelivered = await call(stack, 'GET', `${path}?state=undelivered`);
    assert.equal(undelivered.status, 200, JSON.stringify(undelivered.body));
    assert.deepEqual(
      undelivered.body.items.map((d: { subscriberId: string }) => d.subscriberId),
      ['S-0', 'S-3', 'S-6', 'S-9'],
    );
    assert.equal(undelivered.body.items[0].to, '+393470000000');
    assert.equal(undelivered.body.items[0].history[0].state, 'planned');

    const restored = await call(stack, 'GET', `${path}?kind=restored&state=accepted&state=delivered`);
    assert.equal(restored.body.items.length, 5);
    const voice = await call(stack, 'GET', `${path}?channel=voice`);
    assert.deepEqual(
      voice.body.items.map((d: { id: string }) => d.id),
      [records[17]!._id],
    );

    const seen: string[] = [];
    let after: string | null = null;
    do {
      const r = await call(stack, 'GET', `${path}?limit=5${after ? `&after=${after}` : ''}`);
      seen.push(...r.body.items.map((d: { id: string }) => d.id));
      after = r.body.next;
    } while (after);
    assert.deepEqual(
      seen,
      records
        .slice(0, 18)
        .map((d) => d._id)
        .sort(),
      "every record of this incident once, none of another's",
    );

    const foreign = Buffer.from(records[18]!._id).toString('base64url');
    assert.equal(
      (await call(stack, 'GET', `${path}?after=${foreign}`)).body.error.code,
      'invalid_cursor',
      "another incident's cursor is refused",
    );
    assert.equal((await call(stack, 'GET', '/v1/incidents/inc_ffffffffffffffff/deliveries')).status, 404);
  });

  test('the live incident lists the records its workflow wrote', async () => {
    const live = (await call(stack, 'GET', '/v1/incidents?source=api&status=open&limit=1')).body.items[0];
    assert.equal(live.key, 'live-1');
    await eventually('the live incident notified', async () =>
      (await call(stack, 'GET', `/v1/incidents/${live.id}`)).body.phase === 'notified' ? true : undefined,
    );
    // Nobody pays for SMS under tower-live: no SMS, but the public status feed was told, in both languages.
    assert.deepEqual((await call(stack, 'GET', `/v1/incidents/${live.id}/deliveries?channel=sms`)).body, {
      items: [],
      next: null,
    });
    const feed = (await call(stack, 'GET', `/v1/incidents/${live.id}/deliveries?channel=status&state=delivered`)).body
      .items;
    assert.deepEqual(feed.map((d: { kind: string; language: string }) => `${d.kind}/${d.language}`).sort(), [
      'outage/en',
      'outage/it',
    ]);
    assert.deepEqual(
      feed[0].history.map((h: { state: string }) => h.state),
      ['planned', 'sending', 'delivered'],
    );
  });
});
