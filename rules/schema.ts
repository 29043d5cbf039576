/**
 * The shape of one rule file, checked with zod. Shorthands that people write (`notify: sms`,
 * `quietHours: 21:00-07:00`, `updates: off`) are widened to their full form here, so the
 * compiler sees one shape. Messages are written for the people who edit the files; each
 * problem keeps the path of the value, which source.ts turns into a line and column.
 *
 * What the values mean (an existing template, a possible time window, a known fact) is
 * compile.ts's job: this module only knows shapes.
 */
import { z } from 'zod';
import { suggest } from './errors';
import type { PathSegment } from './source';
import { NIGHT_KINDS, type NightKind } from './night';
import { parseDuration } from './time';
import {
  CHANNELS,
  FALLBACK_CHANNELS,
  MESSAGE_KINDS,
  PRIORITIES,
  SEVERITIES,
  STAFF_CHANNELS,
  type FallbackChannel,
} from './types';

const DURATION_HINT = 'a duration such as 90s, 30m, 2h, 1h30m or 1d';

const name = (what: string) =>
  z
    .string({ error: `expected the name of ${what}` })
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, { error: `a ${what} name is letters, digits, "-", "_" or "." (no spaces)` });

const duration = z.preprocess(
  (v) => (v === 0 ? '0' : v),
  z.string({ error: `expected ${DURATION_HINT}` }).refine((v) => parseDuration(v) !== undefined, {
    error: (iss) => `${JSON.stringify(iss.input)} is not ${DURATION_HINT}`,
  }),
);
const off = (v: unknown) => v === false || v === 'off' || v === 'none';
const durationOrOff = z.preprocess(
  (v) => (off(v) ? 'off' : v),
  z.union([z.literal('off'), duration], { error: `expected ${DURATION_HINT}, or off` }),
);

const asList = (v: unknown) => (v === undefined || Array.isArray(v) ? v : [v]);

const notifyEntry = z.strictObject({
  channel: z.enum(CHANNELS),
  template: name('template set').optional(),
  priority: z.enum(PRIORITIES).optional(),
});
/** `sms`, `[sms, feed]`, `{channel: sms, template: x}`, lists of either; `none` or `[]` for nothing. */
const notify = z.preprocess(
  (v) => (off(v) ? [] : (asList(v) as unknown[] | undefined)?.map((e) => (typeof e === 'string' ? { channel: e } : e))),
  z.array(notifyEntry, {
    error:
      'notify takes a channel (sms, voice, email, webhook, feed), a list of them, or entries like {channel: sms, template: standard}',
  }),
);

/** Per message kind, the lowest severity sent at once inside the window, or `never` (rules/night.ts). */
const atOnce = z.strictObject(
  Object.fromEntries(
    NIGHT_KINDS.map((k) => [
      k,
      z
        .preprocess(
          (v) => (off(v) ? 'never' : v),
          z.enum([...SEVERITIES, 'never'], {
            error: (iss) =>
              `${describe(iss.input)} is not a severity (${SEVERITIES.join(', ')}) or never: the lowest severity at which a ${k} message goes at once inside quiet hours`,
          }),
        )
        .optional(),
    ]),
  ),
  {
    error: `atOnce takes message kinds and the lowest severity each goes at once at night, e.g. {outage: critical, update: never}`,
  },
);

/** `21:00-07:00`, `off`, or the full form. The window itself is checked by the compiler. */
const quietHours = z.preprocess(
  (v) => (off(v) ? { off: true } : typeof v === 'string' ? { window: v } : v),
  z.strictObject(
    {
      off: z.literal(true).optional(),
      window: z.string({ error: 'expected a time window such as "21:00-07:00"' }).optional(),
      unlessSeverity: z.enum(SEVERITIES).optional(),
      atOnce: atOnce.optional(),
      subscriberPreference: z.boolean().optional(),
    },
    {
      error:
        'quietHours takes a time window such as "21:00-07:00", off, or {window, unlessSeverity, atOnce, subscriberPreference}',
    },
  ),
);

