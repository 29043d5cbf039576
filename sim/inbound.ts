/**
 * Inbound SMS: `POST /control/inbound` makes the simulator deliver a subscriber's message
 * to the app's message URL exactly as Plivo does (form-encoded, numbers without '+',
 * signature V2), records it, and reports the app's answer so a test can assert on it.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { failureReason, signedRequest } from './callbacks';
import { bodyObject, field, httpMethod, isHttpUrl, plivoError, type Context } from './context';
import { maskNumbersIn, maskPhone, plivoNumber } from './phone';
import { segmentSms } from './sms-units';
import type { InboundMessage } from './store';

/** Inbound SMS cost nothing in the simulator. */
const INBOUND_RATE = '0.00000';

/** `+39 333 123 4567`, `393331234567` → `+393331234567`; undefined when not a number. */
function normalizeNumber(raw: string): string | undefined {
  const compact = raw.replace(/[\s().-]/g, '');
  return /^\+?\d{3,15}$/.test(compact) ? `+${compact.replace(/^\+/, '')}` : undefined;
}

export interface InboundRequest {
  from: string;
  to: string;
  text: string;
  url: string;
  method: 'GET' | 'POST';
  messageIntent: string;
}

function parseInbound(raw: unknown): InboundRequest | string {
  const body = bodyObject(raw);
  const rawFrom = field(body, 'from');
  const rawTo = field(body, 'to');
  const text = field(body, 'text');
  const url = field(body, 'url');
  if (!rawFrom) return 'from (the subscriber number) is required';
  if (!rawTo) return 'to (our number) is required';
  if (text === undefined || text === '') return 'text is required';
  if (!url || !isHttpUrl(url)) return 'url (the app message URL) must be an http(s) URL';
  const from = normalizeNumber(rawFrom);
  const to = normalizeNumber(rawTo);
  if (!from) return `from "${rawFrom}" is not a phone number`;
  if (!to) return `to "${rawTo}" is not a phone number`;
  const method = httpMethod(field(body, 'method'));
  if (!method) return 'method must be GET or POST';
  return { from, to, text, url, method, messageIntent: field(body, 'messageIntent') ?? '' };
}

/** The fields Plivo posts to the message URL of the number that received an SMS. */
export function inboundParams(message: InboundMessage): Record<string, string> {
  return {
    From: plivoNumber(message.from),
    To: plivoNumber(message.to),
    Type: 'sms',
    Text: message.text,
    MessageUUID: message.messageUuid,
    Units: String(message.units),
    TotalRate: INBOUND_RATE,
    TotalAmount: INBOUND_RATE,
    MessageIntent: message.messageIntent,
  };
}

export function injectInboundHandler(ctx: Context) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const parsed = parseInbound(request.body);
    if (typeof parsed === 'string') return plivoError(reply, 400, parsed);
    const { units, encoding } = segmentSms(parsed.text);
    const message: InboundMessage = {
      messageUuid: randomUUID(),
      from: parsed.from,
      to: parsed.to,
      text: parsed.text,
      units,
      encoding,
      messageIntent: parsed.messageIntent,
      receivedAt: new Date().toISOString(),
      url: parsed.url,
      method: parsed.method,
    };
    // One attempt, no retries: the caller wants to see exactly what the app answered.
    const signal = new AbortController().signal;
    let result: Record<string, unknown>;
    let status = 200;
    try {
      const response = await signedRequest({
        url: parsed.url,
        method: parsed.method,
        params: inboundParams(message),
        authToken: ctx.opts.authToken,
        signal,
      });
      message.responseStatus = response.status;
      result = {
        messageUuid: message.messageUuid,
        status: response.status,
        contentType: response.contentType,
        body: response.body,
      };
    } catch (err) {
      message.error = failureReason(err);
      status = 502;
      result = { messageUuid: message.messageUuid, error: `the message URL could not be reached: ${message.error}` };
    }
    ctx.inbound.add(message);
    ctx.journal?.recordInbound(message);
    ctx.stats.inboundInjected(message.responseStatus);
    await ctx.journal?.flush();
    request.log.info(
      {
        from: maskPhone(message.from),
        url: maskNumbersIn(parsed.url),
        status: message.responseStatus,
        error: message.error,
      },
      'inbound SMS injected',
    );
    return reply.status(status).send(result);
  };
}
