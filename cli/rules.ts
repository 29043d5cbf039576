/**
 * `avviso rules check|explain|simulate`: the rule tools for operations staff. They need no
 * database or Temporal: facts come from options and JSON files, so a rule change can be
 * checked and tried on a laptop before it goes live.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DateTime } from 'luxon';
import { modeFromEnv, rulesPathFromEnv, staffChannelsFromEnv } from '../config';
import { escalationsWithNobodyOnCall, unsendableEscalations, type StoredContact } from '../rules/escalation-check';
import {
  checkRules,
  formatDuration,
  formatProblem,
  loadRuleSet,
  placeholderContacts,
  resolveRulesEntry,
  RuleErrors,
  syntheticSubscribers,
  type IncidentFacts,
  type RuleSet,
  type Simulation,
  type SubscriberFacts,
} from '../rules';

const HELP = `usage: avviso rules <command> [options]

Commands:
  check [path]     check a rule file (or a folder with avviso.yaml): errors and warnings with
                   file:line:column; exit code 1 when there are errors, and when a contact
                   keeps the shipped placeholder phone (unless AVVISO_MODE=development)
  explain          for one incident and one subscriber: which rules matched, which did not, and why
  simulate         for an incident on given sites: how many subscribers get what, on which channel,
                   when, with the text, its SMS parts and the estimated cost

The rules are read from --rules PATH, else AVVISO_RULES, else the shipped rules (rules/default).
None of these commands needs a database: incidents and subscribers come from the options below
or from JSON files.

check options:
  --json                 print the report as JSON
  --strict               exit code 1 on warnings too
  --contacts FILE        the stored staff contacts as JSON (GET /v1/contacts): warn of escalations
                         in areas where none is, or none is on call

incident options (explain, simulate):
  --incident FILE        the incident's facts as JSON: {kind, severity, siteIds, areas, source,
                         openedAt, estimatedEnd, startsAt, title, subscribers}; options below override
  --kind KIND            outage (default) or maintenance
  --severity SEVERITY    minor, major (default) or critical
  --sites S1,S2          affected sites
  --areas A,B            affected areas
  --source NAME          who raised it (default manual)
  --title TEXT           its title
  --opened TIME          when it opened (default: --at)
  --eta TIME             estimated restoration (maintenance: planned end)
  --starts TIME          maintenance: planned start
  --at TIME              the moment to decide at (default now), e.g. 2025-03-12T23:00 (local time)

subscriber options (explain):
  --subscriber FILE      the subscriber's facts as JSON: {id, paidSms, language, segment, siteId,
                         area, channels, quietHours, preferences}; options below override
  --paid                 pays for the SMS option
  --language LANG        it (default) or en
  --segment SEGMENT      residential (default) or business
  --site ID              their site (default: the first of --sites)
  --area NAME            their area (default: the first of --areas)
  --channels sms,email   channels they can be reached on (default: all)
  --quiet-hours HH:MM-HH:MM  their own quiet hours

audience options (simulate):
  --subscribers FILE     subscribers' facts: a JSON array, or one JSON object per line
  --population N         N made-up subscribers spread over --sites (default 1000 when no file):
                         a third pay for SMS, a fifth read English, 1 in 20 has quiet hours
  --seed N               seed of the made-up population (default 42)

  --json                 print the result as JSON
`;

const OPTIONS = {
  rules: { type: 'string' },
  json: { type: 'boolean' },
  strict: { type: 'boolean' },
  contacts: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  incident: { type: 'string' },
  kind: { type: 'string' },
  severity: { type: 'string' },
  sites: { type: 'string' },
  areas: { type: 'string' },
  source: { type: 'string' },
  title: { type: 'string' },
  opened: { type: 'string' },
  eta: { type: 'string' },
  starts: { type: 'string' },
  at: { type: 'string' },
  subscriber: { type: 'string' },
  paid: { type: 'boolean' },
  language: { type: 'string' },
  segment: { type: 'string' },
  site: { type: 'string' },
  area: { type: 'string' },
  channels: { type: 'string' },
  'quiet-hours': { type: 'string' },
  subscribers: { type: 'string' },
  population: { type: 'string' },
  seed: { type: 'string' },
} satisfies ParseArgsConfig['options'];

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

/** A usage mistake: printed without a stack trace, exit code 2. */
class UsageError extends Error {}

