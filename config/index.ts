/**
 * The one place that reads the environment. Everything else receives a `Config`.
 *
 * Each variable is validated on its own so that a bad start names every wrong value at once,
 * with what to do about it, instead of failing later deep inside a client library.
 */
import { z } from 'zod';
import { API_KEY_FORMAT_HINT, API_KEY_PATTERN } from '../domain/api-keys';
import { parseDecimal } from '../billing/money';
import { parseRates } from '../billing/costs';
import type { BillingSettings } from '../billing/settings';
import type { RetentionSettings } from '../retention/settings';
import { exampleSecretProblems } from './example-secrets';
import { temporalTlsFrom, type TemporalTls } from './temporal-tls';
import { X_DEFAULT_BASE_URL } from '../channels/social/x';
import type { SocialSettings } from '../channels';

export const PLIVO_DEFAULT_BASE_URL = 'https://api.plivo.com';

const url = (what: string) =>
  z
    .string()
    .trim()
    .refine((v) => {
      try {
        const u = new URL(v);
        return u.protocol === 'http:' || u.protocol === 'https:';
      } catch {
        return false;
      }
    }, `must be an http(s) URL (${what})`);

const port = z.coerce
  .number({ error: 'must be a port number' })
  .int('must be a whole number')
  .min(0)
  .max(65535, 'must be at most 65535');

/** Billing (issue 8): the monthly SMS option's price and VAT, and what providers charge. See docs/billing.md. */
const currencyCode = (example: string) =>
  z
    .string()
    .trim()
    .regex(/^[A-Z]{3}$/, `must be a three-letter currency code such as ${example}`);
const billingFields = {
  BILLING_PRICE_CENTS: z.coerce
    .number({ error: 'must be a number of cents' })
    .int('must be a whole number of cents, e.g. 100 for 1.00')
    .min(0)
    .max(10_000_000)
    .default(100),
  BILLING_VAT_PERCENT: z
    .string()
    .trim()
    .regex(/^\d{1,3}(\.\d{1,2})?$/, 'must be a percentage with at most two decimals, e.g. 22 or 5.5')
    .refine((v) => (parseDecimal(v, 2) ?? Infinity) <= 10_000, 'must be at most 100')
    .default('22'),
  BILLING_CURRENCY: currencyCode('EUR').default('EUR'),
  BILLING_PRORATION: z
    .enum(['full', 'daily'], {
      error: 'must be full (the whole price for any month the option was active in) or daily (by days active)',
    })
    .default('full'),
  BILLING_SMS_RATE: z
    .string()
    .trim()
    .superRefine((v, ctx) => {
      const r = parseRates(v);
      if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
    })
    .default('sms=0.0500,voice=0.0200,email=0,webhook=0,status=0'),
  BILLING_RATE_CURRENCY: currencyCode('USD').default('USD'),
  BILLING_FX_RATES: z
    .string()
    .trim()
    .regex(
      /^[A-Z]{3}=\d{1,6}(\.\d{1,6})?(,[A-Z]{3}=\d{1,6}(\.\d{1,6})?)*$/,
      'must be CUR=rate pairs giving the billing currency per unit, e.g. USD=0.92',
    )
    .optional(),
};

function billingSettingsOf(e: z.infer<z.ZodObject<typeof billingFields>>): BillingSettings {
  return {
    terms: {
      priceCents: e.BILLING_PRICE_CENTS,
      vatBasisPoints: parseDecimal(e.BILLING_VAT_PERCENT, 2)!,
      currency: e.BILLING_CURRENCY,
      proration: e.BILLING_PRORATION,
    },
    rates: {
      currency: e.BILLING_RATE_CURRENCY,
      rates: parseRates(e.BILLING_SMS_RATE) as Exclude<ReturnType<typeof parseRates>, string>,
    },
    fx: Object.fromEntries(
      (e.BILLING_FX_RATES ?? '')
        .split(',')
        .filter(Boolean)
        .map((p) => [p.slice(0, 3), parseDecimal(p.slice(4), 6)!]),
    ),
  };
}

/**
 * Only the billing settings, for code that may run where the rest is not configured (the billing
 * activities and routes fall back to it when they are not given settings). Throws ConfigError.
 */
