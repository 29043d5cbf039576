/**
 * Each message's words, from the template its incident's pinned rules give its kind, set, area and
 * language: what the sender hands the provider (delivery/ports.ts `TextsOf`).
 */
import type { RulesResolver } from '../store/rule-versions';
import { messageVariables } from '../rules';
import { acknowledgementCode } from '../domain/acknowledgement';
import type { TextsOf } from '../delivery/ports';
import type { Incident, TemplateKind } from '../domain/types';
import { incidentFacts } from './notices';

/** Each message's words: the incident's pinned rules' template for its kind, set, area and language. */
export function textsFrom(rulesOf: RulesResolver): TextsOf {
  return async (incident) => {
    const rules = await rulesOf(incident.rulesVersion);
    const facts = incidentFacts(incident);
    const now = new Date();
    // A text depends on its template, language and area only: rendered once per combination (a
    // thousand recipients in one area share one text), and with one "now" for all of them.
    const rendered = new Map<string, string>();
    return (d, kind) => {
      // An operator's message carries its own (checked) words; every other kind is written by a template.
      if (d.kind === 'message' && d.text !== undefined) return d.text;
      const templateKind = (d.templateKind ?? (kind === 'escalation' ? incident.kind : kind)) as TemplateKind;
      const key = JSON.stringify([d.templateSet, templateKind, d.language, d.area]);
      let text = rendered.get(key);
      if (text === undefined) {
        const vars = messageVariables(facts, { area: d.area }, incident.endedAt ?? now, endVariables(incident));
        const template = d.templateSet ? { set: d.templateSet, kind: templateKind } : templateKind;
        rendered.set(key, (text = rules.render(template, d.language, vars).text));
      }
      return text;
    };
  };
}

/** The variables only some messages have: the end of an outage, the earlier window of moved maintenance. */
function endVariables(incident: Incident): {
  end?: string;
  previousStart?: string;
  previousEnd?: string;
  ackCode: string;
} {
  return {
    // The code staff reply with to take an escalation (domain/acknowledgement.ts).
    ackCode: acknowledgementCode(incident._id),
    ...(incident.endedAt ? { end: incident.endedAt.toISOString() } : {}),
    ...(incident.previousWindow
      ? {
          previousStart: incident.previousWindow.startsAt.toISOString(),
          previousEnd: incident.previousWindow.endsAt.toISOString(),
        }
      : {}),
  };
}
