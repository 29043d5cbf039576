/**
 * The channels this deployment can send through, by name: the ones whose settings are given.
 * The SMS channel is built by its own module and handed in; the status feed needs only its
 * MongoDB collections.
 */
import type { Channel, ChannelName } from './channel';
import { SmtpEmailChannel, type SmtpEmailSettings } from './email-smtp';
import { StatusFeedChannel, type StatusFeedCollections, type StatusFeedSettings } from './status-feed';
import { PlivoVoiceChannel, type PlivoVoiceSettings } from './voice-plivo';
import { WebhookChannel, type WebhookSettings } from './webhook';
import { FeedWithSocialChannel, type FanOutSettings, type RefusedPost } from './social/fan-out';
import { MastodonClient, type MastodonSettings } from './social/mastodon';
import type { SocialCollections } from './social/posts';
import { SocialChannel } from './social/social-channel';
import { XClient, type XSettings } from './social/x';

export interface ChannelSettings {
  /** Voice calls; off when absent (no caller id configured). */
  voice?: PlivoVoiceSettings;
  /** E-mail; off when absent (no SMTP relay configured). */
  email?: SmtpEmailSettings;
  /** Webhooks; on when present, even empty: the URLs come with each message. */
  webhook?: WebhookSettings;
  status?: StatusFeedSettings;
  /** The status feed's posts on the ISP's social accounts; off unless an account is given. */
  social?: SocialSettings;
}

export interface SocialSettings extends FanOutSettings {
  x?: XSettings;
  mastodon?: MastodonSettings;
  /** Requests for one post before it is given up (default 5). */
  maxAttempts?: number;
}

export interface ChannelDeps {
  /** The SMS channel, when this process sends SMS. */
  sms?: Channel;
  /** The status feed's collections (`statusFeedCollections(db)`): the public status feed is on when given. */
  statusFeed?: StatusFeedCollections;
  /** Where social posts are recorded (`socialCollections(store)`): needed for `social`. */
  socialPosts?: SocialCollections;
  /** Told of each social post refused for good (a bad token), to log it. */
  socialRefused?: RefusedPost;
}

export function createChannels(settings: ChannelSettings, deps: ChannelDeps = {}): Map<ChannelName, Channel> {
  const channels = new Map<ChannelName, Channel>();
  const add = (channel: Channel) => channels.set(channel.name, channel);
  if (deps.sms) add(deps.sms);
  if (settings.voice) add(new PlivoVoiceChannel(settings.voice));
  if (settings.email) add(new SmtpEmailChannel(settings.email));
  if (settings.webhook) add(new WebhookChannel(settings.webhook));
  if (deps.statusFeed) add(withSocial(new StatusFeedChannel(deps.statusFeed, settings.status), settings.social, deps));
  return channels;
}

/** The feed alone, or the feed and the social accounts configured. */
function withSocial(feed: Channel, social: SocialSettings | undefined, deps: ChannelDeps): Channel {
  if (!social || !deps.socialPosts) return feed;
  const clients = [social.x && new XClient(social.x), social.mastodon && new MastodonClient(social.mastodon)].filter(
    (c) => !!c,
  );
  if (clients.length === 0) return feed;
  const accounts = clients.map((c) => new SocialChannel(c, deps.socialPosts!, { maxAttempts: social.maxAttempts }));
  return new FeedWithSocialChannel(feed, accounts, social, deps.socialRefused);
}

/** Releases what the channels hold open (the SMTP pool); for a process that is stopping. */
export async function closeChannels(channels: Map<ChannelName, Channel>): Promise<void> {
  await Promise.all([...channels.values()].map((c) => (c as Partial<{ close(): Promise<void> }>).close?.()));
}
