/**
 * The times monitoring tools send, turned into UTC instants. Only Alertmanager, Grafana,
 * Healthchecks and CloudEvents send a zone; Uptime Kuma sends UTC without saying so; Zabbix
 * (dates), LibreNMS and PRTG send the wall-clock time of the server or user, which only the
 * integration's configured time zone can place.
 */
import { DateTime } from 'luxon';
import { malformed } from '../errors';

function toDate(dt: DateTime, field: string, value: string): Date {
  if (!dt.isValid)
    throw malformed(
      field,
      `is not a time this tool sends (${JSON.stringify(value)}: ${dt.invalidExplanation ?? dt.invalidReason})`,
    );
  return dt.toJSDate();
}

/**
 * RFC 3339 with its zone. Go's zero time (`0001-01-01T00:00:00Z`, Alertmanager's "no end yet")
 * reads as undefined.
 */
export function rfc3339(value: string, field: string): Date | undefined {
  if (value.startsWith('0001-01-01')) return undefined;
  if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(value.trim()))
    throw malformed(
      field,
      `must be an RFC 3339 time with a zone (e.g. 2026-05-04T13:02:11Z), got ${JSON.stringify(value)}`,
    );
  return toDate(DateTime.fromISO(value.trim(), { setZone: true }), field, value);
}

/** `2026-05-04 13:02:11.400` meaning UTC (Uptime Kuma); a time that does carry a zone keeps it. */
export function utcUnlessZoned(value: string, field: string): Date {
  const v = value.trim();
  const sql = DateTime.fromSQL(v, { zone: 'utc' });
  return toDate(sql.isValid ? sql : DateTime.fromISO(v, { zone: 'utc' }), field, value);
}

/** Unix seconds (Zabbix `{EVENT.TIMESTAMP}`, Nagios `$TIMET$`), as a number or a string of digits. */
export function unixSeconds(value: string, field: string): Date {
  if (!/^\d{9,11}(\.\d+)?$/.test(value.trim()))
    throw malformed(field, `must be unix seconds (e.g. 1777899731), got ${JSON.stringify(value)}`);
  return new Date(Number(value) * 1000);
}

/**
 * A wall-clock time in `zone`, in one of `formats` (luxon tokens); ISO and SQL-style times are
 * always accepted, and keep their own zone if they have one.
 */
export function localTime(value: string, field: string, zone: string, formats: readonly string[] = []): Date {
  const v = value.trim().replace(/\s+/g, ' ');
  const candidates = [
    () => DateTime.fromSQL(v, { zone }),
    () => DateTime.fromISO(v, { zone }),
    ...formats.map((f) => () => DateTime.fromFormat(v, f, { zone, locale: 'en-US' })),
  ];
  for (const parse of candidates) {
    const dt = parse();
    if (dt.isValid) return dt.toJSDate();
  }
  const accepted = ['yyyy-MM-dd HH:mm:ss', ...formats].join('", "');
  throw malformed(
    field,
    `is not a time in a format we read (${JSON.stringify(value)}); send one of "${accepted}" (local time in ${zone})`,
  );
}
