/**
 * The SMS channel: one text to up to 1,000 numbers per request through the real `plivo` SDK,
 * pointed at Plivo or at any server that speaks its Message API (the simulator in dev and tests).
 */
import { Client } from 'plivo';
import type { Channel, ListPacing, OutboundMessage, SendOutcome } from './channel';
import { classifyPlivoError, installRetryAfterCapture, invalidNumbersIn } from './plivo-errors';

export interface PlivoSettings {
  authId: string;
  authToken: string;
  baseUrl: string;
  sender: string;
}

/** A page of the message list refused with 429 is asked again this many times (after its Retry-After) before the listing fails. */
const LIST_PAGE_TRIES_ON_429 = 5;

/** Plivo takes at most this many destinations in one request. */
export const PLIVO_MAX_DESTINATIONS = 1000;

export function createPlivoClient(s: PlivoSettings): Client {
  installRetryAfterCapture();
  // The SDK's `url` option replaces the whole account base; nothing else moves it off api.plivo.com.
  return new Client(s.authId, s.authToken, { url: `${s.baseUrl}/v1/Account/${s.authId}`, timeout: 30_000 });
}

export interface SmsChannelOptions {
  /**
   * Where Plivo posts delivery receipts; undefined asks for none. A batch whose messages go out in
   * one send request gets that request's id as the URL's last segment (signed by Plivo with the rest
   * of the path): the receipt applier then reads the answers of that request alone, by `_id`.
   */
  statusCallbackUrl?: string;
}

/** The receipt URL for a batch: with its send request's id when all its messages share one. */
export function statusCallbackFor(base: string, batch: OutboundMessage[]): string {
  const request = batch[0]?.request;
  if (!request || batch.some((m) => m.request !== request)) return base;
  return `${base.replace(/\/+$/, '')}/${encodeURIComponent(request)}`;
}

export class PlivoSmsChannel implements Channel {
  readonly name = 'sms' as const;
  readonly maxBatch = PLIVO_MAX_DESTINATIONS;

  constructor(
    private readonly settings: PlivoSettings,
    private readonly options: SmsChannelOptions = {},
    private readonly client: Client = createPlivoClient(settings),
  ) {}

  /**
   * Sends one request. Every message of the batch must have the same text (Plivo's bulk send
   * carries one text); callers group by text. Throws a `ChannelError` when the request failed.
   */
  async send(batch: OutboundMessage[]): Promise<SendOutcome[]> {
    if (batch.length === 0) return [];
    if (batch.length > this.maxBatch)
      throw new Error(`at most ${this.maxBatch} numbers per request, got ${batch.length}`);
    const text = batch[0]!.text;
    if (batch.some((m) => m.text !== text))
      throw new Error('one SMS request carries one text: group messages by text before sending');

    // Plivo removes duplicate destinations; two records for one number would get one message.
    const byPhone = new Map<string, OutboundMessage[]>();
    for (const m of batch) byPhone.set(m.to, [...(byPhone.get(m.to) ?? []), m]);
    const phones = [...byPhone.keys()];
    let res;
    try {
      res = await this.client.messages.create(
        this.settings.sender,
        phones.map((p) => p.replace(/^\+/, '')),
        text,
        {
          ...(this.options.statusCallbackUrl
            ? { url: statusCallbackFor(this.options.statusCallbackUrl, batch), method: 'POST' as const }
            : {}),
        },
      );
    } catch (err) {
      const e = classifyPlivoError(err);
      // Plivo refuses a request none of whose numbers is valid (400, every one in `invalid_number`):
      // that is an answer about the recipients, not a failed request; they must not be retried.
      if (e.status === 400 && invalidNumbersIn(err) === phones.length) {
        return batch.map((m): SendOutcome => ({
          deliveryId: m.deliveryId,
          outcome: 'invalid',
          error: 'Plivo reports the number as invalid',
        }));
      }
      throw e;
    }
    const invalid = new Set((res.invalid_number ?? []).map((n) => `+${String(n).replace(/^\+/, '')}`));
    const valid = phones.filter((p) => !invalid.has(p));
    // Plivo answers with one uuid per valid destination, in the order they were given.
    if (res.messageUuid.length !== valid.length) {
      throw new Error(`Plivo returned ${res.messageUuid.length} message ids for ${valid.length} valid numbers`);
    }
    const uuidOf = new Map(valid.map((p, i) => [p, res.messageUuid[i]!]));
    return batch.map((m): SendOutcome => {
      const uuid = uuidOf.get(m.to);
      if (!uuid) return { deliveryId: m.deliveryId, outcome: 'invalid', error: 'Plivo reports the number as invalid' };
      // The first record of a repeated number carries the message; the others point at it too.
      return { deliveryId: m.deliveryId, outcome: 'accepted', providerMessageId: uuid };
    });
  }

  /**
   * What Plivo says became of one message: its state (queued, sent, delivered, undelivered,
   * failed), parts and amount. Asked when a receipt is overdue: callbacks can be lost, and
   * resending a message that was in fact delivered would be a duplicate.
   */
  async messageState(
    messageUuid: string,
  ): Promise<{ state: string; units?: number; totalAmount?: string; errorCode?: string }> {
    try {
      const m = (await this.client.messages.get(messageUuid)) as {
        messageState?: string;
        units?: string | number;
        totalAmount?: string;
        errorCode?: string;
      };
      const units = m.units === undefined || m.units === '' ? undefined : Number(m.units);
      return {
        state: String(m.messageState ?? ''),
        units,
        totalAmount: m.totalAmount ? String(m.totalAmount) : undefined,
        errorCode: m.errorCode ? String(m.errorCode) : undefined,
      };
    } catch (err) {
      throw classifyPlivoError(err);
    }
  }

  /**
   * Messages Plivo accepted for these numbers since `since`: per number, every message id, newest
   * first, through the message list API (20 a page, as Plivo serves it). Used to reconcile after a
   * send whose answer was lost; the caller tells which of them it knows already (a number may have
   * had other messages from us in that time). Each page waits for `pacing` first; a page refused
   * for the account's rate (429) is asked again after Plivo's Retry-After: a listing of hundreds of
   * pages beside the sends would otherwise fail at its first 429 and start over.
   */
  async acceptedSince(since: Date, phones: Set<string>, pacing?: ListPacing): Promise<Map<string, string[]>> {
    const found = new Map<string, string[]>();
    const gte = since.toISOString().replace('T', ' ').replace('Z', '').slice(0, 19);
    for (let offset = 0; ; offset += 20) {
      const page = await this.listPage(gte, offset, pacing);
      for (const m of page) {
        const to = `+${String(m.toNumber ?? m.to_number ?? '').replace(/^\+/, '')}`;
        const uuid = String(m.messageUuid ?? m.message_uuid ?? '');
        if (!phones.has(to) || !uuid) continue;
        const list = found.get(to) ?? [];
        if (!list.includes(uuid)) list.push(uuid);
        found.set(to, list);
      }
      if (page.length < 20) return found;
    }
  }

  private async listPage(gte: string, offset: number, pacing?: ListPacing) {
    for (let tries = 1; ; tries++) {
      await pacing?.beforeRequest();
      try {
        return await this.client.messages.list({
          message_direction: 'outbound',
          message_time__gte: gte,
          limit: 20,
          offset,
        });
      } catch (err) {
        const e = classifyPlivoError(err);
        if (e.status !== 429 || tries >= LIST_PAGE_TRIES_ON_429) throw e;
        await new Promise((resolve) => setTimeout(resolve, e.retryAfterMs ?? 5000));
      }
    }
  }
}
