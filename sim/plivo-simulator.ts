/**
 * A local stand-in for Plivo's Message API and (outbound) Voice Call API. The project's
 * code talks to it through the real `plivo` SDK (pointed here with the client's `url`
 * option), so the request and response shapes, status codes, status callbacks and their
 * V2 signatures follow Plivo's. Humans and tests read what each phone "received" from
 * /inbox and /inbox.json.
 *
 * Beyond Plivo, a loopback-only control API (sim/control.ts) switches faults and Plivo's
 * rate limits on and off (`/control/faults`), reports counters (`/control/stats`) and
 * injects inbound SMS (`/control/inbound`), for tests and fault drills.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import formbody from '@fastify/formbody';
import {
  apiTime,
  bodyObject,
  dropConnection,
  field,
  httpMethod,
  isHttpUrl,
  MAX_PAGE_SIZE,
  pageLink,
  parseFilterTime,
  parseIntParam,
  plivoError,
  requireAuth,
  sendGate,
  tooManyRequests,
  type Context,
  type Query,
  type SimulatorOptions,
} from './context';
import { registerControl } from './control';
import { amounts, DeliveryScheduler, isFinal } from './delivery';
import { FaultEngine, parseFaultSettings, withTargetedInvalid } from './faults';
import { renderInboxPage, type PhoneTimeline } from './inbox-html';
import { RequestWindow } from './limits';
import { maskNumbersIn, maskPhone, normalizeLookup, plivoNumber, splitDestinations } from './phone';
import { segmentSms, textTooLong } from './sms-units';
import { SimStats, type EndpointKind } from './stats';
import {
  CallStore,
  InboundStore,
  MessageStore,
  NdjsonJournal,
  type InboundMessage,
  type SimCall,
  type SimMessage,
} from './store';
import { getCallHandler, isFinalCall, listCallsHandler, makeCallHandler, VoiceScheduler } from './voice';

export type { CallStatus, FinalStatus, InboundMessage, MessageStatus, SimCall, SimMessage, SpokenText } from './store';
export type { SimulatorOptions } from './context';
export type { FaultSettings, FaultSettingsInput } from './faults';
export { parseFaultSettings } from './faults';
export { segmentSms } from './sms-units';
export { maskPhone } from './phone';
export { parseFilterTime } from './context';

export interface RunningSimulator {
  app: FastifyInstance;
  /** Base URL, e.g. http://127.0.0.1:8090; the Plivo client wants `${url}/v1/Account/${authId}`. */
  url: string;
  close(): Promise<void>;
}

/** Plivo refuses bulk requests above this many unique destinations. */
export const MAX_DESTINATIONS = 1000;

// ---------------------------------------------------------------- send

interface SendRequest {
  from: string;
  destinations: string;
  text: string;
  callbackUrl?: string;
  callbackMethod: 'GET' | 'POST';
  log: boolean | string;
}

function parseLog(value: unknown): boolean | string {
  if (value === false || value === 'false') return false;
  if (typeof value === 'string' && value !== 'true' && value !== '') return value;
  return true;
}

