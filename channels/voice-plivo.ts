/**
 * The voice channel: one Plivo call per recipient, which reads the message aloud. The call is
 * fired through Plivo's Call API; when the phone is answered Plivo fetches our answer URL
 * (api/routes/voice.ts) for the words to speak, and tells our hangup URL how the call ended.
 *
 * The plivo SDK hard-codes its voice hosts (it ignores the `url` option), so this module speaks
 * the Call API with node's fetch: that way the simulator can stand in for Plivo here as for SMS.
 */
import { ChannelError, type Channel, type OutboundMessage, type SendOutcome } from './channel';
import { describeError, isRetryableStatus, parseRetryAfter, sendEach, type RecipientResult } from './per-recipient';
import { maskPhone, toE164 } from '../domain/phone';

export interface PlivoVoiceSettings {
  authId: string;
  authToken: string;
  /** Plivo's API (https://api.plivo.com), or any server that speaks its Call API. */
  baseUrl: string;
  /** The number the call comes from: a Plivo number of ours, E.164. */
  callerId: string;
  /** Our API as Plivo reaches it: the answer and hangup URLs are built on it. */
  publicUrl: string;
  /** Calls being fired at once (default 5). Plivo queues calls above the account's calls per second. */
  concurrency?: number;
  /** How long one Call API request may take (default 15 s). */
  requestTimeoutMs?: number;
}

export const VOICE_ANSWER_PATH = '/v1/voice/answer';
export const VOICE_HANGUP_PATH = '/v1/voice/hangup';

/** Where Plivo asks what to say for this delivery; the id travels URL-encoded in the path. */
export function voiceAnswerUrl(publicUrl: string, deliveryId: string): string {
  return `${publicUrl}${VOICE_ANSWER_PATH}/${encodeURIComponent(deliveryId)}`;
}

export function voiceHangupUrl(publicUrl: string, deliveryId: string): string {
  return `${publicUrl}${VOICE_HANGUP_PATH}/${encodeURIComponent(deliveryId)}`;
}

/** How long to wait after Plivo refused our credentials: someone has to fix them first. */
const CREDENTIALS_RETRY_MS = 60_000;

/** Parameters of our own request: a 4xx naming one of them is our mistake, not the recipient's number. */
const OWN_PARAMETERS = /\b(from|caller|answer_url|answer_method|hangup_url|hangup_method)\b/i;

export class PlivoVoiceChannel implements Channel {
  readonly name = 'voice' as const;
  /** Each message is its own call; this only bounds how long one `send` takes. */
  readonly maxBatch = 50;
  private readonly callUrl: string;
  private readonly authorization: string;

  constructor(private readonly settings: PlivoVoiceSettings) {
    this.callUrl = `${settings.baseUrl.replace(/\/+$/, '')}/v1/Account/${encodeURIComponent(settings.authId)}/Call/`;
    this.authorization = `Basic ${Buffer.from(`${settings.authId}:${settings.authToken}`).toString('base64')}`;
  }

  send(batch: OutboundMessage[]): Promise<SendOutcome[]> {
    return sendEach(batch, { concurrency: this.settings.concurrency ?? 5, stopOnFailure: true }, (m) => this.call(m));
  }

