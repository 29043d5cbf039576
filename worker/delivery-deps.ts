/**
 * Wires the delivery activities to their channels and to the account limits shared through
 * MongoDB. The worker and the test stack build their dependencies here, the same way.
 */
import type { Channel, ChannelName } from '../channels/channel';
import { PlivoSmsChannel, type PlivoSettings } from '../channels/sms-plivo';
import type { DeliveryDeps } from '../activities/delivery';
import type { Store } from '../store/db';
import { SharedRateLimiter } from '../store/rate-limits';
import type { Logger } from '../domain/log';
import type { Config } from '../config';
import type { RulesResolver } from '../store/rule-versions';
import { createChannels } from '../channels';
import { statusFeedCollections } from '../channels/status-feed';
import { socialCollections } from '../channels/social/posts';

export interface DeliveryWiring {
  store: Store;
  plivo: PlivoSettings & { requestsPer5s: number; messagesPerSecond: number; queueSeconds: number };
  /** Our public address: Plivo posts receipts to `${publicUrl}/v1/plivo/status`. */
  publicUrl: string;
  logger: Logger;
  /** Further channels (voice, email, webhook, status feed) where configured. */
  otherChannels?: Partial<Record<ChannelName, Channel>>;
  /** The rules each incident pinned. */
  rules: RulesResolver;
}

/** The channels besides SMS that the configuration turns on; the public status feed is always on (and posts to X and Mastodon where configured). */
export function configuredChannels(
  config: Config,
  store: Store,
  logger?: Logger,
): Partial<Record<ChannelName, Channel>> {
  const channels = createChannels(
    {
      ...(config.voice
        ? {
            voice: {
              authId: config.plivo.authId,
              authToken: config.plivo.authToken,
              baseUrl: config.plivo.baseUrl,
              callerId: config.voice.callerId,
              publicUrl: config.http.publicUrl,
            },
          }
        : {}),
      ...(config.smtp ? { email: config.smtp } : {}),
      webhook: { secret: config.webhook.secret, timeoutMs: config.webhook.timeoutMs },
      ...(config.social ? { social: config.social } : {}),
    },
    {
      statusFeed: statusFeedCollections(store),
      socialPosts: socialCollections(store),
      socialRefused: (r) =>
        logger?.error(r, `${r.network} refused the post for good: not retried (see the incident's social posts)`),
    },
  );
  return Object.fromEntries(channels);
}

/** Slack per 5 s window in the pacing of API requests (see below). */
const REQUEST_PACE_MARGIN_MS = 250;

export function buildDeliveryDeps(w: DeliveryWiring): DeliveryDeps {
  const sms = new PlivoSmsChannel(w.plivo, { statusCallbackUrl: `${w.publicUrl}/v1/plivo/status` });
  const account = `plivo:${w.plivo.authId}`;
  return {
    store: w.store,
    logger: w.logger,
    rules: w.rules,
    sms,
    channels: { ...w.otherChannels, sms },
    smsLimits: {
      // Plivo allows 300 API requests in any 5 s per account. A burst would let more than that into
      // one rolling window (a full window's burst, then the steady pace: up to twice the limit), so
      // requests are evenly paced instead, a quarter second per window slower than the limit so
      // that network jitter cannot bring two of them closer than the pace at Plivo's end.
      requests: new SharedRateLimiter(w.store.rateLimits, `${account}:requests`, {
        units: w.plivo.requestsPer5s,
        perMs: 5000 + REQUEST_PACE_MARGIN_MS,
        burstMs: (5000 + REQUEST_PACE_MARGIN_MS) / Math.max(1, w.plivo.requestsPer5s),
      }),
      // Plivo queues SMS beyond its per-second rate and expires what waits 3 hours: keep at most
      // `queueSeconds` of sending queued there.
      messages: new SharedRateLimiter(w.store.rateLimits, `${account}:messages`, {
        units: w.plivo.messagesPerSecond,
        perMs: 1000,
        burstMs: w.plivo.queueSeconds * 1000,
      }),
    },
  };
}