const list = (v: string | undefined) =>
  v
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : undefined;

async function readJson(file: string, what: string): Promise<unknown> {
  const text = await readFile(file, 'utf8').catch((err: Error) => {
    throw new UsageError(`cannot read ${what} ${file}: ${err.message}`);
  });
  try {
    return JSON.parse(text);
  } catch {
    // One JSON object per line is how exports of many records usually come.
    try {
      return text
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as unknown);
    } catch (err) {
      throw new UsageError(`${file} is not JSON (${(err as Error).message})`);
    }
  }
}

/** A time as given on the command line; without an offset it is local time of the rule set. */
function parseTime(text: string | undefined, timeZone: string, option: string): Date | undefined {
  if (text === undefined) return undefined;
  const d = DateTime.fromISO(text, { zone: timeZone });
  if (!d.isValid)
    throw new UsageError(
      `--${option} ${JSON.stringify(text)} is not a time; write e.g. 2025-03-12T23:00 (local) or 2025-03-12T22:00Z`,
    );
  return d.toJSDate();
}

async function incidentFrom(v: Values, rules: RuleSet, at: Date): Promise<IncidentFacts> {
  const base = (v.incident ? await readJson(v.incident, 'incident') : {}) as Partial<IncidentFacts>;
  const tz = rules.settings.timeZone;
  const kind = (v.kind ?? base.kind ?? 'outage') as IncidentFacts['kind'];
  const severity = (v.severity ?? base.severity ?? 'major') as IncidentFacts['severity'];
  if (!['outage', 'maintenance'].includes(kind))
    throw new UsageError(`--kind must be outage or maintenance, not ${JSON.stringify(kind)}`);
  if (!['minor', 'major', 'critical'].includes(severity))
    throw new UsageError(`--severity must be minor, major or critical, not ${JSON.stringify(severity)}`);
  const siteIds = list(v.sites) ?? base.siteIds;
  if (!siteIds?.length) throw new UsageError('name the affected sites: --sites S1,S2 (or siteIds in --incident)');
  return {
    ...base,
    kind,
    severity,
    siteIds,
    areas: list(v.areas) ?? base.areas ?? [],
    source: v.source ?? base.source ?? 'manual',
    title: v.title ?? base.title,
    openedAt: parseTime(v.opened, tz, 'opened') ?? base.openedAt ?? at,
    estimatedEnd: parseTime(v.eta, tz, 'eta') ?? base.estimatedEnd,
    startsAt: parseTime(v.starts, tz, 'starts') ?? base.startsAt,
  };
}

async function subscriberFrom(v: Values, incident: IncidentFacts): Promise<SubscriberFacts> {
  const base = (v.subscriber ? await readJson(v.subscriber, 'subscriber') : {}) as Partial<SubscriberFacts>;
  return {
    ...base,
    id: base.id ?? 'cli-subscriber',
    paidSms: v.paid ?? base.paidSms ?? false,
    language: v.language ?? base.language ?? 'it',
    segment: (v.segment ?? base.segment ?? 'residential') as SubscriberFacts['segment'],
    siteId: v.site ?? base.siteId ?? incident.siteIds[0]!,
    area: v.area ?? base.area ?? incident.areas?.[0],
    channels: (list(v.channels) as SubscriberFacts['channels']) ?? base.channels,
    quietHours: v['quiet-hours'] ?? base.quietHours,
  };
}

