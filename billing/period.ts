/**
 * The instants a billing month spans, and the days an interval touches, in Italian time (DST
 * included: March has a 23-hour day and October a 25-hour one, and both still count as one day).
 */
import { DateTime } from 'luxon';
import { BILLING_TIME_ZONE, monthOf, nextMonth } from './month';

export interface MonthBounds {
  month: string;
  /** First instant of the month (local midnight of the 1st). */
  start: Date;
  /** First instant of the next month: the month is [start, end). */
  end: Date;
  days: number;
  /** First and last calendar day, YYYY-MM-DD, for invoice lines. */
  firstDay: string;
  lastDay: string;
}

export function monthBounds(month: string, zone = BILLING_TIME_ZONE): MonthBounds {
  const start = DateTime.fromISO(`${month}-01T00:00:00`, { zone });
  if (!start.isValid) throw new RangeError(`${JSON.stringify(month)} is not a month: write YYYY-MM`);
  const end = DateTime.fromISO(`${nextMonth(month)}-01T00:00:00`, { zone });
  const days = start.daysInMonth!;
  return {
    month,
    start: start.toJSDate(),
    end: end.toJSDate(),
    days,
    firstDay: start.toISODate()!,
    lastDay: start.set({ day: days }).toISODate()!,
  };
}

/** The first instant of the month after the one `at` falls in. */
export function startOfNextMonth(at: Date, zone = BILLING_TIME_ZONE): Date {
  return monthBounds(nextMonth(monthOf(at, zone)), zone).start;
}

/** Whether the month is over at `now` (only ended months are billed). */
export function monthHasEnded(month: string, now: Date, zone = BILLING_TIME_ZONE): boolean {
  return monthBounds(month, zone).end.getTime() <= now.getTime();
}

/**
 * Calendar days (local) that the interval [from, to) touches, from and to within one month: a
 * day counts when the option was active at any moment of it.
 */
export function daysTouched(from: Date, to: Date, zone = BILLING_TIME_ZONE): number {
  if (to.getTime() <= from.getTime()) return 0;
  const first = DateTime.fromJSDate(from, { zone });
  const last = DateTime.fromJSDate(new Date(to.getTime() - 1), { zone });
  // Within one month, so within one year: day-of-year ordinals subtract exactly, whatever DST does.
  return last.ordinal - first.ordinal + 1;
}
