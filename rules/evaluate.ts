/**
 * Deciding for many subscribers without running the engine for each. A decision can depend
 * only on the incident, the clock, the subscriber facts that some condition reads, and the
 * few subscriber facts that shape a plan (language, reachable channels, own quiet hours).
 * The incident and the clock are the same for everyone in one decision, so subscribers with
 * equal values of those facts get the same decision: it is computed once per distinct
 * combination (a handful, however large the audience) and reused.
 *
 * When a combination is new, each rule is still evaluated by json-rules-engine, but once per
 * distinct value of the facts that rule reads: a rule about `subscriber.paidSms` runs twice,
 * however many areas and languages the other rules look at. explain() and evaluate() run the
 * whole rule set per subscriber, the reference the grouped path is tested against.
 */
import type { Engine } from 'json-rules-engine';
import { createEngine, matchingRules } from './engine';
import { incidentContext, type IncidentContext } from './facts';
import type { CompiledRules, RuleNode } from './model';
import { factChecks } from './conditions';
import { kindsAtOnce } from './night';
import { parseTimeWindow } from './time';
import { walkRules } from './walk';
import {
  type EscalationStep,
  type FeedPlan,
  type HoldWindow,
  type IncidentDecision,
  type IncidentFacts,
  type NoticePlan,
  type SubscriberDecision,
  type SubscriberFacts,
} from './types';

/** Reads one value of a subscriber's key: always a primitive, so that it can key a Map. */
type KeyPart = (s: SubscriberFacts) => unknown;

/** One rule of the tree with its own engine and the results it gave per value of the facts it reads. */
interface RuleEvaluator {
  name: string;
  engine: Engine;
  facts: string[];
  key: (s: SubscriberFacts) => string;
  results: Map<string, boolean>;
}

type Trie = Map<unknown, unknown>;

export class Decider {
  readonly context: IncidentContext;
  /** Distinct combinations of subscriber facts met so far: how many decisions were actually computed. */
  evaluations = 0;
  /** json-rules-engine runs for subscribers so far (each of one rule, see above). */
  ruleRuns = 0;
  private readonly engine: Engine;
  private readonly ruleEvaluators: RuleEvaluator[];
  private queue: Promise<unknown> = Promise.resolve();
  /** Decisions by key values, one Map level per key part: no key string is built for a known subscriber. */
  private readonly decided: Trie = new Map();
  private readonly pending = new Map<string, Promise<SubscriberDecision>>();
  private readonly keyParts: KeyPart[];
  private incidentPlan?: Promise<IncidentDecision>;

  constructor(
    private readonly compiled: CompiledRules,
    incident: IncidentFacts,
    readonly at: Date,
  ) {
    const { settings, holidays } = compiled;
    this.context = incidentContext(incident, at, settings.timeZone, holidays);
    this.engine = createEngine(compiled);
    this.keyParts = [
      ...compiled.subscriberFactsRead.map((id) => this.keyPart(id)),
      (s) => this.language(s),
      channelMask,
    ];
    // A subscriber's own quiet hours shape a plan only where a rule honours them.
    if (compiled.leaves.some((l) => l.settings.quietHours?.subscriberPreference))
      this.keyParts.push((s) => s.quietHours);
    this.ruleEvaluators = compiled.leaves.map((leaf) => {
      const facts = [
        ...new Set(
          leaf.chain
            .flatMap(factChecks)
            .filter((c) => c.fact.scope === 'subscriber')
            .map((c) => c.fact.id),
        ),
      ];
      const parts = facts.map((id) => this.keyPart(id));
      return {
        name: leaf.name,
        engine: createEngine(compiled, [leaf]),
        facts,
        key: (s) => parts.map((p) => String(p(s))).join('\u001f'),
        results: new Map(),
      };
    });
  }

  private keyPart(factId: string): KeyPart {
    const read = this.compiled.facts.subscriberReader(factId);
    const ctx = this.context;
    if (factId === 'subscriber.channels') return channelMask;
    return (s) => read(s, ctx);
  }

