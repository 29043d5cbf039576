/**
 * Conditions as operations staff write them, checked and turned into json-rules-engine
 * conditions. A mapping means "all of these"; `all`, `any` and `not` combine; a fact's value
 * is what it must equal (a list: one of), or a mapping of operators:
 *
 *     when:
 *       incident.kind: outage
 *       incident.severity: { atLeast: major }
 *       time.localTime: { within: "21:00-07:00" }
 *       any:
 *         - subscriber.paidSms: true
 *         - subscriber.segment: business
 *
 * Each check remembers where it was written and how, for `rules explain`.
 */
import type { TopLevelCondition } from 'json-rules-engine';
import { suggest, type ProblemList, type SourcePosition } from './errors';
import type { FactCatalog, FactDefinition, FactType } from './facts';
import type { PathSegment, SourceFile } from './source';
import {
  clockWithin,
  formatDuration,
  parseClock,
  parseDuration,
  parseTimeWindow,
  windowText,
  type TimeWindow,
} from './time';

export interface FactCheck {
  type: 'fact';
  /** Unique in the rule set: the engine reports results under this name. */
  id: string;
  fact: FactDefinition;
  /** json-rules-engine operator, decorators included. */
  operator: string;
  value: unknown;
  /** As written, for people: `incident.openFor atLeast 30m`. */
  text: string;
  at: SourcePosition;
}

export type Condition =
  | FactCheck
  | { type: 'all'; items: Condition[]; at: SourcePosition }
  | { type: 'any'; items: Condition[]; at: SourcePosition }
  | { type: 'not'; item: Condition; at: SourcePosition };

/** The operator that checks a local time of day against a window; registered on every engine. */
export const CLOCK_WITHIN = 'clockWithin';
export function clockWithinOperator(fact: unknown, window: TimeWindow): boolean {
  return typeof fact === 'string' && clockWithin(fact, window);
}

const BASE_OPERATORS = [
  'equal',
  'notEqual',
  'in',
  'notIn',
  'contains',
  'doesNotContain',
  'lessThan',
  'lessThanInclusive',
  'greaterThan',
  'greaterThanInclusive',
] as const;
const DECORATORS = ['not', 'someFact', 'everyFact', 'someValue', 'everyValue', 'swap'] as const;
/** Friendlier names, with the json-rules-engine operator each stands for. */
const ALIASES: Record<string, string> = {
  atLeast: 'greaterThanInclusive',
  atMost: 'lessThanInclusive',
  moreThan: 'greaterThan',
  containsAny: 'someFact:in',
  containsNone: 'not:someFact:in',
};
/** How `rules explain` reads an operator out. */
const OPERATOR_WORDS: Record<string, string> = {
  equal: 'is',
  notEqual: 'is not',
  in: 'is one of',
  notIn: 'is none of',
  atLeast: 'is at least',
  atMost: 'is at most',
  moreThan: 'is more than',
  lessThan: 'is less than',
  lessThanInclusive: 'is at most',
  greaterThan: 'is more than',
  greaterThanInclusive: 'is at least',
  within: 'is within',
  notWithin: 'is not within',
  containsAny: 'contains one of',
  containsNone: 'contains none of',
  doesNotContain: 'does not contain',
};
const CLOCK_OPERATORS = ['within', 'notWithin', 'atLeast', 'lessThan', 'equal', 'notEqual'];
const ORDERED = ['lessThan', 'lessThanInclusive', 'greaterThan', 'greaterThanInclusive'];

export interface ConditionCompiler {
  facts: FactCatalog;
  problems: ProblemList;
  nextId(): string;
}

type Raw = unknown;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks and compiles the condition at `path` of `src`; undefined when it has errors (they are in `cc.problems`). */
export function compileCondition(
  raw: Raw,
  src: SourceFile,
  path: PathSegment[],
  cc: ConditionCompiler,
): Condition | undefined {
  const at = src.at(path);
  if (Array.isArray(raw)) {
    const items = raw.map((item, i) => compileCondition(item, src, [...path, i], cc));
    return items.every((c): c is Condition => c !== undefined) ? { type: 'all', items, at } : undefined;
  }
  if (!isPlainObject(raw)) {
    cc.problems.error(
      at,
      'a condition is a mapping of facts to values (e.g. "incident.kind: outage"), or all/any/not of conditions',
    );
    return undefined;
  }
  const items: (Condition | undefined)[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const here = [...path, key];
    if (key === 'all' || key === 'any') {
      if (!Array.isArray(value) || value.length === 0) {
        cc.problems.error(src.at(here), `${key} takes a list of conditions`);
        items.push(undefined);
        continue;
      }
      const parts = value.map((item, i) => compileCondition(item, src, [...here, i], cc));
      items.push(
        parts.every((c): c is Condition => c !== undefined)
          ? { type: key, items: parts, at: src.at(here, 'key') }
          : undefined,
      );
    } else if (key === 'not') {
      const inner = compileCondition(value, src, here, cc);
      items.push(inner && { type: 'not', item: inner, at: src.at(here, 'key') });
    } else {
      items.push(compileFactChecks(key, value, src, here, cc));
    }
  }
  if (items.some((c) => c === undefined)) return undefined;
  const ok = items as Condition[];
  return ok.length === 1 ? ok[0] : { type: 'all', items: ok, at };
}