/** Returns the request, or the error message Plivo would answer with. */
function parseSendBody(raw: unknown): SendRequest | string {
  const body = bodyObject(raw);
  const src = field(body, 'src');
  const powerpack = field(body, 'powerpack_uuid');
  const dst = field(body, 'dst');
  const text = field(body, 'text');
  const type = field(body, 'type') ?? 'sms';
  const url = field(body, 'url');
  const method = httpMethod(field(body, 'method'));
  if (!src && !powerpack) return 'src parameter is required';
  if (!dst) return 'dst parameter is required';
  if (text === undefined || text === '') return 'text parameter is required';
  if (type !== 'sms') return `type '${type}' is not supported by the simulator (sms only)`;
  if (url !== undefined && url !== '' && !isHttpUrl(url)) return 'url parameter is not a valid http(s) URL';
  if (!method) return 'method parameter must be GET or POST';
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

function createMessage(
  ctx: Context,
  req: SendRequest,
  to: string,
  requestId: string,
  now: string,
  responseDropped: boolean,
): SimMessage {
  const { units, encoding } = segmentSms(req.text);
  const fate = ctx.faults.messageFate(ctx.opts.deliveryOutcome?.(to, req.text) ?? 'delivered', to);
  const message: SimMessage = {
    messageUuid: randomUUID(),
    from: req.from,
    to,
    text: req.text,
    units,
    encoding,
    status: 'queued',
    finalStatus: fate.finalStatus,
    errorCode: '',
    acceptedAt: now,
    updatedAt: now,
    callbackUrl: req.callbackUrl,
    callbackMethod: req.callbackMethod,
    log: req.log,
    requestId,
  };
  if (fate.errorCode) message.finalErrorCode = fate.errorCode;
  if (responseDropped) message.responseDropped = true;
  return message;
}

function sendHandler(ctx: Context) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const gate = await sendGate(ctx, 'message', request, reply);
    if (!gate) return reply;
    const parsed = parseSendBody(request.body);
    if (typeof parsed === 'string') return plivoError(reply, 400, parsed);
    const { valid, invalid, unique } = withTargetedInvalid(ctx.faults, splitDestinations(parsed.destinations));
    ctx.stats.requests.note(request, { destinations: [...valid, ...invalid], text: parsed.text, invalid });
    if (unique > MAX_DESTINATIONS) {
      return plivoError(
        reply,
        400,
        `too many destination numbers: ${unique} unique, at most ${MAX_DESTINATIONS} per request`,
      );
    }
    if (valid.length === 0) {
      return plivoError(reply, 400, 'no valid destination number in dst', { invalid_number: invalid });
    }
    const apiId = randomUUID();
    const now = new Date().toISOString();
    const messages = valid.map((to) => createMessage(ctx, parsed, to, apiId, now, gate.dropAfterAccept));
    for (const message of messages) {
      ctx.store.add(message);
      ctx.journal?.recordMessage(message);
      ctx.delivery.start(message);
    }
    ctx.stats.messagesAccepted(messages.length, gate.dropAfterAccept);
    ctx.stats.requests.note(request, { apiId });
    // Accepted means on disk: a SIGKILL after this point cannot lose what the client was told.
    await ctx.journal?.flush();
    const summary = {
      apiId,
      accepted: messages.length,
      invalid: invalid.length,
      to: valid.slice(0, 5).map(maskPhone),
      units: messages[0].units,
    };
    if (gate.dropAfterAccept)
      request.log.warn(summary, 'fault: messages queued, then the connection dropped without an answer');
    else request.log.info(summary, 'messages queued');
    if (gate.dropAfterAccept) {
      ctx.stats.dropped('message', 'after');
      ctx.stats.requests.dropped(request, 'after');
      return dropConnection(request, reply);
    }
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

/** The time filters as one range `[from, to)` of acceptance times (ms), or the error message to answer. */
function timeRange(query: Query): { from: number; to: number } | string {
  let from = -Infinity;
  let to = Infinity;
  for (const name of [
    'message_time__gt',
    'message_time__gte',
    'message_time__lt',
    'message_time__lte',
    'message_time',
  ]) {
    const value = query[name];
    if (value === undefined) continue;
    const bound = parseFilterTime(value);
    if (Number.isNaN(bound)) return `${name} must look like YYYY-MM-DD HH:MM[:ss[.uuuuuu]]`;
    if (name === 'message_time__gt') from = Math.max(from, bound + 1);
    else if (name === 'message_time__gte') from = Math.max(from, bound);
    else if (name === 'message_time__lt') to = Math.min(to, bound);
    else if (name === 'message_time__lte') to = Math.min(to, bound + 1);
    else {
      // The same second.
      from = Math.max(from, Math.floor(bound / 1000) * 1000);
      to = Math.min(to, Math.floor(bound / 1000) * 1000 + 1000);
    }
  }
  return { from, to };
}

/** The other filters of the list API, or undefined when there is none (a page is then a slice). */
function otherFilter(query: Query): ((m: SimMessage) => boolean) | undefined {
  const checks: Array<(m: SimMessage) => boolean> = [];
  const { message_state: state, message_direction: direction, message_type: type } = query;
  if (state !== undefined) checks.push((m) => m.status === state);
  if (direction !== undefined) checks.push(() => direction === 'outbound');
  if (type !== undefined) checks.push(() => type === 'sms');
  return checks.length ? (m) => checks.every((check) => check(m)) : undefined;
}

/** The messages the list query matches, newest first, as Plivo lists them. */
function listMatching(ctx: Context, query: Query): SimMessage[] | string {
  const range = timeRange(query);
  if (typeof range === 'string') return range;
  const within = ctx.store.acceptedWithin(range.from, range.to);
  const filter = otherFilter(query);
  return (filter ? within.filter(filter) : [...within]).reverse();
}

function listMessagesHandler(ctx: Context) {
  return async (request: FastifyRequest<{ Querystring: Query }>, reply: FastifyReply): Promise<FastifyReply> => {
    const query = request.query;
    const limit = parseIntParam(query.limit, MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE);
    if (limit === undefined) return plivoError(reply, 400, `limit must be an integer between 1 and ${MAX_PAGE_SIZE}`);
    const offset = parseIntParam(query.offset, 0, 0, Number.MAX_SAFE_INTEGER);
    if (offset === undefined) return plivoError(reply, 400, 'offset must be a non-negative integer');
    const matching = listMatching(ctx, query);
    if (typeof matching === 'string') return plivoError(reply, 400, matching);
    const { authId } = ctx.opts;
    return reply.send({
      api_id: randomUUID(),
      meta: {
        limit,
        offset,
        total_count: matching.length,
        next:
          offset + limit < matching.length
            ? pageLink(`/v1/Account/${authId}/Message/`, query, limit, offset + limit)
            : null,
        previous:
          offset > 0 ? pageLink(`/v1/Account/${authId}/Message/`, query, limit, Math.max(0, offset - limit)) : null,
      },
      objects: matching.slice(offset, offset + limit).map((m) => messageRecord(m, authId)),
    });
  };
}

/** Sends (Message and Call POST) are counted apart from the reads. */
function endpointKind(request: FastifyRequest): EndpointKind {
  if (request.method !== 'POST') return 'read';
  const route = request.routeOptions.url ?? '';
  return route.endsWith('/Message/') ? 'message' : route.endsWith('/Call/') ? 'call' : 'read';
}

/** `limits.requestsPer5s`: Plivo answers 429 with Retry-After beyond its REST rate. */
function enforceRequestLimit(ctx: Context) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const limit = ctx.faults.limits.requestsPer5s;
    if (!limit) return;
    const wait = ctx.requestWindow.take(limit);
    if (wait === 0) return;
    ctx.stats.limitRejection(endpointKind(request));
    ctx.stats.requests.note(request, { limited: true });
    await tooManyRequests(reply, wait, `too many requests: at most ${limit} API requests per 5 seconds`);
  };
}

