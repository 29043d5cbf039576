/**
 * What operators and monitoring do to an open incident, end to end through the API, the workflow
 * (dev server), FerretDB and the Plivo simulator: a new estimate texts those who asked for it,
 * staff are escalated to by the rules' timers and by hand and no more once it is resolved, added
 * sites tell only the newly affected, a false alarm is withdrawn, and alerts correlate: a site
 * below an open incident joins it, a site above absorbs it, a flapping site texts once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIntegrations } from '../../ingest/integrations';
import { eventually } from '../support/env';
import { call, type TestStack } from '../support/stack';
import { phaseOf, startDemoStack, writeTestRules } from '../support/scenario';

const NOC_PHONE = '+390577000000';

function rulesFile(name: string, escalateAfter: string): string {
  return writeTestRules(
    `actions-${name}`,
    `  sms: { maxParts: 2 }
  wait: 0
  restoration: true
  updates: { every: off, onEtaChange: true }
rules:
  - name: status-feed
    notify: { channel: feed, template: feed }
    continue: true
  - name: noc
    when:
      incident.kind: outage
    escalate:
      - after: ${escalateAfter}
        contact: noc-oncall
        channel: sms
        template: staff
        repeat: { every: 3s, times: 1 }
    continue: true
  - name: paid-sms
    when:
      subscriber.paidSms: true
      subscriber.onAffectedSite: true
    notify: sms
`,
  );
}

// Paying, not opted out, by site (store/demo.ts).
const LODI_AP = ['+393471000001', '+393471000002']; // ap-lodi-01-a
const LODI_TOWER = '+393471000004'; // tower-lodi-01, above everything in Lodi
const VECCHIO = ['+393471000005', '+393471000007']; // ap-lodi-02-a and tower-lodi-02
const CREMA = ['+393471000101', '+393471000103'];

/** Texts each phone received, in order. */
async function texts(stack: TestStack, phones: string[]): Promise<Record<string, string[]>> {
  const inbox = await stack.inbox();
  return Object.fromEntries(phones.map((p) => [p, (inbox[p] ?? []).map((m) => m.text)]));
}

async function received(stack: TestStack, phones: string[], count: number) {
  return eventually(`${count} messages each on ${phones.join(', ')}`, async () => {
    const t = await texts(stack, phones);
    return phones.every((p) => t[p].length >= count) ? t : undefined;
  });
}