/** Removed from the language (rules/README.md says why); named in its own error rather than "unknown". */
const RETIRED_OPEN_FOR = 'incident.openFor';

function compileFactChecks(
  factId: string,
  raw: Raw,
  src: SourceFile,
  path: PathSegment[],
  cc: ConditionCompiler,
): Condition | undefined {
  const fact = cc.facts.get(factId);
  const keyAt = src.at(path, 'key');
  if (factId === RETIRED_OPEN_FOR) {
    cc.problems.error(
      keyAt,
      `${RETIRED_OPEN_FOR} is no longer a fact: notices are decided when the incident opens, when it was always 0, so a rule on it never did what it said; to act on how long an incident lasts use wait: (the first notice), updates: or escalate: after:`,
    );
    return undefined;
  }
  if (!fact) {
    cc.problems.error(
      keyAt,
      `unknown fact "${factId}"${suggest(factId, cc.facts.ids())} (rules/README.md lists the facts)`,
    );
    return undefined;
  }
  // A bare value: equality, or membership for a list of values (for a list fact: contains / contains any).
  if (!isPlainObject(raw)) {
    const isList = fact.type.kind === 'list';
    const op = Array.isArray(raw) ? (isList ? 'containsAny' : 'in') : isList ? 'contains' : 'equal';
    return compileCheck(fact, op, raw, src, path, keyAt, cc);
  }
  const entries = Object.entries(raw);
  if (entries.length === 0) {
    cc.problems.error(src.at(path), `${factId}: give a value, or an operator and a value (e.g. atLeast: 30m)`);
    return undefined;
  }
  const checks = entries.map(([op, value]) =>
    compileCheck(fact, op, value, src, [...path, op], src.at([...path, op], 'key'), cc),
  );
  if (checks.some((c) => c === undefined)) return undefined;
  return checks.length === 1 ? checks[0] : { type: 'all', items: checks as Condition[], at: keyAt };
}

