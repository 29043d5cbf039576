/**
 * Cell values (CSV text, or JSON values from NDJSON) to typed values, in the spellings billing
 * exports use. Each function names the column in the FieldError it throws.
 */
import { DateTime } from 'luxon';
import { FieldError } from '../store/normalize';

/** The time zone that dates without one are read in: the ISP's. */
export const IMPORT_TIME_ZONE = 'Europe/Rome';

export function text(v: unknown, column: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v.trim() === '' ? undefined : v.trim();
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new FieldError(column, 'must be text');
}

const TRUE = new Set(['true', 'yes', 'y', 'si', 'sì', 's', '1', 'x', 'on', 'active', 'attivo']);
const FALSE = new Set(['false', 'no', 'n', '0', 'off', 'inactive', 'non attivo', '-']);

export function flag(v: unknown, column: string): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number' && (v === 0 || v === 1)) return v === 1;
  const t = text(v, column)?.toLowerCase();
  if (t === undefined) return undefined;
  if (TRUE.has(t)) return true;
  if (FALSE.has(t)) return false;
  throw new FieldError(column, `"${t}" is not yes or no`);
}

export function decimal(v: unknown, column: string): number | undefined {
  if (typeof v === 'number') return v;
  const t = text(v, column);
  if (t === undefined) return undefined;
  // Italian spreadsheets write 45,3141.
  const n = Number(t.replace(',', '.'));
  if (!Number.isFinite(n)) throw new FieldError(column, `"${t}" is not a number`);
  return n;
}

/**
 * A date or date-time: ISO 8601 (`2026-03-01`, `2026-03-01T08:00:00Z`) or Italian
 * (`01/03/2026`, `01/03/2026 08:00`). Without a time zone, Italian time. A bare date is the
 * start of that day; with `endOfDay`, the start of the next (so `until` 31/12/2026 includes
 * the whole 31st).
 */
export function instant(v: unknown, column: string, endOfDay = false): Date | undefined {
  if (v instanceof Date) return v;
  const t = text(v, column);
  if (t === undefined) return undefined;
  // Parsing a date costs some 40 us, and an export repeats the same few dates (option start
  // days) across 100,000 rows: remember them.
  const key = `${endOfDay ? 'E' : 'S'}${t}`;
  const known = parsedDates.get(key);
  if (known !== undefined) return new Date(known);
  const parsed = parseInstant(t, column, endOfDay);
  if (parsedDates.size >= 10_000) parsedDates.clear();
  parsedDates.set(key, parsed.getTime());
  return parsed;
}

const parsedDates = new Map<string, number>();

function parseInstant(t: string, column: string, endOfDay: boolean): Date {
  const zone = { zone: IMPORT_TIME_ZONE, setZone: true };
  const candidates: [DateTime, boolean][] = [
    [DateTime.fromISO(t, zone), /^\d{4}-\d{2}-\d{2}$/.test(t)],
    [DateTime.fromFormat(t, 'd/M/yyyy', zone), true],
    [DateTime.fromFormat(t, 'd/M/yyyy H:mm', zone), false],
    [DateTime.fromFormat(t, 'd/M/yyyy H:mm:ss', zone), false],
    [DateTime.fromFormat(t, 'd-M-yyyy', zone), true],
  ];
  for (const [dt, dateOnly] of candidates) {
    if (!dt.isValid) continue;
    return (dateOnly && endOfDay ? dt.startOf('day').plus({ days: 1 }) : dt).toJSDate();
  }
  throw new FieldError(column, `"${t}" is not a date (write 2026-03-01 or 01/03/2026)`);
}

/** A list from a JSON array, or from text with `;` `,` or `|` between items. */
export function list(v: unknown, column: string): string[] | undefined {
  if (Array.isArray(v)) return v.map((x) => text(x, column) ?? '').filter(Boolean);
  const t = text(v, column);
  return t === undefined
    ? undefined
    : t
        .split(/[;,|]/)
        .map((s) => s.trim())
        .filter(Boolean);
}
