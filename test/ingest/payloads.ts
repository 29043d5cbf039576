/**
 * Payloads as each monitoring tool sends them (after our templates, for the tools that need
 * one), shaped like the examples of /work/shared/reference/monitoring-webhooks.md. Each builder
 * takes what a test varies and fills the rest.
 */

export interface AmAlert {
  status?: 'firing' | 'resolved';
  device?: string;
  fingerprint?: string;
  startsAt?: string;
  endsAt?: string;
  severity?: string;
  alertname?: string;
  summary?: string;
}

function amAlert(a: AmAlert) {
  const status = a.status ?? 'firing';
  return {
    status,
    labels: {
      alertname: a.alertname ?? 'TowerDown',
      ...(a.device ? { device: a.device } : {}),
      severity: a.severity ?? 'critical',
    },
    annotations: { summary: a.summary ?? `${a.device ?? 'device'} unreachable` },
    startsAt: a.startsAt ?? '2026-05-04T13:02:11.4Z',
    endsAt: a.endsAt ?? (status === 'firing' ? '0001-01-01T00:00:00Z' : '2026-05-04T13:40:00Z'),
    generatorURL: 'http://prom:9090/graph',
    fingerprint: a.fingerprint ?? '5e1c0a3b9f27d4c2',
  };
}

export function alertmanager(...alerts: AmAlert[]) {
  const list = alerts.length > 0 ? alerts : [{}];
  return {
    version: '4',
    groupKey: '{}:{alertname="TowerDown"}',
    truncatedAlerts: 0,
    status: list.some((a) => (a.status ?? 'firing') === 'firing') ? 'firing' : 'resolved',
    receiver: 'avviso',
    groupLabels: { alertname: 'TowerDown' },
    commonLabels: { alertname: 'TowerDown' },
    commonAnnotations: {},
    externalURL: 'http://am.noc:9093',
    alerts: list.map(amAlert),
  };
}

export function grafana(...alerts: AmAlert[]) {
  const am = alertmanager(...alerts);
  return {
    ...am,
    version: '1',
    orgId: 1,
    state: am.status === 'firing' ? 'alerting' : 'ok',
    title: '[FIRING:1] TowerDown',
    message: 'tower down',
    alerts: am.alerts.map((a) => ({
      ...a,
      ruleUID: 'abc123',
      values: { A: 0 },
      dashboardURL: 'http://grafana/d/x',
      panelURL: 'http://grafana/d/x?viewPanel=2',
      silenceURL: 'http://grafana/alerting/silence/new',
    })),
  };
}

export function zabbix(
  o: {
    eventId?: string;
    value?: '0' | '1';
    update?: '0' | '1';
    ack?: string;
    nseverity?: string;
    host?: string;
    ip?: string;
    tags?: unknown;
    ts?: string;
    date?: string;
    time?: string;
  } = {},
) {
  return {
    event_id: o.eventId ?? '884211',
    event_value: o.value ?? '1',
    update_status: o.update ?? '0',
    ...(o.ack ? { ack_status: o.ack } : {}),
    recovery_id: o.value === '0' ? '884299' : '{EVENT.RECOVERY.ID}',
    nseverity: o.nseverity ?? '5',
    event_name: `${o.host ?? 'tower-lodi-01'}: ICMP unreachable`,
    host: o.host ?? 'tower-lodi-01',
    host_ip: o.ip ?? '10.20.0.1',
    tags: o.tags ?? [{ tag: 'site', value: o.host ?? 'tower-lodi-01' }],
    ...(o.date ? { event_date: o.date, event_time: o.time } : { event_ts: o.ts ?? '1777899731' }),
  };
}