const updates = z.preprocess(
  (v) => (off(v) ? { every: 'off', onEtaChange: false } : typeof v === 'string' ? { every: v } : v),
  z.strictObject(
    { every: durationOrOff.optional(), onEtaChange: z.boolean().optional() },
    { error: 'updates takes a duration (2h), off, or {every: 2h, onEtaChange: true}' },
  ),
);

/** One reminder (`2h`), several (`[24h, 1h]`), or `off`. */
const reminders = z.preprocess(
  (v) => (off(v) ? 'off' : v),
  z.union([z.literal('off'), duration, z.array(duration).min(1).max(10)], {
    error: `expected ${DURATION_HINT}, a list of them such as [24h, 1h], or off`,
  }),
);

const maintenance = z.strictObject({
  notice: duration.optional(),
  reminder: reminders.optional(),
  started: z.boolean().optional(),
  completed: z.boolean().optional(),
});

const escalationStep = z.strictObject({
  after: duration,
  contact: name('contact'),
  channel: z.enum(STAFF_CHANNELS),
  repeat: z.strictObject({ every: duration, times: z.number().int().min(1).max(100) }).optional(),
  template: name('template set').optional(),
  priority: z.enum(PRIORITIES).optional(),
});

/** What a rule may say and `defaults` may set for every rule. */
const settings = {
  notify: notify.optional(),
  template: name('template set').optional(),
  priority: z.enum(PRIORITIES).optional(),
  wait: duration.optional(),
  restoration: z.boolean().optional(),
  updates: updates.optional(),
  quietHours: quietHours.optional(),
  maintenance: maintenance.optional(),
  continue: z.boolean().optional(),
};

/** How the delivery watchdog treats a message not delivered: `{receiptTimeout: 10m, attempts: 3, fallback: [voice, email]}`. */
const delivery = z.strictObject(
  {
    receiptTimeout: duration.optional(),
    attempts: z
      .number({
        error: (iss) =>
          `${describe(iss.input)} is not a number of sends per channel: write a whole number from 1 to 20, e.g. 3`,
      })
      .int()
      .min(1)
      .max(20)
      .optional(),
    fallback: z
      .preprocess(
        (v) => (off(v) ? [] : asList(v)),
        z.array(
          z.enum(FALLBACK_CHANNELS, {
            error: (iss) =>
              `${JSON.stringify(iss.input)} is not a channel a message can fall back to (${FALLBACK_CHANNELS.join(', ')})${typeof iss.input === 'string' ? suggest(iss.input, FALLBACK_CHANNELS) : ''}`,
          }),
          { error: `fallback takes a list of channels (${FALLBACK_CHANNELS.join(', ')}), or none` },
        ),
      )
      .optional(),
  },
  { error: 'delivery takes {receiptTimeout: 10m, attempts: 3, fallback: [voice, email]}' },
);

const defaults = z.strictObject({
  ...settings,
  timeZone: z.string().optional(),
  senderId: z
    .string()
    .regex(/^(\+?\d{5,15}|[A-Za-z0-9 ]{1,11})$/, {
      error: 'a sender id is a phone number or at most 11 letters and digits',
    })
    .optional(),
  language: z
    .string()
    .regex(/^[a-z]{2}$/, { error: 'a language is a two-letter code such as it or en' })
    .optional(),
  languages: z
    .array(z.string().regex(/^[a-z]{2}$/, { error: 'a language is a two-letter code such as it or en' }))
    .min(1)
    .optional(),
  sms: z
    .strictObject({
      maxParts: z.number().int().min(1).max(10).optional(),
      transliterate: z.boolean().optional(),
      costPerPart: z.number().min(0).optional(),
      currency: z
        .string()
        .regex(/^[A-Z]{3}$/, { error: 'a currency is a three-letter code such as EUR' })
        .optional(),
      /** The longest plausible value of each text variable, for the SMS-length check. */
      longest: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
    })
    .optional(),
  voice: z.strictObject({ costPerCall: z.number().min(0).optional() }).optional(),
  delivery: delivery.optional(),
  /** Like Alertmanager's group_wait: how long a new outage waits before its first notices, so that a burst of alerts settles into it. */
  groupWait: duration.optional(),
});

