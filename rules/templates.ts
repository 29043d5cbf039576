/**
 * Message texts: Liquid templates (liquidjs) with a small, fixed set of variables and filters
 * that write times and durations in the reader's language and the rule set's time zone
 * (luxon). Templates are parsed and checked once, when the rules load; rendering is then a
 * cheap, synchronous call. Every rendered text is measured as SMS (encoding and parts).
 */
import { Liquid, type Template } from 'liquidjs';
import { DateTime } from 'luxon';
import { suggest, type SourcePosition } from './errors';
import type { SourceFile, PathSegment } from './source';
import { segmentSms, transliterateToGsm, type SmsEncoding } from './sms';
import type { IncidentFacts, MessageKind, SubscriberFacts } from './types';

/** The variables a template may use, with what each holds. */
export const TEMPLATE_VARIABLES = {
  area: "the subscriber's area when it is affected, otherwise all affected areas",
  areas: 'all affected areas, as a list in words ("Siena, Poggibonsi e Colle")',
  title: "the incident's title",
  severity: 'minor, major or critical',
  start: 'when it started (maintenance: when it will start); format with | time, | date, | datetime',
  eta: 'estimated restoration (maintenance: planned end); empty when unknown',
  end: 'when it ended; empty while it is open',
  duration: 'how long it lasted (or has lasted so far), in seconds; format with | duration',
  previousStart: 'rescheduled maintenance: the start it had before',
  previousEnd: 'rescheduled maintenance: the end it had before',
  sender: 'the sender id of the rule set',
  ackCode: 'staff escalation: the six-digit code a reply ("OK 123456") acknowledges it with',
} as const;
export type TemplateVariable = keyof typeof TEMPLATE_VARIABLES;

export const TEMPLATE_FILTERS = {
  time: 'time of day: 23:05',
  date: 'day and date: gio 13 mar / Thu 13 Mar',
  datetime: 'day, date and time: gio 13 mar 23:05',
  weekday: 'day of the week: giovedì / Thursday',
  duration: 'a duration in words: 2 ore e 15 minuti / 2 hours and 15 minutes',
} as const;

/** Values for a render. Times may be Dates or ISO strings. */
export interface MessageVariables {
  area?: string;
  areas?: string[] | string;
  title?: string;
  severity?: string;
  start?: string | Date;
  eta?: string | Date;
  end?: string | Date;
  /** Seconds. */
  duration?: number;
  previousStart?: string | Date;
  previousEnd?: string | Date;
  sender?: string;
  ackCode?: string;
}

export interface RenderedMessage {
  text: string;
  encoding: SmsEncoding;
  /** SMS parts (each billed). */
  parts: number;
  /** Length in the encoding's unit. */
  length: number;
  /** Characters replaced to keep the text GSM-7 (when the rule set transliterates). */
  transliterated: string[];
  maxParts: number;
  /** More parts than the template set allows: sent anyway, but `rules check` should have warned. */
  overLimit: boolean;
}

/** One text of a template set, parsed. */
export interface CompiledTemplate {
  set: string;
  kind: MessageKind;
  language: string;
  source: string;
  parsed: Template[];
  maxParts: number;
  at: SourcePosition;
}

const LANGUAGE = '__avvisoLanguage';
const TIME_ZONE = '__avvisoTimeZone';

interface DurationWords {
  day: [string, string];
  hour: [string, string];
  minute: [string, string];
  and: string;
  lessThanAMinute: string;
}
const DURATION_WORDS: Record<string, DurationWords> = {
  it: {
    day: ['giorno', 'giorni'],
    hour: ['ora', 'ore'],
    minute: ['minuto', 'minuti'],
    and: 'e',
    lessThanAMinute: 'meno di un minuto',
  },
  en: {
    day: ['day', 'days'],
    hour: ['hour', 'hours'],
    minute: ['minute', 'minutes'],
    and: 'and',
    lessThanAMinute: 'less than a minute',
  },
};
const LIST_AND: Record<string, string> = { it: 'e', en: 'and' };

export function languageHasWords(language: string): boolean {
  return language in DURATION_WORDS;
}

