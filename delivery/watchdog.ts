/**
 * What the watchdog decides about messages that did not arrive, as pure logic: a message reported
 * undelivered or failed, or with no receipt within the timeout, is tried again; after `maxAttempts`
 * that reached the provider it expires on this channel (and the caller plans a fallback); an
 * invalid recipient expires at once.
 */
import type { Delivery, DeliveryState } from '../domain/types';

export interface WatchdogPolicy {
  /** A message accepted but not reported delivered within this long is treated as lost. */
  deliveryTimeoutMs: number;
  /** Send attempts on one channel before giving up on it. */
  maxAttempts: number;
}

/**
 * The attempts of a record that reached the provider, or may have: its reservations (`sending`)
 * that were not handed back untried. A send refused before the provider took anything (429, 5xx,
 * a lost request that reconciliation did not find at the provider) moves the record from `sending`
 * straight back to `planned`: that costs the message none of its resends.
 */
export function providerAttempts(d: Pick<Delivery, 'history'>): number {
  let n = 0;
  d.history.forEach((h, i) => {
    if (h.state === 'sending' && d.history[i + 1]?.state !== 'planned') n++;
  });
  return n;
}

export interface WatchdogMove {
  from: DeliveryState;
  to: 'planned' | 'expired';
  note: string;
  records: Delivery[];
}

/**
 * The moves for records found lost, grouped by (from, to, reason) so that each group is one write.
 * The caller passes only records it may take for lost (an overdue SMS only once the provider says
 * it does not know it).
 */
export function decideLost(lost: Delivery[], policy: WatchdogPolicy): WatchdogMove[] {
  const moves = new Map<string, WatchdogMove>();
  for (const d of lost) {
    const why =
      d.state === 'accepted' || d.state === 'sent'
        ? `no delivery receipt within ${Math.round(policy.deliveryTimeoutMs / 1000)} s`
        : `${d.state}${d.error ? ` (${d.error})` : ''}`;
    const attempts = providerAttempts(d);
    const giveUp = d.invalidRecipient === true || attempts >= policy.maxAttempts;
    const to = giveUp ? 'expired' : 'planned';
    const note = giveUp ? `gave up on ${d.channel} after ${attempts} attempt(s): ${why}` : `retry: ${why}`;
    const key = `${d.state}|${to}|${note}`;
    const move = moves.get(key) ?? { from: d.state, to, note, records: [] };
    move.records.push(d);
    moves.set(key, move);
  }
  return [...moves.values()];
}
