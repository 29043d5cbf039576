/**
 * API keys in MongoDB (`api_keys`, `_id` = the key id). A key is created with its secret, which
 * is returned once and stored only as a hash (domain/api-keys.ts says why SHA-256); it is revoked,
 * never deleted, so that the audit log keeps naming who did what. Used by the API (api/plugins/auth.ts,
 * api/routes/keys.ts), the CLI (cli/keys.ts) and `avviso dev` (AVVISO_ADMIN_KEY).
 */
import { MongoServerError } from 'mongodb';
import type { Store } from './db';
import {
  API_KEY_FORMAT_HINT,
  API_KEY_ROLES,
  apiKeySecretMatches,
  generateApiKey,
  hashApiKeySecret,
  parseApiKey,
  type ApiKeyRole,
} from '../domain/api-keys';
import { ALERT_SOURCES } from '../ingest/alert-event';

export interface ApiKeyDoc {
  /** The key id: the part between `avk_` and the secret. */
  _id: string;
  /** Who or what holds it, e.g. "noc-grafana" or "mario.rossi". */
  name: string;
  role: ApiKeyRole;
  /** For role ingest: the one integration it may post to, as `<source>/<name>` (its webhook URL's tail). */
  integration?: string;
  /** Hex SHA-256 of the secret (hashApiKeySecret). */
  hash: string;
  /** Requests per minute for this key; the API's default (API_RATE_LIMIT_PER_MINUTE) otherwise. */
  rateLimitPerMinute?: number;
  createdAt: Date;
  /** A key id, `cli`, or `AVVISO_ADMIN_KEY`. */
  createdBy: string;
  revokedAt?: Date;
  revokedBy?: string;
}

/** A key as shown to people: everything but the hash. */
export interface ApiKeyInfo {
  id: string;
  name: string;
  role: ApiKeyRole;
  integration?: string;
  rateLimitPerMinute?: number;
  createdAt: Date;
  createdBy: string;
  revokedAt?: Date;
  revokedBy?: string;
  /** From `api_key_uses`, updated at most once a minute per API process. */
  lastUsedAt?: Date;
}

/** Who a verified key is, as the API keeps it on the request. */
export interface ApiKeyPrincipal {
  id: string;
  name: string;
  role: ApiKeyRole;
  integration?: string;
  rateLimitPerMinute?: number;
}

export class ApiKeyInputError extends Error {
  constructor(
    readonly code: 'invalid_name' | 'invalid_role' | 'invalid_integration' | 'invalid_rate_limit' | 'invalid_key',
    message: string,
  ) {
    super(message);
  }
}

export interface NewApiKey {
  name: string;
  role: string;
  integration?: string;
  rateLimitPerMinute?: number;
  createdBy: string;
}

const INTEGRATION_PATTERN = /^([a-z0-9-]+)\/([a-z0-9][a-z0-9_-]{0,62})$/;

function info(d: ApiKeyDoc): ApiKeyInfo {
  const { _id, hash: _hash, ...rest } = d;
  return { id: _id, ...rest };
}

function checkNew(input: Omit<NewApiKey, 'createdBy'>): {
  name: string;
  role: ApiKeyRole;
  integration?: string;
  rateLimitPerMinute?: number;
} {
  const name = input.name?.trim() ?? '';
  if (name.length < 1 || name.length > 100 || [...name].some((c) => c.charCodeAt(0) < 32))
    throw new ApiKeyInputError(
      'invalid_name',
      'The name must be 1 to 100 printable characters: who or what holds the key (e.g. noc-grafana).',
    );
  if (!(API_KEY_ROLES as readonly string[]).includes(input.role))
    throw new ApiKeyInputError(
      'invalid_role',
      `The role must be one of ${API_KEY_ROLES.join(', ')}, not ${JSON.stringify(input.role)}.`,
    );
  const role = input.role as ApiKeyRole;
  let integration: string | undefined;
  if (role === 'ingest') {
    const m = INTEGRATION_PATTERN.exec(input.integration?.trim() ?? '');
    if (!m || !(ALERT_SOURCES as readonly string[]).includes(m[1]!)) {
      throw new ApiKeyInputError(
        'invalid_integration',
        `An ingest key needs the integration it may post to, as <source>/<name> (the tail of its URL /v1/ingest/<source>/<name>, e.g. alertmanager/noc), with source one of ${ALERT_SOURCES.join(', ')}.`,
      );
    }
    integration = m[0];
  } else if (input.integration !== undefined && input.integration !== '') {
    throw new ApiKeyInputError(
      'invalid_integration',
      `Only ingest keys are bound to an integration; a ${role} key is not.`,
    );
  }
  const limit = input.rateLimitPerMinute;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 1_000_000))
    throw new ApiKeyInputError('invalid_rate_limit', 'rateLimitPerMinute must be a whole number from 1 to 1000000.');
  return {
    name,
    role,
    ...(integration ? { integration } : {}),
    ...(limit !== undefined ? { rateLimitPerMinute: limit } : {}),
  };
}

