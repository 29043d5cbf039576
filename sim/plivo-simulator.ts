/**
 * A local stand-in for Plivo's Message API. The project's code talks to it through the
 * real `plivo` SDK (pointed here with the client's `url` option), so the request and
 * response shapes, status codes, status callbacks and their V2 signatures follow Plivo's.
 * Humans and tests read what each phone "received" from /inbox and /inbox.json.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import formbody from '@fastify/formbody';
import { amounts, DeliveryScheduler, isFinal } from './delivery';
import { renderInboxPage } from './inbox-html';
import { maskNumbersIn, maskPhone, normalizeDestination, normalizeLookup, plivoNumber } from './phone';
import { segmentSms, textTooLong } from './sms-units';
import { MessageStore, NdjsonJournal, type FinalStatus, type SimMessage } from './store';

export type { FinalStatus, MessageStatus, SimMessage } from './store';
export { segmentSms } from './sms-units';
export { maskPhone } from './phone';

export interface SimulatorOptions {
  authId: string;
  authToken: string;
  logger?: boolean | object;
  /** NDJSON file: messages are appended as they are recorded and loaded back at start, so the inbox survives a restart. */
  dataFile?: string;
  /** Pause before each status change (queued→sent, sent→delivered). Default 50. */
  callbackDelayMs?: number;
  /**
   * How each message ends (default: always `delivered`). Lets tests and benchmarks
   * exercise undelivered/failed handling; called once per message at acceptance.
   */
  deliveryOutcome?: (to: string, text: string) => FinalStatus;
}

export interface RunningSimulator {
  app: FastifyInstance;
  /** Base URL, e.g. http://127.0.0.1:8090; the Plivo client wants `${url}/v1/Account/${authId}`. */
  url: string;
  close(): Promise<void>;
}

/** Plivo refuses bulk requests above this many unique destinations. */
export const MAX_DESTINATIONS = 1000;
/** Plivo's list API returns at most 20 records per page. */
const MAX_PAGE_SIZE = 20;

interface Context {
  opts: SimulatorOptions;
  store: MessageStore;
  journal?: NdjsonJournal;
  delivery: DeliveryScheduler;
}

