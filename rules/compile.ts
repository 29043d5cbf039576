/**
 * From checked files to a compiled rule set: merges the included files, applies `defaults`
 * and inheritance down the rule tree, and checks what the shapes alone cannot: unknown
 * templates, contacts and facts, impossible time windows, template variables that do not
 * exist, rules that can never be reached. Every problem is collected with its position, so
 * that one `rules check` lists them all.
 */
import path from 'node:path';
import { compileCondition, factChecks, type Condition, type ConditionCompiler } from './conditions';
import { ProblemList, suggest, type SourcePosition } from './errors';
import { FactCatalog } from './facts';
import type {
  CompiledRules,
  Contact,
  EscalationModel,
  GlobalSettings,
  NotifyTarget,
  RuleNode,
  RuleSettings,
  TemplateSetModel,
} from './model';
import {
  checkFileShape,
  type RawDefaults,
  type RawDelivery,
  type RawFile,
  type RawRule,
  type RawSettings,
  type RawTemplateSet,
} from './schema';
import { checkMessageLengths } from './sms-check';
import type { LoadedSources, PathSegment, SourceFile } from './source';
import {
  compileTemplate,
  createLiquid,
  languageHasWords,
  TEMPLATE_VARIABLES,
  type CompiledTemplate,
} from './templates';
import type { NightKind } from './night';
import { holidayProblem, isValidTimeZone, parseDuration, parseTimeWindow } from './time';
import {
  MESSAGE_KINDS,
  SUBSCRIBER_CHANNELS,
  UNREACHABLE_SUBSCRIBER_CHANNELS,
  type IncidentKind,
  type MessageKind,
  type Priority,
} from './types';

const REACHABLE = SUBSCRIBER_CHANNELS.filter(
  (c) => !(UNREACHABLE_SUBSCRIBER_CHANNELS as readonly string[]).includes(c),
);

interface ShapedFile {
  src: SourceFile;
  data: RawFile;
}

/** Settings on their way down the tree: notify entries keep their own template until a rule fixes it. */
interface Inherited {
  notify: { channel: NotifyTarget['channel']; template?: string; priority?: Priority; at: SourcePosition }[];
  /** `written`: false for the built-in default, which has no place in the files to point at. */
  template: { name: string; at: SourcePosition; written: boolean };
  priority: Priority;
  graceSeconds: number;
  restoration: boolean;
  updates: RuleSettings['updates'];
  quietHours: RuleSettings['quietHours'];
  maintenance: RuleSettings['maintenance'];
}

export interface CompileResult {
  compiled?: CompiledRules;
  problems: ProblemList;
}

export function compileRules(sources: LoadedSources): CompileResult {
  const problems = sources.problems;
  const shaped: ShapedFile[] = [];
  for (const src of sources.files) {
    if (src.doc.errors.length > 0) continue;
    const result = checkFileShape(src.data());
    if (result.ok) shaped.push({ src, data: result.data });
    else for (const p of result.problems) problems.error(src.at(p.path, p.part), p.message);
  }
  // Meaning is checked only on files whose shape is right: otherwise one typo would echo as many errors.
  if (problems.hasErrors() || shaped.length === 0) return { problems };
  const [entry] = shaped as [ShapedFile, ...ShapedFile[]];
  for (const { src, data } of shaped.slice(1)) {
    if (data.defaults)
      problems.error(
        src.at(['defaults'], 'key'),
        `defaults belong in the main rule file (${path.basename(entry.src.file)}), not in an included one`,
      );
  }

  const settings = globalSettings(entry, problems);
  const facts = new FactCatalog(settings.languages);
  const liquid = createLiquid();
  const holidays = collectHolidays(shaped, problems);
  const contacts = collectContacts(shaped, problems);
  const templateSets = compileTemplateSets(shaped, settings, liquid, problems);

  let counter = 0;
  const cc: ConditionCompiler = { facts, problems, nextId: () => `c${++counter}` };
  const builder = new RuleTreeBuilder(cc, contacts, templateSets, problems, entry.data.defaults?.continue ?? false);
  const rootInherited = rootSettings(entry, problems);
  const roots: RuleNode[] = [];
  for (const { src, data } of shaped) {
    (data.rules ?? []).forEach((raw, i) => {
      const node = builder.build(raw, src, ['rules', i], {
        inherited: rootInherited,
        chain: [],
        readsSubscriber: false,
        depth: 0,
      });
      if (node) roots.push(node);
    });
  }
  if (problems.hasErrors()) return { problems };

  const leaves = leavesOf(roots);
  const read = leaves.flatMap((leaf) => leaf.chain.flatMap(factChecks)).filter((c) => c.fact.scope === 'subscriber');
  const subscriberFactsRead = [...new Set(read.map((c) => c.fact.id))].sort();
  const compiled: CompiledRules = {
    settings,
    holidays,
    contacts,
    templateSets,
    roots,
    leaves,
    facts,
    subscriberFactsRead,
    liquid,
  };

  checkTemplateCoverage(compiled, problems);
  warnUnreachable(roots, problems);
  if (!problems.hasErrors()) checkMessageLengths(compiled, problems);
  return problems.hasErrors() ? { problems } : { compiled, problems };
}