function registerPlivoApi(app: FastifyInstance, ctx: Context): void {
  void app.register(
    async (api) => {
      api.addHook('onRequest', async (request) =>
        ctx.stats.requests.begin(request, {
          kind: endpointKind(request),
          method: request.method,
          route: request.routeOptions.url ?? request.url,
        }),
      );
      api.addHook('onRequest', requireAuth(ctx));
      api.addHook('preHandler', enforceRequestLimit(ctx));
      api.addHook('onResponse', async (request, reply) => {
        ctx.stats.response(endpointKind(request), reply.statusCode);
        ctx.stats.requests.answered(request, reply.statusCode, reply.getHeader('retry-after'));
      });
      api.post('/Message/', sendHandler(ctx));
      api.get('/Message/', listMessagesHandler(ctx));
      api.get('/Message/:uuid/', getMessageHandler(ctx));
      api.post('/Call/', makeCallHandler(ctx));
      api.get('/Call/', listCallsHandler(ctx));
      api.get('/Call/:uuid/', getCallHandler(ctx));
    },
    { prefix: '/v1/Account/:authId' },
  );
}

// ---------------------------------------------------------------- inbox

function inboxEntry(m: SimMessage): Record<string, unknown> {
  const entry: Record<string, unknown> = {
    messageUuid: m.messageUuid,
    from: m.from,
    text: m.text,
    units: m.units,
    status: m.status,
    errorCode: m.errorCode,
    acceptedAt: m.acceptedAt,
    updatedAt: m.updatedAt,
  };
  if (m.sentAt) entry.sentAt = m.sentAt;
  if (m.deliveryReportAt) entry.deliveryReportAt = m.deliveryReportAt;
  if (m.responseDropped) entry.responseDropped = true;
  entry.requestId = m.requestId;
  return entry;
}