describe('operators act on an open incident', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startDemoStack(__filename, rulesFile('ops', '1h'));
  });
  after(async () => stack?.stop());

  test('a new estimate texts those notified; a word alone reaches only the public feed', async () => {
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-crema-01'] })).body.id;
    await phaseOf(stack, id, 'notified');
    await received(stack, CREMA, 1);

    const eta = new Date(Date.now() + 3 * 3600_000).toISOString();
    const r = await call(stack, 'POST', `/v1/incidents/${id}/updates`, {
      text: 'Tecnici sul posto',
      estimatedEnd: eta,
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.estimatedEnd, eta);
    const after2 = await received(stack, CREMA, 2);
    for (const p of CREMA)
      assert.match(after2[p][1], /Aggiornamento guasto a Crema: lavori in corso, ripristino previsto/);

    // The same estimate again, with a new word: no SMS, the feed and the incident carry it.
    await call(stack, 'POST', `/v1/incidents/${id}/updates`, { text: 'Sostituzione batterie', estimatedEnd: eta });
    await eventually('the second update on the incident', async () =>
      (await stack.store.incidents.findOne({ _id: id }))?.updates?.length === 2 ? true : undefined,
    );
    await eventually('the feed update', async () =>
      (await stack.store.deliveries.countDocuments({
        incidentId: id,
        channel: 'status',
        kind: 'update',
        state: 'delivered',
      })) === 4
        ? true
        : undefined,
    );
    assert.deepEqual((await texts(stack, CREMA))[CREMA[0]].length, 2, 'no SMS for a word without a new estimate');

    const bad = await call(stack, 'POST', `/v1/incidents/${id}/updates`, { estimatedEnd: 'tomorrow' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /estimatedEnd/);

    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    const done = await phaseOf(stack, id, 'billed');
    assert.deepEqual(done.deliveries.sms, {
      outage: { delivered: 2 },
      update: { delivered: 2 },
      restored: { delivered: 2 },
    });
    const late = await call(stack, 'POST', `/v1/incidents/${id}/updates`, { text: 'too late' });
    assert.equal(late.status, 409);
    assert.equal(late.body.error.code, 'incident_closed');
  });

  test('escalating by hand messages the staff contact; more sites tell only the newly affected', async () => {
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['ap-lodi-01-a'] })).body.id;
    await phaseOf(stack, id, 'notified');
    await received(stack, LODI_AP, 1);

    const esc = await call(stack, 'POST', `/v1/incidents/${id}/escalate`, { reason: 'customers calling' });
    assert.equal(esc.status, 202);
    const noc = await received(stack, [NOC_PHONE], 1);
    assert.match(noc[NOC_PHONE][0], /Avviso NOC: guasto major non risolto/);
    await phaseOf(stack, id, 'escalated');

    // The tower above goes down too: its own subscriber is told, the access point's are not told again.
    const wider = await call(stack, 'POST', `/v1/incidents/${id}/scope`, { siteIds: ['tower-lodi-01'] });
    assert.equal(wider.status, 202, JSON.stringify(wider.body));
    await received(stack, [LODI_TOWER, ...VECCHIO], 1);
    const unknown = await call(stack, 'POST', `/v1/incidents/${id}/scope`, { siteIds: ['tower-nowhere'] });
    assert.equal(unknown.status, 422);
    assert.equal(unknown.body.error.code, 'unknown_site');

    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    const done = await phaseOf(stack, id, 'billed');
    const all = await texts(stack, [...LODI_AP, LODI_TOWER, ...VECCHIO]);
    for (const [phone, list] of Object.entries(all)) {
      assert.equal(
        list.filter((t) => /^(Avviso guasto|Outage):/.test(t)).length,
        1,
        `${phone}: one outage notice (${list.join(' | ')})`,
      );
      assert.equal(
        list.filter((t) => /^(Servizio internet ripristinato|Internet service restored)/.test(t)).length,
        1,
        `${phone}: one restoration notice (${list.join(' | ')})`,
      );
    }
    const incident = await stack.store.incidents.findOne({ _id: id });
    assert.deepEqual(incident!.areas, ['Lodi', 'Lodi Vecchio']);
    assert.ok(done.timeline.some((t: { phase: string }) => t.phase === 'escalated'));
  });

  test('a false alarm is withdrawn: those told are told so, nothing else is sent', async () => {
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-crema-01'] })).body.id;
    await phaseOf(stack, id, 'notified');
    const before = await texts(stack, CREMA);
    const r = await call(stack, 'POST', `/v1/incidents/${id}/cancel`, { reason: 'sensor fault' });
    assert.equal(r.status, 202);
    const done = await phaseOf(stack, id, 'billed');
    assert.ok(done.timeline.some((t: { phase: string }) => t.phase === 'cancelled'));
    const now = await texts(stack, CREMA);
    for (const p of CREMA) {
      assert.equal(now[p].length, before[p].length + 1);
      assert.match(now[p].at(-1)!, /Falso allarme a Crema/);
    }
    assert.deepEqual(done.deliveries.sms.withdrawn, { delivered: 2 });
    assert.equal(done.deliveries.sms.restored, undefined);
    const again = await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    assert.equal(again.status, 202, 'resolving a cancelled incident is harmless');
  });
});

describe('staff escalation by the rules', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startDemoStack(__filename, rulesFile('timers', '4s'));
  });
  after(async () => stack?.stop());

  test('the on-call contact is messaged after the delay and once more, then no more once resolved', async () => {
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-crema-01'] })).body.id;
    await phaseOf(stack, id, 'escalated');
    await received(stack, [NOC_PHONE], 2); // after 4 s, and the repeat 3 s later
    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    await phaseOf(stack, id, 'billed');
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal((await texts(stack, [NOC_PHONE]))[NOC_PHONE].length, 2, 'no escalation after the resolution');
  });
});

