/**
 * The public status feed, with its posts also on the ISP's social accounts: the channel the
 * delivery activities know as `status` when X or Mastodon is configured. The feed is written
 * first (the status page must never wait for a social network); then each status change of the
 * batch in the posting language goes to each account, once (social-channel.ts).
 *
 * A post that can be retried (429, 5xx, no answer) fails the whole send, retryably: the delivery
 * activity retries it through its retry policy, the feed's entries being idempotent and the posts
 * already made being recorded. A post refused for good (a bad token) does not hold the feed up:
 * it is logged and kept on the post's record, which the incident's page shows.
 */
import { ChannelError, type Channel, type OutboundMessage, type SendOutcome } from '../channel';
import type { Language } from '../../domain/types';

export interface FanOutSettings {
  /** The language of the posts: the feed's messages in other languages are not posted. */
  language: Language;
  /** The public status page, e.g. https://avviso.example.net/status: each post links to its incident there. */
  statusPageUrl: string;
}

export type RefusedPost = (refusal: { network: string; incidentId: string; change: string; error: string }) => void;

/**
 * The status change a feed message belongs to: its delivery id without the recipient
 * (`<incident>|<kind>[#round]|public-it|status:public` gives `<incident>|<kind>[#round]`), so
 * that the Italian and English records of one change make one post.
 */
export function statusChange(m: OutboundMessage): string {
  const parts = m.deliveryId.split('|');
  if (parts.length >= 4) return parts.slice(0, -2).join('|');
  return `${String(m.meta?.incidentId)}|${String(m.meta?.kind ?? 'update')}`;
}

export class FeedWithSocialChannel implements Channel {
  readonly name = 'status' as const;
  readonly maxBatch: number;

  constructor(
    private readonly feed: Channel,
    private readonly social: Channel[],
    private readonly settings: FanOutSettings,
    private readonly refused: RefusedPost = () => {},
  ) {
    this.maxBatch = feed.maxBatch;
  }

  async send(batch: OutboundMessage[]): Promise<SendOutcome[]> {
    const outcomes = await this.feed.send(batch);
    const accepted = new Set(outcomes.filter((o) => o.outcome === 'accepted').map((o) => o.deliveryId));
    const changes = new Map<string, OutboundMessage>();
    for (const m of batch) {
      if (!accepted.has(m.deliveryId) || m.language !== this.settings.language) continue;
      const change = statusChange(m);
      const incidentId = String(m.meta?.incidentId);
      const link = `${this.settings.statusPageUrl}?lang=${m.language}#inc-${incidentId}`;
      if (!changes.has(change))
        changes.set(change, {
          deliveryId: change,
          to: '',
          text: m.text,
          language: m.language,
          meta: { incidentId, kind: m.meta?.kind, link },
        });
    }
    if (changes.size === 0) return outcomes;
    let failure: ChannelError | undefined;
    for (const account of this.social) {
      try {
        for (const o of await account.send([...changes.values()])) {
          if (o.outcome === 'invalid')
            this.refused({
              network: account.name,
              incidentId: String(changes.get(o.deliveryId)?.meta?.incidentId),
              change: o.deliveryId,
              error: o.error,
            });
        }
      } catch (err) {
        // The other accounts are still tried: one network being down says nothing of the other.
        failure ??=
          err instanceof ChannelError && err.retryable
            ? err
            : new ChannelError(`${account.name}: ${(err as Error).message}`, true);
      }
    }
    if (failure) throw failure;
    return outcomes;
  }
}
