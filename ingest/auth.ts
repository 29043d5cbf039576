/**
 * Who may post to an integration: the holder of its token, presented as `Authorization: Bearer`,
 * as the password of Basic auth (Alertmanager, LibreNMS and Grafana offer it), in
 * `X-Avviso-Token`, or as `?token=` (PRTG cannot set headers). Grafana integrations may also
 * require its HMAC signature of the raw body. Secrets are compared in constant time.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { GrafanaSignature } from './integrations';

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export interface PresentedToken {
  token: string;
  via: 'bearer' | 'basic' | 'header' | 'query';
}

export function presentedToken(headers: Headers, query: Record<string, unknown>): PresentedToken | undefined {
  const auth = header(headers, 'authorization')?.trim();
  if (auth && /^bearer\s+/i.test(auth)) return { token: auth.replace(/^bearer\s+/i, ''), via: 'bearer' };
  if (auth && /^basic\s+/i.test(auth)) {
    const decoded = Buffer.from(auth.replace(/^basic\s+/i, ''), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon >= 0) return { token: decoded.slice(colon + 1), via: 'basic' };
  }
  const custom = header(headers, 'x-avviso-token');
  if (custom) return { token: custom.trim(), via: 'header' };
  const q = query.token;
  if (typeof q === 'string' && q !== '') return { token: q, via: 'query' };
  return undefined;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/** Constant time whatever the lengths: both sides are hashed to the same size first. */
function digestsEqual(given: string, expected: string): boolean {
  return timingSafeEqual(sha256(given), sha256(expected));
}

/** The digests of the configured secrets (few, fixed at start): every webhook compares its token with one. */
const secretDigests = new Map<string, Buffer>();

/** Whether a presented token is the configured secret, in constant time whatever the lengths. */
export function secretsEqual(given: string, secret: string): boolean {
  let expected = secretDigests.get(secret);
  if (!expected) {
    expected = sha256(secret);
    if (secretDigests.size < 1000) secretDigests.set(secret, expected);
  }
  return timingSafeEqual(sha256(given), expected);
}

/** Grafana's signature: hex HMAC-SHA256 of the body, or of `<unix seconds>:<body>` with a timestamp header. */
export function grafanaSignature(secret: string, rawBody: Buffer, timestamp?: string): string {
  const hmac = createHmac('sha256', secret);
  if (timestamp !== undefined) hmac.update(`${timestamp}:`);
  return hmac.update(rawBody).digest('hex');
}

/** Why the signature is not acceptable, or undefined when it is. */
export function signatureProblem(
  sig: GrafanaSignature,
  rawBody: Buffer,
  headers: Headers,
  now: Date,
): string | undefined {
  const given = header(headers, sig.signatureHeader)
    ?.trim()
    .replace(/^sha256=/i, '');
  if (!given) return `the ${sig.signatureHeader} header is missing: set the HMAC secret in the Grafana contact point`;
  let timestamp: string | undefined;
  if (sig.timestampHeader) {
    timestamp = header(headers, sig.timestampHeader)?.trim();
    if (!timestamp || !/^\d+$/.test(timestamp))
      return `the ${sig.timestampHeader} header is missing or not unix seconds`;
    const skew = Math.abs(now.getTime() / 1000 - Number(timestamp));
    if (skew > sig.maxSkewSeconds)
      return `the signed timestamp is ${Math.round(skew)} s away from our clock (at most ${sig.maxSkewSeconds} s): a replay, or a clock to fix`;
  }
  const expected = grafanaSignature(sig.secret, rawBody, timestamp);
  return digestsEqual(given.toLowerCase(), expected)
    ? undefined
    : `the ${sig.signatureHeader} signature does not match the body: check the HMAC secret`;
}