  /** The decision already made for subscribers like `s`, without waiting; undefined when it must be computed. */
  known(s: SubscriberFacts): SubscriberDecision | undefined {
    let node: Trie | undefined = this.decided;
    const parts = this.keyParts;
    const last = parts.length - 1;
    for (let i = 0; i < last && node; i++) node = node.get(parts[i]!(s)) as Trie | undefined;
    return node?.get(parts[last]!(s)) as SubscriberDecision | undefined;
  }

  async decide(s: SubscriberFacts): Promise<SubscriberDecision> {
    const done = this.known(s);
    if (done) return done;
    const values = this.keyParts.map((p) => p(s));
    const key = values.map((v) => (v === undefined ? '\u0000' : String(v))).join('\u001f');
    let pending = this.pending.get(key);
    if (!pending) {
      this.evaluations += 1;
      pending = this.decideNew(s).then((d) => {
        this.remember(values, d);
        this.pending.delete(key);
        return d;
      });
      this.pending.set(key, pending);
    }
    return pending;
  }

  private remember(values: unknown[], d: SubscriberDecision): void {
    let node = this.decided;
    for (const v of values.slice(0, -1)) {
      let next = node.get(v) as Trie | undefined;
      if (!next) node.set(v, (next = new Map()));
      node = next;
    }
    node.set(values[values.length - 1], d);
  }

  /** A new combination: each rule from its own results when it has seen these values, from its engine otherwise. */
  private async decideNew(s: SubscriberFacts): Promise<SubscriberDecision> {
    const matched = new Set<string>();
    for (const rule of this.ruleEvaluators) {
      const key = rule.key(s);
      let result = rule.results.get(key);
      if (result === undefined) {
        const facts: Record<string, unknown> = { ...this.context.values };
        for (const id of rule.facts) facts[id] = this.compiled.facts.subscriberReader(id)(s, this.context);
        this.ruleRuns += 1;
        result = (await this.run(facts, rule.engine)).matched.has(rule.name);
        rule.results.set(key, result);
      }
      if (result) matched.add(rule.name);
    }
    const { applied } = walkRules(this.compiled.roots, (leaf) => matched.has(leaf.name));
    return subscriberDecision(applied, s, this.language(s), this.context, this.compiled);
  }

  /** Runs the whole rule set for this one subscriber, ignoring what is known: the per-subscriber reference. */
  evaluate(s: SubscriberFacts): Promise<SubscriberDecision> {
    return this.run(this.engineFacts(s)).then(({ matched }) => {
      const { applied } = walkRules(this.compiled.roots, (leaf) => matched.has(leaf.name));
      return subscriberDecision(applied, s, this.language(s), this.context, this.compiled);
    });
  }

