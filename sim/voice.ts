/**
 * Plivo's Voice Call API, as far as a notification service uses it: Make a Call, fetch the
 * answer XML, "speak" it, hang up and report to the hangup URL; plus the call detail and the
 * listings (records of ended calls with Plivo's filters, live calls, queued calls), which tell
 * a client whose answer was lost which calls Plivo took.
 * Every request to the app is signed with signature V2 like the messaging callbacks.
 * Calls are not really placed and the simulator does not wait out a call's duration: each
 * step takes `callbackDelayMs`, and the duration is estimated from the spoken text.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import { deliverCallback, failureReason, signedRequest } from './callbacks';
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
  sendGate,
  type Context,
  type Query,
} from './context';
import { callbackTime } from './delivery';
import { withTargetedInvalid, type FaultEngine } from './faults';
import { maskNumbersIn, maskPhone, plivoNumber, splitDestinations } from './phone';
import type { SimStats } from './stats';
import type { CallStatus, CallStore, NdjsonJournal, SimCall, SpokenText } from './store';

/** What the simulator charges per started minute of an answered call. */
export const VOICE_RATE_PER_MINUTE = 0.02;
/** Speech pace used to estimate how long a `<Speak>` lasts (about 150 words a minute). */
const WORDS_PER_SECOND = 2.5;
/** Plivo's destination limit for one Make-a-Call request. */
const MAX_CALL_DESTINATIONS = 1000;

// ---------------------------------------------------------------- Plivo XML

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (whole, entity: string) => {
    const lower = entity.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(parseInt(lower.slice(1), 10));
    return ENTITIES[lower] ?? whole;
  });
}

