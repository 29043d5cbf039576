/**
 * Each tool's payload to normalized alert events: firing, resolved, repeats (same event id),
 * batches, local times placed by the integration's time zone, and malformed payloads refused
 * with the path of the wrong field.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NORMALIZERS, type NormalizeContext } from '../../ingest/normalizers';
import type { IngestSource } from '../../ingest/integrations';
import { decodeBody } from '../../ingest/body';
import { IngestError } from '../../ingest/errors';
import * as p from './payloads';

const ctx = (headers: NormalizeContext['headers'] = {}): NormalizeContext => ({
  integration: 'noc',
  timeZone: 'Europe/Rome',
  receivedAt: new Date('2026-05-04T13:05:00Z'),
  headers,
});
const run = (source: IngestSource, payload: unknown, headers: NormalizeContext['headers'] = {}) =>
  NORMALIZERS[source](payload, ctx(headers));
const form = (text: string) => Object.fromEntries(new URLSearchParams(text));

/** Asserts that normalizing fails as malformed, naming `field`. */
function refuses(fn: () => unknown, field: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof IngestError, `expected an IngestError, got ${String(err)}`);
    assert.equal(err.code, 'malformed_payload');
    assert.equal(err.field, field);
    assert.ok(err.message.startsWith(field), err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('Alertmanager', () => {
  test('a firing alert: identity from the fingerprint, device from the label, no end time yet', () => {
    const [e, ...rest] = run('alertmanager', p.alertmanager({ device: 'tower-lodi-01' }));
    assert.equal(rest.length, 0);
    assert.equal(e!.dedupKey, 'alertmanager:noc:5e1c0a3b9f27d4c2');
    assert.equal(e!.kind, 'state');
    assert.equal(e!.status, 'firing');
    assert.equal(e!.severity, 'critical');
    assert.equal(e!.target.device, 'tower-lodi-01');
    assert.equal(e!.target.labels.device, 'tower-lodi-01');
    assert.equal(e!.summary, 'tower-lodi-01 unreachable');
    assert.equal(e!.url, 'http://prom:9090/graph');
    assert.equal(e!.startsAt?.toISOString(), '2026-05-04T13:02:11.400Z');
    assert.equal(e!.endsAt, undefined, 'Go zero time means no end');
    assert.match(e!.eventId, /^evt_[0-9a-f]{32}$/);
  });

  test('a resend of the same alert has the same event id; its resolution and its next outage do not', () => {
    const firing = run('alertmanager', p.alertmanager({ device: 'tower-lodi-01' }))[0]!;
    const again = run('alertmanager', p.alertmanager({ device: 'tower-lodi-01' }))[0]!;
    const resolved = run('alertmanager', p.alertmanager({ device: 'tower-lodi-01', status: 'resolved' }))[0]!;
    const nextOutage = run(
      'alertmanager',
      p.alertmanager({ device: 'tower-lodi-01', startsAt: '2026-05-05T08:00:00Z' }),
    )[0]!;
    assert.equal(again.eventId, firing.eventId);
    assert.notEqual(resolved.eventId, firing.eventId);
    assert.equal(resolved.dedupKey, firing.dedupKey);
    assert.equal(resolved.endsAt?.toISOString(), '2026-05-04T13:40:00.000Z');
    assert.notEqual(nextOutage.eventId, firing.eventId);
    assert.equal(nextOutage.dedupKey, firing.dedupKey, 'the fingerprint is reused: episodes are told apart later');
  });

  test('a mixed batch gives one event per alert, each with its own status', () => {
    const events = run(
      'alertmanager',
      p.alertmanager(
        { device: 'tower-lodi-01', fingerprint: 'aaaaaaaaaaaaaaaa' },
        { device: 'tower-lodi-02', fingerprint: 'bbbbbbbbbbbbbbbb', status: 'resolved' },
        { device: 'tower-crema-01', fingerprint: 'cccccccccccccccc', severity: 'warning' },
      ),
    );
    assert.deepEqual(
      events.map((e) => [e.target.device, e.status, e.severity]),
      [
        ['tower-lodi-01', 'firing', 'critical'],
        ['tower-lodi-02', 'resolved', 'critical'],
        ['tower-crema-01', 'firing', 'warning'],
      ],
    );
    assert.equal(new Set(events.map((e) => e.dedupKey)).size, 3);
  });

  test('without a fingerprint (old Alertmanager), one is derived from the labels', () => {
    const payload = p.alertmanager({ device: 'tower-lodi-01' });
    delete (payload.alerts[0] as { fingerprint?: string }).fingerprint;
    const a = run('alertmanager', payload)[0]!;
    const b = run('alertmanager', structuredClone(payload))[0]!;
    assert.match(a.dedupKey, /^alertmanager:noc:[0-9a-f]{16}$/);
    assert.equal(a.dedupKey, b.dedupKey);
  });

  test('malformed payloads name the wrong field', () => {
    refuses(() => run('alertmanager', { version: '4' }), 'body.alerts', /is required/);
    refuses(() => run('alertmanager', { alerts: [] }), 'body.alerts', /at least one/);
    refuses(() => run('alertmanager', 'hello'), 'body', /JSON object/);
    const bad = p.alertmanager({ device: 'a' }, { device: 'b', fingerprint: 'bbbb' });
    (bad.alerts[1] as { status: string }).status = 'fring';
    refuses(() => run('alertmanager', bad), 'body.alerts[1].status', /"firing", "resolved", got "fring"/);
    refuses(
      () => run('alertmanager', p.alertmanager({ startsAt: '2026-05-04 13:02:11' })),
      'body.alerts[0].startsAt',
      /RFC 3339/,
    );
    const noLabels = p.alertmanager({});
    delete (noLabels.alerts[0] as { labels?: unknown }).labels;
    refuses(() => run('alertmanager', noLabels), 'body.alerts[0].labels');
  });
});

describe('Grafana', () => {
  test('fingerprints are keyed by organisation; links go to the panel', () => {
    const [e] = run('grafana', p.grafana({ device: 'tower-lodi-02' }));
    assert.equal(e!.source, 'grafana');
    assert.equal(e!.dedupKey, 'grafana:noc:1:5e1c0a3b9f27d4c2');
    assert.equal(e!.url, 'http://grafana/d/x?viewPanel=2');
    assert.equal(e!.target.device, 'tower-lodi-02');
  });
});

describe('Zabbix', () => {
  test('a problem and its recovery share the problem id; unix times are read as such', () => {
    const problem = run('zabbix', p.zabbix())[0]!;
    assert.equal(problem.dedupKey, 'zabbix:noc:884211');
    assert.equal(problem.status, 'firing');
    assert.equal(problem.kind, 'state');
    assert.equal(problem.severity, 'critical', 'nseverity 5 is a disaster');
    assert.equal(problem.target.device, 'tower-lodi-01');
    assert.equal(problem.target.ip, '10.20.0.1');
    assert.equal(problem.target.labels.site, 'tower-lodi-01');
    assert.equal(problem.startsAt?.toISOString(), '2026-05-04T13:02:11.000Z');
    const recovery = run('zabbix', p.zabbix({ value: '0' }))[0]!;
    assert.equal(recovery.dedupKey, problem.dedupKey);
    assert.equal(recovery.status, 'resolved');
    assert.notEqual(recovery.eventId, problem.eventId);
    assert.equal(run('zabbix', p.zabbix())[0]!.eventId, problem.eventId, 'a retried or escalated message is a repeat');
  });

  test('local {EVENT.DATE} {EVENT.TIME} are placed in the integration time zone', () => {
    const e = run('zabbix', p.zabbix({ date: '2026.05.04', time: '15:02:11' }))[0]!;
    assert.equal(e.startsAt?.toISOString(), '2026-05-04T13:02:11.000Z', 'Europe/Rome is UTC+2 in May');
    const winter = run('zabbix', p.zabbix({ date: '2026.01.15', time: '09:00:00' }))[0]!;
    assert.equal(winter.startsAt?.toISOString(), '2026-01-15T08:00:00.000Z', 'and UTC+1 in January');
  });

  test('updates and acknowledgements are not state changes', () => {
    assert.equal(run('zabbix', p.zabbix({ update: '1', ack: 'Yes' }))[0]!.kind, 'ack');
    assert.equal(run('zabbix', p.zabbix({ update: '1', ack: 'No' }))[0]!.kind, 'update');
    assert.equal(run('zabbix', p.zabbix({ nseverity: '2' }))[0]!.severity, 'warning');
    assert.deepEqual(
      run('zabbix', p.zabbix({ tags: '[{"tag":"site","value":"tower-lodi-02"}]' }))[0]!.target.labels,
      { site: 'tower-lodi-02' },
      '{EVENT.TAGSJSON} as a string',
    );
  });

  test('malformed payloads name the wrong field', () => {
    refuses(() => run('zabbix', { ...p.zabbix(), event_value: 'PROBLEM' }), 'body.event_value', /"0", "1"/);
    refuses(() => run('zabbix', { ...p.zabbix(), event_id: '{EVENT.ID}' }), 'body.event_id', /digits/);
    refuses(() => run('zabbix', { ...p.zabbix(), nseverity: '9' }), 'body.nseverity');
    refuses(() => run('zabbix', { ...p.zabbix(), event_ts: 'yesterday' }), 'body.event_ts', /unix seconds/);
    refuses(() => run('zabbix', p.zabbix({ date: '04/05/2026', time: '15:02' })), 'body.event_date', /Europe\/Rome/);
  });
});

describe('Uptime Kuma', () => {
  test('DOWN fires, UP resolves, keyed by monitor; its zoneless time is UTC', () => {
    const down = run('uptime-kuma', p.uptimeKuma({ site: 'tower-crema-01' }))[0]!;
    assert.equal(down.dedupKey, 'uptime-kuma:noc:7');
    assert.equal(down.status, 'firing');
    assert.equal(down.kind, 'state');
    assert.equal(down.startsAt?.toISOString(), '2026-05-04T13:02:11.400Z', 'not shifted by the integration time zone');
    assert.equal(down.target.device, '10.30.0.1');
    assert.equal(down.target.labels.site, 'tower-crema-01');
    const up = run('uptime-kuma', p.uptimeKuma({ status: 1, time: '2026-05-04 13:30:00.000' }))[0]!;
    assert.equal(up.status, 'resolved');
    assert.equal(up.dedupKey, down.dedupKey);
    assert.equal(up.endsAt?.toISOString(), '2026-05-04T13:30:00.000Z');
  });

  test('PENDING and MAINTENANCE are recorded only; the Test button is accepted; multipart data is unwrapped', () => {
    assert.equal(run('uptime-kuma', p.uptimeKuma({ status: 2 }))[0]!.kind, 'info');
    assert.equal(run('uptime-kuma', p.uptimeKuma({ status: 3 }))[0]!.kind, 'info');
    const testMessage = run('uptime-kuma', { heartbeat: null, monitor: null, msg: 'Uptime Kuma Testing' })[0]!;
    assert.equal(testMessage.kind, 'info');
    const wrapped = run('uptime-kuma', { data: JSON.stringify(p.uptimeKuma()) })[0]!;
    assert.equal(wrapped.dedupKey, 'uptime-kuma:noc:7');
  });

  test('malformed payloads name the wrong field', () => {
    const bad = p.uptimeKuma();
    (bad.heartbeat as { status: number }).status = 9;
    refuses(() => run('uptime-kuma', bad), 'body.heartbeat.status');
    const noTime = p.uptimeKuma();
    delete (noTime.heartbeat as { time?: string }).time;
    refuses(() => run('uptime-kuma', noTime), 'body.heartbeat.time', /required/);
    refuses(() => run('uptime-kuma', { heartbeat: p.uptimeKuma().heartbeat }), 'body.monitor', /required/);
  });
});

describe('LibreNMS', () => {
  test('keyed by device and rule; local timestamp in the integration time zone; HTML escaping undone', () => {
    const e = run('librenms', { ...p.librenms({ uid: '501' }), title: 'Port &quot;uplink&quot; down &amp; out' })[0]!;
    assert.equal(e.dedupKey, 'librenms:noc:12:4');
    assert.equal(e.status, 'firing');
    assert.equal(e.startsAt?.toISOString(), '2026-05-04T13:02:11.000Z');
    assert.equal(e.target.device, 'lodi-vecchio.noc.example');
    assert.equal(e.summary, 'Port "uplink" down & out');
    assert.equal(run('librenms', p.librenms({ uid: '501' }))[0]!.eventId, e.eventId, 'uid is the delivery id');
    const recovered = run('librenms', p.librenms({ state: '0', uid: '502' }))[0]!;
    assert.equal(recovered.status, 'resolved');
    assert.equal(recovered.dedupKey, e.dedupKey);
    assert.equal(run('librenms', p.librenms({ state: '2' }))[0]!.kind, 'ack');
    assert.equal(run('librenms', p.librenms({ state: '3' }))[0]!.status, 'firing', 'worse is still firing');
  });

  test('malformed payloads name the wrong field', () => {
    refuses(() => run('librenms', { ...p.librenms(), device_id: '{{ $device_id }}' }), 'body.device_id', /digits/);
    refuses(() => run('librenms', { ...p.librenms(), state: '7' }), 'body.state');
    refuses(
      () => run('librenms', p.librenms({ timestamp: 'ieri alle tre' })),
      'body.timestamp',
      /local time in Europe\/Rome/,
    );
  });
});

describe('Icinga 2 and Nagios', () => {
  test('Icinga 2: keyed by host (or host!service); a re-notification of the same problem is a repeat', () => {
    const problem = run('icinga2', form(p.monitoringForm()))[0]!;
    assert.equal(problem.dedupKey, 'icinga2:noc:tower-crema-01');
    assert.equal(problem.status, 'firing');
    assert.equal(problem.severity, 'critical', 'host DOWN');
    assert.equal(problem.target.ip, '10.30.0.1');
    assert.equal(
      problem.startsAt?.toISOString(),
      new Date(1777899700 * 1000).toISOString(),
      'the problem began at last_state_change',
    );
    const renotified = run('icinga2', form(p.monitoringForm({ timet: '1777901531' })))[0]!;
    assert.equal(renotified.eventId, problem.eventId);
    const service = run('icinga2', form(p.monitoringForm({ service: 'backhaul', state: 'CRITICAL' })))[0]!;
    assert.equal(service.dedupKey, 'icinga2:noc:tower-crema-01!backhaul');
    assert.equal(service.severity, 'major');
    const recovery = run(
      'icinga2',
      form(p.monitoringForm({ type: 'recovery', state: 'up', lastChange: '1777900000' })),
    )[0]!;
    assert.equal(recovery.status, 'resolved');
    assert.equal(recovery.dedupKey, problem.dedupKey);
    assert.equal(run('icinga2', form(p.monitoringForm({ type: 'ACKNOWLEDGEMENT' })))[0]!.kind, 'ack');
    assert.equal(run('icinga2', form(p.monitoringForm({ type: 'DOWNTIMESTART' })))[0]!.kind, 'info');
  });

  test('Nagios: keyed by the problem id, which a recovery carries as the last problem id', () => {
    const problem = run('nagios', form(p.monitoringForm({ problemId: '4411', lastProblemId: '4390' })))[0]!;
    const recovery = run(
      'nagios',
      form(p.monitoringForm({ type: 'RECOVERY', state: 'UP', problemId: '0', lastProblemId: '4411' })),
    )[0]!;
    assert.equal(problem.dedupKey, 'nagios:noc:problem:4411');
    assert.equal(recovery.dedupKey, problem.dedupKey);
    assert.equal(recovery.status, 'resolved');
  });

  test('malformed payloads name the wrong field', () => {
    refuses(() => run('icinga2', form(p.monitoringForm({ state: 'ON FIRE' }))), 'body.state', /"DOWN"/);
    refuses(() => run('nagios', form(p.monitoringForm({ type: 'WHATEVER' }))), 'body.type');
    refuses(() => run('icinga2', { type: 'PROBLEM', state: 'DOWN' }), 'body.host', /required/);
    refuses(() => run('icinga2', form(p.monitoringForm({ timet: '$icinga.timet$' }))), 'body.timet', /unix seconds/);
  });
});

describe('Healthchecks.io', () => {
  test('down fires, up resolves, keyed by the check uuid; tags become labels', () => {
    const down = run('healthchecks', p.healthchecks())[0]!;
    assert.equal(down.dedupKey, 'healthchecks:noc:5b3c1c66-8f9e-4f37-9a0e-2f0f2b0f6a11');
    assert.equal(down.status, 'firing');
    assert.deepEqual(down.target.labels, { site: 'tower-crema-01', backhaul: '' });
    assert.equal(down.startsAt?.toISOString(), '2026-05-04T13:02:11.000Z');
    const up = run('healthchecks', p.healthchecks({ status: 'up', now: '2026-05-04T13:20:00+00:00' }))[0]!;
    assert.equal(up.status, 'resolved');
    assert.equal(up.dedupKey, down.dedupKey);
    refuses(() => run('healthchecks', p.healthchecks({ code: '$CODE' })), 'body.code', /uuid/);
    refuses(() => run('healthchecks', { ...p.healthchecks(), status: 'grace' }), 'body.status');
  });
});

describe('PRTG', () => {
  test("form fields; %datetime in the integration time zone, in PRTG's date formats", () => {
    const down = run('prtg', form(p.prtg()))[0]!;
    assert.equal(down.dedupKey, 'prtg:noc:2034');
    assert.equal(down.status, 'firing');
    assert.equal(down.severity, 'critical');
    assert.equal(down.target.ip, '10.20.0.11');
    assert.equal(down.startsAt?.toISOString(), '2026-05-04T13:02:11.000Z');
    for (const datetime of ['5/4/2026 3:02:11 PM', '04/05/2026 15:02:11', '2026-05-04 15:02:11']) {
      assert.equal(
        run('prtg', form(p.prtg({ datetime })))[0]!.startsAt?.toISOString(),
        '2026-05-04T13:02:11.000Z',
        datetime,
      );
    }
    assert.equal(run('prtg', form(p.prtg({ status: 'Up' })))[0]!.status, 'resolved');
    assert.equal(run('prtg', form(p.prtg({ status: 'Down (acknowledged)' })))[0]!.kind, 'ack');
    assert.equal(run('prtg', form(p.prtg({ status: 'Down (partial)' })))[0]!.severity, 'major');
    assert.equal(run('prtg', form(p.prtg({ status: 'Warning' })))[0]!.severity, 'warning');
  });

  test('malformed payloads name the wrong field', () => {
    refuses(() => run('prtg', form(p.prtg({ status: 'Sideways' }))), 'body.status', /Down/);
    refuses(() => run('prtg', form(p.prtg({ datetime: 'Monday' }))), 'body.datetime', /dd\.MM\.yyyy/);
    refuses(() => run('prtg', form(p.prtg({ sensorId: '%sensorid' }))), 'body.sensorid');
  });
});

describe('CloudEvents', () => {
  test('structured mode: the type says firing or resolved, data.dedupKey the alert; source+id the delivery', () => {
    const e = run('cloudevents', p.cloudEvent())[0]!;
    assert.equal(e.dedupKey, 'cloudevents:noc:tower-lodi-02/power');
    assert.equal(e.status, 'firing');
    assert.equal(e.severity, 'major');
    assert.equal(e.target.site, 'tower-lodi-02');
    const resolved = run('cloudevents', p.cloudEvent({ id: 'evt-2', type: 'net.example.alert.resolved' }))[0]!;
    assert.equal(resolved.status, 'resolved');
    assert.notEqual(resolved.eventId, e.eventId);
    assert.equal(run('cloudevents', p.cloudEvent())[0]!.eventId, e.eventId);
    assert.equal(run('cloudevents', p.cloudEvent({ type: 'net.example.heartbeat' }))[0]!.kind, 'info');
  });

  test('binary mode: attributes in ce-* headers, the body is the data; batches', () => {
    const { data, ...attrs } = p.cloudEvent();
    const headers = Object.fromEntries(Object.entries(attrs).map(([k, v]) => [`ce-${k}`, String(v)]));
    const binary = run('cloudevents', data, headers)[0]!;
    assert.deepEqual(
      { ...binary, receivedAt: 0 },
      { ...run('cloudevents', p.cloudEvent())[0]!, receivedAt: 0 },
      'binary and structured give the same event',
    );
    const batch = run('cloudevents', [
      p.cloudEvent(),
      p.cloudEvent({ id: 'evt-9', dedupKey: 'x', site: 'tower-lodi-01' }),
    ]);
    assert.equal(batch.length, 2);
  });

  test('malformed events name the wrong field, header or body', () => {
    const noKey = p.cloudEvent();
    delete (noKey.data as { dedupKey?: string }).dedupKey;
    refuses(() => run('cloudevents', noKey), 'body.data.dedupKey', /required/);
    refuses(() => run('cloudevents', { ...p.cloudEvent(), specversion: '0.3' }), 'body.specversion', /"1.0"/);
    refuses(
      () => run('cloudevents', { dedupKey: 'k' }, { 'ce-specversion': '1.0', 'ce-source': 's', 'ce-type': 't.firing' }),
      'headers.ce-id',
      /required/,
    );
    refuses(() => run('cloudevents', [p.cloudEvent(), { ...p.cloudEvent(), time: 'soon' }]), 'body[1].time');
  });
});

describe('body decoding', () => {
  test('JSON, +json, form, multipart and text/plain holding JSON are read; others refused with why', async () => {
    assert.deepEqual(await decodeBody(Buffer.from('{"a":1}'), 'application/json; charset=utf-8'), { a: 1 });
    assert.deepEqual(await decodeBody(Buffer.from('{"a":1}'), 'application/cloudevents+json'), { a: 1 });
    assert.deepEqual(await decodeBody(Buffer.from('{"a":1}'), 'text/plain'), { a: 1 });
    assert.deepEqual(await decodeBody(Buffer.from('a=1&b=x%20y'), 'application/x-www-form-urlencoded'), {
      a: '1',
      b: 'x y',
    });
    const fd = new FormData();
    fd.append('data', '{"msg":"hi"}');
    const req = new Request('http://x', { method: 'POST', body: fd });
    assert.deepEqual(await decodeBody(Buffer.from(await req.arrayBuffer()), req.headers.get('content-type')!), {
      data: '{"msg":"hi"}',
    });
    await assert.rejects(
      decodeBody(Buffer.from('{"a":'), 'application/json'),
      (e: IngestError) => e.field === 'body' && /not valid JSON/.test(e.message),
    );
    await assert.rejects(
      decodeBody(Buffer.from('Alert: down'), 'text/plain'),
      (e: IngestError) => e.code === 'malformed_payload' && /template/.test(e.message),
    );
    await assert.rejects(
      decodeBody(Buffer.from('<xml/>'), 'application/xml'),
      (e: IngestError) => e.code === 'unsupported_media_type' && e.statusCode === 415,
    );
    await assert.rejects(decodeBody(Buffer.from(''), 'application/json'), (e: IngestError) => /empty/.test(e.message));
  });
});