describe('alert correlation and flapping', () => {
  let stack: TestStack;
  const token = 'corr-token';
  const alert = (name: string, site: string, status: 'firing' | 'resolved') => ({
    version: '4',
    status,
    receiver: 'avviso',
    groupKey: `{}:{alertname="${name}"}`,
    alerts: [
      {
        status,
        labels: { alertname: name, device: site, severity: 'critical' },
        annotations: { summary: `${site} down` },
        startsAt: new Date(Date.now() - 1000).toISOString(),
        endsAt: status === 'resolved' ? new Date().toISOString() : '0001-01-01T00:00:00Z',
        fingerprint: `fp-${name}`,
      },
    ],
  });
  const post = (body: unknown) =>
    call(stack, 'POST', '/v1/ingest/alertmanager/noc', body, { authorization: `Bearer ${token}` }, { key: null });

  before(async () => {
    const integrations = parseIntegrations(
      `integrations:\n  - { name: noc, source: alertmanager, token: ${token}, site: { label: device } }\n`,
      'test-integrations.yaml',
      {},
    );
    stack = await startDemoStack(__filename, rulesFile('corr', '1h'), { integrations, alertSettleSeconds: 6 });
  });
  after(async () => stack?.stop());

  test('an alert below an open incident joins it; one above absorbs it; everyone is told once', async () => {
    const first = await post(alert('ApDown', 'ap-lodi-02-a', 'firing'));
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const apIncident = first.body.results?.[0]?.incidentId;
    assert.ok(apIncident, JSON.stringify(first.body));
    await phaseOf(stack, apIncident, 'notified');

    // The tower above it goes down: its incident absorbs the access point's.
    const tower = await post(alert('TowerDown', 'tower-lodi-02', 'firing'));
    const towerResult = tower.body.results[0];
    assert.equal(towerResult.action, 'absorbed', JSON.stringify(tower.body));
    assert.equal(towerResult.incidentId, apIncident);
    // And the access point below it again (say a second check): it joins.
    const joined = await post(alert('ApPing', 'ap-lodi-02-a', 'firing'));
    assert.equal(joined.body.results[0].action, 'joined');
    await received(stack, VECCHIO, 1);

    // The access-point check clears first: the incident stays open for the tower.
    await post(alert('ApPing', 'ap-lodi-02-a', 'resolved'));
    const still = (await call(stack, 'GET', `/v1/incidents/${apIncident}`)).body;
    assert.equal(still.phase, 'notified');

    await post(alert('TowerDown', 'tower-lodi-02', 'resolved'));
    await post(alert('ApDown', 'ap-lodi-02-a', 'resolved'));
    await phaseOf(stack, apIncident, 'billed');
    const t = await texts(stack, VECCHIO);
    for (const p of VECCHIO) assert.equal(t[p].length, 2, `${p}: one outage, one restoration (${t[p].join(' | ')})`);
    assert.equal(await stack.store.incidents.countDocuments({}), 1, 'no second incident');
  });

  test('a flapping site (down, up, down within minutes) texts once, and once when it is really back', async () => {
    const down = await post(alert('CremaDown', 'tower-crema-01', 'firing'));
    const id = down.body.results[0].incidentId;
    await phaseOf(stack, id, 'notified');
    await received(stack, CREMA, 1);
    await post(alert('CremaDown', 'tower-crema-01', 'resolved'));
    const settling = (await call(stack, 'GET', `/v1/incidents/${id}`)).body;
    assert.equal(settling.phase, 'notified', 'restoration waits while the resolve settles');
    const again = await post(alert('CremaDown', 'tower-crema-01', 'firing'));
    assert.equal(again.body.results[0].action, 'reopened', JSON.stringify(again.body));
    await new Promise((r) => setTimeout(r, 7000));
    assert.equal(
      (await call(stack, 'GET', `/v1/incidents/${id}`)).body.phase,
      'notified',
      'reopened: still open after the settle time',
    );
    await post(alert('CremaDown', 'tower-crema-01', 'resolved'));
    await phaseOf(stack, id, 'billed');
    const t = await texts(stack, CREMA);
    for (const p of CREMA)
      assert.deepEqual(
        t[p].map((x) => (/Servizio internet ripristinato/.test(x) ? 'restored' : /guasto/.test(x) ? 'outage' : x)),
        ['outage', 'restored'],
      );
  });
});
