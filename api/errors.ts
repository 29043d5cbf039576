/**
 * One error shape for every route: `{ error: { code, message, details? } }`, where the message
 * says what to fix. Validation errors name the field that is wrong.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { MongoNetworkError, MongoServerSelectionError, MongoTopologyClosedError } from 'mongodb';

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'A stable, machine-readable code, e.g. unknown_site' },
        message: { type: 'string', description: 'What is wrong and what to do about it' },
        details: {},
      },
    },
  },
} as const;

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | ApiError, req, reply) => {
    if (err instanceof ApiError) {
      return reply
        .status(err.statusCode)
        .send({ error: { code: err.code, message: err.message, details: err.details } });
    }
    if ((err as FastifyError).validation) {
      const fe = err as FastifyError;
      const where = fe.validationContext ?? 'request';
      const details = fe.validation!.map((v) => ({
        field: `${where}${v.instancePath.replace(/\//g, '.')}`,
        problem: v.message,
      }));
      return reply.status(400).send({
        error: {
          code: 'invalid_request',
          message: details.map((d) => `${d.field} ${d.problem}`).join('; '),
          details,
        },
      });
    }
    const down = unavailableDependency(err);
    if (down) {
      // A database or Temporal being restarted is a moment, not a bug: callers (monitoring tools,
      // Plivo) retry on 503, and nothing was accepted, so nothing is lost.
      req.log.error({ err }, `${down} unavailable`);
      return reply
        .status(503)
        .header('retry-after', '5')
        .send({
          error: {
            code: 'unavailable',
            message: `${down} is unavailable for a moment; nothing was accepted. Retry shortly.`,
          },
        });
    }
    const status = (err as FastifyError).statusCode ?? 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    return reply.status(status).send({
      error: {
        code: status >= 500 ? 'internal' : ((err as FastifyError).code ?? 'bad_request').toLowerCase(),
        message: status >= 500 ? 'Internal error; the server log has the details.' : err.message,
      },
    });
  });
  app.setNotFoundHandler((req, reply) => {
    reply
      .status(404)
      .send({ error: { code: 'not_found', message: `No route ${req.method} ${req.url}; /docs lists the API.` } });
  });
}

/** Which dependency an error says is out of reach ("the database", "Temporal"), if any. */
export function unavailableDependency(err: unknown, depth = 0): string | undefined {
  if (err == null || typeof err !== 'object' || depth > 3) return undefined;
  if (
    err instanceof MongoNetworkError ||
    err instanceof MongoServerSelectionError ||
    err instanceof MongoTopologyClosedError
  )
    return 'the database';
  const e = err as {
    hasErrorLabel?: (label: string) => boolean;
    cause?: unknown;
    errorResponse?: unknown;
    code?: unknown;
    name?: string;
  };
  // A command cut by a closing connection carries the driver's pool-reset label.
  if (typeof e.hasErrorLabel === 'function' && e.hasErrorLabel('ResetPool')) return 'the database';
  // @temporalio/client's ServiceError wraps the gRPC error: 14 is UNAVAILABLE.
  if (e.name === 'ServiceError' && (e.cause as { code?: unknown } | undefined)?.code === 14) return 'Temporal';
  // A bulk write keeps the driver's error it failed on as errorResponse.
  return unavailableDependency(e.errorResponse, depth + 1) ?? unavailableDependency(e.cause, depth + 1);
}