function inboundEntry(m: InboundMessage): Record<string, unknown> {
  const entry: Record<string, unknown> = {
    messageUuid: m.messageUuid,
    to: m.to,
    text: m.text,
    units: m.units,
    receivedAt: m.receivedAt,
  };
  if (m.responseStatus !== undefined) entry.responseStatus = m.responseStatus;
  if (m.error) entry.error = m.error;
  return entry;
}

function callEntry(c: SimCall): Record<string, unknown> {
  const entry: Record<string, unknown> = {
    callUuid: c.callUuid,
    requestUuid: c.requestUuid,
    from: c.from,
    status: c.status,
    spokenText: c.spokenText,
    speak: c.speak,
    hangupCause: c.hangupCause,
    hangupCauseName: c.hangupCauseName,
    duration: c.duration,
    firedAt: c.firedAt,
  };
  if (c.answeredAt) entry.answeredAt = c.answeredAt;
  if (c.endedAt) entry.endedAt = c.endedAt;
  if (c.answerError) entry.answerError = c.answerError;
  if (c.responseDropped) entry.responseDropped = true;
  return entry;
}

interface Selection {
  messages: ReadonlyMap<string, readonly SimMessage[]>;
  inbound: ReadonlyMap<string, readonly InboundMessage[]>;
  calls: ReadonlyMap<string, readonly SimCall[]>;
}

/** All phones, or just the one in `?to=` (which may lose its `+` to URL decoding). */
function selectPhones(ctx: Context, to: string | undefined): Selection {
  if (to === undefined || to.trim() === '')
    return { messages: ctx.store.phones(), inbound: ctx.inbound.phones(), calls: ctx.calls.phones() };
  const phone = normalizeLookup(to);
  const only = <T>(list: readonly T[]): Map<string, readonly T[]> =>
    list.length > 0 ? new Map([[phone, list]]) : new Map();
  return {
    // The message map always names the phone asked for, even when it received nothing.
    messages: new Map([[phone, ctx.store.forPhone(phone)]]),
    inbound: only(ctx.inbound.forPhone(phone)),
    calls: only(ctx.calls.forPhone(phone)),
  };
}

function countAll<T>(phones: ReadonlyMap<string, readonly T[]>): number {
  let total = 0;
  for (const list of phones.values()) total += list.length;
  return total;
}

function mapPhones<T>(
  phones: ReadonlyMap<string, readonly T[]>,
  entry: (item: T) => Record<string, unknown>,
): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const [phone, list] of phones) out[phone] = list.map(entry);
  return out;
}

function timelines(selection: Selection): PhoneTimeline[] {
  const byPhone = new Map<string, PhoneTimeline>();
  const timeline = (phone: string): PhoneTimeline => {
    let found = byPhone.get(phone);
    if (!found) {
      found = { phone, messages: [], inbound: [], calls: [] };
      byPhone.set(phone, found);
    }
    return found;
  };
  for (const [phone, list] of selection.messages) if (list.length > 0) timeline(phone).messages = list;
  for (const [phone, list] of selection.inbound) timeline(phone).inbound = list;
  for (const [phone, list] of selection.calls) timeline(phone).calls = list;
  return [...byPhone.values()];
}