export function billingSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): BillingSettings {
  const present = Object.fromEntries(
    Object.entries(env).filter(([k, v]) => k.startsWith('BILLING_') && v !== undefined && v !== ''),
  );
  const parsed = z.object(billingFields).safeParse(present);
  if (!parsed.success)
    throw new ConfigError(
      parsed.error.issues.map(
        (i) => `${String(i.path[0])} is ${JSON.stringify(present[String(i.path[0])])}: ${i.message}`,
      ),
    );
  return billingSettingsOf(parsed.data);
}

/** Retention (issue 22): how long records are kept; 0 keeps them forever. See docs/retention.md. */
const keepFor = (unit: string, least: number, why: string) =>
  z.coerce
    .number({ error: `must be a number of ${unit}` })
    .int(`must be a whole number of ${unit}`)
    .refine((v) => v === 0 || v >= least, `must be 0 (keep forever) or at least ${least}${why}`);
const retentionFields = {
  RETENTION_MONTHS: keepFor('months', 1, '').default(13),
  RETENTION_AUDIT_MONTHS: keepFor('months', 1, '').default(24),
  RETENTION_LEDGER_YEARS: keepFor(
    'years',
    10,
    ': invoices and accounting records are kept ten years (Italian law, art. 2220 c.c.)',
  ).default(10),
};

function retentionSettingsOf(e: z.infer<z.ZodObject<typeof retentionFields>>): RetentionSettings {
  return {
    recordsMonths: e.RETENTION_MONTHS,
    auditMonths: e.RETENTION_AUDIT_MONTHS,
    ledgerYears: e.RETENTION_LEDGER_YEARS,
  };
}

/** Only the retention settings, for code that may run where the rest is not configured (`avviso retention run --dry-run`, the activities). */
export function retentionSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): RetentionSettings {
  const present = Object.fromEntries(
    Object.entries(env).filter(([k, v]) => k.startsWith('RETENTION_') && v !== undefined && v !== ''),
  );
  const parsed = z.object(retentionFields).safeParse(present);
  if (!parsed.success)
    throw new ConfigError(
      parsed.error.issues.map(
        (i) => `${String(i.path[0])} is ${JSON.stringify(present[String(i.path[0])])}: ${i.message}`,
      ),
    );
  return retentionSettingsOf(parsed.data);
}

