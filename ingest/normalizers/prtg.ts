/**
 * PRTG's "Execute HTTP Action", form-encoded, with the postdata we ship
 * (ingest/templates/prtg-http-action.txt). PRTG cannot set an Authorization header: the token
 * comes in the URL (`?token=`). `%status` is a phrase ("Down", "Down (partial)", "Down
 * (acknowledged)", "Up", "Warning", "Unusual", "Paused..."); `%datetime` is in the PRTG user's
 * time zone and date format, which the integration's time zone places.
 *
 * Identity: `%sensorid`, reused by the sensor's next outage.
 */
import type { AlertEvent, AlertKind, AlertSeverity, AlertStatus } from '../alert-event';
import { malformed } from '../errors';
import { Fields } from './fields';
import { dedupKeyOf, eventIdOf, type NormalizeContext, type Normalizer } from './common';
import { localTime } from './time';

/** PRTG's date formats: its ISO-like default, European with dots or slashes, US with AM/PM. */
export const PRTG_DATETIME_FORMATS = [
  'dd.MM.yyyy HH:mm:ss',
  'd/M/yyyy H:mm:ss',
  'M/d/yyyy h:mm:ss a',
  'yyyy-MM-dd HH:mm:ss',
] as const;

function meaningOf(status: string): { kind: AlertKind; status: AlertStatus; severity: AlertSeverity } | undefined {
  if (/^down\s*\(acknowledged\)/i.test(status)) return { kind: 'ack', status: 'firing', severity: 'critical' };
  if (/^down\s*\(partial\)/i.test(status)) return { kind: 'state', status: 'firing', severity: 'major' };
  if (/^down/i.test(status)) return { kind: 'state', status: 'firing', severity: 'critical' };
  if (/^up/i.test(status)) return { kind: 'state', status: 'resolved', severity: 'info' };
  if (/^warning/i.test(status)) return { kind: 'state', status: 'firing', severity: 'warning' };
  if (/^(unusual|paused|unknown|none)/i.test(status)) return { kind: 'info', status: 'firing', severity: 'info' };
  return undefined;
}

export const normalizePrtg: Normalizer = (payload, ctx: NormalizeContext) => {
  const body = Fields.of(payload);
  const sensorId = body.string('sensorid');
  if (!/^\d+$/.test(sensorId))
    throw malformed(body.pathOf('sensorid'), `must be %sensorid (digits), got ${JSON.stringify(sensorId)}`);
  const statusText = body.string('status');
  const meaning = meaningOf(statusText);
  if (!meaning)
    throw malformed(
      body.pathOf('status'),
      `must be %status ("Down", "Up", "Warning"...), got ${JSON.stringify(statusText)}`,
    );
  const at = body.has('datetime')
    ? localTime(body.string('datetime'), body.pathOf('datetime'), ctx.timeZone, PRTG_DATETIME_FORMATS)
    : undefined;
  const device = body.optionalString('device');
  const host = body.optionalString('host');
  const labels: Record<string, string> = {};
  for (const key of ['device', 'host', 'group', 'probe', 'name']) {
    const v = body.optionalString(key);
    if (v !== undefined) labels[key] = v;
  }
  const event: AlertEvent = {
    source: 'prtg',
    integration: ctx.integration,
    dedupKey: dedupKeyOf('prtg', ctx.integration, sensorId),
    eventId: eventIdOf('prtg', ctx.integration, sensorId, statusText, at?.toISOString()),
    kind: meaning.kind,
    status: meaning.status,
    target: {
      ...(device ? { device } : {}),
      // %host is the device's IP address or DNS name, as entered in PRTG.
      ...(host && /^[\d.:a-f]+$/i.test(host) && /[.:]/.test(host) ? { ip: host } : {}),
      ...(body.optionalString('name') ? { service: body.optionalString('name') } : {}),
      labels,
    },
    severity: meaning.severity,
    summary: [device, body.optionalString('name'), statusText, body.optionalString('message')]
      .filter(Boolean)
      .join(': '),
    ...(at ? (meaning.status === 'firing' ? { startsAt: at } : { endsAt: at }) : {}),
    receivedAt: ctx.receivedAt,
  };
  return [event];
};
