/**
 * A social account as a channel: each message is one status change of the public feed, posted
 * once. The post is recorded (channels/social/posts.ts) before its request goes out; a retry
 * finds the record and either reports what was posted, or sends the same text again. A refusal
 * that will not change by itself (a bad token: 401, 403) ends the post as failed, reported as an
 * invalid outcome; a 429, a 5xx or no answer throws a retryable ChannelError, for the activity's
 * retry policy, until `maxAttempts` requests were made. The retries hold up the status feed's
 * delivery records, so they are kept short: a network that asks to wait longer than `maxWaitMs`
 * (X's rate limits reset after 15 minutes or a day) is not waited for, the post fails.
 *
 * The networks differ only in their request and their limit: see x.ts and mastodon.ts.
 */
import { ChannelError, type Channel, type OutboundMessage, type SendOutcome } from '../channel';
import { claimAttempt, recordPost, socialPostId, type SocialCollections, type SocialNetwork } from './posts';
import { socialText, type TextLimit } from './text';
import type { Language } from '../../domain/types';

export interface PostRequest {
  text: string;
  language: Language;
  /** Unique per post: the same for every attempt of one post. */
  idempotencyKey: string;
  /** An earlier request for this post was made: its answer may have been lost. */
  repeat: boolean;
}

export interface SocialClient {
  readonly network: SocialNetwork;
  readonly limit: TextLimit;
  /** The longest a request may take, answer included. */
  readonly timeoutMs: number;
  /** Posts, or throws a ChannelError (`retryable`, `status`, `retryAfterMs` as the answer says). */
  post(request: PostRequest): Promise<{ id?: string; url?: string }>;
}

export interface SocialChannelOptions {
  /** Requests for one post before it is given up as failed (default 5: about 8 s of the activity's backoff). */
  maxAttempts?: number;
  /** The longest Retry-After or rate-limit reset waited for (default 30 s). */
  maxWaitMs?: number;
}

/** Beyond a request's timeout, how long a sender may take to record its answer. */
const IN_FLIGHT_MARGIN_MS = 5_000;

export class SocialChannel implements Channel {
  readonly name: SocialNetwork;
  readonly maxBatch = 10;

  constructor(
    private readonly client: SocialClient,
    private readonly collections: SocialCollections,
    private readonly options: SocialChannelOptions = {},
  ) {
    this.name = client.network;
  }

  /**
   * One post per message: `deliveryId` names the status change, `meta.incidentId` its incident,
   * `meta.link` the page the post links to. Stops at the first retryable failure (the posts before
   * it are recorded as made, so the retry skips them).
   */
  async send(batch: OutboundMessage[]): Promise<SendOutcome[]> {
    const outcomes: SendOutcome[] = [];
    for (const message of batch) outcomes.push(await this.postOnce(message));
    return outcomes;
  }

  private async postOnce(m: OutboundMessage): Promise<SendOutcome> {
    const meta = m.meta ?? {};
    const incidentId = typeof meta.incidentId === 'string' ? meta.incidentId : '';
    const link = typeof meta.link === 'string' ? meta.link : '';
    if (!incidentId || !link)
      return {
        deliveryId: m.deliveryId,
        outcome: 'invalid',
        error: 'a social post needs meta.incidentId and meta.link',
      };
    const { posts, attempts: claims } = this.collections;
    const now = new Date();
    const post = await recordPost(posts, {
      _id: socialPostId(this.name, m.deliveryId),
      network: this.name,
      incidentId,
      change: m.deliveryId,
      kind: typeof meta.kind === 'string' ? meta.kind : 'update',
      text: socialText(m.text, link, this.client.limit, m.language),
      state: 'pending',
      attempts: 0,
      createdAt: now,
      updatedAt: now,
    });
    if (post.state === 'posted')
      return { deliveryId: m.deliveryId, outcome: 'accepted', providerMessageId: post.postId ?? post._id };
    if (post.state === 'failed')
      return { deliveryId: m.deliveryId, outcome: 'invalid', error: post.error ?? 'refused' };

    // Another sender's request is out (its activity timed out but still runs, say): wait for it
    // rather than post a second time. One older than a request can take died with its sender.
    if (post.sendingSince && Date.now() - post.sendingSince.getTime() < this.client.timeoutMs + IN_FLIGHT_MARGIN_MS) {
      throw new ChannelError(`${this.name}: another sender is posting ${post._id}`, true, IN_FLIGHT_MARGIN_MS);
    }
    const attempts = post.attempts + 1;
    // Senders that read the same record race for the same attempt: one inserts its claim.
    if (!(await claimAttempt(claims, post._id, attempts, new Date())))
      throw new ChannelError(`${this.name}: another sender is posting ${post._id}`, true, IN_FLIGHT_MARGIN_MS);
    // Counted before the request: a worker dying during it still leaves "an answer may be lost".
    await posts.updateOne({ _id: post._id }, { $set: { attempts, sendingSince: new Date(), updatedAt: new Date() } });
    try {
      const made = await this.client.post({
        text: post.text,
        language: m.language,
        idempotencyKey: post._id,
        repeat: post.attempts > 0,
      });
      await posts.updateOne(
        { _id: post._id },
        {
          $set: {
            state: 'posted',
            postedAt: new Date(),
            updatedAt: new Date(),
            ...(made.id ? { postId: made.id } : {}),
            ...(made.url ? { url: made.url } : {}),
          },
          $unset: { error: '', httpStatus: '', sendingSince: '' },
        },
      );
      return { deliveryId: m.deliveryId, outcome: 'accepted', providerMessageId: made.id ?? post._id };
    } catch (err) {
      const e = err instanceof ChannelError ? err : new ChannelError(`${this.name}: ${(err as Error).message}`, true);
      const maxAttempts = this.options.maxAttempts ?? 5;
      const waitTooLong = e.retryable && (e.retryAfterMs ?? 0) > (this.options.maxWaitMs ?? 30_000);
      const final = !e.retryable || waitTooLong || attempts >= maxAttempts;
      const error = !e.retryable
        ? e.message
        : waitTooLong
          ? `${e.message} (asked to wait ${Math.ceil(e.retryAfterMs! / 60_000)} min: not waited for)`
          : `${e.message} (gave up after ${attempts} attempts)`;
      await posts.updateOne(
        { _id: post._id },
        {
          $set: {
            ...(final ? { state: 'failed', error } : { error: e.message }),
            updatedAt: new Date(),
            ...(e.status ? { httpStatus: e.status } : {}),
          },
          $unset: { sendingSince: '' },
        },
      );
      if (final) return { deliveryId: m.deliveryId, outcome: 'invalid', error };
      throw e;
    }
  }
}
