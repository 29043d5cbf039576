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

export interface ChannelSettings {
  /** Voice calls; off when absent (no caller id configured). */
  voice?: PlivoVoiceSettings;
  /** E-mail; off when absent (no SMTP relay configured). */
  email?: SmtpEmailSettings;
  /** Webhooks; on when present, even empty: the URLs come with each message. */
  webhook?: WebhookSettings;
  status?: StatusFeedSettings;
}

export interface ChannelDeps {
  /** The SMS channel, when this process sends SMS. */
  sms?: Channel;
  /** The status feed's collections (`statusFeedCollections(db)`): the public status feed is on when given. */
  statusFeed?: StatusFeedCollections;
}

export function createChannels(settings: ChannelSettings, deps: ChannelDeps = {}): Map<ChannelName, Channel> {
  const channels = new Map<ChannelName, Channel>();
  const add = (channel: Channel) => channels.set(channel.name, channel);
  if (deps.sms) add(deps.sms);
  if (settings.voice) add(new PlivoVoiceChannel(settings.voice));
  if (settings.email) add(new SmtpEmailChannel(settings.email));
  if (settings.webhook) add(new WebhookChannel(settings.webhook));
  if (deps.statusFeed) add(new StatusFeedChannel(deps.statusFeed, settings.status));
  return channels;
}

/** Releases what the channels hold open (the SMTP pool); for a process that is stopping. */
export async function closeChannels(channels: Map<ChannelName, Channel>): Promise<void> {
  await Promise.all([...channels.values()].map((c) => (c as Partial<{ close(): Promise<void> }>).close?.()));
}
