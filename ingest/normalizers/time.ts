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

const PLAIN_RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:Z|([+-])(\d{2}):(\d{2}))$/;

/**
 * The common form of RFC 3339 (`2026-05-04T13:02:11.4Z`, `...+02:00`) read by hand: every alert of
 * a storm carries one or two, and luxon's general ISO parser was a tenth of the webhook's CPU time.
 * Undefined when the text is not in that form or names no real time (Feb 30, 24:00, a leap
 * second): luxon then decides, and explains.
 */
function plainRfc3339(value: string): Date | undefined {
  const m = PLAIN_RFC3339.exec(value);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const wall = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  // Date.UTC rolls an out-of-range field over (Feb 30 is Mar 2): such a text is not a time.
  if (
    wall.getUTCFullYear() !== y ||
    wall.getUTCMonth() !== mo - 1 ||
    wall.getUTCDate() !== d ||
    wall.getUTCHours() !== h ||
    wall.getUTCMinutes() !== mi ||
    wall.getUTCSeconds() !== s
  )
    return undefined;
  const offsetHours = Number(m[9] ?? 0);
  const offsetMinutes = Number(m[10] ?? 0);
  if (offsetHours > 23 || offsetMinutes > 59) return undefined;
  const offsetMs = (m[8] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
  const ms = m[7] ? Math.floor(Number(`0.${m[7]}`) * 1000) : 0; // luxon too keeps whole milliseconds
  return new Date(wall.getTime() + ms - offsetMs);
}

/**
 * RFC 3339 with its zone. Go's zero time (`0001-01-01T00:00:00Z`, Alertmanager's "no end yet")
 * reads as undefined.
 */
export function rfc3339(value: string, field: string): Date | undefined {
  if (value.startsWith('0001-01-01')) return undefined;
  const v = value.trim();
  if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(v))
    throw malformed(
      field,
      `must be an RFC 3339 time with a zone (e.g. 2026-05-04T13:02:11Z), got ${JSON.stringify(value)}`,
    );
  return plainRfc3339(v) ?? toDate(DateTime.fromISO(v, { setZone: true }), field, value);
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
