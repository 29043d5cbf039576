/**
 * What the console says after an action went through (the page it redirects to carries `?done=<action>`):
 * a sentence per action, in the operator's language, instead of the action's English name.
 */
import type { Lang } from './i18n';

const INCIDENT = {
  it: {
    opened: 'Incidente aperto: gli avvisi partono come dicono le regole.',
    update: 'Aggiornamento pubblicato.',
    escalate: 'Escalation inviata al personale.',
    acknowledge: 'Escalation presa in carico: i solleciti si fermano.',
    resolve: 'Incidente risolto: partono gli avvisi di ripristino.',
    cancel: 'Falso allarme annullato: chi era stato avvisato lo saprà.',
  },
  en: {
    opened: 'Incident opened: notices go out as the rules say.',
    update: 'Update posted.',
    escalate: 'Escalated to staff.',
    acknowledge: 'Escalation acknowledged: the repeats stop.',
    resolve: 'Incident resolved: restoration notices go out.',
    cancel: 'False alarm cancelled: those told will be told.',
  },
} as const;

const MAINTENANCE = {
  it: {
    scheduled: 'Manutenzione programmata: gli avvisi partono come dicono le regole.',
    reschedule: 'Finestra spostata: chi era stato avvisato lo saprà.',
    complete: 'Lavori completati: parte l\u2019avviso di fine lavori.',
    cancel: 'Manutenzione annullata: chi era stato avvisato lo saprà.',
    acknowledge: 'Escalation presa in carico: i solleciti si fermano.',
  },
  en: {
    scheduled: 'Maintenance scheduled: notices go out as the rules say.',
    reschedule: 'Window moved: those told will be told.',
    complete: 'Work completed: the completion notice goes out.',
    cancel: 'Maintenance cancelled: those told will be told.',
    acknowledge: 'Escalation acknowledged: the repeats stop.',
  },
} as const;

export type IncidentDone = keyof (typeof INCIDENT)['en'];
export type MaintenanceDone = keyof (typeof MAINTENANCE)['en'];

/** The sentence for `done` on an incident's or a maintenance's page; undefined for anything else (no flash). */
export function doneFlash(lang: Lang, page: 'incident' | 'maintenance', done: unknown): string | undefined {
  const sentences: Record<string, string> = (page === 'incident' ? INCIDENT : MAINTENANCE)[lang];
  return typeof done === 'string' && Object.hasOwn(sentences, done) ? sentences[done] : undefined;
}