function attributes(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const match of raw.matchAll(/([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g))
    out[match[1]] = unescapeXml(match[2] ?? match[3] ?? '');
  return out;
}

/** Inner text of an element: CDATA kept verbatim, nested (SSML) tags dropped, entities decoded. */
function innerText(raw: string): string {
  let text = '';
  let rest = raw;
  for (;;) {
    const start = rest.indexOf('<![CDATA[');
    if (start < 0) break;
    const end = rest.indexOf(']]>', start);
    if (end < 0) break;
    text += unescapeXml(rest.slice(0, start).replace(/<[^>]*>/g, ''));
    text += rest.slice(start + 9, end);
    rest = rest.slice(end + 3);
  }
  text += unescapeXml(rest.replace(/<[^>]*>/g, ''));
  return text.replace(/\s+/g, ' ').trim();
}

export interface ParsedXml {
  speak: SpokenText[];
  /** Seconds of `<Wait>` and `<Play>` (a played file counts as 5 s). */
  otherSeconds: number;
  hangupReason?: string;
}

/**
 * A small regex-based reading of Plivo XML: enough for `<Response>` with `<Speak>`,
 * `<Wait>`, `<Play>` and `<Hangup>`. Returns an error message when it is not Plivo XML.
 */
export function parsePlivoXml(xml: string): ParsedXml | string {
  const body = xml.replace(/<\?xml[^>]*\?>/, '').replace(/<!--[\s\S]*?-->/g, '');
  const root = /<Response\b[^>]*>([\s\S]*)<\/Response>|<Response\b[^>]*\/>/.exec(body);
  if (!root) return 'the answer is not Plivo XML (no <Response> element)';
  const inner = root[1] ?? '';
  const speak: SpokenText[] = [];
  for (const match of inner.matchAll(/<Speak\b([^>]*?)(?:\/>|>([\s\S]*?)<\/Speak>)/g)) {
    const attrs = attributes(match[1]);
    const entry: SpokenText = { text: innerText(match[2] ?? '') };
    if (attrs.language) entry.language = attrs.language;
    if (attrs.voice) entry.voice = attrs.voice;
    if (attrs.loop && /^\d+$/.test(attrs.loop)) entry.loop = Number(attrs.loop);
    speak.push(entry);
  }
  let otherSeconds = 0;
  for (const match of inner.matchAll(/<Wait\b([^>]*?)\/?>/g))
    otherSeconds += Number(attributes(match[1]).length ?? 1) || 0;
  for (const _play of inner.matchAll(/<Play\b/g)) otherSeconds += 5;
  const hangup = /<Hangup\b([^>]*?)\/?>/.exec(inner);
  return { speak, otherSeconds, hangupReason: hangup ? (attributes(hangup[1]).reason ?? 'hangup') : undefined };
}

/** Seconds a call lasts: one to answer, then the speech (each loop) and the waits. */
export function estimateDuration(parsed: ParsedXml): number {
  let seconds = 1 + parsed.otherSeconds;
  for (const entry of parsed.speak) {
    const words = entry.text.split(/\s+/).filter(Boolean).length;
    // loop="0" means "until hangup" at Plivo; count it once.
    seconds += Math.ceil(words / WORDS_PER_SECOND) * Math.max(1, entry.loop ?? 1);
  }
  return seconds;
}

// ---------------------------------------------------------------- call lifecycle

interface Ending {
  status: CallStatus;
  hangupCause: string;
  hangupCauseName: string;
  hangupCauseCode: number;
  hangupSource: string;
}

// Plivo's documented hangup codes for these cases; the 3xxx/7xxx ones are approximations.
const ENDINGS = {
  endOfXml: {
    status: 'completed',
    hangupCause: 'NORMAL_CLEARING',
    hangupCauseName: 'End Of XML Instructions',
    hangupCauseCode: 4010,
    hangupSource: 'Plivo',
  },
  hangupXml: {
    status: 'completed',
    hangupCause: 'NORMAL_CLEARING',
    hangupCauseName: 'Normal Hangup',
    hangupCauseCode: 4000,
    hangupSource: 'Answer XML',
  },
  noAnswer: {
    status: 'no-answer',
    hangupCause: 'NO_ANSWER',
    hangupCauseName: 'No Answer',
    hangupCauseCode: 3010,
    hangupSource: 'Carrier',
  },
  busy: {
    status: 'busy',
    hangupCause: 'USER_BUSY',
    hangupCauseName: 'Busy Line',
    hangupCauseCode: 3000,
    hangupSource: 'Call recipient',
  },
  answerError: {
    status: 'completed',
    hangupCause: 'NORMAL_CLEARING',
    hangupCauseName: 'Error Reaching Answer URL',
    hangupCauseCode: 7011,
    hangupSource: 'Error',
  },
  invalidXml: {
    status: 'completed',
    hangupCause: 'NORMAL_CLEARING',
    hangupCauseName: 'Invalid Answer XML',
    hangupCauseCode: 7012,
    hangupSource: 'Error',
  },
} satisfies Record<string, Ending>;

export function isFinalCall(status: CallStatus): boolean {
  return status === 'completed' || status === 'no-answer' || status === 'busy' || status === 'failed';
}

export interface VoiceDeps {
  calls: CallStore;
  journal?: NdjsonJournal;
  log: FastifyBaseLogger;
  authToken: string;
  delayMs: number;
  faults: FaultEngine;
  stats: SimStats;
}

function sharedController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

type Params = Record<string, string>;

/** Runs each fired call through ringing, answer, speech and hangup in the background. */
export class VoiceScheduler {
  private controller = sharedController();
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly deps: VoiceDeps) {}

  start(call: SimCall): void {
    const signal = this.controller.signal;
    const run = this.run(call, signal).catch((err: unknown) => {
      if (!signal.aborted) this.deps.log.error({ err }, 'call simulation failed');
    });
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
  }

  reset(): void {
    this.controller.abort();
    this.controller = sharedController();
  }

  async close(): Promise<void> {
    this.controller.abort();
    await Promise.allSettled([...this.running]);
  }

  private update(call: SimCall, change: Partial<SimCall>): boolean {
    if (!this.deps.calls.has(call.callUuid)) return false; // cleared meanwhile
    Object.assign(call, change);
    this.deps.journal?.recordCall(call);
    return true;
  }

  private baseParams(call: SimCall, status: CallStatus): Params {
    return {
      CallUUID: call.callUuid,
      RequestUUID: call.requestUuid,
      ALegUUID: call.callUuid,
      ALegRequestUUID: call.requestUuid,
      From: plivoNumber(call.from),
      To: plivoNumber(call.to),
      CallerName: plivoNumber(call.from),
      Direction: 'outbound',
      CallStatus: status,
      SessionStart: callbackTime(call.firedAt),
      STIRVerification: 'Not Applicable',
    };
  }

  private async run(call: SimCall, signal: AbortSignal): Promise<void> {
    const { delayMs, faults } = this.deps;
    await sleep(delayMs, undefined, { signal });
    if (!this.update(call, { status: 'ringing' })) return;
    if (call.ringUrl)
      await this.notify(
        call,
        call.ringUrl,
        call.ringMethod,
        { ...this.baseParams(call, 'ringing'), Event: 'Ring' },
        signal,
      );

    const outcome = faults.callOutcome(call.to);
    await sleep(delayMs, undefined, { signal });
    if (outcome !== 'answered') {
      await this.hangup(call, outcome === 'busy' ? ENDINGS.busy : ENDINGS.noAnswer, 0, signal);
      return;
    }

    if (!this.update(call, { status: 'in-progress', answeredAt: new Date().toISOString() })) return;
    const answer = await this.fetchAnswer(call, signal);
    let ending: Ending = ENDINGS.endOfXml;
    let duration = 1;
    if (typeof answer === 'string') {
      this.deps.stats.call('answer-url-error');
      this.deps.log.warn(
        { to: maskPhone(call.to), url: maskNumbersIn(call.answerUrl), reason: answer },
        'answer URL gave no usable XML',
      );
      ending = answer.startsWith('the answer is not') ? ENDINGS.invalidXml : ENDINGS.answerError;
      if (!this.update(call, { answerError: answer })) return;
    } else {
      duration = estimateDuration(answer);
      if (answer.hangupReason) ending = ENDINGS.hangupXml;
      const spokenText = answer.speak.map((s) => s.text).join('\n');
      if (!this.update(call, { speak: answer.speak, spokenText })) return;
    }
    await sleep(delayMs, undefined, { signal }); // "the call"
    await this.hangup(call, ending, duration, signal);
  }

  /** The answer XML, or why there is none. */
  private async fetchAnswer(call: SimCall, signal: AbortSignal): Promise<ParsedXml | string> {
    const params = { ...this.baseParams(call, 'in-progress'), Event: 'StartApp' };
    try {
      const response = await signedRequest({
        url: call.answerUrl,
        method: call.answerMethod,
        params,
        authToken: this.deps.authToken,
        signal,
      });
      if (response.status < 200 || response.status >= 300) return `answer URL answered HTTP ${response.status}`;
      return parsePlivoXml(response.body);
    } catch (err) {
      if (signal.aborted) throw err;
      return `answer URL unreachable: ${failureReason(err)}`;
    }
  }

  private async hangup(call: SimCall, ending: Ending, duration: number, signal: AbortSignal): Promise<void> {
    const answered = call.answeredAt !== undefined;
    const billDuration = answered ? Math.ceil(duration / 60) * 60 : 0;
    const totalCost = ((billDuration / 60) * VOICE_RATE_PER_MINUTE).toFixed(5);
    const endedAt = new Date().toISOString();
    const change: Partial<SimCall> = {
      status: ending.status,
      hangupCause: ending.hangupCause,
      hangupCauseName: ending.hangupCauseName,
      hangupCauseCode: ending.hangupCauseCode,
      hangupSource: ending.hangupSource,
      duration: answered ? duration : 0,
      billDuration,
      totalCost,
      endedAt,
    };
    if (!this.update(call, change)) return;
    this.deps.stats.call(ending.status === 'completed' ? 'completed' : ending.status === 'busy' ? 'busy' : 'no-answer');
    if (!call.hangupUrl) return;
    const params: Params = {
      ...this.baseParams(call, ending.status),
      Event: 'Hangup',
      HangupCause: ending.hangupCause,
      HangupCauseName: ending.hangupCauseName,
      HangupCauseCode: String(ending.hangupCauseCode),
      HangupSource: ending.hangupSource,
      Duration: String(call.duration),
      BillDuration: String(billDuration),
      BillRate: VOICE_RATE_PER_MINUTE.toFixed(5),
      TotalCost: totalCost,
      StartTime: callbackTime(call.firedAt),
      AnswerTime: callbackTime(call.answeredAt),
      EndTime: callbackTime(endedAt),
    };
    const ok = await this.notify(call, call.hangupUrl, call.hangupMethod, params, signal);
    if (!ok) this.deps.stats.call('hangup-callback-failed');
  }

  /** Ring and hangup notifications, retried briefly like the status callbacks. */
  private async notify(
    call: SimCall,
    url: string,
    method: 'GET' | 'POST',
    params: Params,
    signal: AbortSignal,
  ): Promise<boolean> {
    const outcome = await deliverCallback({ url, method, params, authToken: this.deps.authToken, signal });
    if (!outcome.ok) {
      this.deps.log.warn(
        { to: maskPhone(call.to), event: params.Event, url: maskNumbersIn(url), reason: outcome.reason },
        'call callback not delivered',
      );
    }
    return outcome.ok;
  }
}