function compileCheck(
  fact: FactDefinition,
  op: string,
  raw: Raw,
  src: SourceFile,
  valuePath: PathSegment[],
  at: SourcePosition,
  cc: ConditionCompiler,
): FactCheck | undefined {
  const valueAt = src.at(valuePath);
  const fail = (message: string, where = valueAt) => {
    cc.problems.error(where, `${fact.id}: ${message}`);
    return undefined;
  };
  const text = `${fact.id} ${OPERATOR_WORDS[op] ?? op} ${showValue(raw)}`;
  const check = (operator: string, value: unknown): FactCheck => ({
    type: 'fact',
    id: cc.nextId(),
    fact,
    operator,
    value,
    text,
    at,
  });

  if (fact.type.kind === 'clock') {
    if (!CLOCK_OPERATORS.includes(op))
      return fail(`"${op}" does not apply to a time of day; use ${CLOCK_OPERATORS.join(', ')}`, at);
    if (op === 'within' || op === 'notWithin') {
      const w =
        typeof raw === 'string' ? parseTimeWindow(raw) : `a time window is written HH:MM-HH:MM, e.g. "21:00-07:00"`;
      if (typeof w === 'string') return fail(w);
      return check(op === 'within' ? CLOCK_WITHIN : `not:${CLOCK_WITHIN}`, w);
    }
    const clock = typeof raw === 'string' ? parseClock(raw) : `a time of day is written HH:MM, e.g. "07:30"`;
    if (typeof clock === 'string') return fail(clock);
    const hhmm = String(raw).padStart(5, '0');
    if (op === 'equal' || op === 'notEqual') return check(op, hhmm);
    if (op === 'lessThan' && clock === 0) return fail('no time of day is before 00:00');
    // Comparisons are windows within the day, so that they read the same as `within`.
    const w = parseTimeWindow(op === 'atLeast' ? `${hhmm}-24:00` : `00:00-${hhmm}`);
    if (typeof w === 'string') return fail(w);
    return check(CLOCK_WITHIN, w);
  }

  const operator = ALIASES[op] ?? op;
  const parts = operator.split(':');
  const base = parts[parts.length - 1]!;
  const decorators = parts.slice(0, -1);
  const known = [...BASE_OPERATORS, ...Object.keys(ALIASES)];
  if (
    !(BASE_OPERATORS as readonly string[]).includes(base) ||
    decorators.some((d) => !(DECORATORS as readonly string[]).includes(d))
  ) {
    return fail(`unknown operator "${op}"${suggest(op, known)}; operators: ${operatorsFor(fact.type).join(', ')}`, at);
  }

  const overFactElements = decorators.includes('someFact') || decorators.includes('everyFact');
  const overValueElements = decorators.includes('someValue') || decorators.includes('everyValue');
  if (overFactElements && fact.type.kind !== 'list')
    return fail(`"${op}" needs a fact that is a list; ${fact.id} is not`, at);
  if (decorators.includes('swap')) return check(operator, raw); // the roles of fact and value are the author's to manage

  // The type the base operator compares the fact (or each of its elements) with.
  const elementType: FactType =
    fact.type.kind === 'list'
      ? fact.type.values
        ? { kind: 'enum', values: fact.type.values }
        : { kind: 'text' }
      : fact.type;
  const comparedType: FactType =
    fact.type.kind === 'list' && !overFactElements && (base === 'contains' || base === 'doesNotContain')
      ? elementType
      : overFactElements
        ? elementType
        : fact.type;

  if ((base === 'contains' || base === 'doesNotContain') && (fact.type.kind !== 'list' || overFactElements)) {
    return fail(
      `"${op}" applies to facts that are lists (${listFacts(cc.facts)}); to compare ${fact.id}, use equal or in`,
      at,
    );
  }
  if (fact.type.kind === 'list' && !overFactElements && base !== 'contains' && base !== 'doesNotContain') {
    return fail(`${fact.id} is a list: use contains, doesNotContain, containsAny or containsNone`, at);
  }
  if (
    ORDERED.includes(base) &&
    !['number', 'duration'].includes(comparedType.kind) &&
    !(comparedType.kind === 'enum' && comparedType.ordered)
  ) {
    return fail(`"${op}" compares numbers, durations and severities; ${fact.id} is ${describeType(fact.type)}`, at);
  }

  const wantsList = base === 'in' || base === 'notIn' || overValueElements;
  if (wantsList) {
    if (!Array.isArray(raw) || raw.length === 0)
      return fail(`"${op}" takes a list of values, e.g. [${exampleValues(comparedType)}]`);
    const values: unknown[] = [];
    for (let i = 0; i < raw.length; i++) {
      const v = convertValue(comparedType, raw[i]);
      if ('problem' in v) return fail(v.problem, src.at([...valuePath, i]));
      values.push(v.value);
    }
    return check(operator, values);
  }
  if (Array.isArray(raw)) return fail(`"${op}" takes one value, not a list`);
  const converted = convertValue(comparedType, raw);
  if ('problem' in converted) return fail(converted.problem);
  const value = converted.value;

  // Severities are ordered words: a comparison becomes membership in the words on the right side.
  if (comparedType.kind === 'enum' && comparedType.ordered && ORDERED.includes(base)) {
    const order = comparedType.values;
    const i = order.indexOf(value as string);
    const chosen = order.filter((_, j) =>
      base === 'lessThan' ? j < i : base === 'lessThanInclusive' ? j <= i : base === 'greaterThan' ? j > i : j >= i,
    );
    if (chosen.length === 0) return fail(`nothing is ${op} ${String(value)}, so this can never be true`);
    return check(decorators.length ? [...decorators, 'in'].join(':') : 'in', chosen);
  }
  return check(operator, value);
}

type Converted = { value: unknown } | { problem: string };

