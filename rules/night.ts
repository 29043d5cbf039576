/**
 * The night policy: which message may break quiet hours, at which severity, and where the others
 * go. A text that wakes someone up must be worth it: the first news of a serious outage is; its
 * updates are not (the latest one is sent when the window ends); the news that it is over is
 * worth it only to someone it woke up before. Warnings of planned work are the opposite case: a
 * warning held until the morning would arrive after night work began, so those move earlier.
 *
 * Pure functions over the rule settings and a record's stored hold; rules/README.md has the table.
 */
import { DateTime } from 'luxon';
import { clockWithin, windowEndAfter } from './time';
import { SEVERITIES, type HoldWindow, type MessageKind, type Severity } from './types';

/** Kinds a rule's `quietHours.atOnce` may name: every kind sent to subscribers. */
export const NIGHT_KINDS = [
  'outage',
  'update',
  'restored',
  'outage-restored',
  'withdrawn',
  'maintenance',
  'reminder',
  'started',
  'completed',
  'rescheduled',
  'cancelled',
] as const satisfies readonly MessageKind[];
export type NightKind = (typeof NIGHT_KINDS)[number];

/** Kinds that end an outage: at once at night only to someone whose outage notice went at night. */
export const CLOSING_KINDS: readonly NightKind[] = ['restored', 'outage-restored', 'withdrawn'];
/** Warnings of planned work: inside the window they go before it starts, never after the work began. */
export const EARLIER_KINDS: readonly NightKind[] = ['maintenance', 'reminder'];
/** What `unlessSeverity` lets through when `atOnce` does not say: the outage notice and the messages that close it. */
const FOLLOWS_UNLESS_SEVERITY: readonly NightKind[] = ['outage', ...CLOSING_KINDS];

/** `quietHours.atOnce` as written: per kind, the lowest severity sent at once (null: never). */
export type AtOnceSettings = Partial<Record<NightKind, Severity | null>>;

/** The lowest severity at which `kind` goes at once inside the window, or null when it never does. */
export function atOnceFrom(
  kind: NightKind,
  q: { unlessSeverity: Severity | null; atOnce?: AtOnceSettings },
): Severity | null {
  const own = q.atOnce?.[kind];
  if (own !== undefined) return own;
  return FOLLOWS_UNLESS_SEVERITY.includes(kind) ? q.unlessSeverity : null;
}

/** The kinds that go at once inside the window for an incident of `severity`. */
export function kindsAtOnce(
  q: { unlessSeverity: Severity | null; atOnce?: AtOnceSettings },
  severity: Severity,
): NightKind[] {
  return NIGHT_KINDS.filter((kind) => {
    const from = atOnceFrom(kind, q);
    return from !== null && SEVERITIES.indexOf(severity) >= SEVERITIES.indexOf(from);
  });
}

export type NightOutcome =
  'at once' | 'waits for the end' | 'at once if the notice went at night' | 'moves before the window';

/** What happens to `kind` at `severity` inside the window: one cell of the table in rules/README.md. */
export function nightOutcome(
  q: { unlessSeverity: Severity | null; atOnce?: AtOnceSettings },
  kind: NightKind,
  severity: Severity,
): NightOutcome {
  if (kindsAtOnce(q, severity).includes(kind))
    return CLOSING_KINDS.includes(kind) ? 'at once if the notice went at night' : 'at once';
  return EARLIER_KINDS.includes(kind) ? 'moves before the window' : 'waits for the end';
}

/** Whether `at` falls inside the hold window (its local time zone). */
export function insideWindow(hold: HoldWindow | null | undefined, at: Date): boolean {
  return Boolean(hold && clockWithin(DateTime.fromJSDate(at, { zone: hold.timeZone }).toFormat('HH:mm'), hold));
}

/** When the window that `at` falls in began (undefined outside it). */
export function windowStartBefore(w: HoldWindow, at: Date): Date | undefined {
  const end = windowEndAfter(w, at, w.timeZone);
  if (!end) return undefined;
  const local = DateTime.fromJSDate(end, { zone: w.timeZone });
  const [sh, sm] = w.start.split(':').map(Number) as [number, number];
  let start = local.set({ hour: sh, minute: sm, second: 0, millisecond: 0 });
  if (start >= local) start = start.minus({ days: 1 });
  return start.toJSDate();
}

/** How long before the window a warning moved out of it goes: the last minute before the window. */
const BEFORE_WINDOW_MS = 60_000;

/**
 * When a message of `kind` planned for `planned` may go, under `hold`: null when it goes as planned
 * (outside the window, no window, or a kind sent at once at this severity), the window's end for
 * most kinds, and for warnings of planned work the minute before the window began, or `now` when
 * that is past already (never after the work: a late warning is better than none).
 */
export function nightDue(
  hold: HoldWindow | null | undefined,
  kind: MessageKind | 'escalation',
  planned: Date,
  now: Date = planned,
): Date | null {
  if (!hold) return null;
  const end = windowEndAfter(hold, planned, hold.timeZone);
  if (!end) return null;
  // Records planned before the night policy carry no list: what their window says holds for every kind.
  if (hold.atOnce?.includes(kind as MessageKind)) return null;
  if ((EARLIER_KINDS as readonly string[]).includes(kind)) {
    const before = new Date(windowStartBefore(hold, planned)!.getTime() - BEFORE_WINDOW_MS);
    return before.getTime() > now.getTime() ? before : now;
  }
  return end;
}

/**
 * The hold a closing message (restored, outage-restored, withdrawn) is planned with, from the hold
 * on the outage notice it follows: it keeps the right to go at once at night only when that notice
 * itself went inside the window (someone woken by "down" may be told "back"; someone who slept
 * through it learns both in the morning). Stored on the record, so its fallback decides the same.
 */
export function closingHold(
  noticeHold: HoldWindow | null | undefined,
  noticeSentAt: Date | undefined,
): HoldWindow | null {
  if (!noticeHold) return null;
  if (!noticeHold.atOnce || (noticeSentAt && insideWindow(noticeHold, noticeSentAt))) return noticeHold;
  const atOnce = noticeHold.atOnce.filter((k) => !(CLOSING_KINDS as readonly MessageKind[]).includes(k));
  return { ...noticeHold, atOnce };
}
