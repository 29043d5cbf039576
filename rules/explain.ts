/**
 * `rules explain`: for one incident and one subscriber, every rule in order with what
 * happened to it (applied, did not match and why, not reached because an earlier rule
 * stopped), each condition with the fact's actual value, and the resulting plan with times.
 */
import { showCheckValue, showFactValue, type Condition } from './conditions';
import type { SourcePosition } from './errors';
import type { Decider } from './evaluate';
import { subscriberDecision } from './evaluate';
import { allNodes, type CompiledRules } from './model';
import { firstNoticeTime } from './schedule';
import { formatDuration, windowText } from './time';
import type { IncidentDecision, IncidentFacts, SubscriberDecision, SubscriberFacts } from './types';
import { walkRules, type RuleOutcome } from './walk';

export interface ConditionTrace {
  /** `all`, `any`, `not`, or the check as written: `incident.severity atLeast "major"`. */
  text: string;
  /** Null when the engine did not evaluate it. */
  result: boolean | null;
  /** The fact's value, for a check. */
  actual?: string;
  /** What the check compared with, after conversion (durations, severities as lists). */
  expected?: string;
  at: SourcePosition;
  children?: ConditionTrace[];
}

export interface RuleTrace {
  name: string;
  description?: string;
  at: SourcePosition;
  depth: number;
  group: boolean;
  outcome: RuleOutcome;
  /** The rule's own condition; null when it has none (it always matches). */
  conditions: ConditionTrace | null;
  channels: string[];
}

export interface ScheduledNotice {
  channel: string;
  rule: string;
  sendAt: string;
  heldUntil: string | null;
}

export interface Explanation {
  version: string;
  at: string;
  facts: Record<string, string>;
  rules: RuleTrace[];
  decision: SubscriberDecision;
  incident: IncidentDecision;
  schedule: ScheduledNotice[];
}

interface CheckResult {
  result?: boolean;
  factResult?: unknown;
}