async function audienceFrom(v: Values, incident: IncidentFacts): Promise<SubscriberFacts[]> {
  if (v.subscribers) {
    const data = await readJson(v.subscribers, 'subscribers');
    if (!Array.isArray(data))
      throw new UsageError(`${v.subscribers} must hold a JSON array of subscribers (or one per line)`);
    return data as SubscriberFacts[];
  }
  const count = Number(v.population ?? 1000);
  if (!Number.isInteger(count) || count < 1 || count > 10_000_000)
    throw new UsageError('--population takes a whole number of subscribers, e.g. 5000');
  const areas = incident.areas?.length
    ? incident.siteIds.map((_, i) => incident.areas![i % incident.areas!.length]!)
    : undefined;
  return syntheticSubscribers(count, { siteIds: incident.siteIds, areas, seed: Number(v.seed ?? 42) });
}

/** `--contacts FILE`: the answer of GET /v1/contacts (`{items: [...]}`) or a plain list of contacts. */
async function storedContactsFile(file: string): Promise<StoredContact[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`--contacts ${file}: ${(err as Error).message}`);
  }
  const list = Array.isArray(parsed) ? parsed : (parsed as { items?: unknown })?.items;
  if (
    !Array.isArray(list) ||
    list.some((c) => typeof c !== 'object' || c === null || (typeof c.id !== 'string' && typeof c._id !== 'string'))
  )
    throw new UsageError(
      `--contacts ${file}: expected a list of contacts, each with an id (as GET /v1/contacts answers)`,
    );
  return list.map((c: Record<string, unknown>) => ({
    _id: String(c.id ?? c._id),
    kind: c.kind === 'team' ? 'team' : 'person',
    onCall: c.onCall === true,
    ...(Array.isArray(c.areas) && c.areas.length ? { areas: c.areas.map(String) } : {}),
    ...(Array.isArray(c.members) ? { members: c.members.map(String) } : {}),
  }));
}

async function check(v: Values, positionals: string[]): Promise<number> {
  const target = positionals[0] ?? v.rules ?? rulesPathFromEnv();
  const checked = await checkRules(target);
  // Rules that would text the shipped placeholder number are not ready for production.
  const placeholders =
    checked.ok && modeFromEnv() === 'production' ? placeholderContacts(await loadRuleSet(target)) : [];
  const failed =
    placeholders.length > 0 ? { ...checked, ok: false, version: undefined, errors: placeholders } : checked;
  // Never dropped silently: an escalation this environment cannot send as written is said here.
  const rules = checked.ok ? await loadRuleSet(target) : undefined;
  const unsendable = rules
    ? [
        ...unsendableEscalations(rules, staffChannelsFromEnv()),
        ...(v.contacts ? escalationsWithNobodyOnCall(rules, await storedContactsFile(v.contacts)) : []),
      ]
    : [];
  const report = { ...failed, warnings: [...failed.warnings, ...unsendable] };
  if (v.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    const base = process.cwd();
    for (const p of [...report.errors, ...report.warnings]) console.log(formatProblem(p, base));
    const entry = path.relative(base, await resolveRulesEntry(target)) || target;
    console.log(
      report.ok
        ? `${entry}: ok, version ${report.version} (${report.files.length} file${report.files.length === 1 ? '' : 's'}${report.warnings.length ? `, ${report.warnings.length} warning${report.warnings.length === 1 ? '' : 's'}` : ''})`
        : `${entry}: ${report.errors.length} error${report.errors.length === 1 ? '' : 's'}; the rules were not accepted`,
    );
  }
  return !report.ok || (v.strict && report.warnings.length > 0) ? 1 : 0;
}

async function explainCommand(v: Values, rules: RuleSet): Promise<number> {
  const at = parseTime(v.at, rules.settings.timeZone, 'at') ?? new Date();
  const incident = await incidentFrom(v, rules, at);
  const subscriber = await subscriberFrom(v, incident);
  const explanation = await rules.explain(incident, subscriber, { at });
  console.log(v.json ? JSON.stringify(explanation, null, 2) : rules.formatExplanation(explanation));
  return 0;
}