// ---------------------------------------------------------------- Call API

interface CallRequest {
  from: string;
  destinations: string;
  answerUrl: string;
  answerMethod: 'GET' | 'POST';
  hangupUrl?: string;
  hangupMethod: 'GET' | 'POST';
  ringUrl?: string;
  ringMethod: 'GET' | 'POST';
}

function optionalUrl(body: Record<string, unknown>, name: string): string | undefined | Error {
  const value = field(body, name);
  if (value === undefined || value === '') return undefined;
  return isHttpUrl(value) ? value : new Error(`${name} is not a valid http(s) URL`);
}

function parseCallBody(raw: unknown): CallRequest | string {
  const body = bodyObject(raw);
  const from = field(body, 'from');
  const to = field(body, 'to');
  const answerUrl = field(body, 'answer_url');
  if (!from) return 'from parameter is required';
  if (!to) return 'to parameter is required';
  if (!answerUrl) return 'answer_url parameter is required';
  if (!isHttpUrl(answerUrl)) return 'answer_url is not a valid http(s) URL';
  const hangupUrl = optionalUrl(body, 'hangup_url');
  const ringUrl = optionalUrl(body, 'ring_url');
  if (hangupUrl instanceof Error) return hangupUrl.message;
  if (ringUrl instanceof Error) return ringUrl.message;
  const answerMethod = httpMethod(field(body, 'answer_method'));
  const hangupMethod = httpMethod(field(body, 'hangup_method'));
  const ringMethod = httpMethod(field(body, 'ring_method'));
  if (!answerMethod || !hangupMethod || !ringMethod)
    return 'answer_method, hangup_method and ring_method must be GET or POST';
  return { from, destinations: to, answerUrl, answerMethod, hangupUrl, hangupMethod, ringUrl, ringMethod };
}

