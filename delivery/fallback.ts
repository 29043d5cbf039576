/**
 * Falling back to another channel when one expires for a recipient, as pure logic: which channel
 * and address come next, and what the new message keeps of the one it replaces.
 */
import type { Delivery, DeliveryChannel, Subscriber } from '../domain/types';
import { holdUntil, type HoldWindow } from '../rules';

/**
 * The next channel of `order` after the one that expired (the whole order when it is not in it)
 * that `available` says this worker has and that can reach the subscriber, with its address; null
 * when none can. SMS and calls use the number the expired record used, unless the provider called
 * it invalid; a subscriber who sent STOP gets no SMS, not even as a fallback.
 */
export function fallbackTarget(
  d: Pick<Delivery, 'channel' | 'to' | 'invalidRecipient'>,
  subscriber: Pick<Subscriber, 'phones' | 'optedOut'> & { email?: string },
  order: DeliveryChannel[],
  available: (c: DeliveryChannel) => boolean,
): { channel: DeliveryChannel; to: string } | null {
  const phone =
    d.channel === 'sms' || d.channel === 'voice' ? (d.invalidRecipient ? undefined : d.to) : subscriber.phones[0];
  for (const channel of order.slice(order.indexOf(d.channel) + 1)) {
    if (!available(channel)) continue;
    const to =
      channel === 'voice'
        ? phone
        : channel === 'sms'
          ? subscriber.optedOut
            ? undefined
            : phone
          : channel === 'email'
            ? subscriber.email
            : undefined;
    if (to) return { channel, to };
  }
  return null;
}

/** Whom a follow-up message is for and in what words: a planned record's fields but its channel and address. */
export type Origin = Pick<Delivery, 'incidentId' | 'kind' | 'subscriberId' | 'language'> &
  Partial<
    Pick<
      Delivery,
      'templateSet' | 'templateKind' | 'area' | 'round' | 'hold' | 'restoration' | 'updates' | 'notBefore' | 'text'
    >
  >;

/**
 * What a fallback keeps of the message it replaces: whom it is for and in what words (template set,
 * area, language, round, the kind of text), and when it may go: the same quiet hours, counted from
 * now, so that a restoration that fails by SMS at night does not become a phone call at 03:00.
 */
export function origin(d: Delivery, now = new Date()): Origin {
  const heldUntil = holdUntil((d.hold ?? null) as HoldWindow | null, now, d.kind, now);
  return {
    incidentId: d.incidentId,
    kind: d.kind,
    subscriberId: d.subscriberId,
    language: d.language,
    ...(d.templateSet ? { templateSet: d.templateSet } : {}),
    ...(d.templateKind ? { templateKind: d.templateKind } : {}),
    ...(d.area ? { area: d.area } : {}),
    ...(d.round !== undefined ? { round: d.round } : {}),
    ...(d.hold ? { hold: d.hold } : {}),
    ...(d.restoration !== undefined ? { restoration: d.restoration } : {}),
    ...(d.updates ? { updates: d.updates } : {}),
    ...(heldUntil ? { notBefore: heldUntil } : {}),
    // An operator's message has no template: its words go with it to the next channel.
    ...(d.kind === 'message' && d.text !== undefined ? { text: d.text } : {}),
  };
}