function formatSimulation(s: Simulation, incident: IncidentFacts, timeZone: string): string {
  const local = (iso: string) =>
    new Date(iso).toLocaleString('en-GB', {
      timeZone,
      day: 'numeric',
      month: 'short',
      hour: '2-digit',
      minute: '2-digit',
    });
  const lines = [
    `rules ${s.version}: ${incident.kind}, ${incident.severity}, sites ${incident.siteIds.join(', ')}, decided at ${local(s.at)} (${timeZone})`,
    `${s.subscribers} subscribers: ${s.notified} notified, ${s.notNotified} not (${s.evaluations} distinct combination${s.evaluations === 1 ? '' : 's'} of facts, ${s.ruleRuns} rule evaluation${s.ruleRuns === 1 ? '' : 's'})`,
    '',
  ];
  const header = ['channel', 'subscribers', 'rule', 'lang', 'first notice', 'parts', `cost ${s.totals.currency}`];
  const rows = s.rows.map((r) => [
    r.channel,
    String(r.subscribers),
    r.rule,
    r.language,
    `${local(r.sendAt)}${r.heldUntil ? ' (held)' : ''}`,
    `${r.first.parts}${r.restoration ? `+${r.restoration.parts}` : ''} ${r.first.encoding}`,
    r.cost.toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 1 || i === 6 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  lines.push(line(header));
  for (const [i, r] of s.rows.entries()) {
    lines.push(line(rows[i]!));
    lines.push(
      `    ${r.first.kind}: ${JSON.stringify(r.first.text)}${r.first.overLimit ? '  (more parts than allowed!)' : ''}`,
    );
    if (r.restoration) lines.push(`    ${r.restoration.kind}: ${JSON.stringify(r.restoration.text)}`);
    if (r.updatesEverySeconds)
      lines.push(`    then an update every ${formatDuration(r.updatesEverySeconds)} while unresolved`);
  }
  if (s.rows.length === 0) lines.push('(nobody gets a message)');
  lines.push('');
  lines.push(`status feed: ${s.feed ? JSON.stringify(s.feed.text) : 'no post'}`);
  for (const e of s.escalations)
    lines.push(
      `escalation: ${e.contact} by ${e.channel} at ${local(e.at)} if still unresolved${e.repeat ? `, then ${e.repeat}` : ''}`,
    );
  lines.push(
    `total: ${s.totals.messages} messages, ${s.totals.smsParts} SMS parts, ${s.totals.cost.toFixed(2)} ${s.totals.currency} (${s.totals.note})`,
  );
  return lines.join('\n');
}

async function simulateCommand(v: Values, rules: RuleSet): Promise<number> {
  const at = parseTime(v.at, rules.settings.timeZone, 'at') ?? new Date();
  const incident = await incidentFrom(v, rules, at);
  const audience = await audienceFrom(v, incident);
  const result = await rules.simulate(incident, audience, { at });
  console.log(v.json ? JSON.stringify(result, null, 2) : formatSimulation(result, incident, rules.settings.timeZone));
  return 0;
}

export async function rulesCommand(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    console.error(`avviso rules: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (!command || command === 'help' || command === '--help' || command === '-h' || values.help) {
    console.log(HELP);
    return 0;
  }
  try {
    if (command === 'check') return await check(values, positionals);
    if (command !== 'explain' && command !== 'simulate') {
      console.error(`avviso rules: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
      return 2;
    }
    if (positionals.length)
      throw new UsageError(
        `unexpected ${positionals.map((p) => JSON.stringify(p)).join(' ')}; see avviso rules --help`,
      );
    const rules = await loadRuleSet(values.rules ?? rulesPathFromEnv());
    return command === 'explain' ? await explainCommand(values, rules) : await simulateCommand(values, rules);
  } catch (err) {
    if (err instanceof RuleErrors) {
      for (const e of err.errors) console.error(formatProblem(e, process.cwd()));
      console.error('the rules have errors: fix them first (avviso rules check)');
      return 1;
    }
    if (err instanceof UsageError) {
      console.error(`avviso rules: ${err.message}`);
      return 2;
    }
    throw err;
  }
}