function globalSettings(entry: ShapedFile, problems: ProblemList): GlobalSettings {
  const d: RawDefaults = entry.data.defaults ?? {};
  const at = (...p: PathSegment[]) => entry.src.at(['defaults', ...p]);
  const timeZone = d.timeZone ?? 'Europe/Rome';
  if (!isValidTimeZone(timeZone))
    problems.error(at('timeZone'), `unknown time zone "${timeZone}"; write an IANA name such as Europe/Rome`);
  const languages = d.languages ?? ['it', 'en'];
  const language = d.language ?? languages[0]!;
  if (!languages.includes(language))
    problems.error(
      at('language'),
      `the default language "${language}" is not among the languages (${languages.join(', ')})`,
    );
  for (const name of Object.keys(d.sms?.longest ?? {})) {
    if (!(name in TEMPLATE_VARIABLES))
      problems.error(
        entry.src.at(['defaults', 'sms', 'longest', name], 'key'),
        `"${name}" is not a template variable${suggest(name, Object.keys(TEMPLATE_VARIABLES))}`,
      );
  }
  for (const [i, l] of languages.entries()) {
    if (!languageHasWords(l))
      problems.warning(
        at('languages', i),
        `Avviso has no words for durations and lists in "${l}": | duration writes 2h 15m`,
      );
  }
  return {
    delivery: deliverySettings(d.delivery, entry, problems),
    groupWaitSeconds: groupWait(d.groupWait, entry, problems),
    timeZone,
    senderId: d.senderId ?? 'Avviso',
    language,
    languages,
    defaultTemplateSet: d.template ?? 'standard',
    sms: {
      maxParts: d.sms?.maxParts ?? 1,
      transliterate: d.sms?.transliterate ?? false,
      costPerPart: d.sms?.costPerPart ?? 0.05,
      currency: d.sms?.currency ?? 'EUR',
      longest: {
        area: 'San Casciano in Val di Pesa',
        title: 'Guasto sul ponte radio principale della dorsale',
        duration: '1d23h59m',
        ...(d.sms?.longest ?? {}),
      },
    },
    voice: { costPerCall: d.voice?.costPerCall ?? 0 },
  };
}

/** `defaults.groupWait`: a window for a burst to settle, not a grace delay (that is `wait`). */
function groupWait(raw: string | undefined, entry: ShapedFile, problems: ProblemList): number {
  const seconds = raw === undefined ? 0 : parseDuration(raw)!;
  if (seconds > 600)
    problems.error(
      entry.src.at(['defaults', 'groupWait']),
      `a groupWait of ${raw} holds every outage notice that long; it is for a burst of alerts to settle (Alertmanager's group_wait is 30s): at most 10m, and use wait for a grace delay`,
    );
  return seconds;
}

/** Below this, a receipt that is only slow gets its message sent again. */
const SHORT_RECEIPT_TIMEOUT_SECONDS = 60;