export interface RawNotifyEntry {
  channel: (typeof CHANNELS)[number];
  template?: string;
  priority?: (typeof PRIORITIES)[number];
}
export interface RawQuietHours {
  off?: true;
  window?: string;
  unlessSeverity?: (typeof SEVERITIES)[number];
  atOnce?: Partial<Record<NightKind, (typeof SEVERITIES)[number] | 'never'>>;
  subscriberPreference?: boolean;
}
export interface RawSettings {
  notify?: RawNotifyEntry[];
  template?: string;
  priority?: (typeof PRIORITIES)[number];
  wait?: string;
  restoration?: boolean;
  updates?: { every?: string; onEtaChange?: boolean };
  quietHours?: RawQuietHours;
  maintenance?: { notice?: string; reminder?: string | string[]; started?: boolean; completed?: boolean };
  continue?: boolean;
}
export interface RawEscalationStep {
  after: string;
  contact: string;
  channel: (typeof STAFF_CHANNELS)[number];
  repeat?: { every: string; times: number };
  template?: string;
  priority?: (typeof PRIORITIES)[number];
}
export interface RawRule extends RawSettings {
  name: string;
  description?: string;
  when?: unknown;
  escalate?: RawEscalationStep[];
  rules?: RawRule[];
}
export interface RawDefaults extends RawSettings {
  timeZone?: string;
  senderId?: string;
  language?: string;
  languages?: string[];
  sms?: {
    maxParts?: number;
    transliterate?: boolean;
    costPerPart?: number;
    currency?: string;
    longest?: Record<string, string | number>;
  };
  voice?: { costPerCall?: number };
  delivery?: RawDelivery;
  groupWait?: string;
}
export interface RawDelivery {
  receiptTimeout?: string;
  attempts?: number;
  fallback?: FallbackChannel[];
}
export interface RawContact {
  name?: string;
  phone?: string;
  email?: string;
  url?: string;
}
/** A template set: per message kind, a text per language (and optionally `maxParts`). */
export type RawTemplateSet = { extends?: string; maxParts?: number } & Partial<
  Record<(typeof MESSAGE_KINDS)[number], Record<string, string | number>>
>;
export interface RawFile {
  version?: 1;
  include?: string[];
  defaults?: RawDefaults;
  holidays?: string[];
  contacts?: Record<string, RawContact>;
  templates?: Record<string, RawTemplateSet>;
  rules?: RawRule[];
}

const rule: z.ZodType<RawRule> = z.lazy(() =>
  z.strictObject({
    name: z.string({ error: 'every rule needs a name (it shows in explain and in the delivery log)' }).min(1).max(80),
    description: z.string().optional(),
    when: z.unknown().optional(),
    ...settings,
    escalate: z.preprocess(asList, z.array(escalationStep)).optional(),
    rules: z.array(rule).optional(),
  }),
) as z.ZodType<RawRule>;

const contact = z.strictObject({
  name: z.string().optional(),
  phone: z
    .string()
    .regex(/^\+\d{6,15}$/, { error: 'a phone number is written in international form, e.g. +390577123456' })
    .optional(),
  email: z
    .string()
    .regex(/^[^@\s]+@[^@\s]+\.[^@\s]+$/, { error: 'not an e-mail address' })
    .optional(),
  url: z
    .string()
    .regex(/^https?:\/\/\S+$/, { error: 'a webhook is an http(s) URL' })
    .optional(),
});

const textsByLanguage = z.record(z.string(), z.union([z.string(), z.number()]), {
  error: 'expected texts by language, e.g. {it: "...", en: "..."}',
});
const templateSet = z.strictObject({
  extends: name('template set').optional(),
  maxParts: z.number().int().min(1).max(10).optional(),
  ...Object.fromEntries(MESSAGE_KINDS.map((k) => [k, textsByLanguage.optional()])),
});

const file = z.strictObject({
  version: z.literal(1, { error: 'the only version of the rules language is 1' }).optional(),
  include: z.preprocess(asList, z.array(z.string({ error: 'include takes file or folder names' }))).optional(),
  defaults: defaults.optional(),
  holidays: z.array(z.string({ error: 'a holiday is a date such as 2025-12-25 or 12-25' })).optional(),
  contacts: z.record(name('contact'), contact).optional(),
  templates: z.record(name('template set'), templateSet).optional(),
  rules: z.array(rule, { error: 'rules takes a list of rules' }).optional(),
});