export function uptimeKuma(
  o: { status?: number; monitorId?: number; time?: string; hostname?: string; site?: string } = {},
) {
  const status = o.status ?? 0;
  return {
    heartbeat: {
      monitorID: o.monitorId ?? 7,
      status,
      time: o.time ?? '2026-05-04 13:02:11.400',
      msg: status === 0 ? 'timeout of 48000ms exceeded' : 'OK',
      important: true,
      duration: 60,
    },
    monitor: {
      id: o.monitorId ?? 7,
      name: 'Crema torre',
      type: 'ping',
      hostname: o.hostname ?? '10.30.0.1',
      url: 'https://',
      tags: o.site ? [{ name: 'site', value: o.site }] : [],
    },
    msg: `[Crema torre] [${status === 0 ? '🔴 Down' : '✅ Up'}] ${status === 0 ? 'timeout' : 'OK'}`,
  };
}

export function librenms(
  o: {
    state?: string;
    deviceId?: string;
    ruleId?: string;
    hostname?: string;
    timestamp?: string;
    uid?: string;
    severity?: string;
  } = {},
) {
  return {
    alert_id: '31',
    uid: o.uid ?? `${Math.floor(Math.random() * 1e6)}`,
    device_id: o.deviceId ?? '12',
    rule_id: o.ruleId ?? '4',
    state: o.state ?? '1',
    severity: o.severity ?? 'critical',
    hostname: o.hostname ?? 'lodi-vecchio.noc.example',
    sysName: 'lodi-vecchio',
    ip: '10.20.1.1',
    location: 'Lodi Vecchio',
    title: 'Device Down! Due to no ICMP response.',
    timestamp: o.timestamp ?? '2026-05-04 15:02:11',
  };
}

/** What the shipped Icinga 2 / Nagios curl command posts (form-encoded). */
export function monitoringForm(
  o: {
    type?: string;
    host?: string;
    service?: string;
    state?: string;
    timet?: string;
    lastChange?: string;
    problemId?: string;
    lastProblemId?: string;
    output?: string;
  } = {},
): string {
  const form = new URLSearchParams({
    type: o.type ?? 'PROBLEM',
    host: o.host ?? 'tower-crema-01',
    ...(o.service ? { service: o.service } : {}),
    address: '10.30.0.1',
    state: o.state ?? 'DOWN',
    output: o.output ?? 'PING CRITICAL - Packet loss = 100%',
    timet: o.timet ?? '1777899731',
    last_state_change: o.lastChange ?? '1777899700',
    ...(o.problemId !== undefined ? { problem_id: o.problemId } : {}),
    ...(o.lastProblemId !== undefined ? { last_problem_id: o.lastProblemId } : {}),
  });
  return form.toString();
}

export function healthchecks(
  o: { code?: string; status?: 'down' | 'up'; now?: string; tags?: string; name?: string } = {},
) {
  return {
    code: o.code ?? '5b3c1c66-8f9e-4f37-9a0e-2f0f2b0f6a11',
    status: o.status ?? 'down',
    now: o.now ?? '2026-05-04T13:02:11+00:00',
    name: o.name ?? 'backhaul crema',
    tags: o.tags ?? 'site:tower-crema-01 backhaul',
  };
}

export function prtg(
  o: { sensorId?: string; status?: string; host?: string; device?: string; datetime?: string } = {},
): string {
  return new URLSearchParams({
    sensorid: o.sensorId ?? '2034',
    device: o.device ?? 'Lodi AP nord',
    host: o.host ?? '10.20.0.11',
    group: 'Lodi',
    name: 'Ping',
    status: o.status ?? 'Down',
    message: 'Destination host unreachable (ICMP error # 11003)',
    datetime: o.datetime ?? '04.05.2026 15:02:11',
    probe: 'Local Probe',
  }).toString();
}

export function cloudEvent(o: { id?: string; type?: string; dedupKey?: string; site?: string; time?: string } = {}) {
  return {
    specversion: '1.0',
    id: o.id ?? 'evt-1',
    source: '//noc.example/checker',
    type: o.type ?? 'net.example.alert.firing',
    time: o.time ?? '2026-05-04T13:02:11Z',
    subject: o.site ?? 'tower-lodi-02',
    datacontenttype: 'application/json',
    data: {
      dedupKey: o.dedupKey ?? 'tower-lodi-02/power',
      site: o.site ?? 'tower-lodi-02',
      severity: 'major',
      summary: 'Mains power lost',
    },
  };
}
