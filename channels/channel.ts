/**
 * The one interface every outbound channel implements (SMS, voice, email, webhook, public status
 * feed), so that the delivery activities treat them alike and write the same delivery records.
 */
import type { Language } from '../domain/types';

/** `x` and `mastodon` are reached through the status feed (channels/social), never planned on their own. */
export type ChannelName = 'sms' | 'voice' | 'email' | 'webhook' | 'status' | 'x' | 'mastodon';

export interface OutboundMessage {
  /** The delivery record this message fulfils; channels that can carry a reference should. */
  deliveryId: string;
  /** Phone number (E.164) for sms and voice, e-mail address, webhook URL; unused by the status feed. */
  to: string;
  text: string;
  /** E-mail subject, status-feed title. */
  subject?: string;
  language: Language;
  /** Free-form facts a channel may use (incident id, kind, areas), e.g. in a webhook's JSON. */
  meta?: Record<string, unknown>;
  /**
   * The send request (store/send-requests.ts) this message goes out in. A provider that calls back
   * per request (Plivo's receipt URL) names it there, so that a receipt leads to its answer by `_id`.
   */
  request?: string;
}

export type SendOutcome =
  /** The provider took the message; a receipt may follow. */
  | { deliveryId: string; outcome: 'accepted'; providerMessageId?: string; units?: number }
  /** This recipient can never be reached on this channel (invalid number or address): do not retry, fall back. */
  | { deliveryId: string; outcome: 'invalid'; error: string };

export interface Channel {
  readonly name: ChannelName;
  /** How many messages one call of `send` takes at most. */
  readonly maxBatch: number;
  /**
   * Sends a batch. Returns one outcome per message. Throws `ChannelError` when the whole batch
   * failed: `retryable` says whether trying again later can succeed.
   */
  send(batch: OutboundMessage[]): Promise<SendOutcome[]>;
}

/** A failure of a whole send. `retryAfterMs` carries a provider's Retry-After when it gave one. */
export class ChannelError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ChannelError';
  }
}

/**
 * A provider that can say which messages (or calls) it accepted: after a request whose answer
 * was lost, the delivery activities ask it before sending again (Plivo's message list, its call
 * listings). Per number, the provider's ids, newest first.
 */
export interface AcceptedLister {
  acceptedSince(since: Date, to: Set<string>, pacing?: ListPacing): Promise<Map<string, string[]>>;
}

/**
 * How a listing keeps to the account's request rate: a listing of 10,000 messages is 500 requests,
 * which count against the same limit as the sends (Plivo: 300 per 5 s by default).
 */
export interface ListPacing {
  /** Called before each request of the listing: waits for a share of the account's requests, says "still alive". */
  beforeRequest(): Promise<void>;
}

export function canListAccepted(channel: unknown): channel is AcceptedLister {
  return typeof (channel as Partial<AcceptedLister> | undefined)?.acceptedSince === 'function';
}