/** `2 ore e 15 minuti`; languages without words of their own get `2h 15m`. */
export function durationInWords(seconds: number, language: string): string {
  const words = DURATION_WORDS[language];
  const minutes = Math.round(Math.max(0, seconds) / 60);
  const d = Math.floor(minutes / 1440);
  const h = Math.floor((minutes % 1440) / 60);
  const m = minutes % 60;
  if (!words) return [d && `${d}d`, h && `${h}h`, (m || minutes === 0) && `${m}m`].filter(Boolean).join(' ');
  if (minutes === 0) return words.lessThanAMinute;
  const parts = (
    [
      [d, words.day],
      [h, words.hour],
      [m, words.minute],
    ] as const
  )
    .filter(([n]) => n > 0)
    .map(([n, [one, many]]) => `${n} ${n === 1 ? one : many}`);
  return joinWords(parts, words.and);
}

function joinWords(parts: string[], and: string): string {
  return parts.length <= 1 ? (parts[0] ?? '') : `${parts.slice(0, -1).join(', ')} ${and} ${parts[parts.length - 1]}`;
}

export function listInWords(items: string[], language: string): string {
  return joinWords(items, LIST_AND[language] ?? ',');
}

function toDateTime(value: unknown, language: string, timeZone: string): DateTime | undefined {
  const d =
    value instanceof Date
      ? DateTime.fromJSDate(value)
      : typeof value === 'string' && value
        ? DateTime.fromISO(value)
        : undefined;
  return d?.isValid ? d.setZone(timeZone).setLocale(language) : undefined;
}

function renderSettings(ctx: { globals: unknown }): { language: string; timeZone: string } {
  const g = ctx.globals as Record<string, string>;
  return { language: g[LANGUAGE] ?? 'it', timeZone: g[TIME_ZONE] ?? 'Europe/Rome' };
}

/** One Liquid environment per rule set: no file access, unknown filters are errors. */
export function createLiquid(): Liquid {
  const liquid = new Liquid({
    strictFilters: true,
    strictVariables: false,
    ownPropertyOnly: true,
    templates: {},
    jsTruthy: true,
  });
  const timeFilter = (format: string) =>
    function (this: { context: { globals: unknown } }, value: unknown): string {
      const { language, timeZone } = renderSettings(this.context);
      return toDateTime(value, language, timeZone)?.toFormat(format) ?? '';
    };
  liquid.registerFilter('time', timeFilter('HH:mm'));
  liquid.registerFilter('date', timeFilter('ccc d LLL'));
  liquid.registerFilter('datetime', timeFilter('ccc d LLL HH:mm'));
  liquid.registerFilter('weekday', timeFilter('cccc'));
  liquid.registerFilter('duration', function (this: { context: { globals: unknown } }, value: unknown): string {
    const seconds = typeof value === 'number' ? value : Number(value);
    return Number.isFinite(seconds) ? durationInWords(seconds, renderSettings(this.context).language) : '';
  });
  return liquid;
}

export interface TemplateProblem {
  at: SourcePosition;
  message: string;
}

/** Parses and checks a template written at `path` of `src`; problems point into the text. */
export function compileTemplate(
  liquid: Liquid,
  text: string,
  src: SourceFile,
  path: PathSegment[],
): { parsed?: Template[]; problems: TemplateProblem[] } {
  const locate = (offset: number) => positionInScalar(src, path, text, offset);
  let parsed: Template[];
  try {
    parsed = liquid.parse(text);
  } catch (err) {
    const e = err as Error & { token?: { begin: number } };
    let message = e.message.split('\n')[0]!.replace(/, line:\d+, col:\d+$/, '');
    const filter = /^undefined filter: (.+)$/.exec(message);
    if (filter)
      message = `unknown filter "${filter[1]}"${suggest(filter[1]!, Object.keys(TEMPLATE_FILTERS))} (Avviso's filters: ${Object.keys(TEMPLATE_FILTERS).join(', ')}; and Liquid's own, such as upcase and default)`;
    return { problems: [{ at: locate(e.token?.begin ?? 0), message: `template: ${message}` }] };
  }
  const problems: TemplateProblem[] = [];
  const known = Object.keys(TEMPLATE_VARIABLES);
  for (const [name, uses] of Object.entries(liquid.analyzeSync(parsed).globals)) {
    if (known.includes(name)) continue;
    for (const use of uses) {
      problems.push({
        at: locate(offsetOf(text, use.location.row, use.location.col)),
        message: `template: unknown variable "${name}"; the variables are ${known.join(', ')}`,
      });
    }
  }
  return { parsed, problems };
}

