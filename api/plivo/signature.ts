import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Plivo signature V2: base64 HMAC-SHA256, keyed with the auth token, of the URL Plivo called
 * (without its query string) followed by the nonce. Compared in constant time, unlike the SDK's
 * own `validateSignature`.
 */
export function plivoSignatureV2(url: string, nonce: string, authToken: string): string {
  const base = url.split('?')[0]!;
  return createHmac('sha256', authToken)
    .update(base + nonce)
    .digest('base64');
}

export function isValidPlivoSignatureV2(
  url: string,
  nonce: string | undefined,
  signature: string | undefined,
  authToken: string,
): boolean {
  if (!nonce || !signature) return false;
  const expected = Buffer.from(plivoSignatureV2(url, nonce, authToken));
  // Plivo may send several comma-separated signatures (during a token rotation, for instance).
  return signature.split(',').some((s) => {
    const given = Buffer.from(s.trim());
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