function newCall(req: CallRequest, to: string, now: string, responseDropped: boolean): SimCall {
  const call: SimCall = {
    callUuid: randomUUID(),
    requestUuid: randomUUID(),
    from: req.from,
    to,
    status: 'queued',
    spokenText: '',
    speak: [],
    hangupCause: '',
    hangupCauseCode: 0,
    hangupCauseName: '',
    hangupSource: '',
    duration: 0,
    billDuration: 0,
    totalCost: '0.00000',
    firedAt: now,
    answerUrl: req.answerUrl,
    answerMethod: req.answerMethod,
    hangupUrl: req.hangupUrl,
    hangupMethod: req.hangupMethod,
    ringUrl: req.ringUrl,
    ringMethod: req.ringMethod,
  };
  if (responseDropped) call.responseDropped = true;
  return call;
}

export function makeCallHandler(ctx: Context) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const gate = await sendGate(ctx, 'call', request, reply);
    if (!gate) return reply;
    const parsed = parseCallBody(request.body);
    if (typeof parsed === 'string') return plivoError(reply, 400, parsed);
    const { valid, invalid, unique } = withTargetedInvalid(ctx.faults, splitDestinations(parsed.destinations));
    ctx.stats.requests.note(request, { destinations: [...valid, ...invalid], invalid });
    if (unique > MAX_CALL_DESTINATIONS)
      return plivoError(reply, 400, `too many destinations: at most ${MAX_CALL_DESTINATIONS} per request`);
    if (valid.length === 0)
      return plivoError(reply, 400, 'no valid destination number in to', { invalid_number: invalid });
    const now = new Date().toISOString();
    const calls = valid.map((to) => newCall(parsed, to, now, gate.dropAfterAccept));
    for (const call of calls) {
      ctx.calls.upsert(call);
      ctx.journal?.recordCall(call);
      ctx.stats.call('fired');
      ctx.voice.start(call);
    }
    await ctx.journal?.flush();
    request.log.info(
      { calls: calls.length, to: valid.slice(0, 5).map(maskPhone), dropped: gate.dropAfterAccept },
      'calls fired',
    );
    if (gate.dropAfterAccept) {
      ctx.stats.dropped('call', 'after');
      ctx.stats.requests.dropped(request, 'after');
      return dropConnection(request, reply);
    }
    const response: Record<string, unknown> = {
      api_id: randomUUID(),
      message: calls.length === 1 ? 'call fired' : 'calls fired',
      request_uuid: calls.length === 1 ? calls[0].requestUuid : calls.map((c) => c.requestUuid),
    };
    if (invalid.length > 0) response.invalid_number = invalid;
    return reply.status(201).send(response);
  };
}