/** `defaults.delivery`: what it does not say is null, and the configured delivery policy applies. */
function deliverySettings(
  raw: RawDelivery | undefined,
  entry: ShapedFile,
  problems: ProblemList,
): GlobalSettings['delivery'] {
  const at = (...p: PathSegment[]) => entry.src.at(['defaults', 'delivery', ...p]);
  const receiptTimeoutSeconds = raw?.receiptTimeout === undefined ? null : parseDuration(raw.receiptTimeout)!;
  if (receiptTimeoutSeconds === 0)
    problems.error(
      at('receiptTimeout'),
      'a receiptTimeout of 0 would send every message again at once; write how long a receipt may take, e.g. 10m',
    );
  else if (receiptTimeoutSeconds !== null && receiptTimeoutSeconds < SHORT_RECEIPT_TIMEOUT_SECONDS) {
    problems.warning(
      at('receiptTimeout'),
      `receipts often take longer than ${receiptTimeoutSeconds} s: messages that are only slow will be sent again; 1m or more is safer`,
    );
  }
  const fallback = raw?.fallback ?? null;
  fallback?.forEach((channel, i) => {
    const first = fallback.indexOf(channel);
    if (first < i)
      problems.error(
        at('fallback', i),
        `${channel} is already in the fallback list (position ${first + 1}); each channel is tried once`,
      );
  });
  return { receiptTimeoutSeconds, attempts: raw?.attempts ?? null, fallback };
}

/** What a rule inherits when neither it, its groups nor `defaults` say otherwise. */
function rootSettings(entry: ShapedFile, problems: ProblemList): Inherited {
  const base: Inherited = {
    notify: [],
    template: { name: 'standard', at: entry.src.at(['defaults']), written: false },
    priority: 'normal',
    graceSeconds: 0,
    restoration: true,
    updates: { everySeconds: null, onEtaChange: true },
    quietHours: null,
    maintenance: {
      noticeBeforeSeconds: 0,
      reminderBeforeSeconds: null,
      remindersBeforeSeconds: [],
      started: false,
      completed: true,
    },
  };
  return entry.data.defaults ? applySettings(base, entry.data.defaults, entry.src, ['defaults'], problems) : base;
}

/** A rule's (or defaults') own settings over what it inherits. Nested settings merge field by field. */
function applySettings(
  parent: Inherited,
  raw: RawSettings,
  src: SourceFile,
  at: PathSegment[],
  problems: ProblemList,
): Inherited {
  const seconds = (text: string | undefined) => (text === undefined || text === 'off' ? null : parseDuration(text)!);
  const next: Inherited = { ...parent };
  if (raw.notify) next.notify = raw.notify.map((n, i) => ({ ...n, at: src.at([...at, 'notify', i]) }));
  if (raw.template) next.template = { name: raw.template, at: src.at([...at, 'template']), written: true };
  if (raw.priority) next.priority = raw.priority;
  if (raw.wait !== undefined) next.graceSeconds = seconds(raw.wait)!;
  if (raw.restoration !== undefined) next.restoration = raw.restoration;
  if (raw.updates) {
    next.updates = {
      everySeconds: raw.updates.every !== undefined ? seconds(raw.updates.every) : parent.updates.everySeconds,
      onEtaChange: raw.updates.onEtaChange ?? parent.updates.onEtaChange,
    };
    if (next.updates.everySeconds !== null && next.updates.everySeconds < 600) {
      problems.error(
        src.at([...at, 'updates', 'every']),
        'updates more often than every 10m would flood subscribers; write 10m or more',
      );
    }
  }
  if (raw.quietHours) {
    const q = raw.quietHours;
    if (q.off) {
      next.quietHours = null;
    } else {
      const inherited = parent.quietHours ?? {
        window: null,
        unlessSeverity: null,
        atOnce: {},
        subscriberPreference: true,
      };
      let window = inherited.window;
      if (q.window !== undefined) {
        const parsed = parseTimeWindow(q.window);
        if (typeof parsed === 'string')
          problems.error(
            src.at([...at, 'quietHours', ...(src.scalarAt([...at, 'quietHours']) ? [] : ['window'])]),
            `quietHours: ${parsed}`,
          );
        else window = parsed;
      }
      const atOnce = { ...inherited.atOnce };
      for (const [kind, severity] of Object.entries(q.atOnce ?? {}))
        if (severity !== undefined) atOnce[kind as NightKind] = severity === 'never' ? null : severity;
      next.quietHours = {
        window,
        unlessSeverity: q.unlessSeverity ?? inherited.unlessSeverity,
        atOnce,
        subscriberPreference: q.subscriberPreference ?? inherited.subscriberPreference,
      };
    }
  }
  if (raw.maintenance) {
    const m = raw.maintenance;
    let reminders = parent.maintenance.remindersBeforeSeconds;
    if (m.reminder !== undefined) {
      const list = (Array.isArray(m.reminder) ? m.reminder : [m.reminder])
        .map(seconds)
        .filter((r): r is number => r !== null);
      reminders = [...new Set(list)].sort((a, b) => b - a);
      if (reminders.includes(0))
        problems.error(
          src.at([...at, 'maintenance', 'reminder']),
          'a reminder 0 before the start is the start itself: use started: true',
        );
      if (Array.isArray(m.reminder) && reminders.length < m.reminder.length)
        problems.warning(
          src.at([...at, 'maintenance', 'reminder']),
          'the same reminder is listed twice; it is sent once',
        );
    }
    next.maintenance = {
      noticeBeforeSeconds: m.notice !== undefined ? seconds(m.notice)! : parent.maintenance.noticeBeforeSeconds,
      reminderBeforeSeconds: reminders[0] ?? null,
      remindersBeforeSeconds: reminders,
      started: m.started ?? parent.maintenance.started,
      completed: m.completed ?? parent.maintenance.completed,
    };
  }
  return next;
}