/** Collects each fact check's result, by the name (id) it was given, from the engine's result trees. */
function collectResults(node: unknown, into: Map<string, CheckResult>): void {
  if (Array.isArray(node)) {
    for (const n of node) collectResults(n, into);
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const n = node as Record<string, unknown>;
  if (typeof n.fact === 'string' && typeof n.name === 'string')
    into.set(n.name, { result: n.result as boolean | undefined, factResult: n.factResult });
  for (const key of ['all', 'any', 'not']) if (key in n) collectResults(n[key], into);
}

function trace(c: Condition, results: Map<string, CheckResult>, facts: Record<string, unknown>): ConditionTrace {
  if (c.type === 'fact') {
    const r = results.get(c.id);
    return {
      text: c.text,
      result: r?.result ?? null,
      actual: showFactValue(c.fact, facts[c.fact.id]),
      expected: `${c.operator} ${showCheckValue(c)}`,
      at: c.at,
    };
  }
  const children = c.type === 'not' ? [trace(c.item, results, facts)] : c.items.map((i) => trace(i, results, facts));
  const known = children.map((ch) => ch.result);
  let result: boolean | null;
  if (known.some((r) => r === null)) result = null;
  else if (c.type === 'all') result = known.every(Boolean);
  else if (c.type === 'any') result = known.some(Boolean);
  else result = !known[0];
  return { text: c.type, result, at: c.at, children };
}

export async function explain(
  compiled: CompiledRules,
  version: string,
  decider: Decider,
  incident: IncidentFacts,
  subscriber: SubscriberFacts,
): Promise<Explanation> {
  const facts = decider.engineFacts(subscriber);
  const { matched, results } = await decider.run(facts);
  const checkResults = new Map<string, CheckResult>();
  for (const r of results.values()) collectResults(r, checkResults);

  const walk = walkRules(compiled.roots, (leaf) => matched.has(leaf.name));
  const language = decider.language(subscriber);
  const decision = subscriberDecision(walk.applied, subscriber, language, decider.context, compiled);
  const incidentPlan = await decider.incident();

  const rules: RuleTrace[] = allNodes(compiled.roots).map((node) => ({
    name: node.name,
    description: node.description,
    at: node.at,
    depth: node.depth,
    group: node.children.length > 0,
    outcome: walk.outcomes.get(node) ?? { status: 'no-match' },
    conditions: node.when ? trace(node.when, checkResults, facts) : null,
    channels: node.settings.notify.map((n) => n.channel),
  }));

  const schedule = decision.notices.map((n) => {
    const t = firstNoticeTime(n, incident, decider.at);
    return {
      channel: n.channel,
      rule: n.rule,
      sendAt: t.sendAt.toISOString(),
      heldUntil: t.heldUntil?.toISOString() ?? null,
    };
  });

  // Every fact, read or not: "why did nothing match" is often a fact no rule reads.
  const shown: Record<string, string> = {};
  for (const def of compiled.facts.all()) {
    const value =
      def.scope === 'subscriber' ? compiled.facts.subscriberReader(def.id)(subscriber, decider.context) : facts[def.id];
    shown[def.id] = showFactValue(def, value);
  }
  for (const [name, value] of Object.entries(subscriber.preferences ?? {}))
    shown[`subscriber.preferences.${name}`] = String(value);
  shown['subscriber.language (for texts)'] = language;
  return { version, at: decider.at.toISOString(), facts: shown, rules, decision, incident: incidentPlan, schedule };
}

const MARK = { true: '✓', false: '✗', null: '·' } as const;

function outcomeText(o: RuleOutcome): string {
  switch (o.status) {
    case 'applied':
      return 'APPLIED';
    case 'no-match':
      return 'did not match';
    case 'not-reached':
      return `not reached ("${o.stoppedBy}" applied before it and stops)`;
    case 'per-subscriber':
      return 'per subscriber';
  }
}

function conditionLines(t: ConditionTrace, indent: string): string[] {
  const mark = MARK[String(t.result) as keyof typeof MARK];
  if (!t.children) return [`${indent}${mark} ${t.text}  (is ${t.actual}; line ${t.at.line})`];
  return [`${indent}${mark} ${t.text}:`, ...t.children.flatMap((c) => conditionLines(c, `${indent}    `))];
}

/** The explanation as text for a terminal. */
export function formatExplanation(e: Explanation, timeZone: string): string {
  const local = (iso: string) =>
    new Date(iso).toLocaleString('en-GB', { timeZone, dateStyle: 'medium', timeStyle: 'short' });
  const lines: string[] = [`rules ${e.version}, decided at ${local(e.at)} (${timeZone})`, '', 'facts:'];
  for (const [k, v] of Object.entries(e.facts)) lines.push(`  ${k} = ${v}`);
  lines.push('', 'rules, in order:');
  for (const r of e.rules) {
    const pad = '  '.repeat(r.depth + 1);
    lines.push(
      `${pad}${r.group ? 'group' : 'rule'} "${r.name}" (line ${r.at.line}): ${outcomeText(r.outcome)}${r.channels.length && !r.group ? ` -> ${r.channels.join(', ')}` : ''}`,
    );
    if (r.conditions) lines.push(...conditionLines(r.conditions, `${pad}    `));
    else if (!r.group) lines.push(`${pad}    (no conditions: always matches)`);
  }
  lines.push('', 'this subscriber gets:');
  if (!e.decision.notify) lines.push('  nothing');
  for (const n of e.decision.notices) {
    const when = e.schedule.find((s) => s.channel === n.channel)!;
    lines.push(
      `  ${n.channel} (rule "${n.rule}", templates "${n.templateSet}", ${e.decision.language}): first notice at ${local(when.sendAt)}${when.heldUntil ? ' (held by quiet hours)' : ''}; wait ${formatDuration(n.graceSeconds)}` +
        `${n.hold ? `, quiet hours ${windowText(n.hold)} (${n.hold.from}${n.hold.atOnce?.length ? `; at once inside: ${n.hold.atOnce.join(', ')}` : ''})` : ', no quiet hours'}, restoration ${n.restoration ? 'yes' : 'no'}, updates ${n.updates.everySeconds ? `every ${formatDuration(n.updates.everySeconds)}` : 'none'}${n.updates.onEtaChange ? ' and on a new estimate' : ''}`,
    );
  }
  lines.push('', 'the incident gets:');
  lines.push(`  status feed: ${e.incident.feed ? `yes (rule "${e.incident.feed.rule}")` : 'no'}`);
  for (const s of e.incident.escalations)
    lines.push(
      `  escalate to ${s.contactName} by ${s.channel} after ${formatDuration(s.afterSeconds)} unresolved${s.repeat ? `, then every ${formatDuration(s.repeat.everySeconds)} up to ${s.repeat.times} times` : ''} (rule "${s.rule}")`,
    );
  return lines.join('\n');
}