/** Plivo's error bodies are always `{ api_id, error }`. */
function plivoError(reply: FastifyReply, status: number, error: string, extra: Record<string, unknown> = {}): FastifyReply {
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

function requireAuth(ctx: Context) {
  return async (request: FastifyRequest<{ Params: { authId: string } }>, reply: FastifyReply): Promise<void> => {
    const { authId, authToken } = ctx.opts;
    if (!basicAuthMatches(request.headers.authorization, authId, authToken) || request.params.authId !== authId) {
      await plivoError(reply, 401, 'Authentication credentials invalid');
    }
  };
}

// ---------------------------------------------------------------- send

interface SendRequest {
  from: string;
  destinations: string;
  text: string;
  callbackUrl?: string;
  callbackMethod: 'GET' | 'POST';
  log: boolean | string;
}

/** The SDK sends JSON strings; curl users may send numbers or form fields. */
function field(body: Record<string, unknown>, name: string): string | undefined {
  const value = body[name];
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  return undefined;
}

function parseLog(value: unknown): boolean | string {
  if (value === false || value === 'false') return false;
  if (typeof value === 'string' && value !== 'true' && value !== '') return value;
  return true;
}

function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

/** Returns the request, or the error message Plivo would answer with. */
function parseSendBody(raw: unknown): SendRequest | string {
  const body = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  const src = field(body, 'src');
  const powerpack = field(body, 'powerpack_uuid');
  const dst = field(body, 'dst');
  const text = field(body, 'text');
  const type = field(body, 'type') ?? 'sms';
  const url = field(body, 'url');
  const method = (field(body, 'method') ?? 'POST').toUpperCase();
  if (!src && !powerpack) return 'src parameter is required';
  if (!dst) return 'dst parameter is required';
  if (text === undefined || text === '') return 'text parameter is required';
  if (type !== 'sms') return `type '${type}' is not supported by the simulator (sms only)`;
  if (url !== undefined && url !== '' && !isHttpUrl(url)) return 'url parameter is not a valid http(s) URL';
  if (method !== 'GET' && method !== 'POST') return 'method parameter must be GET or POST';
  const tooLong = textTooLong(text);
  if (tooLong) return tooLong;
  return {
    from: src ?? `powerpack:${powerpack}`,
    destinations: dst,
    text,
    callbackUrl: url || undefined,
    callbackMethod: method,
    log: parseLog(body.log),
  };
}

/**
 * Splits `a<b<c`, removes duplicates (comparing valid numbers in E.164 form, so `39...`
 * and `+39...` are one) and separates the numbers Plivo would refuse.
 */
function splitDestinations(dst: string): { valid: string[]; invalid: string[]; unique: number } {
  const valid = new Set<string>();
  const invalid = new Set<string>();
  for (const part of dst.split('<')) {
    const raw = part.trim();
    if (raw === '') continue;
    const e164 = normalizeDestination(raw);
    if (e164) valid.add(e164);
    else invalid.add(raw);
  }
  return { valid: [...valid], invalid: [...invalid], unique: valid.size + invalid.size };
}

function createMessage(ctx: Context, req: SendRequest, to: string, requestId: string, now: string): SimMessage {
  const { units, encoding } = segmentSms(req.text);
  return {
    messageUuid: randomUUID(),
    from: req.from,
    to,
    text: req.text,
    units,
    encoding,
    status: 'queued',
    finalStatus: ctx.opts.deliveryOutcome?.(to, req.text) ?? 'delivered',
    errorCode: '',
    acceptedAt: now,
    updatedAt: now,
    callbackUrl: req.callbackUrl,
    callbackMethod: req.callbackMethod,
    log: req.log,
    requestId,
  };
}

function sendHandler(ctx: Context) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const parsed = parseSendBody(request.body);
    if (typeof parsed === 'string') return plivoError(reply, 400, parsed);
    const { valid, invalid, unique } = splitDestinations(parsed.destinations);
    if (unique > MAX_DESTINATIONS) {
      return plivoError(reply, 400, `too many destination numbers: ${unique} unique, at most ${MAX_DESTINATIONS} per request`);
    }
    if (valid.length === 0) {
      return plivoError(reply, 400, 'no valid destination number in dst', { invalid_number: invalid });
    }
    const apiId = randomUUID();
    const now = new Date().toISOString();
    const messages = valid.map((to) => createMessage(ctx, parsed, to, apiId, now));
    for (const message of messages) {
      ctx.store.add(message);
      ctx.journal?.recordMessage(message);
      ctx.delivery.start(message);
    }
    request.log.info(
      { apiId, accepted: messages.length, invalid: invalid.length, to: valid.slice(0, 5).map(maskPhone), units: messages[0].units },
      'messages queued',
    );
    const response: Record<string, unknown> = {
      api_id: apiId,
      message: 'message(s) queued',
      message_uuid: messages.map((m) => m.messageUuid),
    };
    if (invalid.length > 0) response.invalid_number = invalid;
    return reply.status(202).send(response);
  };
}

// ---------------------------------------------------------------- message API (read)