interface Enclosing {
  inherited: Inherited;
  chain: Condition[];
  readsSubscriber: boolean;
  depth: number;
}

class RuleTreeBuilder {
  private readonly names = new Map<string, SourcePosition>();

  constructor(
    private readonly cc: ConditionCompiler,
    private readonly contacts: Map<string, Contact>,
    private readonly templateSets: Map<string, TemplateSetModel>,
    private readonly problems: ProblemList,
    private readonly continueByDefault: boolean,
  ) {}

  build(raw: RawRule, src: SourceFile, at: PathSegment[], enclosing: Enclosing): RuleNode | undefined {
    const position = src.at([...at, 'name']);
    const earlier = this.names.get(raw.name);
    if (earlier)
      this.problems.error(
        position,
        `there is already a rule named "${raw.name}" (${path.basename(earlier.file)}:${earlier.line}); names must be unique`,
      );
    else this.names.set(raw.name, position);

    const when = raw.when === undefined ? undefined : compileCondition(raw.when, src, [...at, 'when'], this.cc);
    const chain = when ? [...enclosing.chain, when] : enclosing.chain;
    const readsSubscriber = enclosing.readsSubscriber || factChecks(when).some((c) => c.fact.scope === 'subscriber');
    const inherited = applySettings(enclosing.inherited, raw, src, at, this.problems);

    const children: RuleNode[] = [];
    if (raw.rules) {
      if (raw.rules.length === 0)
        this.problems.error(src.at([...at, 'rules']), 'this group has no rules; add some, or remove "rules:"');
      raw.rules.forEach((child, i) => {
        const node = this.build(child, src, [...at, 'rules', i], {
          inherited,
          chain,
          readsSubscriber,
          depth: enclosing.depth + 1,
        });
        if (node) children.push(node);
      });
      if (raw.escalate)
        this.problems.error(
          src.at([...at, 'escalate'], 'key'),
          'a group sends nothing itself: put escalate in one of its rules',
        );
    }

    const settings = this.finalSettings(inherited, raw.rules === undefined);
    const escalate = (raw.escalate ?? []).map((step, i) =>
      this.escalation(step, src, [...at, 'escalate', i], inherited),
    );
    const node: RuleNode = {
      name: raw.name,
      description: raw.description,
      at: position,
      depth: enclosing.depth,
      when,
      chain,
      settings,
      escalate: escalate.filter((e): e is EscalationModel => e !== undefined),
      children,
      continue: raw.continue ?? this.continueByDefault,
      readsSubscriber,
    };
    if (raw.rules === undefined) {
      this.checkIncidentWide(node, src, at);
      this.checkReachable(node);
    }
    return when === undefined && raw.when !== undefined ? undefined : node;
  }

  /** Fixes each notify entry's template set; only rules (not groups) are checked, since only they send. */
  private finalSettings(inherited: Inherited, isLeaf: boolean): RuleSettings {
    const notify = inherited.notify.map((n) => {
      const templateSet = n.template ?? inherited.template.name;
      if (isLeaf && !this.templateSets.has(templateSet)) {
        const where = n.template || !inherited.template.written ? n.at : inherited.template.at;
        const why =
          n.template || inherited.template.written
            ? ''
            : ' (the default; name one with template:, or define templates.standard)';
        this.problems.error(
          where,
          `unknown template set "${templateSet}"${why}${suggest(templateSet, [...this.templateSets.keys()])} (template sets: ${[...this.templateSets.keys()].join(', ') || 'none'})`,
        );
      }
      return { channel: n.channel, templateSet, priority: n.priority ?? inherited.priority, at: n.at };
    });
    const dedup = notify.filter((n, i) => notify.findIndex((m) => m.channel === n.channel) === i);
    return {
      notify: dedup,
      graceSeconds: inherited.graceSeconds,
      restoration: inherited.restoration,
      updates: inherited.updates,
      quietHours: inherited.quietHours,
      maintenance: inherited.maintenance,
    };
  }

