/**
 * The audit log (`audit_log`, insert-only): one entry per change asked of the API, whatever its
 * outcome — who (the key's id and name, never its secret), what (method, route, parameters and a
 * summary of the body without phone numbers, e-mail addresses or secrets), when, and the answer's
 * status. Written by api/plugins/auth.ts after each answer; nothing updates or deletes entries.
 */
import type { ObjectId } from 'mongodb';
import type { Store } from './db';
import { groupCommit } from './group-commit';

export interface AuditEntry {
  _id?: ObjectId;
  at: Date;
  requestId: string;
  actor: {
    /** How the caller proved who it is: an API key, an integration's own token, or nothing. */
    via: 'api-key' | 'integration-token' | 'none';
    keyId?: string;
    keyName?: string;
    role?: string;
    /** Ingest: the integration posted to, `<source>/<name>`. */
    integration?: string;
    ip: string;
  };
  action: {
    method: string;
    /** The route pattern, e.g. /v1/incidents/:id/resolve (never the raw URL: it may carry a token). */
    route: string;
    params?: Record<string, string>;
    body?: unknown;
    /** What the route says it did, when it says (e.g. the id of a key it created). */
    outcome?: Record<string, unknown>;
  };
  result: {
    status: number;
    /** The error code of a refused request (forbidden, unknown_site...). */
    error?: string;
    ms: number;
  };
}

/** Field names whose values are never kept: secrets and personal contact data. */
const HIDDEN_FIELD =
  /(token|secret|password|passwd|pass$|authorization|api[-_]?key|credential|phone|mobile|msisdn|cell|email|e-mail|^to$|^from$|^dst$|^src$|^text$|^name$|address)/i;
/**
 * Values that look like a phone number, an e-mail address or one of our keys. A run of digits
 * inside a word is not a phone number: our ids are hex (`mnt_1215091e77…`), and about one in ten
 * holds eight digits in a row.
 */
const HIDDEN_VALUE = /((?<!\w)\+?\d[\d\s().-]{6,}\d(?!\w)|[^\s@]+@[^\s@]+\.[a-z]{2,}|avk_[a-z0-9]+_)/i;
/** A phone number within a path parameter (a voice delivery id holds one), not digits inside an id. */
const PHONE_IN_PARAM = /(?<!\w)\+?\d{8,}(?!\w)/g;
/** A date or time (ISO 8601): kept, though its digits would pass for a phone number. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

const MAX_KEYS = 30;
const MAX_ITEMS = 10;
const MAX_STRING = 120;

function summarizeValue(value: unknown, depth: number): unknown {
  if (value === null || typeof value === 'boolean' || typeof value === 'number') return value;
  if (typeof value === 'string') {
    if (!ISO_TIME.test(value) && HIDDEN_VALUE.test(value)) return '[hidden]';
    return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}… (${value.length} characters)` : value;
  }
  if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
  if (Array.isArray(value)) {
    if (depth >= 2) return `[${value.length} items]`;
    const shown = value.slice(0, MAX_ITEMS).map((v) => summarizeValue(v, depth + 1));
    return value.length > MAX_ITEMS ? [...shown, `… ${value.length - MAX_ITEMS} more`] : shown;
  }
  if (typeof value === 'object') {
    if (depth >= 2) return `{${Object.keys(value as object).length} fields}`;
    const out: Record<string, unknown> = {};
    const entries = Object.entries(value as Record<string, unknown>);
    for (const [k, v] of entries.slice(0, MAX_KEYS))
      out[k] = HIDDEN_FIELD.test(k) ? '[hidden]' : summarizeValue(v, depth + 1);
    if (entries.length > MAX_KEYS) out['…'] = `${entries.length - MAX_KEYS} more fields`;
    return out;
  }
  return `[${typeof value}]`;
}

/** Path parameters as the log keeps them: phone numbers in them masked, ids as they are. */
export function summarizeParams(params: unknown): Record<string, string> | undefined {
  if (!params || typeof params !== 'object') return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(params as Record<string, unknown>))
    out[k] = String(v).replace(PHONE_IN_PARAM, '[hidden]');
  return Object.keys(out).length ? out : undefined;
}

/**
 * What the log keeps of a request body: its shape and harmless values (site ids, kinds, titles),
 * with phone numbers, e-mail addresses, names, message texts and secrets replaced by "[hidden]".
 * Raw bodies (webhooks, CSV files) are kept as their size only.
 */
export function summarizeBody(body: unknown): unknown {
  if (body === undefined || body === null || body === '') return undefined;
  if (typeof body === 'string') return `[${Buffer.byteLength(body)} bytes of text]`;
  return summarizeValue(body, 0);
}

export async function writeAuditEntry(store: Store, entry: AuditEntry): Promise<void> {
  await store.auditLog.insertOne(entry);
}

/** The most entries one grouped insert carries. */
const AUDIT_GROUP_MAX = 500;
/** In a storm, how long the next group gathers (entries are written after the answer: nobody waits). */
const AUDIT_STORM_PAUSE_MS = 100;

/**
 * Writes entries in groups (./group-commit.ts): a lone request's entry is written at once, as
 * before; a storm of webhooks (each one an entry) costs a few inserts instead of one per request,
 * which would compete with the alerts' own writes. Each caller's promise settles when its entry is
 * written (or not).
 */
export function createAuditWriter(store: Store): (entry: AuditEntry) => Promise<void> {
  return groupCommit<AuditEntry, void>(
    async (entries) => {
      await store.auditLog.insertMany(entries, { ordered: false });
      return entries.map(() => ({ ok: true, value: undefined }));
    },
    AUDIT_GROUP_MAX,
    { stormPauseMs: AUDIT_STORM_PAUSE_MS },
  );
}

/** Newest first, optionally for one key. */
export async function readAuditLog(store: Store, opts: { keyId?: string; limit?: number } = {}): Promise<AuditEntry[]> {
  return store.auditLog
    .find(opts.keyId ? { 'actor.keyId': opts.keyId } : {})
    .sort({ at: -1 })
    .limit(opts.limit ?? 100)
    .toArray();
}