function registerInbox(app: FastifyInstance, ctx: Context): void {
  /**
   * Per phone (E.164), oldest first: `phones` = outbound messages as accepted (including
   * those accepted in the crash window, flagged `responseDropped`), `inbound` = messages
   * the phone sent us, `calls` = voice calls placed to it.
   */
  app.get<{ Querystring: { to?: string } }>('/inbox.json', async (request) => {
    const selection = selectPhones(ctx, request.query.to);
    const totals = {
      messages: countAll(selection.messages),
      inbound: countAll(selection.inbound),
      calls: countAll(selection.calls),
    };
    return {
      phones: mapPhones(selection.messages, inboxEntry),
      inbound: mapPhones(selection.inbound, inboundEntry),
      calls: mapPhones(selection.calls, callEntry),
      total: totals.messages,
      totals,
    };
  });

  app.get<{ Querystring: { to?: string } }>('/inbox', async (request, reply) => {
    const selection = selectPhones(ctx, request.query.to);
    const page = renderInboxPage(timelines(selection), {
      messages: countAll(selection.messages),
      inbound: countAll(selection.inbound),
      calls: countAll(selection.calls),
      faults:
        ctx.faults.active || Object.keys(ctx.faults.limits).length > 0
          ? JSON.stringify(ctx.faults.current())
          : undefined,
    });
    return reply.type('text/html; charset=utf-8').send(page);
  });

  app.delete('/inbox', async () => {
    const cleared = ctx.store.size;
    const clearedInbound = ctx.inbound.size;
    const clearedCalls = ctx.calls.size;
    ctx.delivery.reset();
    ctx.voice.reset();
    ctx.store.clear();
    ctx.inbound.clear();
    ctx.calls.clear();
    ctx.journal?.clear();
    return { ok: true, cleared, clearedInbound, clearedCalls };
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
  app.setNotFoundHandler((request, reply) =>
    plivoError(reply, 404, `${request.method} ${maskNumbersIn(request.url)} not found`),
  );
  app.setErrorHandler((err: { statusCode?: number; message: string }, request, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) request.log.error({ err }, 'simulator error');
    return plivoError(reply, status, err.message);
  });
}

/** Loads the journal and resumes the messages that had not reached a final status. */
async function restore(ctx: Context, app: FastifyInstance): Promise<void> {
  if (!ctx.journal) return;
  const { loaded, skipped } = await ctx.journal.load({ messages: ctx.store, inbound: ctx.inbound, calls: ctx.calls });
  let resumed = 0;
  for (const message of ctx.store.all()) {
    if (isFinal(message.status)) continue;
    ctx.delivery.start(message);
    resumed += 1;
  }
  // A call cut short by the restart is not replayed (its answer URL may not expect it twice).
  let interrupted = 0;
  for (const call of ctx.calls.all()) {
    if (isFinalCall(call.status)) continue;
    Object.assign(call, {
      status: 'failed',
      hangupCauseName: 'Simulator Restarted',
      endedAt: new Date().toISOString(),
    });
    ctx.journal.recordCall(call);
    interrupted += 1;
  }
  app.log.info(
    {
      loaded,
      skipped,
      resumed,
      inbound: ctx.inbound.size,
      calls: ctx.calls.size,
      interrupted,
      file: ctx.opts.dataFile,
    },
    'inbox restored',
  );
}

export async function buildSimulator(opts: SimulatorOptions): Promise<FastifyInstance> {
  // Invalid fault settings are a configuration error: refuse to start rather than ignore them.
  const faults = new FaultEngine(parseFaultSettings(opts.faults ?? {}));
  const app = fastify({
    logger: loggerOption(opts.logger),
    routerOptions: { ignoreTrailingSlash: true },
    bodyLimit: 2 * 1024 * 1024,
  });
  const store = new MessageStore();
  const inbound = new InboundStore();
  const calls = new CallStore();
  const stats = new SimStats();
  const journal = opts.dataFile
    ? new NdjsonJournal(opts.dataFile, (err) => app.log.error({ err }, 'could not write the data file'))
    : undefined;
  const delayMs = opts.callbackDelayMs ?? 50;
  const delivery = new DeliveryScheduler({
    store,
    journal,
    log: app.log,
    authToken: opts.authToken,
    delayMs,
    faults,
    stats,
  });
  const voice = new VoiceScheduler({ calls, journal, log: app.log, authToken: opts.authToken, delayMs, faults, stats });
  const ctx: Context = {
    opts,
    store,
    inbound,
    calls,
    journal,
    delivery,
    voice,
    faults,
    stats,
    requestWindow: new RequestWindow(),
  };

  await app.register(formbody);
  installErrorHandlers(app);
  registerPlivoApi(app, ctx);
  registerControl(app, ctx);
  registerInbox(app, ctx);
  app.addHook('onClose', async () => {
    await Promise.all([delivery.close(), voice.close()]);
    await journal?.flush();
  });
  if (faults.active) app.log.warn({ faults: faults.current() }, 'faults active from the start');
  await restore(ctx, app);
  return app;
}

const LOOPBACK_HOST = /^(127(?:\.\d{1,3}){3}|::1|localhost)$/;

export async function startSimulator(
  opts: SimulatorOptions & { host: string; port: number },
): Promise<RunningSimulator> {
  // The simulator accepts any callback URL and shows every message: never expose it.
  if (!LOOPBACK_HOST.test(opts.host)) throw new Error(`the simulator listens on loopback only, not on ${opts.host}`);
  const app = await buildSimulator(opts);
  await app.listen({ host: opts.host, port: opts.port });
  const { port } = app.server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return { app, url: `http://${host}:${port}`, close: () => app.close() };
}
