/**
 * API keys: what they look like and how they are checked. Pure helpers, no database.
 *
 * A key is `avk_<id>_<secret>`. The id names the key (it is the `_id` of its document in
 * `api_keys`, shown in lists and the audit log); the secret is shown once, when the key is made,
 * and only its SHA-256 is stored. A plain hash, not scrypt or bcrypt: the secrets we make are 256
 * random bits, so there is no dictionary to try and nothing a slow hash would protect, while a slow
 * hash on every request would hand anyone with a wrong key a way to burn our CPU. A key chosen by a
 * person (AVVISO_ADMIN_KEY) must still have at least 24 characters of secret.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const API_KEY_ROLES = ['admin', 'operator', 'viewer', 'ingest'] as const;
export type ApiKeyRole = (typeof API_KEY_ROLES)[number];

/** `avk_`, an id of lower-case letters and digits, `_`, a secret of base64url characters. */
export const API_KEY_PATTERN = /^avk_([a-z0-9]{3,32})_([A-Za-z0-9_-]{24,128})$/;

export const API_KEY_FORMAT_HINT =
  'avk_<id>_<secret>: an id of 3 to 32 lower-case letters or digits, and a secret of 24 to 128 letters, digits, - or _ (e.g. avk_dev_$(openssl rand -hex 16))';

export interface ParsedApiKey {
  id: string;
  secret: string;
}

export function parseApiKey(presented: string): ParsedApiKey | undefined {
  const m = API_KEY_PATTERN.exec(presented.trim());
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

/** A new key: 12 random id characters, 32 random bytes of secret. */
export function generateApiKey(): ParsedApiKey & { key: string } {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const id = [...randomBytes(12)].map((b) => alphabet[b % alphabet.length]).join('');
  const secret = randomBytes(32).toString('base64url');
  return { id, secret, key: `avk_${id}_${secret}` };
}

/** What is stored: hex SHA-256 over the id and the secret, so a hash cannot be moved to another id. */
export function hashApiKeySecret(id: string, secret: string): string {
  return createHash('sha256').update(`avk1:${id}:${secret}`).digest('hex');
}

/** Compares in constant time; a malformed stored hash never matches. */
export function apiKeySecretMatches(id: string, secret: string, storedHash: string): boolean {
  const given = Buffer.from(hashApiKeySecret(id, secret), 'hex');
  const wellFormed = /^[0-9a-f]{64}$/.test(storedHash);
  const stored = wellFormed ? Buffer.from(storedHash, 'hex') : Buffer.alloc(32);
  return timingSafeEqual(given, stored) && wellFormed;
}

/** The key a request presents: `X-Api-Key`, else `Authorization: Bearer`. Undefined when neither is there. */
export function presentedApiKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  const header = one(headers['x-api-key'])?.trim();
  if (header) return header;
  const auth = one(headers.authorization)?.trim();
  if (auth && /^bearer\s+/i.test(auth)) return auth.replace(/^bearer\s+/i, '').trim() || undefined;
  return undefined;
}

/** Roles above viewer in order; `ingest` sits outside (one webhook, nothing else). */
const RANK: Record<ApiKeyRole, number> = { ingest: 0, viewer: 1, operator: 2, admin: 3 };

/** Whether a key of `role` may use a route that needs `needed` (viewer, operator or admin). */
export function roleAllows(role: ApiKeyRole, needed: 'viewer' | 'operator' | 'admin'): boolean {
  return RANK[role] >= RANK[needed];
}