  private escalation(
    step: NonNullable<RawRule['escalate']>[number],
    src: SourceFile,
    at: PathSegment[],
    inherited: Inherited,
  ): EscalationModel | undefined {
    const contact = this.contacts.get(step.contact);
    if (!contact) {
      this.problems.error(
        src.at([...at, 'contact']),
        `unknown contact "${step.contact}"${suggest(step.contact, [...this.contacts.keys()])} (contacts: ${[...this.contacts.keys()].join(', ') || 'none'})`,
      );
      return undefined;
    }
    const needs = step.channel === 'email' ? 'email' : step.channel === 'webhook' ? 'url' : 'phone';
    if (!contact[needs]) {
      this.problems.error(
        src.at([...at, 'channel']),
        `contact "${step.contact}" has no ${needs}, which ${step.channel} needs (${path.basename(contact.at.file)}:${contact.at.line})`,
      );
      return undefined;
    }
    const templateSet = step.template ?? inherited.template.name;
    if (!this.templateSets.has(templateSet)) {
      const where = step.template
        ? src.at([...at, 'template'])
        : inherited.template.written
          ? inherited.template.at
          : src.at(at);
      this.problems.error(
        where,
        `unknown template set "${templateSet}"${suggest(templateSet, [...this.templateSets.keys()])}`,
      );
    }
    return {
      afterSeconds: parseDuration(step.after)!,
      contact: step.contact,
      channel: step.channel,
      repeat: step.repeat ? { everySeconds: parseDuration(step.repeat.every)!, times: step.repeat.times } : null,
      templateSet,
      priority: step.priority ?? inherited.priority,
      at: src.at(at),
    };
  }

  /** A notice on a channel that no subscriber record can be reached on is a rule that sends nothing. */
  private checkReachable(node: RuleNode): void {
    for (const n of node.settings.notify) {
      if (!(UNREACHABLE_SUBSCRIBER_CHANNELS as readonly string[]).includes(n.channel)) continue;
      this.problems.warning(
        n.at,
        `rule "${node.name}": notify ${n.channel} reaches nobody: subscribers have phones and e-mail addresses, no ${n.channel} address (${REACHABLE.join(', ')} reach them; staff are called on ${n.channel} with escalate:)`,
      );
    }
  }

  /** The feed and escalations are one per incident: a rule that reads subscriber facts cannot decide them. */
  private checkIncidentWide(node: RuleNode, src: SourceFile, at: PathSegment[]): void {
    if (!node.readsSubscriber) return;
    const subscriberFact = node.chain.flatMap(factChecks).find((c) => c.fact.scope === 'subscriber')!;
    const reads = `${subscriberFact.fact.id} (line ${subscriberFact.at.line})`;
    const feed = node.settings.notify.find((n) => n.channel === 'feed');
    if (feed)
      this.problems.error(
        feed.at,
        `rule "${node.name}": the public status feed is one post per incident, so the rule that sends it may read only incident and time facts, and this one reads ${reads}; give the feed a rule of its own`,
      );
    if (node.escalate.length > 0)
      this.problems.error(
        src.at([...at, 'escalate'], 'key'),
        `rule "${node.name}": escalation is per incident, so its rule may read only incident and time facts, and this one reads ${reads}; give it a rule of its own`,
      );
  }
}

function leavesOf(nodes: RuleNode[]): RuleNode[] {
  return nodes.flatMap((n) => (n.children.length ? leavesOf(n.children) : [n]));
}

function collectHolidays(files: ShapedFile[], problems: ProblemList): Set<string> {
  const holidays = new Set<string>();
  for (const { src, data } of files) {
    (data.holidays ?? []).forEach((h, i) => {
      const problem = holidayProblem(h);
      if (problem) problems.error(src.at(['holidays', i]), problem);
      else holidays.add(h);
    });
  }
  return holidays;
}