/** The engine value for `raw` compared with a fact of `type`, or what is wrong with it. */
function convertValue(type: FactType, raw: unknown): Converted {
  const ok = (value: unknown): Converted => ({ value });
  switch (type.kind) {
    case 'enum':
      if (typeof raw === 'string' && type.values.includes(raw)) return ok(raw);
      return {
        problem: `${showValue(raw)} is not one of ${type.values.join(', ')}${typeof raw === 'string' ? suggest(raw, type.values) : ''}`,
      };
    case 'boolean':
      return typeof raw === 'boolean' ? ok(raw) : { problem: `write true or false, not ${showValue(raw)}` };
    case 'number':
      return typeof raw === 'number' ? ok(raw) : { problem: `${showValue(raw)} is not a number` };
    case 'duration': {
      const seconds = typeof raw === 'string' || raw === 0 ? parseDuration(raw) : undefined;
      return seconds !== undefined
        ? ok(seconds)
        : { problem: `${showValue(raw)} is not a duration; write e.g. 90s, 30m, 2h, 1h30m or 1d` };
    }
    case 'text':
    case 'list':
      return typeof raw === 'string' || typeof raw === 'number'
        ? ok(String(raw))
        : { problem: `${showValue(raw)} is not a text` };
    case 'scalar':
      return ['string', 'number', 'boolean'].includes(typeof raw)
        ? ok(raw)
        : { problem: `${showValue(raw)} is not a text, number or true/false` };
    case 'clock':
      return { problem: 'internal: clock values are handled by their operators' };
  }
}

function operatorsFor(type: FactType): string[] {
  switch (type.kind) {
    case 'list':
      return ['contains', 'doesNotContain', 'containsAny', 'containsNone'];
    case 'number':
    case 'duration':
      return ['equal', 'notEqual', 'atLeast', 'atMost', 'moreThan', 'lessThan', 'in', 'notIn'];
    case 'enum':
      return type.ordered
        ? ['equal', 'notEqual', 'in', 'notIn', 'atLeast', 'atMost', 'moreThan', 'lessThan']
        : ['equal', 'notEqual', 'in', 'notIn'];
    case 'clock':
      return CLOCK_OPERATORS;
    default:
      return ['equal', 'notEqual', 'in', 'notIn'];
  }
}

function listFacts(facts: FactCatalog): string {
  return facts
    .all()
    .filter((f) => f.type.kind === 'list')
    .map((f) => f.id)
    .join(', ');
}

function describeType(type: FactType): string {
  switch (type.kind) {
    case 'enum':
      return `one of ${type.values.join(', ')}`;
    case 'boolean':
      return 'true or false';
    case 'text':
      return 'a text';
    case 'scalar':
      return 'a preference';
    default:
      return `a ${type.kind}`;
  }
}

function exampleValues(type: FactType): string {
  return type.kind === 'enum' ? type.values.slice(0, 2).join(', ') : type.kind === 'duration' ? '30m, 1h' : 'a, b';
}

function showValue(raw: unknown): string {
  if (typeof raw === 'string') return JSON.stringify(raw);
  if (Array.isArray(raw)) return `[${raw.map(showValue).join(', ')}]`;
  if (isPlainObject(raw)) return '{...}';
  return String(raw);
}

/** The condition as json-rules-engine takes it; each fact check carries its id as `name`. */
export function toEngineCondition(c: Condition | undefined): TopLevelCondition {
  if (!c) return { all: [] };
  const nested = toEngine(c);
  return 'fact' in nested ? { all: [nested] } : nested;
}

type EngineNode = TopLevelCondition | { fact: string; operator: string; value: unknown; name: string };

function toEngine(c: Condition): EngineNode {
  switch (c.type) {
    case 'fact':
      return { fact: c.fact.id, operator: c.operator, value: c.value, name: c.id };
    case 'all':
      return { all: c.items.map(toEngine) } as TopLevelCondition;
    case 'any':
      return { any: c.items.map(toEngine) } as TopLevelCondition;
    case 'not':
      return { not: toEngine(c.item) } as TopLevelCondition;
  }
}

/** Every fact check in `c`, depth first. */
export function factChecks(c: Condition | undefined): FactCheck[] {
  if (!c) return [];
  switch (c.type) {
    case 'fact':
      return [c];
    case 'all':
    case 'any':
      return c.items.flatMap(factChecks);
    case 'not':
      return factChecks(c.item);
  }
}

/** A fact's value as people read it in `rules explain`. */
export function showFactValue(fact: FactDefinition, value: unknown): string {
  if (value === undefined) return 'not known';
  if (fact.type.kind === 'duration' && typeof value === 'number') return formatDuration(value);
  if (Array.isArray(value)) return value.length ? value.join(', ') : '(none)';
  return String(value);
}

/** The engine value of a check as people read it (time windows as HH:MM-HH:MM). */
export function showCheckValue(check: FactCheck): string {
  const v = check.value;
  if (typeof v === 'object' && v !== null && 'start' in v) return windowText(v as TimeWindow);
  return Array.isArray(v)
    ? `[${v.join(', ')}]`
    : check.fact.type.kind === 'duration' && typeof v === 'number'
      ? formatDuration(v)
      : String(v);
}
