/**
 * A loaded, checked rule set: what the rest of Avviso holds and asks. It is immutable; a
 * changed file makes a new RuleSet with a new version (see reloader.ts), so an incident can
 * keep deciding with the version it started with.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { compileRules } from './compile';
import type { Condition } from './conditions';
import { RuleErrors, type RuleProblem } from './errors';
import { Decider } from './evaluate';
import { explain, formatExplanation, type Explanation } from './explain';
import type { CompiledRules, Contact, EscalationModel, GlobalSettings } from './model';
import { simulate, type Simulation } from './simulate';
import { diskReader, loadSources, overlayReader, type SourceReader } from './source';
import { renderTemplate, type MessageVariables, type RenderedMessage } from './templates';
import {
  type Decisions,
  type DecisionGroup,
  type IncidentFacts,
  type MessageKind,
  type SubscriberDecision,
  type SubscriberFacts,
} from './types';

/** The rules Avviso ships with, used when AVVISO_RULES is not set. */
export const DEFAULT_RULES_PATH = path.join(__dirname, 'default', 'avviso.yaml');
/** The file looked for when the rules path is a folder. */
export const ENTRY_FILE_NAME = 'avviso.yaml';

export interface RuleSetFile {
  path: string;
  /** Relative to the main file's folder. */
  name: string;
  text: string;
}

/** A message kind in a template set. */
export interface TemplateRef {
  set: string;
  kind: MessageKind;
}

export interface DecideOptions {
  /** The moment time facts are taken at (local time, weekday, holiday, how long open). Default: now. */
  at?: Date | string;
}

export interface CheckReport {
  ok: boolean;
  version?: string;
  errors: RuleProblem[];
  warnings: RuleProblem[];
  files: string[];
}

function asDate(at: Date | string | undefined): Date {
  const d = at === undefined ? new Date() : new Date(at);
  if (Number.isNaN(d.getTime())) throw new Error(`"${String(at)}" is not a time`);
  return d;
}

export class RuleSet {
  readonly loadedAt = new Date();

  constructor(
    private readonly compiled: CompiledRules,
    /** A hash of every file's content: the same files always give the same version. */
    readonly version: string,
    readonly files: RuleSetFile[],
    readonly warnings: RuleProblem[],
  ) {}

  get settings(): GlobalSettings {
    return this.compiled.settings;
  }

  get entry(): string {
    return this.files[0]!.path;
  }

  /** The subscriber facts the rules read: what evaluations are grouped on. */
  get subscriberFactsRead(): string[] {
    return [...this.compiled.subscriberFactsRead];
  }

  /** The staff contacts escalations can reach, by name. */
  get contacts(): ReadonlyMap<string, Contact> {
    return this.compiled.contacts;
  }

  /** Every escalation step of the rules, with the rule it is in (for `rules check`). */
  get escalationSteps(): { rule: string; step: EscalationModel }[] {
    return this.compiled.leaves.flatMap((l) => l.escalate.map((step) => ({ rule: l.name, step })));
  }

  /** Every rule that escalates, with its conditions (for `rules check`: the areas it is confined to). */
  get escalatingRules(): { rule: string; chain: Condition[]; steps: EscalationModel[] }[] {
    return this.compiled.leaves
      .filter((l) => l.escalate.length > 0)
      .map((l) => ({ rule: l.name, chain: l.chain, steps: l.escalate }));
  }

  get ruleNames(): string[] {
    return this.compiled.leaves.map((l) => l.name);
  }

  get templateSets(): string[] {
    return [...this.compiled.templateSets.keys()];
  }

  /**
   * A decision session for one incident at one moment: decisions for subscribers with the
   * same relevant facts are computed once. Use one per incident and batch of work.
   */
  decider(incident: IncidentFacts, options: DecideOptions = {}): Decider {
    return new Decider(this.compiled, incident, asDate(options.at));
  }

  /** Decides for every subscriber (an array, an iterable or an async iterable such as a database cursor). */
  async decide(
    incident: IncidentFacts,
    subscribers: Iterable<SubscriberFacts> | AsyncIterable<SubscriberFacts>,
    options: DecideOptions = {},
  ): Promise<Decisions> {
    const counted =
      incident.subscribers === undefined && Array.isArray(subscribers)
        ? { ...incident, subscribers: subscribers.length }
        : incident;
    const decider = this.decider(counted, options);
    const groups = new Map<SubscriberDecision, string[]>();
    let count = 0;
    const add = (s: SubscriberFacts, d: SubscriberDecision) => {
      count += 1;
      const ids = groups.get(d);
      if (ids) ids.push(s.id);
      else groups.set(d, [s.id]);
    };
    if (Symbol.iterator in subscribers) {
      // Synchronous sources take the fast path: no await unless the engine must run.
      for (const s of subscribers as Iterable<SubscriberFacts>) add(s, decider.known(s) ?? (await decider.decide(s)));
    } else {
      for await (const s of subscribers) add(s, decider.known(s) ?? (await decider.decide(s)));
    }
    return {
      version: this.version,
      at: decider.at.toISOString(),
      incident: await decider.incident(),
      groups: mergeEqual(groups),
      subscribers: count,
      evaluations: decider.evaluations,
      ruleRuns: decider.ruleRuns,
    };
  }

  /** One subscriber's decision (one engine run). */
  decideOne(
    incident: IncidentFacts,
    subscriber: SubscriberFacts,
    options: DecideOptions = {},
  ): Promise<SubscriberDecision> {
    return this.decider(incident, options).decide(subscriber);
  }