  private async call(message: OutboundMessage): Promise<RecipientResult> {
    let to: string;
    try {
      to = toE164(message.to);
    } catch {
      // toE164's own message quotes the number in full; ours must not.
      return { kind: 'invalid', error: `not a valid phone number: ${maskPhone(message.to)}` };
    }
    const publicUrl = this.settings.publicUrl.replace(/\/+$/, '');
    const body = {
      // Plivo wants numbers without the leading '+'.
      from: this.settings.callerId.replace(/^\+/, ''),
      to: to.replace(/^\+/, ''),
      answer_url: voiceAnswerUrl(publicUrl, message.deliveryId),
      answer_method: 'POST',
      hangup_url: voiceHangupUrl(publicUrl, message.deliveryId),
      hangup_method: 'POST',
    };
    let res: Response;
    try {
      res = await fetch(this.callUrl, {
        method: 'POST',
        headers: { authorization: this.authorization, 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.settings.requestTimeoutMs ?? 15_000),
      });
    } catch (err) {
      return { kind: 'failed', error: new ChannelError(`Plivo Call API unreachable: ${describeError(err)}`, true) };
    }
    const answer = await readJson(res);
    if (res.ok) return { kind: 'accepted', providerMessageId: requestUuid(answer) };

    const reason = maskNumbers(typeof answer.error === 'string' ? answer.error : `HTTP ${res.status}`);
    if (isRetryableStatus(res.status)) {
      return {
        kind: 'failed',
        error: new ChannelError(
          `Plivo Call API answered ${res.status}: ${reason}`,
          true,
          parseRetryAfter(res.headers.get('retry-after')),
          res.status,
        ),
      };
    }
    if (res.status === 401 || res.status === 403) {
      // As for SMS (plivo-errors.ts): nothing works until someone fixes the credentials, but giving
      // up would drop the notices; retry slowly and say loudly what is wrong.
      return {
        kind: 'failed',
        error: new ChannelError(
          `Plivo refused the credentials (${res.status}): check PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN`,
          true,
          CREDENTIALS_RETRY_MS,
          res.status,
        ),
      };
    }
    if (res.status === 404 || OWN_PARAMETERS.test(reason)) {
      // No such account, or our own parameters are wrong: every call would fail alike.
      return {
        kind: 'failed',
        error: new ChannelError(
          `Plivo Call API rejected the request (${res.status}): ${reason}; check PLIVO_BASE_URL, the voice caller id and AVVISO_PUBLIC_URL`,
          false,
          undefined,
          res.status,
        ),
      };
    }
    return { kind: 'invalid', error: `Plivo refused the call to ${maskPhone(to)} (${res.status}): ${reason}` };
  }

  /**
   * Calls Plivo took for these numbers since `since`: per number, the request UUID of each (the
   * id `send` records; a call detail record without one gives its call UUID), newest first.
   * Used to reconcile after a request whose answer was lost. A call is in one of three listings
   * depending on how far it got, so they are read in the order a call moves through them
   * (queued, live, then the records of ended calls): a call that moves on while we read is
   * found in the next one. The caller tells which of them it knows already (a number may have
   * had other calls from us in that time).
   */
  async acceptedSince(since: Date, phones: Set<string>): Promise<Map<string, string[]>> {
    const found = new Map<string, string[]>();
    const add = (to: unknown, requestUuid: unknown, callUuid: unknown, startedAt: unknown) => {
      const phone = `+${String(to ?? '').replace(/^\+/, '')}`;
      const id =
        typeof requestUuid === 'string' && requestUuid ? requestUuid : typeof callUuid === 'string' ? callUuid : '';
      if (!phones.has(phone) || !id) return;
      // A call placed before the reservation cannot be the one reserved (Plivo's times are to the second).
      const started = typeof startedAt === 'string' ? plivoTime(startedAt) : NaN;
      if (!Number.isNaN(started) && started < Math.floor(since.getTime() / 1000) * 1000) return;
      const list = found.get(phone) ?? [];
      if (!list.includes(id)) list.push(id);
      found.set(phone, list);
    };
    // With one number, Plivo can filter for us (live calls and call records take to_number).
    const only: Record<string, string> = phones.size === 1 ? { to_number: [...phones][0]!.replace(/^\+/, '') } : {};

    for (const status of ['queued', 'live'] as const) {
      const listing = await this.read('', {
        status,
        ...(status === 'live' ? { call_direction: 'outbound', ...only } : {}),
      });
      const uuids = Array.isArray(listing.calls) ? listing.calls.filter((u): u is string => typeof u === 'string') : [];
      for (const uuid of uuids) {
        // Gone from the listing since (a queued call dialled, a live one hung up): the next listing has it.
        const detail = await this.read(`${encodeURIComponent(uuid)}/`, { status }, true);
        if (detail)
          add(detail.to, detail.request_uuid, detail.call_uuid, status === 'live' ? detail.session_start : undefined);
      }
    }
    const gte = since.toISOString().replace('T', ' ').slice(0, 19);
    for (let offset = 0; ; offset += PAGE) {
      const page = await this.read('', {
        call_direction: 'outbound',
        end_time__gte: gte,
        ...only,
        limit: String(PAGE),
        offset: String(offset),
      });
      const objects = Array.isArray(page.objects) ? (page.objects as Record<string, unknown>[]) : [];
      for (const c of objects) add(c.to_number, c.request_uuid, c.call_uuid, c.initiation_time);
      const next = (page.meta as { next?: unknown } | undefined)?.next;
      if (objects.length < PAGE || !next) return found;
    }
  }