/** Plivo's API timestamps: `2024-05-01 10:00:00+00:00`. */
function apiTime(iso: string | undefined): string | null {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}+00:00` : null;
}

/** With `log=false` Plivo keeps only a masked number, e.g. `393XXXXXX567`. */
function apiToNumber(message: SimMessage): string {
  const digits = plivoNumber(message.to);
  const masked = message.log === false || message.log === 'content_only';
  return masked ? `${digits.slice(0, 3)}${'X'.repeat(Math.max(0, digits.length - 6))}${digits.slice(-3)}` : digits;
}

function messageRecord(message: SimMessage, authId: string): Record<string, unknown> {
  const { totalRate, totalAmount } = amounts(message);
  return {
    error_code: message.errorCode || (message.status === 'delivered' ? '000' : null),
    from_number: plivoNumber(message.from),
    message_direction: 'outbound',
    message_state: message.status,
    message_time: apiTime(message.acceptedAt),
    message_sent_time: apiTime(message.sentAt),
    message_updated_time: apiTime(message.updatedAt),
    message_type: 'sms',
    message_uuid: message.messageUuid,
    resource_uri: `/v1/Account/${authId}/Message/${message.messageUuid}/`,
    to_number: apiToNumber(message),
    total_amount: totalAmount,
    total_rate: totalRate,
    units: message.units,
    log: message.log,
  };
}

function getMessageHandler(ctx: Context) {
  return async (request: FastifyRequest<{ Params: { uuid: string } }>, reply: FastifyReply): Promise<FastifyReply> => {
    const message = ctx.store.get(request.params.uuid);
    if (!message) return plivoError(reply, 404, 'not found');
    return reply.send({ api_id: randomUUID(), ...messageRecord(message, ctx.opts.authId) });
  };
}

type Query = Record<string, string | undefined>;

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

const TIME_FILTERS: Record<string, (t: number, bound: number) => boolean> = {
  message_time__gt: (t, b) => t > b,
  message_time__gte: (t, b) => t >= b,
  message_time__lt: (t, b) => t < b,
  message_time__lte: (t, b) => t <= b,
  message_time: (t, b) => Math.floor(t / 1000) === Math.floor(b / 1000),
};

/** Builds the record filter from the query, or returns the error message to answer. */
function listFilter(query: Query): ((m: SimMessage) => boolean) | string {
  const checks: Array<(m: SimMessage) => boolean> = [];
  for (const [name, compare] of Object.entries(TIME_FILTERS)) {
    const value = query[name];
    if (value === undefined) continue;
    const bound = parseFilterTime(value);
    if (Number.isNaN(bound)) return `${name} must look like YYYY-MM-DD HH:MM[:ss[.uuuuuu]]`;
    checks.push((m) => compare(Date.parse(m.acceptedAt), bound));
  }
  const { message_state: state, message_direction: direction, message_type: type } = query;
  if (state !== undefined) checks.push((m) => m.status === state);
  if (direction !== undefined) checks.push(() => direction === 'outbound');
  if (type !== undefined) checks.push(() => type === 'sms');
  return (m) => checks.every((check) => check(m));
}

function parseIntParam(value: string | undefined, fallback: number, min: number, max: number): number | undefined {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) return undefined;
  const n = Number(value);
  return n >= min && n <= max ? n : undefined;
}

function pageLink(authId: string, query: Query, limit: number, offset: number): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && key !== 'limit' && key !== 'offset') params.set(key, value);
  }
  params.set('limit', String(limit));
  params.set('offset', String(offset));
  return `/v1/Account/${authId}/Message/?${params.toString()}`;
}

function listMessagesHandler(ctx: Context) {
  return async (request: FastifyRequest<{ Querystring: Query }>, reply: FastifyReply): Promise<FastifyReply> => {
    const query = request.query;
    const limit = parseIntParam(query.limit, MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE);
    if (limit === undefined) return plivoError(reply, 400, `limit must be an integer between 1 and ${MAX_PAGE_SIZE}`);
    const offset = parseIntParam(query.offset, 0, 0, Number.MAX_SAFE_INTEGER);
    if (offset === undefined) return plivoError(reply, 400, 'offset must be a non-negative integer');
    const filter = listFilter(query);
    if (typeof filter === 'string') return plivoError(reply, 400, filter);
    // Plivo lists newest first.
    const matching = ctx.store.all().filter(filter).reverse();
    const { authId } = ctx.opts;
    return reply.send({
      api_id: randomUUID(),
      meta: {
        limit,
        offset,
        total_count: matching.length,
        next: offset + limit < matching.length ? pageLink(authId, query, limit, offset + limit) : null,
        previous: offset > 0 ? pageLink(authId, query, limit, Math.max(0, offset - limit)) : null,
      },
      objects: matching.slice(offset, offset + limit).map((m) => messageRecord(m, authId)),
    });
  };
}

function registerMessageApi(app: FastifyInstance, ctx: Context): void {
  void app.register(
    async (api) => {
      api.addHook('onRequest', requireAuth(ctx));
      api.post('/Message/', sendHandler(ctx));
      api.get('/Message/', listMessagesHandler(ctx));
      api.get('/Message/:uuid/', getMessageHandler(ctx));
    },
    { prefix: '/v1/Account/:authId' },
  );
}

// ---------------------------------------------------------------- inbox

function inboxEntry(m: SimMessage): Record<string, unknown> {
  return { messageUuid: m.messageUuid, from: m.from, text: m.text, units: m.units, status: m.status, acceptedAt: m.acceptedAt };
}

/** All phones, or just the one in `?to=` (which may lose its `+` to URL decoding). */
function selectPhones(ctx: Context, to: string | undefined): Map<string, readonly SimMessage[]> {
  if (to === undefined || to.trim() === '') return new Map(ctx.store.phones());
  const phone = normalizeLookup(to);
  return new Map([[phone, ctx.store.forPhone(phone)]]);
}

function countMessages(phones: ReadonlyMap<string, readonly SimMessage[]>): number {
  let total = 0;
  for (const messages of phones.values()) total += messages.length;
  return total;
}

function registerInbox(app: FastifyInstance, ctx: Context): void {
  app.get<{ Querystring: { to?: string } }>('/inbox.json', async (request) => {
    const phones = selectPhones(ctx, request.query.to);
    const out: Record<string, unknown[]> = {};
    for (const [phone, messages] of phones) out[phone] = messages.map(inboxEntry);
    return { phones: out, total: countMessages(phones) };
  });

  app.get<{ Querystring: { to?: string } }>('/inbox', async (request, reply) => {
    const phones = selectPhones(ctx, request.query.to);
    return reply.type('text/html; charset=utf-8').send(renderInboxPage(phones, countMessages(phones)));
  });

  app.delete('/inbox', async () => {
    const cleared = ctx.store.size;
    ctx.delivery.reset();
    ctx.store.clear();
    ctx.journal?.clear();
    return { ok: true, cleared };
  });

  app.get('/healthz', async () => ({ ok: true }));
}

// ---------------------------------------------------------------- server

/** Fastify logs request URLs; `/inbox.json?to=+39…` must not leave a number in the log. */
function loggerOption(logger: SimulatorOptions['logger']): FastifyServerOptions['logger'] {
  if (!logger) return false;
  const base = (logger === true ? {} : logger) as { serializers?: Record<string, unknown> };
  const serializers = {
    ...base.serializers,
    req: (req: { method?: string; url?: string; ip?: string }) => ({
      method: req.method,
      url: maskNumbersIn(req.url ?? ''),
      remoteAddress: req.ip,
    }),
  };
  return { ...base, serializers } as FastifyServerOptions['logger'];
}

function installErrorHandlers(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) => plivoError(reply, 404, `${request.method} ${maskNumbersIn(request.url)} not found`));
  app.setErrorHandler((err: { statusCode?: number; message: string }, request, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) request.log.error({ err }, 'simulator error');
    return plivoError(reply, status, err.message);
  });
}

/** Loads the journal and resumes the messages that had not reached a final status. */
async function restore(ctx: Context, app: FastifyInstance): Promise<void> {
  if (!ctx.journal) return;
  const { loaded, skipped } = await ctx.journal.load(ctx.store);
  let resumed = 0;
  for (const message of ctx.store.all()) {
    if (isFinal(message.status)) continue;
    ctx.delivery.start(message);
    resumed += 1;
  }
  app.log.info({ loaded, skipped, resumed, file: ctx.opts.dataFile }, 'inbox restored');
}

export async function buildSimulator(opts: SimulatorOptions): Promise<FastifyInstance> {
  const app = fastify({ logger: loggerOption(opts.logger), routerOptions: { ignoreTrailingSlash: true }, bodyLimit: 2 * 1024 * 1024 });
  const store = new MessageStore();
  const journal = opts.dataFile
    ? new NdjsonJournal(opts.dataFile, (err) => app.log.error({ err }, 'could not write the data file'))
    : undefined;
  const delivery = new DeliveryScheduler({
    store,
    journal,
    log: app.log,
    authToken: opts.authToken,
    delayMs: opts.callbackDelayMs ?? 50,
  });
  const ctx: Context = { opts, store, journal, delivery };

  await app.register(formbody);
  installErrorHandlers(app);
  registerMessageApi(app, ctx);
  registerInbox(app, ctx);
  app.addHook('onClose', async () => {
    await delivery.close();
    await journal?.flush();
  });
  await restore(ctx, app);
  return app;
}

const LOOPBACK_HOST = /^(127(?:\.\d{1,3}){3}|::1|localhost)$/;

export async function startSimulator(opts: SimulatorOptions & { host: string; port: number }): Promise<RunningSimulator> {
  // The simulator accepts any callback URL and shows every message: never expose it.
  if (!LOOPBACK_HOST.test(opts.host)) throw new Error(`the simulator listens on loopback only, not on ${opts.host}`);
  const app = await buildSimulator(opts);
  await app.listen({ host: opts.host, port: opts.port });
  const { port } = app.server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return { app, url: `http://${host}:${port}`, close: () => app.close() };
}