export interface SchemaProblem {
  path: PathSegment[];
  /** Point at the key (a misspelt setting) rather than at its value. */
  part: 'key' | 'value';
  message: string;
}

export type SchemaResult = { ok: true; data: RawFile } | { ok: false; problems: SchemaProblem[] };

/** Checks one file's shape; every problem found, each with its path. */
export function checkFileShape(data: unknown): SchemaResult {
  const parsed = file.safeParse(data ?? {}, { error: friendlyMessage });
  if (parsed.success) return { ok: true, data: parsed.data as RawFile };
  const problems: SchemaProblem[] = [];
  for (const issue of parsed.error.issues) {
    const path = issue.path.filter((p): p is PathSegment => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      const allowed = allowedKeysAt(path);
      for (const key of issue.keys) {
        problems.push({
          path: [...path, key],
          part: 'key',
          message: `unknown setting "${key}"${suggest(key, allowed)}${allowed.length ? ` (here: ${allowed.join(', ')})` : ''}`,
        });
      }
    } else if (issue.code === 'invalid_key') {
      problems.push({ path, part: 'key', message: issue.issues[0]?.message ?? issue.message });
    } else {
      problems.push({ path, part: 'value', message: issue.message });
    }
  }
  return { ok: false, problems };
}

/** The settings a mapping at `path` may hold, for "did you mean" and for listing them. */
function allowedKeysAt(path: PathSegment[]): string[] {
  const names = path.filter((p): p is string => typeof p === 'string');
  const last = names[names.length - 1];
  const inRule = names.includes('rules') && (last === 'rules' || typeof path[path.length - 1] === 'number');
  if (path.length === 0) return Object.keys(file.shape);
  if (last === 'defaults') return Object.keys(defaults.shape);
  if (last === 'sms') return ['maxParts', 'transliterate', 'costPerPart', 'currency', 'longest'];
  if (last === 'maintenance') return Object.keys(maintenance.shape);
  if (last === 'quietHours') return ['window', 'unlessSeverity', 'atOnce', 'subscriberPreference'];
  if (last === 'atOnce') return [...NIGHT_KINDS];
  if (last === 'updates') return ['every', 'onEtaChange'];
  if (last === 'repeat') return ['every', 'times'];
  if (last === 'delivery') return Object.keys(delivery.shape);
  if (names.includes('templates') && path.length === 2) return ['extends', 'maxParts', ...MESSAGE_KINDS];
  if (names.includes('contacts') && path.length === 2) return Object.keys(contact.shape);
  if (last === 'escalate') return Object.keys(escalationStep.shape);
  if (last === 'notify') return Object.keys(notifyEntry.shape);
  if (inRule) return ['name', 'description', 'when', ...Object.keys(settings), 'escalate', 'rules'];
  return [];
}

/** zod's messages are for programmers; these are for the people who edit rule files. */
function friendlyMessage(iss: z.core.$ZodRawIssue): string | undefined {
  const input = (iss as { input?: unknown }).input;
  switch (iss.code) {
    case 'invalid_type':
      if (input === undefined) return 'this setting is required';
      return `expected ${words((iss as { expected?: string }).expected ?? 'another value')}, found ${describe(input)}`;
    case 'invalid_value': {
      const values = ((iss as { values?: unknown[] }).values ?? []).map(String);
      return `${describe(input)} is not one of ${values.join(', ')}${typeof input === 'string' ? suggest(input, values) : ''}`;
    }
    case 'too_small':
      return Array.isArray(input)
        ? 'the list is empty'
        : `${describe(input)} is too small (at least ${String((iss as { minimum?: unknown }).minimum)})`;
    case 'too_big':
      return `${describe(input)} is too big (at most ${String((iss as { maximum?: unknown }).maximum)})`;
    default:
      return undefined;
  }
}

function words(expected: string): string {
  return (
    (
      {
        object: 'a mapping (key: value lines)',
        array: 'a list',
        string: 'a text',
        number: 'a number',
        boolean: 'true or false',
      } as Record<string, string>
    )[expected] ?? expected
  );
}

function describe(v: unknown): string {
  if (v === null) return 'nothing (null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}
