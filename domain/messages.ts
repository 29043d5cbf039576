/**
 * The words of the walking skeleton's messages. The rules language (rules/) replaces these with
 * operator-edited templates; until then they are kept short enough for one GSM-7 SMS part.
 */
import type { Language, MessageKind } from './types';

export interface MessageFacts {
  areas: string[];
}

const TEXTS: Record<MessageKind, Record<Language, (f: MessageFacts) => string>> = {
  outage: {
    it: (f) => `Avviso guasto: servizio internet interrotto nella zona di ${f.areas.join(', ')}. Stiamo lavorando per ripristinarlo. Vi avviseremo al ripristino.`,
    en: (f) => `Outage notice: internet service is down in ${f.areas.join(', ')}. We are working to restore it and will tell you when it is back.`,
  },
  restored: {
    it: (f) => `Servizio ripristinato nella zona di ${f.areas.join(', ')}. Ci scusiamo per il disagio.`,
    en: (f) => `Service restored in ${f.areas.join(', ')}. We apologise for the inconvenience.`,
  },
};

export function renderMessage(kind: MessageKind, language: Language, facts: MessageFacts): string {
  return TEXTS[kind][language](facts);
}
