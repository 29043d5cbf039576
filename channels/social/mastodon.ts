/**
 * Mastodon: `POST /api/v1/statuses` on the ISP's instance, with the account's access token (an
 * application made under Preferences > Development, scope `write:statuses`). Public statuses in
 * the post's language. The `Idempotency-Key` header is the post's record id: a repeated request
 * after a lost answer returns the status made the first time instead of posting it again
 * (Mastodon keeps the key an hour).
 */
import { ChannelError } from '../channel';
import type { PostRequest, SocialClient } from './social-channel';
import { MASTODON_LIMIT, type TextLimit } from './text';
import { answerFailure, postJson } from './http';

export interface MastodonSettings {
  /** The instance, e.g. https://mastodon.uno. */
  baseUrl: string;
  accessToken: string;
  /** The instance's limit when it allows more than Mastodon's 500 characters. */
  maxCharacters?: number;
  timeoutMs?: number;
}

export class MastodonClient implements SocialClient {
  readonly network = 'mastodon' as const;
  readonly limit: TextLimit;
  readonly timeoutMs: number;

  constructor(private readonly settings: MastodonSettings) {
    this.timeoutMs = settings.timeoutMs ?? 15_000;
    this.limit = { ...MASTODON_LIMIT, max: settings.maxCharacters ?? MASTODON_LIMIT.max };
  }

  async post(request: PostRequest): Promise<{ id?: string; url?: string }> {
    const url = `${this.settings.baseUrl.replace(/\/+$/, '')}/api/v1/statuses`;
    const headers = { authorization: `Bearer ${this.settings.accessToken}`, 'idempotency-key': request.idempotencyKey };
    const a = await postJson(
      'Mastodon',
      url,
      headers,
      { status: request.text, visibility: 'public', language: request.language },
      this.timeoutMs,
    );
    if (a.status >= 200 && a.status < 300 && typeof a.body.id === 'string')
      return { id: a.body.id, ...(typeof a.body.url === 'string' ? { url: a.body.url } : {}) };
    if (a.status >= 200 && a.status < 300)
      throw new ChannelError('Mastodon answered without a status id', true, undefined, a.status);
    throw answerFailure('Mastodon', a, typeof a.body.error === 'string' ? a.body.error : undefined);
  }
}