  /** Engine runs one at a time, whichever engine (see engine.ts). */
  run(facts: Record<string, unknown>, engine: Engine = this.engine): ReturnType<typeof matchingRules> {
    const next = this.queue.then(() => matchingRules(engine, facts));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Every fact the engine may read for `s` (subscriber facts that no rule reads are left out). */
  engineFacts(s?: SubscriberFacts): Record<string, unknown> {
    const facts: Record<string, unknown> = { ...this.context.values };
    if (s)
      for (const id of this.compiled.subscriberFactsRead)
        facts[id] = this.compiled.facts.subscriberReader(id)(s, this.context);
    return facts;
  }

  language(s: SubscriberFacts): string {
    const { languages, language } = this.compiled.settings;
    return languages.includes(s.language) ? s.language : language;
  }

  /** The feed and the escalations: rules that read no subscriber fact, evaluated once. */
  incident(): Promise<IncidentDecision> {
    this.incidentPlan ??= this.run(this.engineFacts()).then(({ matched }) => {
      const { applied } = walkRules(
        this.compiled.roots,
        (leaf) => matched.has(leaf.name),
        (leaf) => !leaf.readsSubscriber,
      );
      return incidentDecision(applied, this.compiled);
    });
    return this.incidentPlan;
  }
}

const CHANNEL_BITS: Record<string, number> = { sms: 1, voice: 2, email: 4, webhook: 8 };
/** The channels a subscriber can be reached on as a number: no array is copied per subscriber. Missing means all. */
function channelMask(s: SubscriberFacts): number {
  if (!s.channels) return 15;
  let mask = 0;
  for (const c of s.channels) mask |= CHANNEL_BITS[c] ?? 0;
  return mask;
}

function holdWindow(rule: RuleNode, s: SubscriberFacts, ctx: IncidentContext, timeZone: string): HoldWindow | null {
  const q = rule.settings.quietHours;
  if (!q) return null;
  // The kinds that may break the window at this severity travel with it, onto every record planned from it.
  const kinds = kindsAtOnce(q, ctx.incident.severity);
  const atOnce = kinds.length ? { atOnce: kinds } : {};
  if (q.subscriberPreference && s.quietHours) {
    const own = parseTimeWindow(s.quietHours);
    if (typeof own !== 'string') return { ...own, timeZone, from: 'subscriber', ...atOnce };
  }
  return q.window ? { ...q.window, timeZone, from: 'rule', ...atOnce } : null;
}

/** Plans from the rules that applied: the first rule to name a channel sets its plan. */
export function subscriberDecision(
  applied: RuleNode[],
  s: SubscriberFacts,
  language: string,
  ctx: IncidentContext,
  compiled: CompiledRules,
): SubscriberDecision {
  const notices: NoticePlan[] = [];
  for (const rule of applied) {
    for (const target of rule.settings.notify) {
      if (target.channel === 'feed') continue;
      const channel = target.channel;
      if (s.channels && !s.channels.includes(channel)) continue;
      if (notices.some((n) => n.channel === channel)) continue;
      const templateSet = compiled.templateSets.get(target.templateSet)!;
      const first = templateSet.texts
        .get(ctx.incident.kind === 'maintenance' ? 'maintenance' : 'outage')
        ?.get(language);
      notices.push(
        deepFreeze({
          channel,
          rule: rule.name,
          templateSet: target.templateSet,
          priority: target.priority,
          graceSeconds: rule.settings.graceSeconds,
          hold: holdWindow(rule, s, ctx, compiled.settings.timeZone),
          restoration: rule.settings.restoration,
          updates: { ...rule.settings.updates },
          maintenance: {
            ...rule.settings.maintenance,
            remindersBeforeSeconds: [...rule.settings.maintenance.remindersBeforeSeconds],
          },
          maxParts: first?.maxParts ?? compiled.settings.sms.maxParts,
        }),
      );
    }
  }
  return deepFreeze({ notify: notices.length > 0, language, notices, rules: applied.map((r) => r.name) });
}

export function incidentDecision(applied: RuleNode[], compiled: CompiledRules): IncidentDecision {
  let feed: FeedPlan | null = null;
  const escalations: EscalationStep[] = [];
  for (const rule of applied) {
    const target = rule.settings.notify.find((n) => n.channel === 'feed');
    if (target && !feed) {
      feed = {
        rule: rule.name,
        templateSet: target.templateSet,
        priority: target.priority,
        graceSeconds: rule.settings.graceSeconds,
        restoration: rule.settings.restoration,
        updates: { ...rule.settings.updates },
      };
    }
    for (const e of rule.escalate) {
      const contact = compiled.contacts.get(e.contact)!;
      const address = e.channel === 'email' ? contact.email : e.channel === 'webhook' ? contact.url : contact.phone;
      escalations.push({
        rule: rule.name,
        contact: e.contact,
        contactName: contact.name,
        channel: e.channel,
        address: address!,
        afterSeconds: e.afterSeconds,
        repeat: e.repeat,
        templateSet: e.templateSet,
        priority: e.priority,
      });
    }
  }
  escalations.sort((a, b) => a.afterSeconds - b.afterSeconds);
  return deepFreeze({ rules: applied.map((r) => r.name), feed, escalations });
}

/** Decisions are shared by every subscriber in a group: freezing them turns an accidental edit into an error. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
