/**
 * The one shape every monitoring tool's payload is turned into (see
 * /work/shared/reference/monitoring-webhooks.md, "One normalized event"). Everything after the
 * normalizers (site mapping, storage, deduplication, incidents) reads only this.
 */

export const ALERT_SOURCES = [
  'alertmanager',
  'grafana',
  'zabbix',
  'uptime-kuma',
  'librenms',
  'icinga2',
  'nagios',
  'healthchecks',
  'prtg',
  'cloudevents',
] as const;
/** `api` is an operator's manual trigger; it never comes through the ingest route. */
export type AlertSource = (typeof ALERT_SOURCES)[number] | 'api';

/** Only `state` events open or close incidents; the others are recorded. */
export type AlertKind = 'state' | 'ack' | 'update' | 'info';
export type AlertStatus = 'firing' | 'resolved';

/** Ordered from the most to the least urgent; `unknown` is a tool that gave no severity. */
export const ALERT_SEVERITIES = ['critical', 'major', 'minor', 'warning', 'info', 'unknown'] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];

/** What the alert is about, as the tool names it; the integration's site mapping turns it into site ids. */
export interface AlertTarget {
  device?: string;
  site?: string;
  ip?: string;
  service?: string;
  labels: Record<string, string>;
}

export interface AlertEvent {
  source: AlertSource;
  /** The configured endpoint that received it (the last segment of the URL). */
  integration: string;
  /** `<source>:<integration>:<native key>`: the same problem on the same thing, across deliveries. */
  dedupKey: string;
  /** One delivery of one alert state: the sender's own id where it has one, else a hash of the content. */
  eventId: string;
  kind: AlertKind;
  status: AlertStatus;
  target: AlertTarget;
  severity: AlertSeverity;
  summary: string;
  url?: string;
  /** When the problem began (firing) or, for resolved events, when it began if the tool says so. UTC. */
  startsAt?: Date;
  endsAt?: Date;
  receivedAt: Date;
}

/** The request an event came in, kept as received for inspection. */
export interface RawDelivery {
  body: string;
  contentType: string;
  /** A subset of the request headers: never the credentials. */
  headers: Record<string, string>;
}