  /** One GET of the Call API (`path` under `/Call/`); with `missingOk`, a 404 gives null. Throws a ChannelError otherwise. */
  private async read(
    path: string,
    query: Record<string, string>,
    missingOk: true,
  ): Promise<Record<string, unknown> | null>;
  private async read(path: string, query: Record<string, string>): Promise<Record<string, unknown>>;
  private async read(
    path: string,
    query: Record<string, string>,
    missingOk = false,
  ): Promise<Record<string, unknown> | null> {
    const url = `${this.callUrl}${path}?${new URLSearchParams(query).toString()}`;
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { authorization: this.authorization, accept: 'application/json' },
        signal: AbortSignal.timeout(this.settings.requestTimeoutMs ?? 15_000),
      });
    } catch (err) {
      throw new ChannelError(`Plivo Call API unreachable: ${describeError(err)}`, true);
    }
    const answer = await readJson(res);
    if (res.ok) return answer;
    if (res.status === 404 && missingOk) return null;
    const reason = maskNumbers(typeof answer.error === 'string' ? answer.error : `HTTP ${res.status}`);
    const what = `Plivo Call API listing (GET /Call/${path}?status=${query.status ?? ''})`;
    if (isRetryableStatus(res.status))
      throw new ChannelError(
        `${what} answered ${res.status}: ${reason}`,
        true,
        parseRetryAfter(res.headers.get('retry-after')),
        res.status,
      );
    if (res.status === 401 || res.status === 403)
      throw new ChannelError(
        `Plivo refused the credentials (${res.status}): check PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN`,
        true,
        CREDENTIALS_RETRY_MS,
        res.status,
      );
    throw new ChannelError(
      `${what} answered ${res.status}: ${reason}; check PLIVO_BASE_URL`,
      false,
      undefined,
      res.status,
    );
  }
}

/** Plivo's call listings serve at most 20 records a page. */
const PAGE = 20;

/** Plivo's times: `2024-05-01 10:00:00+00:00`, `2014-08-05 13:11:49.180356` (UTC when no offset is given). Epoch ms, or NaN. */
function plivoTime(text: string): number {
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?$/.exec(text.trim());
  if (!m) return NaN;
  const millis = (m[3] ?? '').padEnd(3, '0').slice(0, 3);
  const zone = !m[4] || m[4] === 'Z' ? 'Z' : m[4].includes(':') ? m[4] : `${m[4].slice(0, 3)}:${m[4].slice(3)}`;
  return Date.parse(`${m[1]}T${m[2]}.${millis}${zone}`);
}

async function readJson(res: Response): Promise<Record<string, unknown>> {
  const text = await res.text();
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** One `to` gives one uuid; Plivo answers an array when a request names several numbers. */
function requestUuid(answer: Record<string, unknown>): string | undefined {
  const uuid = Array.isArray(answer.request_uuid) ? answer.request_uuid[0] : answer.request_uuid;
  return typeof uuid === 'string' ? uuid : undefined;
}

/** Provider error texts may quote the number: mask anything that looks like one. */
function maskNumbers(text: string): string {
  return text.replace(/\+?\d{6,}/g, (n) => maskPhone(n));
}
