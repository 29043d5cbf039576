/**
 * When a planned notice goes out: after the grace delay, moved to the end of the quiet-hours
 * window when it would fall inside it. The lifecycle workflow uses the same rule for every
 * message it sends (updates and restorations included), so simulate and explain say what
 * will really happen.
 */
import { windowEndAfter } from './time';
import type { HoldWindow, IncidentFacts, NoticePlan } from './types';

/** The moment `planned` becomes `due`: unchanged outside the window, the window's end inside it. */
export function holdUntil(hold: HoldWindow | null, planned: Date): Date | null {
  return hold ? (windowEndAfter(hold, planned, hold.timeZone) ?? null) : null;
}

export interface FirstNoticeTime {
  /** When the first notice is due before quiet hours are applied. */
  plannedAt: Date;
  /** When it actually goes out. */
  sendAt: Date;
  /** Set when quiet hours moved it. */
  heldUntil: Date | null;
}

/** The first notice of `plan` for an incident decided at `decidedAt`. */
export function firstNoticeTime(plan: Pick<NoticePlan, 'graceSeconds' | 'hold' | 'maintenance'>, incident: IncidentFacts, decidedAt: Date): FirstNoticeTime {
  let planned: Date;
  if (incident.kind === 'maintenance') {
    const start = incident.startsAt ? new Date(incident.startsAt) : decidedAt;
    planned = new Date(Math.max(decidedAt.getTime(), start.getTime() - plan.maintenance.noticeBeforeSeconds * 1000));
  } else {
    const opened = incident.openedAt ? new Date(incident.openedAt) : decidedAt;
    planned = new Date(Math.max(decidedAt.getTime(), opened.getTime() + plan.graceSeconds * 1000));
  }
  const heldUntil = holdUntil(plan.hold, planned);
  return { plannedAt: planned, sendAt: heldUntil ?? planned, heldUntil };
}
