/**
 * The templates we ship, filled in the way each tool fills them, give payloads our normalizers
 * accept: a template and its normalizer cannot drift apart unnoticed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { NORMALIZERS, type NormalizeContext } from '../../ingest/normalizers';

const dir = path.resolve(__dirname, '../../ingest/templates');
const read = (name: string) => readFileSync(path.join(dir, name), 'utf8');
const ctx: NormalizeContext = {
  integration: 'noc',
  timeZone: 'Europe/Rome',
  receivedAt: new Date('2026-05-04T13:05:00Z'),
  headers: {},
};

test('Zabbix: the media type script posts a problem our normalizer reads, and throws on a non-2xx answer', () => {
  let posted: { url: string; body: string; headers: string[] } | undefined;
  let status = 202;
  class HttpRequest {
    headers: string[] = [];
    addHeader(h: string) {
      this.headers.push(h);
    }
    setProxy() {}
    post(url: string, body: string) {
      posted = { url, body, headers: this.headers };
      return '{"received":1}';
    }
    getStatus() {
      return status;
    }
  }
  const script = new Function('HttpRequest', 'Zabbix', 'value', read('zabbix-webhook.js'));
  const params = {
    avviso_url: 'https://avviso.example.net/v1/ingest/zabbix/noc',
    avviso_token: 'zabbix-token',
    event_id: '884211',
    event_value: '1',
    update_status: '0',
    ack_status: 'No',
    recovery_id: '{EVENT.RECOVERY.ID}',
    nseverity: '5',
    event_name: 'tower-lodi-01: ICMP unreachable',
    host: 'tower-lodi-01',
    host_name: 'Lodi torre',
    host_ip: '10.20.0.1',
    tags: '[{"tag":"site","value":"tower-lodi-01"}]',
    event_ts: '1777899731',
    event_date: '2026.05.04',
    event_time: '15:02:11',
    recovery_ts: '{EVENT.RECOVERY.TIMESTAMP}',
    trigger_id: '31',
  };
  assert.equal(script(HttpRequest, { log() {} }, JSON.stringify(params)), 'OK');
  assert.ok(posted!.headers.includes('Authorization: Bearer zabbix-token'));
  const [event] = NORMALIZERS.zabbix(JSON.parse(posted!.body), ctx);
  assert.equal(event!.dedupKey, 'zabbix:noc:884211');
  assert.equal(event!.target.labels.site, 'tower-lodi-01');
  assert.equal(event!.startsAt?.toISOString(), '2026-05-04T13:02:11.000Z');
  status = 422;
  assert.throws(() => script(HttpRequest, { log() {} }, JSON.stringify(params)), /Avviso answered HTTP 422/);
});

test('LibreNMS: the API transport body, rendered by Blade (HTML-escaped), is JSON our normalizer reads', () => {
  const values: Record<string, string> = {
    alert_id: '31',
    uid: '9001',
    device_id: '12',
    rule_id: '4',
    state: '1',
    severity: 'critical',
    hostname: 'lodi-vecchio.noc.example',
    sysName: 'lodi-vecchio',
    ip: '10.20.1.1',
    location: 'Lodi Vecchio',
    name: 'Device Down',
    title: 'Device "lodi-vecchio" down & out',
    timestamp: '2026-05-04 15:02:11',
  };
  const escape = (s: string) =>
    s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const rendered = read('librenms-body.json').replace(/\{\{ \$(\w+) \}\}/g, (_m, name: string) =>
    escape(values[name] ?? ''),
  );
  const [event] = NORMALIZERS.librenms(JSON.parse(rendered), ctx);
  assert.equal(event!.dedupKey, 'librenms:noc:12:4');
  assert.equal(event!.summary, values.title);
  assert.equal(event!.startsAt?.toISOString(), '2026-05-04T13:02:11.000Z');
});

test('Healthchecks: the body with its placeholders filled in', () => {
  const rendered = read('healthchecks-body.json')
    .replace('$CODE', '5b3c1c66-8f9e-4f37-9a0e-2f0f2b0f6a11')
    .replace('$STATUS', 'down')
    .replace('$NOW', '2026-05-04T13:02:11+00:00')
    .replace('$NAME_JSON', JSON.stringify('backhaul "crema"'))
    .replace('$TAGS', 'site:tower-crema-01 prod');
  const [event] = NORMALIZERS.healthchecks(JSON.parse(rendered), ctx);
  assert.equal(event!.status, 'firing');
  assert.equal(event!.target.labels.site, 'tower-crema-01');
});

test('PRTG: the postdata with its placeholders filled in', () => {
  const postdata = /^Postdata\s+(.+)$/m.exec(read('prtg-http-action.txt'))![1]!;
  const values: Record<string, string> = {
    sensorid: '2034',
    device: 'Lodi AP nord',
    host: '10.20.0.11',
    group: 'Lodi',
    probe: 'Local Probe',
    name: 'Ping',
    status: 'Down',
    message: 'Destination host unreachable',
    datetime: '04.05.2026 15:02:11',
  };
  const filled = postdata.replace(/%(\w+)/g, (_m, name: string) => encodeURIComponent(values[name] ?? ''));
  const [event] = NORMALIZERS.prtg(Object.fromEntries(new URLSearchParams(filled)), ctx);
  assert.equal(event!.dedupKey, 'prtg:noc:2034');
  assert.equal(event!.target.ip, '10.20.0.11');
});

/** The `name=$MACRO$` pairs a curl command line posts, with the macros expanded from `macros`. */
function curlFields(text: string, macros: Record<string, string>): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const m of text.matchAll(/--data-urlencode"?,?\s*"(\w+)=\$([\w.]+)\$"/g)) fields[m[1]!] = macros[m[2]!] ?? '';
  return fields;
}

