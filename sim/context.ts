/**
 * What every part of the simulator shares: options, stores, schedulers, faults and
 * counters, plus the small HTTP helpers the Plivo-shaped routes have in common.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DeliveryScheduler } from './delivery';
import type { FaultEngine, FaultSettingsInput } from './faults';
import type { RequestWindow } from './limits';
import type { EndpointKind, SimStats } from './stats';
import type { CallStore, FinalStatus, InboundStore, MessageStore, NdjsonJournal } from './store';
import type { VoiceScheduler } from './voice';

export interface SimulatorOptions {
  authId: string;
  authToken: string;
  logger?: boolean | object;
  /** NDJSON file: messages are appended as they are recorded and loaded back at start, so the inbox survives a restart. */
  dataFile?: string;
  /** Pause before each status change (queued→sent, sent→delivered) and each step of a call. Default 50. */
  callbackDelayMs?: number;
  /**
   * How each message ends (default: always `delivered`). Lets tests and benchmarks
   * exercise undelivered/failed handling; called once per message at acceptance.
   */
  deliveryOutcome?: (to: string, text: string) => FinalStatus;
  /** Faults and limits in force from the start (same shape as `PUT /control/faults`). */
  faults?: FaultSettingsInput;
}

export interface Context {
  opts: SimulatorOptions;
  store: MessageStore;
  inbound: InboundStore;
  calls: CallStore;
  journal?: NdjsonJournal;
  delivery: DeliveryScheduler;
  voice: VoiceScheduler;
  faults: FaultEngine;
  stats: SimStats;
  requestWindow: RequestWindow;
}

/** Plivo's error bodies are always `{ api_id, error }`. */
export function plivoError(
  reply: FastifyReply,
  status: number,
  error: string,
  extra: Record<string, unknown> = {},
): FastifyReply {
  return reply.status(status).send({ api_id: randomUUID(), error, ...extra });
}

// ---------------------------------------------------------------- auth

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Constant-time comparison of the Basic credentials against the configured pair. */
function basicAuthMatches(header: string | undefined, authId: string, authToken: string): boolean {
  if (!header?.startsWith('Basic ')) return false;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  return timingSafeEqual(digest(decoded), digest(`${authId}:${authToken}`));
}

export function requireAuth(ctx: Context) {
  return async (request: FastifyRequest<{ Params: { authId: string } }>, reply: FastifyReply): Promise<void> => {
    const { authId, authToken } = ctx.opts;
    if (!basicAuthMatches(request.headers.authorization, authId, authToken) || request.params.authId !== authId) {
      await plivoError(reply, 401, 'Authentication credentials invalid');
    }
  };
}

// ---------------------------------------------------------------- request fields

/** The SDK sends JSON strings; curl users may send numbers or form fields. */
export function field(body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name];
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  return undefined;
}

export function bodyObject(raw: unknown): Record<string, unknown> {
  return typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
}

export function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

/** `GET`/`POST` (any case), the default when absent, or undefined when it is something else. */
export function httpMethod(value: string | undefined, fallback: 'GET' | 'POST' = 'POST'): 'GET' | 'POST' | undefined {
  const method = (value || fallback).toUpperCase();
  return method === 'GET' || method === 'POST' ? method : undefined;
}

/** Plivo's API timestamps: `2024-05-01 10:00:00+00:00`. */
export function apiTime(iso: string | undefined): string | null {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}+00:00` : null;
}

// ---------------------------------------------------------------- list APIs

/** Plivo's list APIs return at most 20 records per page. */
export const MAX_PAGE_SIZE = 20;

export type Query = Record<string, string | undefined>;

/**
 * Plivo takes `YYYY-MM-DD HH:MM[:ss[.uuuuuu]]` in UTC; ISO 8601 is accepted too because
 * people try it. Returns epoch ms, or NaN when unreadable.
 */
export function parseFilterTime(value: string): number {
  const plivo = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$/.exec(value.trim());
  if (plivo) {
    const millis = (plivo[4] ?? '').padEnd(3, '0').slice(0, 3);
    return Date.parse(`${plivo[1]}T${plivo[2]}:${plivo[3] ?? '00'}.${millis}Z`);
  }
  return Date.parse(value);
}

export function parseIntParam(
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) return undefined;
  const n = Number(value);
  return n >= min && n <= max ? n : undefined;
}

/** The `next`/`previous` links of a list page: the same query at another offset. */
export function pageLink(resource: string, query: Query, limit: number, offset: number): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && key !== 'limit' && key !== 'offset') params.set(key, value);
  }
  params.set('limit', String(limit));
  params.set('offset', String(offset));
  return `${resource}?${params.toString()}`;
}

// ---------------------------------------------------------------- faults on send requests

const ERROR_TEXT: Record<number, string> = {
  429: 'too many requests',
  500: 'internal server error',
  502: 'bad gateway',
  503: 'service unavailable',
  504: 'gateway timeout',
};

/** Closes the connection without an answer: the client sees ECONNRESET / "socket hang up". */
export function dropConnection(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.hijack();
  request.raw.socket.destroy();
  return reply;
}

export function tooManyRequests(
  reply: FastifyReply,
  retryAfterSeconds: number,
  detail = 'too many requests',
): FastifyReply {
  return plivoError(reply.header('Retry-After', String(retryAfterSeconds)), 429, detail);
}

/**
 * Applies the configured latency and request-level fault to a send request (Message or
 * Call POST). Returns undefined when the request has been answered (or dropped) already;
 * otherwise whether the connection must be dropped once the request has been recorded.
 */
export async function sendGate(
  ctx: Context,
  kind: EndpointKind,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<{ dropAfterAccept: boolean } | undefined> {
  const { latencyMs, fault } = ctx.faults.sendRequest(kind === 'call' ? 'call' : 'message');
  if (latencyMs > 0) await sleep(latencyMs);
  switch (fault.kind) {
    case 'dropBeforeAccept':
      ctx.stats.dropped(kind, 'before');
      ctx.stats.requests.dropped(request, 'before');
      request.log.warn({ fault: fault.kind }, 'fault: connection dropped before accepting');
      dropConnection(request, reply);
      return undefined;
    case 'tooManyRequests':
      tooManyRequests(reply, fault.retryAfterSeconds);
      return undefined;
    case 'error':
      if (fault.status === 429) reply.header('Retry-After', '1');
      plivoError(reply, fault.status, ERROR_TEXT[fault.status] ?? `simulated error ${fault.status}`);
      return undefined;
    default:
      return { dropAfterAccept: fault.kind === 'dropAfterAccept' };
  }
}