/** Names defined in several files: the second definition is an error that names the first. */
function uniqueName(
  kind: string,
  name: string,
  at: SourcePosition,
  seen: Map<string, SourcePosition>,
  problems: ProblemList,
): boolean {
  const first = seen.get(name);
  if (first) {
    problems.error(at, `${kind} "${name}" is already defined at ${path.basename(first.file)}:${first.line}`);
    return false;
  }
  seen.set(name, at);
  return true;
}

function collectContacts(files: ShapedFile[], problems: ProblemList): Map<string, Contact> {
  const contacts = new Map<string, Contact>();
  const seen = new Map<string, SourcePosition>();
  for (const { src, data } of files) {
    for (const [name, c] of Object.entries(data.contacts ?? {})) {
      const at = src.at(['contacts', name], 'key');
      if (!uniqueName('contact', name, at, seen, problems)) continue;
      if (!c.phone && !c.email && !c.url)
        problems.error(at, `contact "${name}" has no phone, email or url: there is no way to reach it`);
      contacts.set(name, { name: c.name ?? name, phone: c.phone, email: c.email, url: c.url, at });
    }
  }
  return contacts;
}

function compileTemplateSets(
  files: ShapedFile[],
  settings: GlobalSettings,
  liquid: ReturnType<typeof createLiquid>,
  problems: ProblemList,
): Map<string, TemplateSetModel> {
  interface Pending {
    name: string;
    raw: RawTemplateSet;
    src: SourceFile;
    at: SourcePosition;
    own: Map<MessageKind, Map<string, CompiledTemplate>>;
  }
  const pending = new Map<string, Pending>();
  const seen = new Map<string, SourcePosition>();
  for (const { src, data } of files) {
    for (const [name, raw] of Object.entries(data.templates ?? {})) {
      const at = src.at(['templates', name], 'key');
      if (!uniqueName('template set', name, at, seen, problems)) continue;
      const own = new Map<MessageKind, Map<string, CompiledTemplate>>();
      for (const kind of MESSAGE_KINDS) {
        const texts = raw[kind];
        if (!texts) continue;
        const base = ['templates', name, kind];
        const maxParts = typeof texts.maxParts === 'number' ? texts.maxParts : (raw.maxParts ?? settings.sms.maxParts);
        const byLanguage = new Map<string, CompiledTemplate>();
        for (const [language, text] of Object.entries(texts)) {
          if (language === 'maxParts') {
            if (typeof text !== 'number' || !Number.isInteger(text) || text < 1 || text > 10)
              problems.error(src.at([...base, language]), 'maxParts is a whole number from 1 to 10');
            continue;
          }
          if (!settings.languages.includes(language)) {
            problems.error(
              src.at([...base, language], 'key'),
              `"${language}" is not one of the rule set's languages (${settings.languages.join(', ')}, in defaults.languages)${suggest(language, settings.languages)}`,
            );
            continue;
          }
          if (typeof text !== 'string') {
            problems.error(src.at([...base, language]), 'expected the text of the message');
            continue;
          }
          const result = compileTemplate(liquid, text, src, [...base, language]);
          for (const p of result.problems) problems.error(p.at, p.message);
          if (result.parsed)
            byLanguage.set(language, {
              set: name,
              kind,
              language,
              source: text,
              parsed: result.parsed,
              maxParts,
              at: src.at([...base, language]),
            });
        }
        const missing = settings.languages.filter((l) => !(l in texts));
        if (missing.length)
          problems.error(
            src.at(base, 'key'),
            `templates.${name}.${kind} has no text in ${missing.join(', ')}: every message is needed in every language of the rule set`,
          );
        own.set(kind, byLanguage);
      }
      pending.set(name, { name, raw, src, at, own });
    }
  }

  const resolved = new Map<string, TemplateSetModel>();
  const resolve = (name: string, chain: string[]): TemplateSetModel | undefined => {
    const done = resolved.get(name);
    if (done) return done;
    const p = pending.get(name);
    if (!p) return undefined;
    let texts = new Map<MessageKind, Map<string, CompiledTemplate>>();
    if (p.raw.extends !== undefined) {
      const parentAt = p.src.at(['templates', name, 'extends']);
      if (chain.includes(p.raw.extends)) {
        problems.error(
          parentAt,
          `template sets extend each other in a circle: ${[...chain, name, p.raw.extends].join(' -> ')}`,
        );
      } else {
        const parent = resolve(p.raw.extends, [...chain, name]);
        if (!parent)
          problems.error(
            parentAt,
            `unknown template set "${p.raw.extends}"${suggest(p.raw.extends, [...pending.keys()])}`,
          );
        else texts = new Map([...parent.texts].map(([k, v]) => [k, new Map(v)]));
      }
    }
    for (const [kind, byLanguage] of p.own) texts.set(kind, byLanguage);
    const model: TemplateSetModel = { name, at: p.at, texts };
    resolved.set(name, model);
    return model;
  };
  for (const name of pending.keys()) resolve(name, []);
  return resolved;
}

