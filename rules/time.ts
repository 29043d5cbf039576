/**
 * The two kinds of time that rule files speak: durations (`30m`, `2h`, `1h30m`) and windows
 * of local time (`21:00-07:00`, which spans midnight), plus the local-time facts a rule can
 * test. Local means the rule set's time zone (Europe/Rome unless it says otherwise), with
 * daylight saving handled by luxon.
 */
import { DateTime } from 'luxon';

const DURATION = /^(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?$/;

/** Seconds in `30m`, `2h`, `1h30m`, `45s`, `1d`; `0` is zero. Undefined when the text is not a duration. */
export function parseDuration(text: string | number): number | undefined {
  if (text === 0 || text === '0') return 0;
  if (typeof text !== 'string') return undefined;
  const t = text.trim();
  const m = DURATION.exec(t);
  if (!t || !m || m.slice(1).every((g) => g === undefined)) return undefined;
  const [d, h, min, s] = m.slice(1).map((g) => Number(g ?? 0)) as [number, number, number, number];
  return ((d * 24 + h) * 60 + min) * 60 + s;
}

/** `5400` -> `1h30m`: the way rule files write it, for messages and tools. */
export function formatDuration(seconds: number): string {
  if (seconds === 0) return '0';
  const parts: string[] = [];
  let rest = seconds;
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * size;
  }
  return parts.join('');
}

/** A span of local time of day. When `end` is not after `start` it runs past midnight. */
export interface TimeWindow {
  /** `HH:mm` */
  start: string;
  /** `HH:mm`; `24:00` means midnight at the end of the day. */
  end: string;
}

const CLOCK = /^(\d{1,2}):(\d{2})$/;

/** Minutes after midnight of `HH:mm`, or an explanation of what is wrong with it. */
export function parseClock(text: string, allowMidnightEnd = false): number | string {
  const m = CLOCK.exec(text.trim());
  if (!m) return `"${text}" is not a time of day; write it as HH:MM, e.g. 07:30`;
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (min > 59) return `"${text}" has ${min} minutes; minutes go from 00 to 59`;
  if (h === 24 && min === 0 && allowMidnightEnd) return 24 * 60;
  if (h > 23)
    return `"${text}" is not a time of day: hours go from 00 to 23${allowMidnightEnd ? ' (24:00 may end a window)' : ''}`;
  return h * 60 + min;
}

function clockText(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

/** Parses `21:00-07:00`; returns a message when the window is impossible. */
export function parseTimeWindow(text: string): TimeWindow | string {
  const parts = String(text).split('-');
  if (parts.length !== 2) return `"${text}" is not a time window; write it as HH:MM-HH:MM, e.g. 21:00-07:00`;
  const start = parseClock(parts[0]!);
  const end = parseClock(parts[1]!, true);
  if (typeof start === 'string') return start;
  if (typeof end === 'string') return end;
  if (start === end || (start === 0 && end === 24 * 60)) {
    return `the window ${text} is impossible: it starts and ends at the same time (to mean "always", leave the setting out; to mean "never", write off)`;
  }
  return { start: clockText(start), end: clockText(end) };
}

export function windowText(w: TimeWindow): string {
  return `${w.start}-${w.end}`;
}

function minutesOf(clock: string): number {
  const [h, m] = clock.split(':').map(Number) as [number, number];
  return h * 60 + m;
}

/** Whether local time `clock` (HH:mm) falls in the window; the start is in, the end is out. */
export function clockWithin(clock: string, w: TimeWindow): boolean {
  const t = minutesOf(clock);
  const s = minutesOf(w.start);
  const e = minutesOf(w.end);
  return s < e ? t >= s && t < e : t >= s || t < e;
}

/** When `at` falls inside the window (local time in `timeZone`), the instant the window ends; otherwise undefined. */
export function windowEndAfter(w: TimeWindow, at: Date, timeZone: string): Date | undefined {
  const local = DateTime.fromJSDate(at, { zone: timeZone });
  if (!clockWithin(local.toFormat('HH:mm'), w)) return undefined;
  const s = minutesOf(w.start);
  const e = minutesOf(w.end);
  const t = local.hour * 60 + local.minute;
  // A window past midnight that we are in before midnight ends tomorrow; otherwise it ends today.
  const day = s >= e && t >= s ? local.plus({ days: 1 }) : local;
  const end = day.startOf('day').plus({ minutes: e });
  return end.toJSDate();
}

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** A holiday is a date (`2025-04-21`) or a date every year (`12-25`). */
export function holidayProblem(text: string): string | undefined {
  const full = /^\d{4}-\d{2}-\d{2}$/.test(text) ? text : /^\d{2}-\d{2}$/.test(text) ? `2024-${text}` : undefined; // 2024 is a leap year: 02-29 is allowed
  if (!full)
    return `"${text}" is not a holiday date; write YYYY-MM-DD for one day, or MM-DD for the same day every year`;
  return DateTime.fromISO(full).isValid ? undefined : `"${text}" is not a date that exists`;
}

export interface TimeFacts {
  /** Local time of day, `HH:mm`. */
  localTime: string;
  weekday: Weekday;
  /** Local date, `YYYY-MM-DD`. */
  date: string;
  holiday: boolean;
}

export function timeFacts(at: Date, timeZone: string, holidays: ReadonlySet<string>): TimeFacts {
  const local = DateTime.fromJSDate(at, { zone: timeZone });
  const date = local.toFormat('yyyy-MM-dd');
  return {
    localTime: local.toFormat('HH:mm'),
    weekday: WEEKDAYS[local.weekday - 1]!,
    date,
    holiday: holidays.has(date) || holidays.has(date.slice(5)),
  };
}

export function isValidTimeZone(zone: string): boolean {
  return DateTime.local().setZone(zone).isValid;
}
