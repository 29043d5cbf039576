/**
 * When a planned notice goes out: after the grace delay, then as the night policy says when it
 * would fall inside quiet hours (rules/night.ts: at once, at the window's end, or, for warnings of
 * planned work, before the window). The lifecycle workflow uses the same rule for every message it
 * sends (updates and restorations included), so simulate and explain say what will really happen.
 */
import { nightDue } from './night';
import type { HoldWindow, IncidentFacts, MessageKind, NoticePlan } from './types';

/**
 * The moment a message of `kind` planned for `planned` may go, when quiet hours move it; null when
 * they do not. Without a kind, the window holds everything (as for records planned before the policy).
 */
export function holdUntil(
  hold: HoldWindow | null,
  planned: Date,
  kind?: MessageKind | 'escalation' | 'message',
  now?: Date,
): Date | null {
  // An operator's own message goes when the operator sends it: they chose the time.
  if (!hold || kind === 'message') return null;
  return nightDue(kind ? hold : { ...hold, atOnce: undefined }, kind ?? 'outage', planned, now ?? planned);
}

export interface FirstNoticeTime {
  /** When the first notice is due before quiet hours are applied. */
  plannedAt: Date;
  /** When it actually goes out. */
  sendAt: Date;
  /** Set when quiet hours moved it (later, or for a maintenance notice, earlier). */
  heldUntil: Date | null;
}

/** The first notice of `plan` for an incident decided at `decidedAt`. */
export function firstNoticeTime(
  plan: Pick<NoticePlan, 'graceSeconds' | 'hold' | 'maintenance'>,
  incident: IncidentFacts,
  decidedAt: Date,
): FirstNoticeTime {
  let planned: Date;
  if (incident.kind === 'maintenance') {
    const start = incident.startsAt ? new Date(incident.startsAt) : decidedAt;
    planned = new Date(Math.max(decidedAt.getTime(), start.getTime() - plan.maintenance.noticeBeforeSeconds * 1000));
  } else {
    const opened = incident.openedAt ? new Date(incident.openedAt) : decidedAt;
    planned = new Date(Math.max(decidedAt.getTime(), opened.getTime() + plan.graceSeconds * 1000));
  }
  const heldUntil = holdUntil(
    plan.hold,
    planned,
    incident.kind === 'maintenance' ? 'maintenance' : 'outage',
    decidedAt,
  );
  return { plannedAt: planned, sendAt: heldUntil ?? planned, heldUntil };
}