const schema = z.object({
  ...billingFields,
  ...retentionFields,
  TEMPORAL_ADDRESS: z
    .string()
    .trim()
    .regex(/^[^\s:/]+:\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:7233 or my-ns.tmprl.cloud:7233'),
  TEMPORAL_NAMESPACE: z.string().trim().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().trim().min(1).default('avviso'),
  TEMPORAL_TLS: z.enum(['true', 'false'], { error: 'must be true or false' }).optional(),
  TEMPORAL_TLS_CA_FILE: z.string().trim().min(1).optional(),
  TEMPORAL_TLS_CERT_FILE: z.string().trim().min(1).optional(),
  TEMPORAL_TLS_KEY_FILE: z.string().trim().min(1).optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().trim().min(1).optional(),
  MONGODB_URI: z
    .string()
    .trim()
    .regex(/^mongodb(\+srv)?:\/\/.+/, 'must start with mongodb:// or mongodb+srv://'),
  MONGODB_DB: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9_-]{1,60}$/, 'must be a database name of letters, digits, _ or -')
    .optional(),
  PLIVO_AUTH_ID: z
    .string()
    .trim()
    .regex(/^[A-Z0-9]{10,40}$/, 'must be your Plivo Auth ID (upper-case letters and digits, from the Plivo console)'),
  PLIVO_AUTH_TOKEN: z.string().min(8, 'must be your Plivo Auth Token (from the Plivo console)'),
  PLIVO_BASE_URL: url('the Plivo API, or a server that speaks its Message API').default(PLIVO_DEFAULT_BASE_URL),
  PLIVO_SENDER: z
    .string()
    .trim()
    .regex(
      /^(\+?\d{5,15}|[A-Za-z0-9 ]{1,11})$/,
      'must be a phone number or an alphanumeric sender id of at most 11 characters',
    )
    .default('Avviso'),
  PLIVO_REQUESTS_PER_5S: z.coerce
    .number({ error: 'must be a number' })
    .int()
    .min(0, 'must be 0 (no limit) or more')
    .default(300),
  PLIVO_MESSAGES_PER_SECOND: z.coerce
    .number({ error: 'must be a number' })
    .min(0, 'must be 0 (no limit) or more')
    .default(5),
  PLIVO_QUEUE_SECONDS: z.coerce.number({ error: 'must be a number' }).int().min(1, 'must be at least 1').default(600),
  AVVISO_RULES: z.string().trim().min(1).optional(),
  HOST: z.string().trim().min(1).default('127.0.0.1'),
  PORT: port.default(3000),
  AVVISO_PUBLIC_URL: url('the address Plivo calls back, e.g. https://avviso.example.net').optional(),
  AVVISO_INTEGRATIONS: z.string().trim().min(1).optional(),
  PLIVO_VOICE_CALLER_ID: z
    .string()
    .trim()
    .regex(/^\+?\d{6,15}$/, 'must be the Plivo number calls come from, e.g. +390212345678')
    .optional(),
  SMTP_HOST: z.string().trim().min(1).optional(),
  SMTP_PORT: port.default(587),
  SMTP_SECURE: z.enum(['true', 'false'], { error: 'must be true or false' }).default('false'),
  SMTP_REQUIRE_TLS: z.enum(['true', 'false'], { error: 'must be true or false' }).default('true'),
  SMTP_USER: z.string().optional(),
  SMTP_PASS: z.string().optional(),
  SMTP_FROM: z.string().trim().min(3).optional(),
  WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  WEBHOOK_TIMEOUT_MS: z.coerce.number({ error: 'must be a number' }).int().min(100).max(120_000).default(10_000),
  // A monitoring resolve waits this long before restoration notices: a flapping site texts once.
  AVVISO_ALERT_SETTLE_SECONDS: z.coerce
    .number({ error: 'must be a number of seconds' })
    .int()
    .min(0)
    .max(3600)
    .default(300),
  // The worker applies stored delivery receipts this often (the API only stores them).
  AVVISO_RECEIPTS_EVERY_MS: z.coerce
    .number({ error: 'must be a number of milliseconds' })
    .int()
    .min(50)
    .max(60_000)
    .default(500),
  // The status feed's posts on the ISP's social accounts (channels/social): each is off until all its secrets are set.
  X_API_KEY: z
    .string()
    .trim()
    .min(10, 'must be the API key of your X app (developer portal, Keys and tokens)')
    .optional(),
  X_API_KEY_SECRET: z.string().trim().min(10, 'must be the API key secret of your X app').optional(),
  X_ACCESS_TOKEN: z
    .string()
    .trim()
    .regex(/^\d+-\S+$/, 'must be the access token of the account that posts (<user id>-..., from the developer portal)')
    .optional(),
  X_ACCESS_TOKEN_SECRET: z
    .string()
    .trim()
    .min(10, 'must be the access token secret of the account that posts')
    .optional(),
  X_API_BASE_URL: url('the X API, or a stand-in of it').default(X_DEFAULT_BASE_URL),
  MASTODON_URL: url('your Mastodon instance, e.g. https://mastodon.uno').optional(),
  MASTODON_ACCESS_TOKEN: z
    .string()
    .trim()
    .min(
      10,
      'must be the access token of an application of the account (Preferences > Development, scope write:statuses)',
    )
    .optional(),
  MASTODON_MAX_CHARACTERS: z.coerce
    .number({ error: 'must be a number' })
    .int()
    .min(100, 'must be at least 100')
    .max(100_000)
    .default(500),
  SOCIAL_LANGUAGE: z.enum(['it', 'en'], { error: 'must be it or en' }).default('it'),
  STATUS_PAGE_NAME: z.string().trim().min(1).max(60).default('Avviso'),
  STATUS_PAGE_TIME_ZONE: z
    .string()
    .trim()
    .refine((tz) => {
      try {
        new Intl.DateTimeFormat('en', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    }, 'must be an IANA time zone such as Europe/Rome')
    .default('Europe/Rome'),
  // development (set by `avviso dev` and the tests) accepts the repository's example secrets; nothing else does.
  AVVISO_MODE: z
    .enum(['production', 'development'], {
      error: 'must be production (the default) or development (for `avviso dev` and the tests)',
    })
    .default('production'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Signs the console's session and CSRF cookies; every API process behind one address must share it.
  AVVISO_CONSOLE_SECRET: z
    .string()
    .trim()
    .min(32, 'must be at least 32 characters (e.g. openssl rand -hex 32)')
    .optional(),
  AVVISO_ADMIN_KEY: z.string().trim().regex(API_KEY_PATTERN, `must be ${API_KEY_FORMAT_HINT}`).optional(),
  API_RATE_LIMIT_PER_MINUTE: z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(1_000_000)
    .default(600),
  API_BODY_LIMIT_BYTES: z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(1024, 'must be at least 1024')
    .max(100 * 1024 * 1024, 'must be at most 100 MiB')
    .default(1024 * 1024),
});

/** Every variable the processes read, for the README's table (test/unit/readme-config.test.ts compares them). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(schema.shape);

export type Mode = 'production' | 'development';

export interface Config {
  /** production (the default) refuses the repository's example secrets at start; development accepts them. */
  mode: Mode;
  /** `tls` when the frontend wants TLS (TEMPORAL_TLS, TEMPORAL_TLS_*_FILE). */
  temporal: { address: string; namespace: string; taskQueue: string; tls?: TemporalTls };
  mongo: { uri: string; db: string };
  plivo: {
    authId: string;
    authToken: string;
    baseUrl: string;
    sender: string;
    /** The account's limits: API requests per 5 s, and SMS per second (0: no limit). */
    requestsPer5s: number;
    messagesPerSecond: number;
    /** How many seconds of SMS (at messagesPerSecond) we may leave queued at Plivo at once. */
    queueSeconds: number;
  };
  rulesPath?: string;
  http: { host: string; port: number; publicUrl: string };
  logLevel: string;
  /** Monitoring integrations file (tokens, time zones, site mapping); the development default when unset. */
  integrationsPath?: string;
  /** Voice calls through Plivo: on when a caller id is set. */
  voice?: { callerId: string };
  /** E-mail through an SMTP relay: on when SMTP_HOST is set. */
  smtp?: {
    host: string;
    port: number;
    secure: boolean;
    requireTls: boolean;
    user?: string;
    pass?: string;
    from: string;
  };
  webhook: { secret?: string; timeoutMs: number };
  /** How long a monitoring resolve settles before restoration notices (a flapping site reopens it). */
  alertSettleSeconds: number;
  /** How often the worker applies stored delivery receipts (ms). */
  receiptsEveryMs: number;
  statusPage: { name: string; timeZone: string };
  /** The status feed's posts on X and Mastodon: absent when neither account is configured. */
  social?: SocialSettings;
  /** Requests per minute per API key (a key may have its own), and the largest request body. */
  api: { rateLimitPerMinute: number; bodyLimitBytes: number };
  /** `avviso dev` makes this admin key (avk_<id>_<secret>) at start, so that scripts can drive it. */
  adminKey?: string;
  /** The console's cookie key (AVVISO_CONSOLE_SECRET); absent: a random one per process. */
  consoleSecret?: string;
  billing: BillingSettings;
  retention: RetentionSettings;
}

/** Thrown when the environment is wrong; `problems` holds one line per bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Configuration is not valid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const HINTS: Record<string, string> = {
  TEMPORAL_ADDRESS: 'set it to your Temporal frontend, or run `npm run dev` to start an embedded one',
  MONGODB_URI: 'set it to your MongoDB (e.g. mongodb://db1,db2,db3/avviso?replicaSet=rs0), or run `npm run dev`',
  PLIVO_AUTH_ID: 'set PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN, or run `npm run dev` to use the Plivo simulator',
  PLIVO_AUTH_TOKEN: 'set it together with PLIVO_AUTH_ID',
};

function databaseFromUri(uri: string): string | undefined {
  // mongodb://host:port/dbname?options: the path names the default database.
  const m = /^mongodb(?:\+srv)?:\/\/[^/]+\/([^?]+)/.exec(uri);
  return m?.[1] ? decodeURIComponent(m[1]) : undefined;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings count as unset: `FOO= avviso ...` should not mean "FOO is the empty string".
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0]);
      const given = present[name];
      const missing = given === undefined;
      const what = missing
        ? 'is not set'
        : `is ${JSON.stringify(/TOKEN|KEY|PASS|SECRET/.test(name) ? '***' : given)}: ${issue.message}`;
      const hint = missing && HINTS[name] ? ` (${HINTS[name]})` : '';
      return `${name} ${what}${hint}`;
    });
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  const { tls, problems: tlsProblems } = temporalTlsFrom(e);
  const examples = e.AVVISO_MODE === 'production' ? exampleSecretProblems(present) : [];
  const social = socialFrom(e);
  if (tlsProblems.length + examples.length + social.problems.length > 0)
    throw new ConfigError([...tlsProblems, ...examples, ...social.problems]);
  const publicUrl = (e.AVVISO_PUBLIC_URL ?? `http://${e.HOST}:${e.PORT}`).replace(/\/+$/, '');
  return {
    mode: e.AVVISO_MODE,
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      ...(tls ? { tls } : {}),
    },
    mongo: { uri: e.MONGODB_URI, db: e.MONGODB_DB ?? databaseFromUri(e.MONGODB_URI) ?? 'avviso' },
    plivo: {
      authId: e.PLIVO_AUTH_ID,
      authToken: e.PLIVO_AUTH_TOKEN,
      baseUrl: e.PLIVO_BASE_URL.replace(/\/+$/, ''),
      sender: e.PLIVO_SENDER,
      requestsPer5s: e.PLIVO_REQUESTS_PER_5S,
      messagesPerSecond: e.PLIVO_MESSAGES_PER_SECOND,
      queueSeconds: e.PLIVO_QUEUE_SECONDS,
    },
    rulesPath: e.AVVISO_RULES,
    http: {
      host: e.HOST,
      port: e.PORT,
      publicUrl,
    },
    logLevel: e.LOG_LEVEL,
    integrationsPath: e.AVVISO_INTEGRATIONS,
    ...(e.PLIVO_VOICE_CALLER_ID ? { voice: { callerId: e.PLIVO_VOICE_CALLER_ID } } : {}),
    ...(e.SMTP_HOST
      ? {
          smtp: {
            host: e.SMTP_HOST,
            port: e.SMTP_PORT,
            secure: e.SMTP_SECURE === 'true',
            requireTls: e.SMTP_REQUIRE_TLS === 'true',
            user: e.SMTP_USER,
            pass: e.SMTP_PASS,
            from: e.SMTP_FROM ?? `Avviso <avvisi@${e.SMTP_HOST}>`,
          },
        }
      : {}),
    webhook: { secret: e.WEBHOOK_SECRET, timeoutMs: e.WEBHOOK_TIMEOUT_MS },
    alertSettleSeconds: e.AVVISO_ALERT_SETTLE_SECONDS,
    receiptsEveryMs: e.AVVISO_RECEIPTS_EVERY_MS,
    statusPage: { name: e.STATUS_PAGE_NAME, timeZone: e.STATUS_PAGE_TIME_ZONE },
    ...(social.x || social.mastodon
      ? {
          social: {
            language: e.SOCIAL_LANGUAGE,
            statusPageUrl: `${publicUrl}/status`,
            ...(social.x ? { x: social.x } : {}),
            ...(social.mastodon ? { mastodon: social.mastodon } : {}),
          },
        }
      : {}),
    api: { rateLimitPerMinute: e.API_RATE_LIMIT_PER_MINUTE, bodyLimitBytes: e.API_BODY_LIMIT_BYTES },
    ...(e.AVVISO_ADMIN_KEY ? { adminKey: e.AVVISO_ADMIN_KEY } : {}),
    ...(e.AVVISO_CONSOLE_SECRET ? { consoleSecret: e.AVVISO_CONSOLE_SECRET } : {}),
    billing: billingSettingsOf(e),
    retention: retentionSettingsOf(e),
  };
}

const X_VARIABLES = ['X_API_KEY', 'X_API_KEY_SECRET', 'X_ACCESS_TOKEN', 'X_ACCESS_TOKEN_SECRET'] as const;
const MASTODON_VARIABLES = ['MASTODON_URL', 'MASTODON_ACCESS_TOKEN'] as const;

/** The X and Mastodon accounts: each on when all its variables are set; some but not all is a mistake worth stopping for. */
function socialFrom(e: z.infer<typeof schema>): Pick<SocialSettings, 'x' | 'mastodon'> & { problems: string[] } {
  const problems: string[] = [];
  const partly = (names: readonly (keyof typeof e)[], account: string) => {
    const missing = names.filter((n) => e[n] === undefined);
    if (missing.length > 0 && missing.length < names.length)
      problems.push(
        `${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not set: ${account} posts need all of ${names.join(', ')} (or none, to keep them off)`,
      );
    return missing.length === 0;
  };
  const x = partly(X_VARIABLES, 'X')
    ? {
        apiKey: e.X_API_KEY!,
        apiKeySecret: e.X_API_KEY_SECRET!,
        accessToken: e.X_ACCESS_TOKEN!,
        accessTokenSecret: e.X_ACCESS_TOKEN_SECRET!,
        baseUrl: e.X_API_BASE_URL.replace(/\/+$/, ''),
      }
    : undefined;
  const mastodon = partly(MASTODON_VARIABLES, 'Mastodon')
    ? {
        baseUrl: e.MASTODON_URL!.replace(/\/+$/, ''),
        accessToken: e.MASTODON_ACCESS_TOKEN!,
        maxCharacters: e.MASTODON_MAX_CHARACTERS,
      }
    : undefined;
  return { problems, ...(x ? { x } : {}), ...(mastodon ? { mastodon } : {}) };
}

/**
 * Only the rules path, for the tools that work on rule files alone (`avviso rules ...`): they
 * must run where Temporal, MongoDB and Plivo are not configured.
 */
export function rulesPathFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const value = env.AVVISO_RULES?.trim();
  return value ? value : undefined;
}

