import pino, { type Logger } from 'pino';

/**
 * One logger factory for the processes that are not Fastify (worker, CLI, dev stack).
 * Phone numbers are never logged in full: fields that may hold them are redacted here,
 * and code that mentions a number in a message masks it with `maskPhone`.
 */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name,
    level,
    redact: { paths: ['phone', 'phones', 'to', 'dst', '*.phone', '*.phones', '*.to', '*.dst'], censor: '[masked]' },
  });
}
export type { Logger };