  /**
   * The text of one message. `kind` alone uses the default template set (`defaults.template`). A language the
   * rule set does not have falls back to its default language.
   */
  /** Whether a template set has a text for this kind (optional kinds, like `withdrawn`, may be absent). */
  hasTemplate(set: string | undefined, kind: MessageKind): boolean {
    return this.compiled.templateSets.get(set ?? this.settings.defaultTemplateSet)?.texts.has(kind) ?? false;
  }

  render(ref: MessageKind | TemplateRef, language: string, vars: MessageVariables): RenderedMessage {
    const { set, kind } = typeof ref === 'string' ? { set: this.settings.defaultTemplateSet, kind: ref } : ref;
    const templates = this.compiled.templateSets.get(set);
    if (!templates)
      throw new Error(
        `rules ${this.version} have no template set "${set}" (they have: ${this.templateSets.join(', ')})`,
      );
    const byLanguage = templates.texts.get(kind);
    if (!byLanguage) throw new Error(`template set "${set}" of rules ${this.version} has no "${kind}" message`);
    const lang = byLanguage.has(language) ? language : this.settings.language;
    const { timeZone, sms } = this.settings;
    return renderTemplate(
      this.compiled.liquid,
      byLanguage.get(lang)!,
      { sender: this.settings.senderId, ...vars },
      { language: lang, timeZone, transliterate: sms.transliterate },
    );
  }

  explain(incident: IncidentFacts, subscriber: SubscriberFacts, options: DecideOptions = {}): Promise<Explanation> {
    return explain(this.compiled, this.version, this.decider(incident, options), incident, subscriber);
  }

  formatExplanation(e: Explanation): string {
    return formatExplanation(e, this.settings.timeZone);
  }

  simulate(
    incident: IncidentFacts,
    subscribers: Iterable<SubscriberFacts> | AsyncIterable<SubscriberFacts>,
    options: DecideOptions = {},
  ): Promise<Simulation> {
    const counted =
      incident.subscribers === undefined && Array.isArray(subscribers)
        ? { ...incident, subscribers: subscribers.length }
        : incident;
    return simulate(this.compiled, this.version, this.decider(counted, options), counted, subscribers);
  }
}

/** Decisions from different fact combinations can be equal (e.g. "nothing"): one group each. */
function mergeEqual(groups: Map<SubscriberDecision, string[]>): DecisionGroup[] {
  const byContent = new Map<string, DecisionGroup>();
  for (const [decision, ids] of groups) {
    const key = JSON.stringify(decision);
    const g = byContent.get(key);
    if (g) g.subscriberIds.push(...ids);
    else byContent.set(key, { decision, subscriberIds: ids });
  }
  return [...byContent.values()];
}

/** The main rule file for a configured path: the file itself, or `avviso.yaml` in a folder; the shipped rules when unset. */
export async function resolveRulesEntry(configured?: string): Promise<string> {
  if (!configured) return DEFAULT_RULES_PATH;
  const absolute = path.resolve(configured);
  const info = await stat(absolute).catch(() => undefined);
  return info?.isDirectory() ? path.join(absolute, ENTRY_FILE_NAME) : absolute;
}

async function compileFrom(
  entry: string,
  reader: SourceReader,
): Promise<{ ruleSet?: RuleSet; errors: RuleProblem[]; warnings: RuleProblem[]; files: string[] }> {
  const sources = await loadSources(entry, reader);
  const { compiled, problems } = compileRules(sources);
  const files = sources.files.map((f) => f.file);
  if (!compiled) return { errors: problems.errors, warnings: problems.warnings, files };
  const ruleFiles = sources.files.map((f) => ({
    path: f.file,
    name: path.relative(sources.baseDir, f.file).split(path.sep).join('/'),
    text: f.text,
  }));
  return {
    ruleSet: new RuleSet(compiled, sources.version, ruleFiles, problems.warnings),
    errors: [],
    warnings: problems.warnings,
    files,
  };
}

/** Loads and checks the rules at `rulesPath` (a file, or a folder with avviso.yaml). Throws RuleErrors listing every problem. */
export async function loadRuleSet(rulesPath?: string, reader: SourceReader = diskReader): Promise<RuleSet> {
  const r = await compileFrom(await resolveRulesEntry(rulesPath), reader);
  if (!r.ruleSet) throw new RuleErrors(r.errors, r.warnings);
  return r.ruleSet;
}

/**
 * Rebuilds a rule set from the files it was made of (`RuleSet.files`), e.g. as stored with an
 * incident, without touching the disk: the same texts give the same version.
 */
export async function loadRuleSetFromFiles(files: Pick<RuleSetFile, 'path' | 'text'>[]): Promise<RuleSet> {
  const texts = Object.fromEntries(files.map((f) => [f.path, f.text]));
  const memory: SourceReader = {
    readFile: async (p) => {
      if (texts[p] === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
      return texts[p];
    },
    listYaml: async (p) => {
      const inside = Object.keys(texts)
        .filter((f) => path.dirname(f) === p)
        .sort();
      return inside.length ? inside : undefined;
    },
  };
  const r = await compileFrom(files[0]!.path, memory);
  if (!r.ruleSet) throw new RuleErrors(r.errors, r.warnings);
  return r.ruleSet;
}

/** Checks rules without keeping them: every error and warning, for `rules check` and the API. */
export async function checkRules(
  rulesPath?: string,
  options: { text?: string; reader?: SourceReader } = {},
): Promise<CheckReport> {
  const entry = await resolveRulesEntry(rulesPath);
  const reader =
    options.text !== undefined
      ? overlayReader({ [entry]: options.text }, options.reader)
      : (options.reader ?? diskReader);
  const r = await compileFrom(entry, reader);
  return {
    ok: r.errors.length === 0,
    version: r.ruleSet?.version,
    errors: r.errors,
    warnings: r.warnings,
    files: r.files,
  };
}
