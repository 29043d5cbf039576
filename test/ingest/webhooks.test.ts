/**
 * Monitoring webhooks through the whole system (API, Temporal worker, FerretDB, the Plivo
 * simulator): each tool's payload opens, finds or resolves the incident it should; repeats are
 * recognised; refused requests get the 4xx that says why and are kept for inspection.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDemoDataIfEmpty, DEMO_SUBSCRIBERS } from '../../store/demo';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';
import { parseIntegrations } from '../../ingest/integrations';
import { grafanaSignature } from '../../ingest/auth';
import * as p from './payloads';

const INTEGRATIONS = parseIntegrations(
  `
defaults: { time_zone: Europe/Rome }
integrations:
  - { name: noc, source: alertmanager, token: am-token-123, site: { label: device } }
  - { name: signed, source: grafana, token: grafana-token-1, hmac_secret: grafana-hmac-secret, site: { label: device } }
  - { name: noc, source: zabbix, token: zabbix-token-1, site: [{ label: site }, { field: host }] }
  - { name: noc, source: uptime-kuma, token: kuma-token-1, site: [{ label: site }, { field: host }] }
  - name: noc
    source: librenms
    token: librenms-token
    site: { lookup: { by: hostname, table: { lodi-vecchio.noc.example: tower-lodi-02 } } }
  - { name: noc, source: icinga2, token: icinga-token-1, site: { field: host } }
  - { name: noc, source: nagios, token: nagios-token-1, site: { field: host } }
  - { name: noc, source: healthchecks, token: hc-token-123, site: { label: site } }
  - name: noc
    source: prtg
    token: prtg-token-123
    site: { lookup: { by: ip, table: { 10.20.0.11: ap-lodi-01-a } } }
  - { name: noc, source: cloudevents, token: ce-token-123, site: { field: site } }
`,
  'test-integrations.yaml',
  {},
);

interface PostOptions {
  name?: string;
  token?: string | null;
  contentType?: string;
  headers?: Record<string, string>;
  query?: string;
}

describe('monitoring webhooks', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(__filename, {
      deliveryPolicy: { deliveryTimeoutMs: 10_000, maxAttempts: 3, sweepEveryMs: 200 },
      integrations: INTEGRATIONS,
    });
    await loadDemoDataIfEmpty(stack.store);
  });
  after(async () => stack?.stop());
  // Each test starts with no incident open: alert correlation would otherwise join a new alert
  // to an incident a previous test left open on the same or an upstream site.
  const OPEN = ['detected', 'notifying', 'notified', 'escalated'];
  beforeEach(async () => {
    for (const i of await stack.store.incidents.find({ phase: { $in: OPEN as never[] } }).toArray())
      await call(stack, 'POST', `/v1/incidents/${i._id}/resolve`, {});
    await eventually('no incident open', async () =>
      (await stack.store.incidents.countDocuments({ phase: { $in: OPEN as never[] } })) === 0 ? true : undefined,
    );
  });

  const TOKENS: Record<string, string> = {
    alertmanager: 'am-token-123',
    grafana: 'grafana-token-1',
    zabbix: 'zabbix-token-1',
    'uptime-kuma': 'kuma-token-1',
    librenms: 'librenms-token',
    icinga2: 'icinga-token-1',
    nagios: 'nagios-token-1',
    healthchecks: 'hc-token-123',
    prtg: 'prtg-token-123',
    cloudevents: 'ce-token-123',
  };

  async function post(source: string, body: unknown, o: PostOptions = {}) {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    const token = o.token === undefined ? TOKENS[source] : o.token;
    const res = await fetch(`${stack.apiUrl}/v1/ingest/${source}/${o.name ?? 'noc'}${o.query ?? ''}`, {
      method: 'POST',
      headers: {
        'content-type': o.contentType ?? 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...o.headers,
      },
      body: text,
    });
    const answer = await res.text();
    return { status: res.status, body: answer ? JSON.parse(answer) : undefined };
  }

  const incident = async (id: string) => (await call(stack, 'GET', `/v1/incidents/${id}`)).body;
  // `resolved` is followed at once by `billed` (the incident's cost recorded): either will do.
  const phaseOf = (id: string, phase: string) =>
    eventually(`incident ${id} to be ${phase}`, async () => {
      const now = (await incident(id)).phase;
      return now === phase || (phase === 'resolved' && now === 'billed') ? true : undefined;
    });
  const lastRejected = async () =>
    (await stack.store.rejectedPayloads.find().sort({ receivedAt: -1 }).limit(1).toArray())[0]!;
  const phones = (ids: string[]) =>
    DEMO_SUBSCRIBERS.filter((s) => ids.includes(s._id))
      .flatMap((s) => s.phones)
      .sort();

  test('Alertmanager: firing opens an incident and texts its subscribers once; a repeat is recognised; resolved restores; firing again is a new episode', async () => {
    const firing = p.alertmanager({
      device: 'tower-crema-01',
      fingerprint: 'c7e3a1b2c3d4e5f6',
      summary: 'Crema tower unreachable',
    });
    const opened = await post('alertmanager', firing);
    assert.equal(opened.status, 202, JSON.stringify(opened.body));
    assert.equal(opened.body.received, 1);
    const [result] = opened.body.results;
    assert.equal(result.action, 'opened');
    assert.equal(result.dedupKey, 'alertmanager:noc:c7e3a1b2c3d4e5f6');
    assert.equal(result.episode, 1);
    const id: string = result.incidentId;

    const inc = await incident(id);
    assert.deepEqual(inc.siteIds, ['tower-crema-01']);
    assert.equal(inc.key, 'alertmanager:noc:c7e3a1b2c3d4e5f6#1');
    assert.equal(inc.source, 'alertmanager/noc');
    assert.equal(inc.severity, 'critical');
    assert.equal(inc.title, 'Crema tower unreachable');

    // Stored with the raw body, as received, before the answer.
    const stored = await stack.store.alertEvents.findOne({ _id: result.eventId });
    assert.equal(stored?.raw.body, JSON.stringify(firing));
    assert.equal(stored?.raw.contentType, 'application/json');
    assert.equal(stored?.raw.headers.authorization, undefined, 'credentials are never stored');
    assert.equal(stored?.result?.action, 'opened');

    const repeat = await post('alertmanager', firing);
    assert.equal(repeat.status, 200, 'every alert was a repeat');
    assert.deepEqual(repeat.body.results[0], { ...result, duplicate: true });

    await phaseOf(id, 'notified');
    const crema = phones(['C-2001', 'C-2003']);
    let inbox = await stack.inbox();
    for (const phone of crema)
      assert.equal(
        inbox[phone]?.filter((m) => /guasto/.test(m.text)).length,
        1,
        `${phone} gets one outage SMS despite the repeat`,
      );
    assert.equal(inbox[phones(['C-2002'])[0]!], undefined, 'a subscriber without the SMS option gets nothing');

    const resolved = await post(
      'alertmanager',
      p.alertmanager({ device: 'tower-crema-01', fingerprint: 'c7e3a1b2c3d4e5f6', status: 'resolved' }),
    );
    assert.equal(resolved.status, 202);
    assert.equal(resolved.body.results[0].action, 'resolved');
    assert.equal(resolved.body.results[0].incidentId, id);
    await phaseOf(id, 'resolved');
    inbox = await stack.inbox();
    for (const phone of crema) assert.match(inbox[phone]!.at(-1)!.text, /ripristinato/);

    const again = await post(
      'alertmanager',
      p.alertmanager({ device: 'tower-crema-01', fingerprint: 'c7e3a1b2c3d4e5f6', startsAt: '2026-05-05T08:00:00Z' }),
    );
    assert.equal(again.body.results[0].action, 'opened');
    assert.equal(again.body.results[0].episode, 2);
    assert.notEqual(again.body.results[0].incidentId, id, 'the next outage of the same alert is a new incident');
    const second = await post(
      'alertmanager',
      p.alertmanager({
        device: 'tower-crema-01',
        fingerprint: 'c7e3a1b2c3d4e5f6',
        status: 'resolved',
        startsAt: '2026-05-05T08:00:00Z',
        endsAt: '2026-05-05T08:30:00Z',
      }),
    );
    assert.equal(second.body.results[0].action, 'resolved');
  });

  test('Alertmanager resends (the same bytes again) are answered as repeats, and only to the holder of the token, in a type we read', async () => {
    const firing = p.alertmanager({ device: 'ap-lodi-02-a', fingerprint: 'd7e3a1b2c3d4e5f7' });
    const first = await post('alertmanager', firing);
    assert.equal(first.status, 202, JSON.stringify(first.body));
    const [result] = first.body.results;
    assert.ok(result.action !== 'accepted' && result.action !== 'rejected', JSON.stringify(result));

    const resends = await Promise.all([1, 2, 3].map(() => post('alertmanager', firing)));
    for (const resend of resends) {
      assert.equal(resend.status, 200);
      assert.deepEqual(resend.body, { received: 1, results: [{ ...result, duplicate: true }] });
    }
    const wrongToken = await post('alertmanager', firing, { token: 'not-the-token' });
    assert.equal(wrongToken.status, 401, 'a resend is authenticated like any request');
    const unread = await post('alertmanager', JSON.stringify(firing), { contentType: 'application/xml' });
    assert.equal(unread.status, 415, 'the same bytes in a type we do not read are refused');
    assert.equal(
      await stack.store.alertEvents.countDocuments({ dedupKey: 'alertmanager:noc:d7e3a1b2c3d4e5f7' }),
      1,
      'one alert stored',
    );
  });

  test('Alertmanager: each alert of a mixed batch is handled on its own', async () => {
    const batch = p.alertmanager(
      { device: 'tower-lodi-01', fingerprint: 'b100000000000001' },
      // Not below tower-lodi-01 (that would join its incident: see the correlation tests).
      { device: 'ap-crema-01-a', fingerprint: 'b100000000000002', severity: 'major' },
      { device: 'tower-lodi-02', fingerprint: 'b100000000000003', status: 'resolved' },
      { device: 'tower-lodi-02', fingerprint: 'b100000000000004', severity: 'warning' },
      { device: 'tower-nowhere', fingerprint: 'b100000000000005' },
    );
    const res = await post('alertmanager', batch);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.deepEqual(
      res.body.results.map((r: { action: string }) => r.action),
      ['opened', 'opened', 'not_open', 'recorded', 'rejected'],
    );
    assert.match(res.body.results[2].reason, /no open incident/);
    assert.match(res.body.results[3].reason, /below the integration's min_severity/);
    assert.match(res.body.results[4].reason, /no site with id "tower-nowhere"/);
    assert.equal((await incident(res.body.results[1].incidentId)).severity, 'major');

    const next = await post(
      'alertmanager',
      p.alertmanager(
        { device: 'tower-lodi-01', fingerprint: 'b100000000000001', status: 'resolved' },
        { device: 'ap-crema-01-a', fingerprint: 'b100000000000002', severity: 'major' },
      ),
    );
    assert.equal(next.status, 202);
    assert.equal(next.body.results[0].action, 'resolved');
    assert.deepEqual([next.body.results[1].action, next.body.results[1].duplicate], ['opened', true]);
    await phaseOf(res.body.results[0].incidentId, 'resolved');
    await post(
      'alertmanager',
      p.alertmanager({ device: 'ap-crema-01-a', fingerprint: 'b100000000000002', status: 'resolved' }),
    );
  });

  test('Grafana: a signed payload is accepted; a bad or missing signature is refused with 403 and kept', async () => {
    const body = JSON.stringify(p.grafana({ device: 'ap-lodi-01-a', fingerprint: 'a9a9a9a9a9a9a9a9' }));
    const signed = await post('grafana', body, {
      name: 'signed',
      headers: { 'x-grafana-alerting-signature': grafanaSignature('grafana-hmac-secret', Buffer.from(body)) },
    });
    assert.equal(signed.status, 202, JSON.stringify(signed.body));
    assert.equal(signed.body.results[0].action, 'opened');
    assert.equal(signed.body.results[0].dedupKey, 'grafana:signed:1:a9a9a9a9a9a9a9a9');

    const forged = await post('grafana', body.replace('ap-lodi-01-a', 'tower-lodi-01'), {
      name: 'signed',
      headers: { 'x-grafana-alerting-signature': grafanaSignature('grafana-hmac-secret', Buffer.from(body)) },
    });
    assert.equal(forged.status, 403);
    assert.equal(forged.body.error.code, 'bad_signature');
    assert.match(forged.body.error.message, /does not match/);
    const kept = await lastRejected();
    assert.equal(kept.code, 'bad_signature');
    assert.match(kept.raw.body, /tower-lodi-01/);

    const unsigned = await post('grafana', body, { name: 'signed' });
    assert.equal(unsigned.status, 403);
    assert.match(unsigned.body.error.message, /header is missing/);

    const resolved = JSON.stringify(
      p.grafana({ device: 'ap-lodi-01-a', fingerprint: 'a9a9a9a9a9a9a9a9', status: 'resolved' }),
    );
    const done = await post('grafana', resolved, {
      name: 'signed',
      headers: { 'x-grafana-alerting-signature': grafanaSignature('grafana-hmac-secret', Buffer.from(resolved)) },
    });
    assert.equal(done.body.results[0].action, 'resolved');
  });

  test('Zabbix: problem, repeat, acknowledgement, recovery', async () => {
    const problem = await post('zabbix', p.zabbix({ eventId: '900001', host: 'tower-lodi-02' }));
    assert.equal(problem.status, 202, JSON.stringify(problem.body));
    assert.equal(problem.body.results[0].action, 'opened');
    const id = problem.body.results[0].incidentId;
    assert.equal((await incident(id)).severity, 'critical');
    const stored = await stack.store.alertEvents.findOne({ _id: problem.body.results[0].eventId });
    assert.equal(stored?.startsAt?.toISOString(), '2026-05-04T13:02:11.000Z');

    assert.equal(
      (await post('zabbix', p.zabbix({ eventId: '900001', host: 'tower-lodi-02' }))).body.results[0].duplicate,
      true,
    );
    const ack = await post('zabbix', p.zabbix({ eventId: '900001', host: 'tower-lodi-02', update: '1', ack: 'Yes' }));
    assert.equal(ack.body.results[0].action, 'recorded');
    const recovery = await post('zabbix', p.zabbix({ eventId: '900001', host: 'tower-lodi-02', value: '0' }));
    assert.equal(recovery.body.results[0].action, 'resolved');
    assert.equal(recovery.body.results[0].incidentId, id);
    await phaseOf(id, 'resolved');
  });

  test('Uptime Kuma (multipart): DOWN opens, UP resolves, the next DOWN is a new incident', async () => {
    const multipart = async (payload: unknown) => {
      const form = new FormData();
      form.append('data', JSON.stringify(payload));
      const res = await fetch(`${stack.apiUrl}/v1/ingest/uptime-kuma/noc`, {
        method: 'POST',
        headers: { 'x-avviso-token': 'kuma-token-1' },
        body: form,
      });
      return {
        status: res.status,
        body: (await res.json()) as { results: { action: string; incidentId: string; episode: number }[] },
      };
    };
    const down = await multipart(p.uptimeKuma({ monitorId: 41, site: 'ap-crema-01-a' }));
    assert.equal(down.status, 202, JSON.stringify(down.body));
    assert.equal(down.body.results[0]!.action, 'opened');
    assert.deepEqual((await incident(down.body.results[0]!.incidentId)).siteIds, ['ap-crema-01-a']);
    const up = await post(
      'uptime-kuma',
      p.uptimeKuma({ monitorId: 41, site: 'ap-crema-01-a', status: 1, time: '2026-05-04 13:20:00.000' }),
    );
    assert.equal(up.body.results[0].action, 'resolved');
    const downAgain = await post(
      'uptime-kuma',
      p.uptimeKuma({ monitorId: 41, site: 'ap-crema-01-a', time: '2026-05-06 09:00:00.000' }),
    );
    assert.equal(downAgain.body.results[0].action, 'opened');
    assert.equal(downAgain.body.results[0].episode, 2);
    assert.notEqual(downAgain.body.results[0].incidentId, down.body.results[0]!.incidentId);
    await post(
      'uptime-kuma',
      p.uptimeKuma({ monitorId: 41, site: 'ap-crema-01-a', status: 1, time: '2026-05-06 09:10:00.000' }),
    );
  });

  test('LibreNMS (text/plain, site by host name lookup): alert then recovery', async () => {
    const alert = await post('librenms', p.librenms({ uid: '7001' }), { contentType: 'text/plain' });
    assert.equal(alert.status, 202, JSON.stringify(alert.body));
    assert.equal(alert.body.results[0].action, 'opened');
    assert.deepEqual((await incident(alert.body.results[0].incidentId)).siteIds, ['tower-lodi-02']);
    const recovered = await post('librenms', p.librenms({ uid: '7002', state: '0' }), { contentType: 'text/plain' });
    assert.equal(recovered.body.results[0].action, 'resolved');
  });

  test('Icinga 2 and Nagios (form-encoded, from the shipped curl command)', async () => {
    const form = 'application/x-www-form-urlencoded';
    const icinga = await post('icinga2', p.monitoringForm({ host: 'ap-lodi-01-a' }), { contentType: form });
    assert.equal(icinga.status, 202, JSON.stringify(icinga.body));
    assert.equal(icinga.body.results[0].action, 'opened');
    const renotified = await post('icinga2', p.monitoringForm({ host: 'ap-lodi-01-a', timet: '1777901531' }), {
      contentType: form,
    });
    assert.equal(renotified.body.results[0].duplicate, true, 'a re-notification of the same problem');
    const recovery = await post(
      'icinga2',
      p.monitoringForm({ host: 'ap-lodi-01-a', type: 'RECOVERY', state: 'UP', lastChange: '1777900000' }),
      { contentType: form },
    );
    assert.equal(recovery.body.results[0].action, 'resolved');

    const nagios = await post(
      'nagios',
      p.monitoringForm({ host: 'tower-lodi-01', service: 'backhaul', state: 'CRITICAL', problemId: '5501' }),
      { contentType: form },
    );
    assert.equal(nagios.body.results[0].action, 'opened');
    assert.equal((await incident(nagios.body.results[0].incidentId)).severity, 'major');
    const nagiosRecovery = await post(
      'nagios',
      p.monitoringForm({
        host: 'tower-lodi-01',
        service: 'backhaul',
        type: 'RECOVERY',
        state: 'OK',
        problemId: '0',
        lastProblemId: '5501',
      }),
      { contentType: form },
    );
    assert.equal(nagiosRecovery.body.results[0].action, 'resolved');
    assert.equal(nagiosRecovery.body.results[0].incidentId, nagios.body.results[0].incidentId);
  });

  test('Healthchecks.io: down then up', async () => {
    const down = await post('healthchecks', p.healthchecks({ tags: 'site:ap-lodi-02-a' }));
    assert.equal(down.body.results[0].action, 'opened');
    const up = await post(
      'healthchecks',
      p.healthchecks({ tags: 'site:ap-lodi-02-a', status: 'up', now: '2026-05-04T13:30:00+00:00' }),
    );
    assert.equal(up.body.results[0].action, 'resolved');
  });

  test('PRTG (form-encoded, token in the URL, local time): down then up', async () => {
    const form = 'application/x-www-form-urlencoded';
    const down = await post('prtg', p.prtg(), { contentType: form, token: null, query: '?token=prtg-token-123' });
    assert.equal(down.status, 202, JSON.stringify(down.body));
    assert.equal(down.body.results[0].action, 'opened');
    const stored = await stack.store.alertEvents.findOne({ _id: down.body.results[0].eventId });
    assert.equal(stored?.startsAt?.toISOString(), '2026-05-04T13:02:11.000Z', '15:02 in Rome');
    assert.deepEqual(stored?.siteIds, ['ap-lodi-01-a']);
    const up = await post('prtg', p.prtg({ status: 'Up', datetime: '04.05.2026 15:30:00' }), {
      contentType: form,
      token: null,
      query: '?token=prtg-token-123',
    });
    assert.equal(up.body.results[0].action, 'resolved');
  });

  test('CloudEvents: structured firing, binary resolution', async () => {
    const firing = await post('cloudevents', p.cloudEvent({ id: 'ce-100', dedupKey: 'tower-lodi-02/power-x' }), {
      contentType: 'application/cloudevents+json',
    });
    assert.equal(firing.status, 202, JSON.stringify(firing.body));
    assert.equal(firing.body.results[0].action, 'opened');
    const { data } = p.cloudEvent({ dedupKey: 'tower-lodi-02/power-x' });
    const resolved = await post('cloudevents', data, {
      headers: {
        'ce-specversion': '1.0',
        'ce-id': 'ce-101',
        'ce-source': '//noc.example/checker',
        'ce-type': 'net.example.alert.resolved',
        'ce-time': '2026-05-04T13:30:00Z',
      },
    });
    assert.equal(resolved.status, 202, JSON.stringify(resolved.body));
    assert.equal(resolved.body.results[0].action, 'resolved');
    assert.equal(resolved.body.results[0].incidentId, firing.body.results[0].incidentId);
  });

  test('refusals say why, and are kept for inspection without the token', async () => {
    const wrong = await post('alertmanager', p.alertmanager({ device: 'tower-lodi-01' }), { token: 'not-the-token' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error.code, 'bad_token');
    let kept = await lastRejected();
    assert.deepEqual(
      [kept.status, kept.code, kept.source, kept.integration, kept.tokenVia],
      [401, 'bad_token', 'alertmanager', 'noc', 'bearer'],
    );
    assert.ok(!JSON.stringify(kept).includes('not-the-token'), 'the presented token is not stored');

    const none = await post('alertmanager', p.alertmanager({ device: 'tower-lodi-01' }), { token: null });
    assert.equal(none.status, 401);
    assert.match(none.body.error.message, /Authorization: Bearer/);

    const otherTool = await post('zabbix', p.zabbix(), { token: TOKENS.alertmanager });
    assert.equal(otherTool.status, 401, "one integration's token does not open another");

    const unknown = await post('alertmanager', p.alertmanager(), { name: 'elsewhere' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'unknown_integration');
    assert.equal((await post('splunk', {}, { token: 'x' })).status, 404);

    const malformedBody = p.alertmanager({ device: 'tower-lodi-01' });
    (malformedBody.alerts[0] as { status: string }).status = 'fring';
    const malformed = await post('alertmanager', malformedBody);
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.error.code, 'malformed_payload');
    assert.equal(malformed.body.error.details.field, 'body.alerts[0].status');
    assert.match(
      malformed.body.error.message,
      /^body\.alerts\[0\]\.status must be one of "firing", "resolved", got "fring"/,
    );
    kept = await lastRejected();
    assert.deepEqual([kept.status, kept.field], [400, 'body.alerts[0].status']);
    assert.equal(kept.raw.body, JSON.stringify(malformedBody), 'the payload is kept as received');

    const notJson = await post('zabbix', '{"event_id": 88', {});
    assert.equal(notJson.status, 400);
    assert.match(notJson.body.error.message, /^body is not valid JSON/);

    const unknownSite = await post(
      'alertmanager',
      p.alertmanager({ device: 'tower-nowhere', fingerprint: 'dead00000000beef' }),
    );
    assert.equal(unknownSite.status, 422);
    assert.equal(unknownSite.body.error.code, 'unknown_site');
    assert.match(unknownSite.body.error.message, /no site with id "tower-nowhere"/);
    kept = await lastRejected();
    assert.equal(kept.code, 'unknown_site');
    assert.equal(await stack.store.alertIncidents.countDocuments({ dedupKey: 'alertmanager:noc:dead00000000beef' }), 0);

    const noSite = await post('alertmanager', p.alertmanager({ fingerprint: 'dead00000000bee2' }));
    assert.equal(noSite.status, 422);
    assert.match(noSite.body.error.message, /no label "device"/);

    const xml = await post('prtg', '<alert/>', { contentType: 'application/xml' });
    assert.equal(xml.status, 415);
  });

  test('the OpenAPI document describes the ingest route', async () => {
    const doc = await call(stack, 'GET', '/openapi.json');
    const route = doc.body.paths['/v1/ingest/{source}/{integration}'].post;
    assert.ok(route);
    assert.match(route.description, /Uptime Kuma|uptime-kuma/);
    assert.ok(route.responses['202']);
  });
});
