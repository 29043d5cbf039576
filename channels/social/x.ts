/**
 * X (Twitter) API v2: `POST /2/tweets` as the ISP's account.
 *
 * Authorised with OAuth 1.0a user context: the app's API key and secret and the account's access
 * token and secret, all four shown once in the developer portal ("Keys and tokens") for the
 * account that owns the app. They do not expire, which suits a server that posts unattended; an
 * OAuth 2.0 user token would expire every two hours and need its rotating refresh token stored
 * and renewed. The request is signed (HMAC-SHA1, RFC 5849) with `oauth-1.0a`; the JSON body is
 * not part of the signature, as X's docs say for JSON requests.
 *
 * X has no idempotency key, but it refuses a tweet whose text repeats one the account just posted
 * (403, "duplicate content"). Our texts end with a link naming the incident, so when a repeated
 * request for the same post (an earlier answer was lost) is refused that way, the earlier one was
 * made: it counts as posted, its id unknown.
 */
import { createHmac } from 'node:crypto';
import OAuth from 'oauth-1.0a';
import { ChannelError } from '../channel';
import type { PostRequest, SocialClient } from './social-channel';
import { X_LIMIT } from './text';
import { answerFailure, postJson } from './http';

export const X_DEFAULT_BASE_URL = 'https://api.x.com';

export interface XSettings {
  apiKey: string;
  apiKeySecret: string;
  accessToken: string;
  accessTokenSecret: string;
  /** Default https://api.x.com; the tests point it at their stand-in. */
  baseUrl?: string;
  timeoutMs?: number;
}

export class XClient implements SocialClient {
  readonly network = 'x' as const;
  readonly limit = X_LIMIT;
  readonly timeoutMs: number;
  private readonly oauth: OAuth;

  constructor(private readonly settings: XSettings) {
    this.timeoutMs = settings.timeoutMs ?? 15_000;
    this.oauth = new OAuth({
      consumer: { key: settings.apiKey, secret: settings.apiKeySecret },
      signature_method: 'HMAC-SHA1',
      hash_function: (base, key) => createHmac('sha1', key).update(base).digest('base64'),
    });
  }

  async post(request: PostRequest): Promise<{ id?: string; url?: string }> {
    const url = `${(this.settings.baseUrl ?? X_DEFAULT_BASE_URL).replace(/\/+$/, '')}/2/tweets`;
    const auth = this.oauth.toHeader(
      this.oauth.authorize(
        { url, method: 'POST' },
        { key: this.settings.accessToken, secret: this.settings.accessTokenSecret },
      ),
    );
    const a = await postJson('X', url, { authorization: auth.Authorization }, { text: request.text }, this.timeoutMs);
    const data = a.body.data as { id?: unknown } | undefined;
    if (a.status >= 200 && a.status < 300 && typeof data?.id === 'string') return { id: data.id };
    if (a.status >= 200 && a.status < 300)
      throw new ChannelError('X answered without a tweet id', true, undefined, a.status);
    const reason = xReason(a.body);
    if (a.status === 403 && /duplicate/i.test(reason ?? '') && request.repeat) return {};
    throw answerFailure('X', a, reason);
  }
}

/** X's problem details (`detail`, `title`) or its older `errors[].message`. */
function xReason(body: Record<string, unknown>): string | undefined {
  if (typeof body.detail === 'string') return body.detail;
  if (typeof body.title === 'string') return body.title;
  const first = Array.isArray(body.errors) ? (body.errors[0] as { message?: unknown } | undefined) : undefined;
  return typeof first?.message === 'string' ? first.message : undefined;
}
