/**
 * `rules simulate`: who would get what if this incident happened now. Subscribers are
 * decided as in production (grouped), then counted by channel, rule, language and text, with
 * when the first notice goes out, its SMS parts, and what the first notice and the
 * restoration notice would cost.
 */
import type { Decider } from './evaluate';
import type { CompiledRules } from './model';
import { firstNoticeTime } from './schedule';
import { messageVariables, renderTemplate, type MessageVariables, type RenderedMessage } from './templates';
import type { IncidentDecision, IncidentFacts, MessageKind, SubscriberChannel, SubscriberFacts } from './types';

export interface SimulatedText {
  kind: MessageKind;
  text: string;
  encoding: RenderedMessage['encoding'];
  parts: number;
  overLimit: boolean;
}

export interface SimulationRow {
  channel: SubscriberChannel;
  rule: string;
  templateSet: string;
  language: string;
  subscribers: number;
  sendAt: string;
  heldUntil: string | null;
  first: SimulatedText;
  /** Null when no restoration notice follows (or the incident is maintenance). Previewed as if service came back at the estimated time, or an hour after the decision. */
  restoration: SimulatedText | null;
  updatesEverySeconds: number | null;
  /** The first notice and the restoration notice for all of this row's subscribers. */
  cost: number;
}

export interface Simulation {
  version: string;
  at: string;
  subscribers: number;
  notified: number;
  notNotified: number;
  /** Decisions computed (distinct combinations of the facts the rules read). */
  evaluations: number;
  /** json-rules-engine runs those needed. */
  ruleRuns: number;
  rows: SimulationRow[];
  incident: IncidentDecision;
  feed: SimulatedText | null;
  escalations: { contact: string; channel: string; at: string; repeat: string | null }[];
  totals: { messages: number; smsParts: number; cost: number; currency: string; note: string };
}

export async function simulate(
  compiled: CompiledRules,
  version: string,
  decider: Decider,
  incident: IncidentFacts,
  subscribers: Iterable<SubscriberFacts> | AsyncIterable<SubscriberFacts>,
): Promise<Simulation> {
  const { settings } = compiled;
  const firstKind: MessageKind = incident.kind === 'maintenance' ? 'maintenance' : 'outage';
  const texts = new Map<string, SimulatedText | null>();
  const render = (set: string, kind: MessageKind, language: string, vars: MessageVariables): SimulatedText | null => {
    const key = `${set}\u001f${kind}\u001f${language}\u001f${vars.area}`;
    if (!texts.has(key)) {
      const template = compiled.templateSets.get(set)?.texts.get(kind)?.get(language);
      const r =
        template &&
        renderTemplate(compiled.liquid, template, vars, {
          language,
          timeZone: settings.timeZone,
          transliterate: settings.sms.transliterate,
        });
      texts.set(key, r ? { kind, text: r.text, encoding: r.encoding, parts: r.parts, overLimit: r.overLimit } : null);
    }
    return texts.get(key)!;
  };
  const costOf = (channel: SubscriberChannel, t: SimulatedText | null) =>
    !t
      ? 0
      : channel === 'sms'
        ? t.parts * settings.sms.costPerPart
        : channel === 'voice'
          ? settings.voice.costPerCall
          : 0;

  // The restoration notice is previewed as if service came back at the estimated time, or an hour after the decision.
  const restoredAt = incident.estimatedEnd
    ? new Date(incident.estimatedEnd)
    : new Date(decider.at.getTime() + 3600_000);
  const openedMs = incident.openedAt ? new Date(incident.openedAt).getTime() : decider.at.getTime();
  const restoredAfter = Math.max(0, Math.round((restoredAt.getTime() - openedMs) / 1000));
  const rows = new Map<string, SimulationRow>();
  let total = 0;
  let notified = 0;
  const visit = async (s: SubscriberFacts) => {
    total += 1;
    const decision = decider.known(s) ?? (await decider.decide(s));
    if (decision.notify) notified += 1;
    for (const plan of decision.notices) {
      const vars = messageVariables(incident, s, decider.at, { sender: settings.senderId });
      const first = render(plan.templateSet, firstKind, decision.language, vars) ?? {
        kind: firstKind,
        text: '(no template)',
        encoding: 'GSM',
        parts: 0,
        overLimit: false,
      };
      const restoration =
        plan.restoration && incident.kind === 'outage'
          ? render(plan.templateSet, 'restored', decision.language, {
              ...vars,
              end: restoredAt,
              duration: restoredAfter,
            })
          : null;
      const when = firstNoticeTime(plan, incident, decider.at);
      const key = [
        plan.channel,
        plan.rule,
        plan.templateSet,
        decision.language,
        first.text,
        when.sendAt.getTime(),
      ].join('\u001f');
      let row = rows.get(key);
      if (!row) {
        row = {
          channel: plan.channel,
          rule: plan.rule,
          templateSet: plan.templateSet,
          language: decision.language,
          subscribers: 0,
          sendAt: when.sendAt.toISOString(),
          heldUntil: when.heldUntil?.toISOString() ?? null,
          first,
          restoration,
          updatesEverySeconds: plan.updates.everySeconds,
          cost: 0,
        };
        rows.set(key, row);
      }
      row.subscribers += 1;
      row.cost += costOf(plan.channel, first) + costOf(plan.channel, restoration);
    }
  };
  if (Symbol.iterator in subscribers) for (const s of subscribers as Iterable<SubscriberFacts>) await visit(s);
  else for await (const s of subscribers) await visit(s);

  const incidentPlan = await decider.incident();
  const opened = incident.openedAt ? new Date(incident.openedAt) : decider.at;
  const feedVars = messageVariables(incident, undefined, decider.at, { sender: settings.senderId });
  const list = [...rows.values()].sort((a, b) => b.subscribers - a.subscribers || a.channel.localeCompare(b.channel));
  for (const r of list) r.cost = round(r.cost);
  const smsRows = list.filter((r) => r.channel === 'sms');
  return {
    version,
    at: decider.at.toISOString(),
    subscribers: total,
    notified,
    notNotified: total - notified,
    evaluations: decider.evaluations,
    ruleRuns: decider.ruleRuns,
    rows: list,
    incident: incidentPlan,
    feed: incidentPlan.feed ? render(incidentPlan.feed.templateSet, firstKind, settings.language, feedVars) : null,
    escalations: incidentPlan.escalations.map((e) => ({
      contact: e.contactName,
      channel: e.channel,
      at: new Date(opened.getTime() + e.afterSeconds * 1000).toISOString(),
      repeat: e.repeat ? `every ${e.repeat.everySeconds / 60} min, ${e.repeat.times} more times` : null,
    })),
    totals: {
      messages: list.reduce((n, r) => n + r.subscribers, 0),
      smsParts: smsRows.reduce((n, r) => n + r.subscribers * (r.first.parts + (r.restoration?.parts ?? 0)), 0),
      cost: round(list.reduce((n, r) => n + r.cost, 0)),
      currency: settings.sms.currency,
      note: 'cost of the first notice and the restoration notice; each update costs about as much as the first notice again',
    },
  };
}

function round(n: number): number {
  return Math.round(n * 10000) / 10000;
}