test('Icinga 2 and Nagios: the notification commands post fields our normalizer reads', () => {
  const icinga = read('icinga2-avviso.conf');
  const service = icinga.slice(icinga.indexOf('object NotificationCommand "avviso-service"'));
  const icingaFields = curlFields(service.slice(0, service.indexOf('}')), {
    'notification.type': 'PROBLEM',
    'host.name': 'tower-crema-01',
    address: '10.30.0.1',
    'service.name': 'backhaul',
    'service.state': 'CRITICAL',
    'service.output': 'PING CRITICAL',
    'icinga.timet': '1777899731',
    'service.last_state_change': '1777899700.512',
    'notification.author': '',
    'notification.comment': '',
  });
  const [e1] = NORMALIZERS.icinga2(icingaFields, ctx);
  assert.equal(e1!.dedupKey, 'icinga2:noc:tower-crema-01!backhaul');
  assert.equal(e1!.status, 'firing');

  const nagios = read('nagios-avviso.cfg');
  const hostCommand = nagios.slice(nagios.indexOf('notify-host-by-avviso'), nagios.indexOf('notify-service-by-avviso'));
  const nagiosFields = curlFields(hostCommand, {
    NOTIFICATIONTYPE: 'RECOVERY',
    HOSTNAME: 'tower-crema-01',
    HOSTADDRESS: '10.30.0.1',
    HOSTSTATE: 'UP',
    HOSTOUTPUT: 'PING OK',
    TIMET: '1777900000',
    LASTHOSTSTATECHANGE: '1777899990',
    HOSTPROBLEMID: '0',
    LASTHOSTPROBLEMID: '4411',
    NOTIFICATIONAUTHOR: '',
    NOTIFICATIONCOMMENT: '',
  });
  const [e2] = NORMALIZERS.nagios(nagiosFields, ctx);
  assert.equal(e2!.dedupKey, 'nagios:noc:problem:4411');
  assert.equal(e2!.status, 'resolved');
});
