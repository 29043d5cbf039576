/** What a subscriber's SMS to us asks for, and what we answer: pure, so it is tested alone. */
import type { Incident, Language } from './types';

export type InboundAction = 'stop' | 'start' | 'info' | 'help';

const KEYWORDS: Record<string, InboundAction> = {
  STOP: 'stop',
  'STOP ALL': 'stop',
  STOPALL: 'stop',
  ARRESTA: 'stop',
  UNSUBSCRIBE: 'stop',
  CANCEL: 'stop',
  START: 'start',
  ATTIVA: 'start',
  UNSTOP: 'start',
  INFO: 'info',
  STATO: 'info',
  STATUS: 'info',
};

/** Reads the keyword, whatever the case, spacing or punctuation around it ("stop.", " Arresta "). */
export function interpretKeyword(text: string): InboundAction {
  const normalized = text
    .normalize('NFKC')
    .toUpperCase()
    .replace(/[^A-Z ]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return KEYWORDS[normalized] ?? KEYWORDS[normalized.split(' ')[0] ?? ''] ?? 'help';
}

/** Where a subscriber's site stands, as STATO/INFO answers it. */
export type SiteStatus =
  | { state: 'outage'; areas: string[]; estimatedEnd?: Date }
  | { state: 'maintenance'; areas: string[]; endsAt: Date }
  | { state: 'scheduled'; areas: string[]; startsAt: Date; endsAt: Date }
  | { state: 'normal' };

const OUTAGE_OPEN = new Set(['detected', 'notifying', 'notified', 'escalated']);
const MAINTENANCE_UNDER_WAY = new Set(['in_progress', 'overrun']);

/**
 * The state of a site from the incidents that cover it (those on it or on a site it hangs from):
 * an open outage first, then a maintenance under way, then the next scheduled one, else normal. A
 * resolving or cancelled incident is over for the subscriber; so is a finished maintenance.
 */
export function siteStatus(
  covering: Pick<Incident, 'kind' | 'phase' | 'areas' | 'estimatedEnd' | 'window'>[],
  now: Date,
): SiteStatus {
  const outages = covering.filter((i) => i.kind === 'outage' && OUTAGE_OPEN.has(i.phase));
  if (outages.length) {
    const ends = outages.map((i) => i.estimatedEnd?.getTime()).filter((t): t is number => t !== undefined);
    // With several outages, service is back only when the last ends: an estimate counts only if every outage has one.
    const estimatedEnd = ends.length === outages.length ? new Date(Math.max(...ends)) : undefined;
    return {
      state: 'outage',
      areas: areasOf(outages),
      ...(estimatedEnd && estimatedEnd > now ? { estimatedEnd } : {}),
    };
  }
  const works = covering.filter((i) => i.kind === 'maintenance' && i.window);
  const underWay = works.filter((i) => MAINTENANCE_UNDER_WAY.has(i.phase));
  if (underWay.length)
    return {
      state: 'maintenance',
      areas: areasOf(underWay),
      endsAt: new Date(Math.max(...underWay.map((i) => i.window!.endsAt.getTime()))),
    };
  const next = works
    .filter((i) => i.phase === 'scheduled' && i.window!.endsAt > now)
    .sort((a, b) => a.window!.startsAt.getTime() - b.window!.startsAt.getTime())[0];
  if (next)
    return { state: 'scheduled', areas: next.areas, startsAt: next.window!.startsAt, endsAt: next.window!.endsAt };
  return { state: 'normal' };
}

function areasOf(incidents: Pick<Incident, 'areas'>[]): string[] {
  return [...new Set(incidents.flatMap((i) => i.areas))].sort();
}

/** A time as the subscriber reads it: Italian time, day and hour ("ven 4/12 15:30"). */
function when(d: Date, language: Language): string {
  return d.toLocaleString(language === 'it' ? 'it-IT' : 'en-GB', {
    timeZone: 'Europe/Rome',
    weekday: 'short',
    day: 'numeric',
    month: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
  });
}

export function replyText(action: InboundAction, language: Language, status?: SiteStatus): string {
  const it = language === 'it';
  switch (action) {
    case 'stop':
      return it
        ? 'Avvisi SMS disattivati. Per riattivarli rispondi ATTIVA.'
        : 'SMS alerts turned off. Reply START to turn them back on.';
    case 'start':
      return it
        ? 'Avvisi SMS attivi: ti scriveremo in caso di guasti o manutenzioni nella tua zona. Per disattivarli rispondi STOP.'
        : 'SMS alerts are on: we will text you about outages and maintenance in your area. Reply STOP to turn them off.';
    case 'info':
      return statusText(status ?? { state: 'normal' }, language);
    case 'help':
      return it
        ? 'Rispondi STATO per lo stato della tua zona, STOP per disattivare gli avvisi, ATTIVA per riattivarli.'
        : 'Reply STATUS for your area, STOP to turn alerts off, START to turn them on.';
  }
}

function statusText(s: SiteStatus, language: Language): string {
  const it = language === 'it';
  switch (s.state) {
    case 'normal':
      return it
        ? 'Nessun guasto né manutenzione in corso nella tua zona: il servizio funziona normalmente.'
        : 'No outage or maintenance in your area: service is running normally.';
    case 'outage': {
      const eta = s.estimatedEnd
        ? it
          ? ` Ripristino previsto: ${when(s.estimatedEnd, language)}.`
          : ` Expected back: ${when(s.estimatedEnd, language)}.`
        : '';
      return it
        ? `Guasto in corso: ${s.areas.join(', ')}.${eta} Ti avviseremo al ripristino.`
        : `Outage in progress: ${s.areas.join(', ')}.${eta} We will tell you when it is fixed.`;
    }
    case 'maintenance':
      return it
        ? `Manutenzione in corso: ${s.areas.join(', ')}, fine prevista ${when(s.endsAt, language)}.`
        : `Maintenance under way: ${s.areas.join(', ')}, expected to end ${when(s.endsAt, language)}.`;
    case 'scheduled':
      return it
        ? `Nessun guasto in corso. Manutenzione programmata: ${s.areas.join(', ')}, dalle ${when(s.startsAt, language)} alle ${when(s.endsAt, language)}.`
        : `No outage now. Maintenance scheduled: ${s.areas.join(', ')}, from ${when(s.startsAt, language)} to ${when(s.endsAt, language)}.`;
  }
}