function offsetOf(text: string, row: number, col: number): number {
  const lines = text.split('\n');
  return lines.slice(0, row - 1).reduce((n, l) => n + l.length + 1, 0) + col - 1;
}

/**
 * Maps an offset in a YAML string's value back to the file. The value is not the source
 * (indentation, quotes, folding), so the snippet at the offset is looked up in the source
 * of the scalar; the start of the scalar is the fallback.
 */
function positionInScalar(src: SourceFile, path: PathSegment[], value: string, offset: number): SourcePosition {
  const node = src.scalarAt(path);
  if (!node?.range) return src.at(path);
  const [start, end] = node.range;
  const source = src.text.slice(start, end);
  // Folding turns line breaks into spaces, so a long snippet may not be in the source as is: try shorter ones.
  for (const length of [24, 12, 6, 3]) {
    const needle = value.slice(offset, offset + length).split('\n')[0]!;
    if (!needle.trim()) continue;
    // The same snippet may appear more than once: take the occurrence with the same rank.
    let rank = 0;
    for (let i = value.indexOf(needle); i !== -1 && i < offset; i = value.indexOf(needle, i + 1)) rank += 1;
    let found = source.indexOf(needle);
    for (let k = 0; k < rank && found !== -1; k++) found = source.indexOf(needle, found + 1);
    if (found !== -1) return src.position(start + found);
  }
  return src.position(start);
}

export interface RenderContext {
  language: string;
  timeZone: string;
  transliterate: boolean;
}

/** Renders one template: spaces left by empty variables are tidied, then the text is measured as SMS. */
export function renderTemplate(
  liquid: Liquid,
  template: CompiledTemplate,
  vars: MessageVariables,
  ctx: RenderContext,
): RenderedMessage {
  const scope: Record<string, unknown> = { ...vars };
  if (Array.isArray(vars.areas)) scope.areas = listInWords(vars.areas, ctx.language);
  const raw = String(
    liquid.renderSync(template.parsed, scope, { globals: { [LANGUAGE]: ctx.language, [TIME_ZONE]: ctx.timeZone } }),
  );
  const tidy = raw
    .replace(/[ \t]{2,}/g, ' ')
    .replace(/ +([,.;:!?])/g, '$1')
    .trim();
  const { text, replaced } = ctx.transliterate ? transliterateToGsm(tidy) : { text: tidy, replaced: [] };
  const sms = segmentSms(text);
  return {
    text,
    encoding: sms.encoding,
    parts: sms.units,
    length: sms.length,
    transliterated: replaced,
    maxParts: template.maxParts,
    overLimit: sms.units > template.maxParts,
  };
}

/** The variables of a message about `incident`, for `subscriber` when given, at `now`. */
export function messageVariables(
  incident: IncidentFacts,
  subscriber?: Pick<SubscriberFacts, 'area'>,
  now: Date = new Date(),
  extra: Partial<MessageVariables> = {},
): MessageVariables {
  const areas = incident.areas ?? [];
  const start = incident.kind === 'maintenance' ? (incident.startsAt ?? incident.openedAt) : incident.openedAt;
  const startMs = start ? new Date(start).getTime() : undefined;
  const endMs = extra.end ? new Date(extra.end).getTime() : now.getTime();
  return {
    area: subscriber?.area && areas.includes(subscriber.area) ? subscriber.area : areas.join(', '),
    areas,
    title: incident.title,
    severity: incident.severity,
    start,
    eta: incident.estimatedEnd,
    duration:
      startMs !== undefined && Number.isFinite(startMs) ? Math.max(0, Math.round((endMs - startMs) / 1000)) : undefined,
    ...extra,
  };
}
