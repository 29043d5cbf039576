import type { FastifyRequest } from 'fastify';
import { ApiError } from '../errors';
import { isValidPlivoSignatureV2 } from './signature';

/** Refuses a request that Plivo did not sign for this URL with our auth token. */
export function verifyPlivoRequest(req: FastifyRequest, deps: { publicUrl: string; plivoAuthToken: string }): void {
  const url = `${deps.publicUrl}${req.url}`;
  const header = (name: string) => {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  if (
    !isValidPlivoSignatureV2(
      url,
      header('x-plivo-signature-v2-nonce'),
      header('x-plivo-signature-v2'),
      deps.plivoAuthToken,
    )
  ) {
    throw new ApiError(
      403,
      'bad_signature',
      'Missing or wrong X-Plivo-Signature-V2 for this URL: check PLIVO_AUTH_TOKEN and AVVISO_PUBLIC_URL.',
    );
  }
}