/** Plivo's call detail record (`GET /Call/{call_uuid}/`); the request UUID works too here. */
export function callRecord(call: SimCall, authId: string): Record<string, unknown> {
  return {
    answer_time: apiTime(call.answeredAt),
    bill_duration: call.billDuration,
    billed_duration: call.billDuration,
    call_direction: 'outbound',
    call_duration: call.duration,
    call_state: call.status === 'completed' ? 'ANSWER' : call.status.toUpperCase().replace('-', '_'),
    call_status: call.status,
    call_uuid: call.callUuid,
    request_uuid: call.requestUuid,
    end_time: apiTime(call.endedAt),
    from_number: plivoNumber(call.from),
    hangup_cause_code: call.hangupCauseCode || null,
    hangup_cause_name: call.hangupCauseName || null,
    hangup_source: call.hangupSource || null,
    initiation_time: apiTime(call.firedAt),
    parent_call_uuid: null,
    resource_uri: `/v1/Account/${authId}/Call/${call.callUuid}/`,
    to_number: plivoNumber(call.to),
    total_amount: call.totalCost,
    total_rate: VOICE_RATE_PER_MINUTE.toFixed(5),
    stir_verification: 'Not Applicable',
  };
}

/** A call Plivo has dialled and not yet hung up: what `status=live` lists. */
function isLiveCall(call: SimCall): boolean {
  return call.status === 'ringing' || call.status === 'in-progress';
}

/** Plivo's live call detail (`GET /Call/{call_uuid}/?status=live`). */
function liveCallRecord(call: SimCall): Record<string, unknown> {
  return {
    direction: 'outbound',
    from: plivoNumber(call.from),
    to: plivoNumber(call.to),
    call_status: call.status,
    caller_name: plivoNumber(call.from),
    call_uuid: call.callUuid,
    request_uuid: call.requestUuid,
    session_start: sessionTime(call.firedAt),
    stir_verification: 'Not Applicable',
  };
}

/** Plivo's queued call detail (`GET /Call/{call_uuid}/?status=queued`). */
function queuedCallRecord(call: SimCall): Record<string, unknown> {
  return {
    direction: 'outbound',
    from: plivoNumber(call.from),
    to: plivoNumber(call.to),
    call_status: 'queued',
    caller_name: plivoNumber(call.from),
    call_uuid: call.callUuid,
    request_uuid: call.requestUuid,
  };
}

