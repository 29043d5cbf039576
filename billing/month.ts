/**
 * Billing months ("2026-10"), in the ISP's time zone. Pure and free of imports, so that the
 * billing workflow may use it: it only reads the instant it is given (never the clock), and
 * Intl's time-zone data, which is part of the Node binary the worker runs on.
 */

/** Billing periods are calendar months in Italian time. */
export const BILLING_TIME_ZONE = 'Europe/Rome';

const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;

export function isMonth(text: string): boolean {
  return MONTH.test(text);
}

function parse(month: string): { year: number; month: number } {
  const m = MONTH.exec(month);
  if (!m) throw new RangeError(`${JSON.stringify(month)} is not a month: write YYYY-MM, e.g. 2026-10`);
  return { year: Number(m[1]), month: Number(m[2]) };
}

function format(year: number, month: number): string {
  return `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}`;
}

export function previousMonth(month: string): string {
  const { year, month: m } = parse(month);
  return m === 1 ? format(year - 1, 12) : format(year, m - 1);
}

export function nextMonth(month: string): string {
  const { year, month: m } = parse(month);
  return m === 12 ? format(year + 1, 1) : format(year, m + 1);
}

/** The month (YYYY-MM) an instant falls in, in Italian time. */
export function monthOf(at: Date, timeZone = BILLING_TIME_ZONE): string {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: '2-digit' }).formatToParts(at);
  const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  return format(get('year'), get('month'));
}

/**
 * The month that has just ended at `at`: the month before the one `at` falls in. The schedule
 * fires on the 1st at 02:00 Italian time, so this is the month that ended two hours before.
 */
export function monthJustEnded(at: Date, timeZone = BILLING_TIME_ZONE): string {
  return previousMonth(monthOf(at, timeZone));
}

/** Months from `from` to `to`, both included, in order. */
export function monthsBetween(from: string, to: string): string[] {
  const out: string[] = [];
  for (let m = from; m <= to && out.length < 1200; m = nextMonth(m)) out.push(m);
  return out;
}