/** Only the mode, for the tools that load nothing else (`avviso rules check`). Unknown values count as production. */
export function modeFromEnv(env: NodeJS.ProcessEnv = process.env): Mode {
  return env.AVVISO_MODE?.trim() === 'development' ? 'development' : 'production';
}

/** Which staff channels this environment can send on, for `avviso rules check` (it loads nothing else). */
export function staffChannelsFromEnv(env: NodeJS.ProcessEnv = process.env): { voice: boolean; email: boolean } {
  return { voice: Boolean(env.PLIVO_VOICE_CALLER_ID?.trim()), email: Boolean(env.SMTP_HOST?.trim()) };
}

/**
 * Only MongoDB, for the tools that need nothing else (`avviso keys ...`): they must run where
 * Temporal and Plivo are not configured. Throws a ConfigError naming the problem.
 */
export function mongoFromEnv(env: NodeJS.ProcessEnv = process.env): { uri: string; db: string } {
  const uri = env.MONGODB_URI?.trim();
  if (!uri) throw new ConfigError([`MONGODB_URI is not set (${HINTS.MONGODB_URI})`]);
  const parsed = schema
    .pick({ MONGODB_URI: true, MONGODB_DB: true })
    .safeParse({ MONGODB_URI: uri, ...(env.MONGODB_DB ? { MONGODB_DB: env.MONGODB_DB } : {}) });
  if (!parsed.success)
    throw new ConfigError(
      parsed.error.issues.map((i) => `${String(i.path[0])} is ${JSON.stringify(env[String(i.path[0])])}: ${i.message}`),
    );
  if (modeFromEnv(env) === 'production') {
    const examples = exampleSecretProblems({ MONGODB_URI: uri });
    if (examples.length > 0) throw new ConfigError(examples);
  }
  return {
    uri: parsed.data.MONGODB_URI,
    db: parsed.data.MONGODB_DB ?? databaseFromUri(parsed.data.MONGODB_URI) ?? 'avviso',
  };
}
