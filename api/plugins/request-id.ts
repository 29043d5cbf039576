/**
 * Request ids: a caller's `X-Request-Id` is kept when it is a sane token (a proxy or a script
 * tracing one call through), else a new UUID. Fastify puts it on every log line of the request
 * (as `reqId`) and we send it back in `X-Request-Id`, on errors too.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';

export const REQUEST_ID_HEADER = 'x-request-id';

export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers[REQUEST_ID_HEADER];
  const value = Array.isArray(given) ? given[0] : given;
  return value && /^[A-Za-z0-9._:@-]{1,100}$/.test(value) ? value : randomUUID();
}

export function echoRequestIds(app: FastifyInstance): void {
  // Synchronous (no promise per request).
  app.addHook('onRequest', (req, reply, done) => {
    reply.header(REQUEST_ID_HEADER, req.id);
    done();
  });
}
