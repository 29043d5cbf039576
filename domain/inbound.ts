/** What a subscriber's SMS to us asks for, and what we answer: pure, so it is tested alone. */
import type { Language } from './types';

export type InboundAction = 'stop' | 'start' | 'info' | 'help';

const KEYWORDS: Record<string, InboundAction> = {
  STOP: 'stop', 'STOP ALL': 'stop', STOPALL: 'stop', ARRESTA: 'stop', UNSUBSCRIBE: 'stop', CANCEL: 'stop',
  START: 'start', ATTIVA: 'start', UNSTOP: 'start',
  INFO: 'info', STATO: 'info', STATUS: 'info',
};

/** Reads the keyword, whatever the case, spacing or punctuation around it ("stop.", " Arresta "). */
export function interpretKeyword(text: string): InboundAction {
  const normalized = text.normalize('NFKC').toUpperCase().replace(/[^A-Z ]+/g, ' ').replace(/\s+/g, ' ').trim();
  return KEYWORDS[normalized] ?? KEYWORDS[normalized.split(' ')[0] ?? ''] ?? 'help';
}

export function replyText(action: InboundAction, language: Language, status?: { areas: string[]; openIncidents: number }): string {
  const it = language === 'it';
  switch (action) {
    case 'stop':
      return it ? 'Avvisi SMS disattivati. Per riattivarli rispondi ATTIVA.' : 'SMS alerts turned off. Reply START to turn them back on.';
    case 'start':
      return it ? 'Avvisi SMS attivi: ti scriveremo in caso di guasti o manutenzioni nella tua zona. Per disattivarli rispondi STOP.' : 'SMS alerts are on: we will text you about outages and maintenance in your area. Reply STOP to turn them off.';
    case 'info':
      if (!status || status.openIncidents === 0) return it ? 'Nessun guasto in corso nella tua zona.' : 'No outage in your area right now.';
      return it ? `Guasto in corso: ${status.areas.join(', ')}. Ti avviseremo al ripristino.` : `Outage in progress: ${status.areas.join(', ')}. We will tell you when it is fixed.`;
    case 'help':
      return it ? 'Rispondi STATO per lo stato della tua zona, STOP per disattivare gli avvisi, ATTIVA per riattivarli.' : 'Reply STATUS for your area, STOP to turn alerts off, START to turn them on.';
  }
}
