/** The HTTP side both social networks share: one JSON POST, and what a failed answer means. */
import { ChannelError } from '../channel';
import { describeError, isRetryableStatus, parseRetryAfter } from '../per-recipient';

export interface JsonAnswer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** POSTs JSON; a request that got no answer throws a retryable ChannelError without a status. */
export async function postJson(
  what: string,
  url: string,
  headers: Record<string, string>,
  body: unknown,
  timeoutMs: number,
): Promise<JsonAnswer> {
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'Avviso/1', ...headers },
      body: JSON.stringify(body),
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    text = await res.text();
  } catch (err) {
    throw new ChannelError(`${what} unreachable: ${describeError(err)}`, true);
  }
  let parsed: Record<string, unknown> = {};
  try {
    parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    // An HTML error page from a proxy: the status says enough.
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/**
 * When the network says to come back: Retry-After, else its rate-limit reset (X: epoch seconds in
 * `x-rate-limit-reset`; Mastodon: an ISO time in `X-RateLimit-Reset`).
 */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const after = parseRetryAfter(headers.get('retry-after'), now);
  if (after !== undefined) return after;
  const reset = headers.get('x-rate-limit-reset') ?? headers.get('x-ratelimit-reset');
  if (!reset) return undefined;
  const at = /^\d+$/.test(reset.trim()) ? Number(reset) * 1000 : Date.parse(reset);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The failure an answer that is not a success stands for: retryable on 408, 425, 429 and 5xx. */
export function answerFailure(what: string, a: JsonAnswer, reason: string | undefined): ChannelError {
  const message = `${what} answered ${a.status}${reason ? `: ${reason}` : ''}`;
  return isRetryableStatus(a.status)
    ? new ChannelError(message, true, retryAfterMs(a.headers), a.status)
    : new ChannelError(message, false, undefined, a.status);
}