/** Makes a key. The returned `key` is the only copy of the secret: show it once. */
export async function createApiKey(store: Store, input: NewApiKey): Promise<{ key: string; info: ApiKeyInfo }> {
  const fields = checkNew(input);
  for (let attempt = 0; ; attempt++) {
    const { id, secret, key } = generateApiKey();
    const doc: ApiKeyDoc = {
      _id: id,
      ...fields,
      hash: hashApiKeySecret(id, secret),
      createdAt: new Date(),
      createdBy: input.createdBy,
    };
    try {
      await store.apiKeys.insertOne(doc);
      return { key, info: info(doc) };
    } catch (err) {
      // 12 random characters colliding: draw again (a unique-_id insert is atomic, even on FerretDB).
      if (err instanceof MongoServerError && err.code === 11000 && attempt < 3) continue;
      throw err;
    }
  }
}

/**
 * Makes sure the given full key exists with these fields and is not revoked (AVVISO_ADMIN_KEY in
 * `avviso dev`): a changed secret or role replaces the stored one.
 */
export async function ensureApiKey(
  store: Store,
  key: string,
  input: Omit<NewApiKey, 'integration'> & { integration?: string },
): Promise<'created' | 'updated' | 'unchanged'> {
  const parsed = parseApiKey(key);
  if (!parsed) throw new ApiKeyInputError('invalid_key', `The key must be ${API_KEY_FORMAT_HINT}.`);
  const fields = checkNew(input);
  const hash = hashApiKeySecret(parsed.id, parsed.secret);
  const existing = await store.apiKeys.findOne({ _id: parsed.id });
  if (
    existing &&
    existing.hash === hash &&
    existing.role === fields.role &&
    existing.name === fields.name &&
    !existing.revokedAt &&
    existing.integration === fields.integration
  )
    return 'unchanged';
  const doc: ApiKeyDoc = {
    _id: parsed.id,
    ...fields,
    hash,
    createdAt: existing?.createdAt ?? new Date(),
    createdBy: input.createdBy,
  };
  await store.apiKeys.replaceOne({ _id: parsed.id }, doc, { upsert: true });
  return existing ? 'updated' : 'created';
}

export async function listApiKeys(store: Store, opts: { includeRevoked?: boolean } = {}): Promise<ApiKeyInfo[]> {
  const docs = await store.apiKeys
    .find(opts.includeRevoked ? {} : { revokedAt: { $exists: false } })
    .sort({ createdAt: 1, _id: 1 })
    .toArray();
  const uses = new Map(
    (await store.apiKeyUses.find({ _id: { $in: docs.map((d) => d._id) } }).toArray()).map((u) => [u._id, u.lastUsedAt]),
  );
  return docs.map((d) => ({ ...info(d), ...(uses.get(d._id) ? { lastUsedAt: uses.get(d._id) } : {}) }));
}

export async function getApiKey(store: Store, id: string): Promise<ApiKeyInfo | null> {
  const d = await store.apiKeys.findOne({ _id: id });
  return d ? info(d) : null;
}

/** Revokes a key at once; revoking twice keeps the first time. Null when there is no such key. */
export async function revokeApiKey(store: Store, id: string, by: string): Promise<ApiKeyInfo | null> {
  const d = await store.apiKeys.findOne({ _id: id });
  if (!d) return null;
  if (d.revokedAt) return info(d);
  const now = new Date();
  await store.apiKeys.updateOne({ _id: id }, { $set: { revokedAt: now, revokedBy: by } });
  return info({ ...d, revokedAt: now, revokedBy: by });
}

export type ApiKeyCheck =
  | { ok: true; key: ApiKeyPrincipal }
  | { ok: false; reason: 'malformed' | 'unknown' | 'revoked'; id?: string; revokedAt?: Date };

/** Checks a presented key: well formed, known, secret matching (constant time), not revoked. */
export async function verifyApiKey(store: Store, presented: string): Promise<ApiKeyCheck> {
  const parsed = parseApiKey(presented);
  if (!parsed) return { ok: false, reason: 'malformed' };
  const d = await store.apiKeys.findOne({ _id: parsed.id });
  // Compare even when the id is unknown, so that both answers take the same time.
  const matches = apiKeySecretMatches(parsed.id, parsed.secret, d?.hash ?? '');
  if (!d || !matches) return { ok: false, reason: 'unknown', id: parsed.id };
  if (d.revokedAt) return { ok: false, reason: 'revoked', id: d._id, revokedAt: d.revokedAt };
  return {
    ok: true,
    key: {
      id: d._id,
      name: d.name,
      role: d.role,
      ...(d.integration ? { integration: d.integration } : {}),
      ...(d.rateLimitPerMinute ? { rateLimitPerMinute: d.rateLimitPerMinute } : {}),
    },
  };
}

/**
 * Records that a key was used. Not on the key's own document: FerretDB writes an update back whole,
 * so an update racing a revocation there could bring the key back to life.
 */
export async function touchApiKey(store: Store, id: string, at: Date): Promise<void> {
  try {
    await store.apiKeyUses.updateOne({ _id: id }, { $set: { lastUsedAt: at } }, { upsert: true });
  } catch (err) {
    // Two first uses at once: the other one recorded it.
    if (!(err instanceof MongoServerError && err.code === 11000)) throw err;
  }
}
