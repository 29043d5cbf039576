/**
 * What the channels that send one request per recipient (voice, e-mail, webhook) share: firing the
 * batch with bounded concurrency, stopping when the provider is in trouble, and turning the
 * per-recipient results into the batch answer of `Channel.send`.
 */
import { ChannelError, type OutboundMessage, type SendOutcome } from './channel';

/** How one recipient's send ended. `failed` means the provider or the connection, not the recipient. */
export type RecipientResult =
  | { kind: 'accepted'; providerMessageId?: string }
  | { kind: 'invalid'; error: string }
  | { kind: 'failed'; error: ChannelError };

/**
 * Thrown when a batch failed part-way: some recipients were already accepted (a phone is ringing,
 * a mail is sent) and must not be sent again. `outcomes` holds the settled recipients, `unsent` the
 * delivery ids to try again. A caller that treats it as a plain ChannelError and retries the whole
 * batch would reach the `outcomes` recipients twice.
 */
export class PartialSendError extends ChannelError {
  constructor(
    cause: ChannelError,
    readonly outcomes: SendOutcome[],
    readonly unsent: string[],
  ) {
    super(
      `${cause.message} (${outcomes.length} settled, ${unsent.length} not sent)`,
      cause.retryable,
      cause.retryAfterMs,
      cause.status,
    );
    this.name = 'PartialSendError';
  }
}

export interface SendEachOptions {
  /** Sends in flight at once. */
  concurrency: number;
  /**
   * True when every message goes through one provider (Plivo, one SMTP relay): after its first
   * failure no new send starts, since a provider answering 429 or 5xx should not receive more.
   * False when each message has its own receiver (webhooks): one being down stops nobody else.
   */
  stopOnFailure: boolean;
}

/**
 * Sends each message with bounded concurrency. Returns one outcome per message, in batch order;
 * throws a ChannelError if nothing was accepted and something failed, and a PartialSendError if
 * some were accepted while others failed.
 */
export async function sendEach(
  batch: OutboundMessage[],
  options: SendEachOptions,
  sendOne: (message: OutboundMessage) => Promise<RecipientResult>,
): Promise<SendOutcome[]> {
  const results: (RecipientResult | undefined)[] = new Array(batch.length);
  let next = 0;
  let stopped = false;

  async function worker(): Promise<void> {
    while (!stopped && next < batch.length) {
      const i = next++;
      const result = await sendOne(batch[i]!).catch((err: unknown): RecipientResult => ({
        kind: 'failed',
        error: asChannelError(err),
      }));
      results[i] = result;
      if (result.kind === 'failed' && options.stopOnFailure) stopped = true;
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, batch.length)) }, worker));

  const outcomes: SendOutcome[] = [];
  const unsent: string[] = [];
  const failures: ChannelError[] = [];
  batch.forEach((message, i) => {
    const r = results[i];
    if (r?.kind === 'accepted')
      outcomes.push({
        deliveryId: message.deliveryId,
        outcome: 'accepted',
        ...(r.providerMessageId ? { providerMessageId: r.providerMessageId } : {}),
      });
    else if (r?.kind === 'invalid')
      outcomes.push({ deliveryId: message.deliveryId, outcome: 'invalid', error: r.error });
    else {
      unsent.push(message.deliveryId);
      if (r?.kind === 'failed') failures.push(r.error);
    }
  });
  if (failures.length === 0) return outcomes;

  const cause = worstOf(failures);
  if (outcomes.some((o) => o.outcome === 'accepted')) throw new PartialSendError(cause, outcomes, unsent);
  // Nothing reached anyone: retrying the whole batch is safe, invalid ones are simply found again.
  throw cause;
}

/** A non-retryable failure wins (it needs a person); otherwise the longest Retry-After. */
function worstOf(failures: ChannelError[]): ChannelError {
  const fatal = failures.find((f) => !f.retryable);
  if (fatal) return fatal;
  return failures.reduce((a, b) => ((b.retryAfterMs ?? 0) > (a.retryAfterMs ?? 0) ? b : a));
}

function asChannelError(err: unknown): ChannelError {
  if (err instanceof ChannelError) return err;
  // An unexpected throw is most often a network error surfacing late; let the caller's retry policy bound it.
  return new ChannelError(describeError(err), true);
}

/** `fetch failed` says nothing: the cause's code (ECONNREFUSED, ETIMEDOUT...) does. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === 'TimeoutError') return 'no answer in time';
  const cause = err.cause as { code?: string; message?: string } | undefined;
  return cause?.code ?? cause?.message ?? err.message;
}

/**
 * Retry-After in milliseconds, from either form HTTP allows: delay-seconds or an HTTP date.
 * Undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The HTTP statuses after which the same request can succeed later. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}