/** The incident kinds a rule can apply to, from `incident.kind` tests at the top of its conditions. */
function possibleIncidentKinds(rule: RuleNode): IncidentKind[] {
  let kinds: IncidentKind[] = ['outage', 'maintenance'];
  const conjuncts = (c: Condition): Condition[] => (c.type === 'all' ? c.items.flatMap(conjuncts) : [c]);
  for (const c of rule.chain.flatMap(conjuncts)) {
    if (c.type !== 'fact' || c.fact.id !== 'incident.kind') continue;
    if (c.operator === 'equal') kinds = kinds.filter((k) => k === c.value);
    else if (c.operator === 'in') kinds = kinds.filter((k) => (c.value as string[]).includes(k));
    else if (c.operator === 'notEqual') kinds = kinds.filter((k) => k !== c.value);
  }
  return kinds;
}

/** The message kinds a plan of this rule can send, so that each template set it names has them. */
function neededKinds(
  rule: RuleNode,
  s: Pick<RuleSettings, 'restoration' | 'updates' | 'maintenance'>,
  staff: boolean,
): MessageKind[] {
  const kinds: MessageKind[] = [];
  const incidentKinds = possibleIncidentKinds(rule);
  if (incidentKinds.includes('outage')) {
    kinds.push('outage');
    if (!staff && (s.updates.everySeconds !== null || s.updates.onEtaChange)) kinds.push('update');
    if (!staff && s.restoration) kinds.push('restored', 'outage-restored');
  }
  if (incidentKinds.includes('maintenance')) {
    kinds.push('maintenance');
    if (!staff) {
      if (s.maintenance.remindersBeforeSeconds.length > 0) kinds.push('reminder');
      if (s.maintenance.started) kinds.push('started');
      if (s.maintenance.completed) kinds.push('completed');
      kinds.push('rescheduled', 'cancelled');
    }
  }
  return kinds;
}

function checkTemplateCoverage(compiled: CompiledRules, problems: ProblemList): void {
  const missing = new Map<string, { set: TemplateSetModel; kind: MessageKind; rules: Set<string> }>();
  const need = (setName: string, kinds: MessageKind[], rule: string) => {
    const set = compiled.templateSets.get(setName);
    if (!set) return;
    for (const kind of kinds) {
      if (set.texts.has(kind)) continue;
      const key = `${setName}/${kind}`;
      const entry = missing.get(key) ?? { set, kind, rules: new Set<string>() };
      entry.rules.add(rule);
      missing.set(key, entry);
    }
  };
  for (const leaf of compiled.leaves) {
    for (const n of leaf.settings.notify) need(n.templateSet, neededKinds(leaf, leaf.settings, false), leaf.name);
    for (const e of leaf.escalate) need(e.templateSet, neededKinds(leaf, leaf.settings, true), leaf.name);
  }
  for (const { set, kind, rules } of missing.values()) {
    problems.error(
      set.at,
      `template set "${set.name}" has no "${kind}" message, which rule${rules.size > 1 ? 's' : ''} ${[...rules].map((r) => `"${r}"`).join(', ')} may send; add templates.${set.name}.${kind}${set.texts.size ? '' : ''}`,
    );
  }
}

/** A rule that always applies and stops hides every later sibling: almost always a mistake. */
function warnUnreachable(nodes: RuleNode[], problems: ProblemList): void {
  const alwaysApplies = (n: RuleNode): boolean =>
    n.when === undefined && (n.children.length === 0 || n.children.some(alwaysApplies));
  let hiddenBy: RuleNode | undefined;
  for (const node of nodes) {
    if (hiddenBy)
      problems.warning(
        node.at,
        `rule "${node.name}" is never reached: "${hiddenBy.name}" (line ${hiddenBy.at.line}) applies to everything and stops; give it a when, or continue: true`,
      );
    else if (alwaysApplies(node) && !node.continue) hiddenBy = node;
    warnUnreachable(node.children, problems);
  }
}
