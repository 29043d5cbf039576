import { createHmac, randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

/** Plivo signs over the URL as configured, minus query string (and fragment). */
export function signatureBaseUrl(url: string): string {
  return url.split('#')[0].split('?')[0];
}

/** Plivo's nonces are long runs of digits. */
export function makeNonce(length = 20): string {
  let nonce = '';
  for (let i = 0; i < length; i += 1) nonce += String(randomInt(10));
  return nonce;
}

/** Signature V2: base64(HMAC-SHA256(authToken, urlWithoutQuery + nonce)). */
export function signV2(url: string, nonce: string, authToken: string): string {
  return createHmac('sha256', authToken)
    .update(signatureBaseUrl(url) + nonce)
    .digest('base64');
}

export function signatureHeaders(url: string, authToken: string): Record<string, string> {
  const nonce = makeNonce();
  const signature = signV2(url, nonce, authToken);
  return {
    'X-Plivo-Signature-V2': signature,
    'X-Plivo-Signature-Ma-V2': signature,
    'X-Plivo-Signature-V2-Nonce': nonce,
  };
}

/**
 * Caps concurrent outgoing callbacks: a 1,000-number bulk send would otherwise open 1,000
 * sockets at once against the app's webhook at the same instant.
 */
export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly max: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active += 1;
    try {
      return await task();
    } finally {
      this.active -= 1;
      this.waiting.shift()?.();
    }
  }
}

export interface CallbackRequest {
  url: string;
  method: 'GET' | 'POST';
  params: Record<string, string>;
  authToken: string;
  signal: AbortSignal;
}

export type CallbackOutcome = { ok: true; attempts: number } | { ok: false; attempts: number; reason: string };

const ATTEMPT_TIMEOUT_MS = 5_000;
/** Pauses before the 2nd and 3rd attempts: brief, because this is a local simulator. */
const RETRY_DELAYS_MS = [200, 1_000];

/**
 * An abort signal for one attempt: fires on the parent's abort or after the timeout.
 * (Hand-made rather than AbortSignal.any, which retains its children on a long-lived parent.)
 */
function attemptSignal(parent: AbortSignal, timeoutMs: number): { signal: AbortSignal; done(): void } {
  const controller = new AbortController();
  const abort = (): void => controller.abort(parent.reason);
  const timer = setTimeout(() => controller.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  parent.addEventListener('abort', abort, { once: true });
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      parent.removeEventListener('abort', abort);
    },
  };
}

export interface SignedResponse {
  status: number;
  contentType: string;
  body: string;
}

/**
 * One signed request as Plivo makes it (form-encoded POST, or the fields in the query for
 * GET; signature V2 over the URL without its query). Rejects on network errors and timeouts.
 */
export async function signedRequest(req: CallbackRequest, timeoutMs = ATTEMPT_TIMEOUT_MS): Promise<SignedResponse> {
  const form = new URLSearchParams(req.params).toString();
  const target = req.method === 'GET' ? `${req.url}${req.url.includes('?') ? '&' : '?'}${form}` : req.url;
  const headers: Record<string, string> = {
    'User-Agent': 'PlivoSimulator/1.0',
    ...signatureHeaders(req.url, req.authToken),
  };
  if (req.method === 'POST') headers['Content-Type'] = 'application/x-www-form-urlencoded';
  const { signal, done } = attemptSignal(req.signal, timeoutMs);
  try {
    const response = await fetch(target, {
      method: req.method,
      headers,
      body: req.method === 'POST' ? form : undefined,
      signal,
    });
    const body = await response.text(); // read whole so the socket returns to the pool
    return { status: response.status, contentType: response.headers.get('content-type') ?? '', body };
  } finally {
    done();
  }
}

/** The useful part of a fetch failure ("connect ECONNREFUSED ..." rather than "fetch failed"). */
export function failureReason(err: unknown): string {
  return err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
}

/** Returns undefined on a 2xx answer, else why the attempt failed. */
async function attempt(req: CallbackRequest): Promise<string | undefined> {
  try {
    const response = await signedRequest(req);
    return response.status >= 200 && response.status < 300 ? undefined : `HTTP ${response.status}`;
  } catch (err) {
    if (req.signal.aborted) throw err;
    return failureReason(err);
  }
}

/**
 * Delivers one callback, retrying briefly on network errors and non-2xx answers. Never
 * throws for delivery problems (the caller logs the outcome); only an abort propagates.
 */
export async function deliverCallback(req: CallbackRequest): Promise<CallbackOutcome> {
  let reason = '';
  for (let i = 0; i <= RETRY_DELAYS_MS.length; i += 1) {
    if (i > 0) await sleep(RETRY_DELAYS_MS[i - 1], undefined, { signal: req.signal });
    const failure = await attempt(req);
    if (failure === undefined) return { ok: true, attempts: i + 1 };
    reason = failure;
  }
  return { ok: false, attempts: RETRY_DELAYS_MS.length + 1, reason };
}