/** `2014-08-05 13:11:49.180356`, as Plivo writes a live call's session start (UTC). */
function sessionTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}000`;
}

/**
 * Plivo's three readings of one call: the call detail record (no `status`; kept here for calls
 * still going too), and, while the call lasts, its live (`status=live`) or queued
 * (`status=queued`) detail, which 404 once it is no longer live or queued.
 */
export function getCallHandler(ctx: Context) {
  return async (
    request: FastifyRequest<{ Params: { uuid: string }; Querystring: Query }>,
    reply: FastifyReply,
  ): Promise<FastifyReply> => {
    const status = request.query.status;
    if (status !== undefined && status !== 'live' && status !== 'queued')
      return plivoError(reply, 400, 'status must be live or queued');
    const call = ctx.calls.get(request.params.uuid);
    if (!call) return plivoError(reply, 404, 'not found');
    if (status === 'live')
      return isLiveCall(call)
        ? reply.send({ api_id: randomUUID(), ...liveCallRecord(call) })
        : plivoError(reply, 404, 'call not found or not live');
    if (status === 'queued')
      return call.status === 'queued'
        ? reply.send({ api_id: randomUUID(), ...queuedCallRecord(call) })
        : plivoError(reply, 404, 'call not found or not queued');
    return reply.send({ api_id: randomUUID(), ...callRecord(call, ctx.opts.authId) });
  };
}

// ---------------------------------------------------------------- call listings

const DAY_MS = 86_400_000;
/** Plivo searches this far back when no `end_time` filter is given... */
const DEFAULT_WINDOW_MS = 7 * DAY_MS;
/** ...and at most this wide a window of end times. */
const MAX_WINDOW_MS = 30 * DAY_MS;

type Compare = (value: number, bound: number) => boolean;
const COMPARISONS: Record<string, Compare> = {
  '': (v, b) => v === b,
  __gt: (v, b) => v > b,
  __gte: (v, b) => v >= b,
  __lt: (v, b) => v < b,
  __lte: (v, b) => v <= b,
};

/** Exact number or prefix, as Plivo matches `from_number` and `to_number` (with or without the +). */
function numberMatches(number: string, wanted: string): boolean {
  return plivoNumber(number).startsWith(wanted.trim().replace(/^\+/, ''));
}

/** `call_direction`: our calls are all outbound. */
function directionFilter(query: Query): ((call: SimCall) => boolean) | string {
  const direction = query.call_direction;
  if (direction === undefined) return () => true;
  if (direction !== 'inbound' && direction !== 'outbound') return 'call_direction must be inbound or outbound';
  return () => direction === 'outbound';
}

function numberFilters(query: Query): Array<(call: SimCall) => boolean> {
  const checks: Array<(call: SimCall) => boolean> = [];
  if (query.from_number !== undefined) checks.push((c) => numberMatches(c.from, query.from_number!));
  if (query.to_number !== undefined) checks.push((c) => numberMatches(c.to, query.to_number!));
  return checks;
}

/**
 * The filter of Plivo's call detail records (`GET /Call/`), or the message to answer 400 with:
 * `end_time` and `bill_duration` in their five forms, numbers exact or by prefix, direction,
 * hangup cause and source, parent call; the default search window of 7 days without an
 * `end_time` filter, 30 days from or to a one-sided one, and no wider range than 30 days.
 */
function recordFilter(query: Query, now: number): ((call: SimCall) => boolean) | string {
  const direction = directionFilter(query);
  if (typeof direction === 'string') return direction;
  const checks: Array<(call: SimCall) => boolean> = [isFinalCallRecord, direction, ...numberFilters(query)];
  let lower: number | undefined;
  let upper: number | undefined;
  let exactEnd = false;
  for (const [suffix, compare] of Object.entries(COMPARISONS)) {
    const end = query[`end_time${suffix}`];
    if (end !== undefined) {
      const bound = parseFilterTime(end);
      if (Number.isNaN(bound)) return `end_time${suffix} must look like YYYY-MM-DD HH:MM[:ss[.uuuuuu]]`;
      if (suffix === '') {
        exactEnd = true;
        checks.push((c) => Math.floor(Date.parse(c.endedAt!) / 1000) === Math.floor(bound / 1000));
      } else {
        checks.push((c) => compare(Date.parse(c.endedAt!), bound));
        if (suffix.startsWith('__g')) lower = Math.max(lower ?? -Infinity, bound);
        else upper = Math.min(upper ?? Infinity, bound);
      }
    }
    const billed = query[`bill_duration${suffix}`];
    if (billed !== undefined) {
      if (!/^\d+$/.test(billed)) return `bill_duration${suffix} must be a whole number of seconds`;
      checks.push((c) => compare(c.billDuration, Number(billed)));
    }
  }
  if (!exactEnd) {
    if (lower !== undefined && upper !== undefined && upper - lower > MAX_WINDOW_MS)
      return 'the end_time range may span at most 30 days';
    const from = lower ?? (upper !== undefined ? upper - MAX_WINDOW_MS : now - DEFAULT_WINDOW_MS);
    const to = upper ?? (lower !== undefined ? lower + MAX_WINDOW_MS : Infinity);
    checks.push((c) => Date.parse(c.endedAt!) >= from && Date.parse(c.endedAt!) <= to);
  }
  if (query.hangup_cause_code !== undefined) checks.push((c) => String(c.hangupCauseCode) === query.hangup_cause_code);
  if (query.hangup_source !== undefined) checks.push((c) => c.hangupSource === query.hangup_source);
  // Every call here is an A leg: none has a parent.
  if (query.parent_call_uuid !== undefined) checks.push(() => false);
  return (c) => checks.every((check) => check(c));
}

/** A call with a detail record: ended, with its end time. */
function isFinalCallRecord(call: SimCall): boolean {
  return isFinalCall(call.status) && call.endedAt !== undefined;
}

/**
 * `GET /Call/`: without `status`, the detail records of ended calls, newest first, 20 a page
 * (`api_id`, `meta`, `objects`); with `status=live`, the UUIDs of the calls going on now
 * (filters `call_direction`, `from_number`, `to_number`); with `status=queued`, those of the
 * calls accepted and not yet dialled (Plivo's queued listing takes no filter). Both answer
 * `{api_id, calls: [call_uuid, ...]}`.
 */
export function listCallsHandler(ctx: Context) {
  return async (request: FastifyRequest<{ Querystring: Query }>, reply: FastifyReply): Promise<FastifyReply> => {
    const query = request.query;
    const all = [...ctx.calls.all()];
    if (query.status === 'live') {
      const direction = directionFilter(query);
      if (typeof direction === 'string') return plivoError(reply, 400, direction);
      const checks = [isLiveCall, direction, ...numberFilters(query)];
      return reply.send({
        api_id: randomUUID(),
        calls: all.filter((c) => checks.every((check) => check(c))).map((c) => c.callUuid),
      });
    }
    if (query.status === 'queued') {
      return reply.send({
        api_id: randomUUID(),
        calls: all.filter((c) => c.status === 'queued').map((c) => c.callUuid),
      });
    }
    if (query.status !== undefined)
      return plivoError(reply, 400, 'status must be live or queued (or absent, for the records of ended calls)');
    const limit = parseIntParam(query.limit, MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE);
    if (limit === undefined) return plivoError(reply, 400, `limit must be an integer between 1 and ${MAX_PAGE_SIZE}`);
    const offset = parseIntParam(query.offset, 0, 0, Number.MAX_SAFE_INTEGER);
    if (offset === undefined) return plivoError(reply, 400, 'offset must be a non-negative integer');
    const filter = recordFilter(query, Date.now());
    if (typeof filter === 'string') return plivoError(reply, 400, filter);
    const matching = all.filter(filter).sort((a, b) => Date.parse(b.endedAt!) - Date.parse(a.endedAt!));
    const { authId } = ctx.opts;
    const resource = `/v1/Account/${authId}/Call/`;
    return reply.send({
      api_id: randomUUID(),
      meta: {
        limit,
        offset,
        total_count: matching.length,
        next: offset + limit < matching.length ? pageLink(resource, query, limit, offset + limit) : null,
        previous: offset > 0 ? pageLink(resource, query, limit, Math.max(0, offset - limit)) : null,
      },
      objects: matching.slice(offset, offset + limit).map((c) => callRecord(c, authId)),
    });
  };
}
