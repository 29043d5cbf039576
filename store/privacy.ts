/**
 * A subscriber's rights over their data (GDPR articles 15 and 17): everything we hold about one
 * contract, as one document; and its erasure.
 *
 * Erasure removes the subscriber record and every message of theirs still waiting (they must not
 * be contacted again). Messages already sent stay as anonymous records, so that an incident's
 * counts and costs still add up; their id (which names the contract and the number) is replaced
 * by a random one. SMS they sent us (STOP, INFO...) are deleted. Billing ledger entries are kept:
 * invoices must be retained by law; they name the contract but no number, name or address.
 *
 * No transactions: each step can be repeated, so an erasure cut short is finished by running it
 * again. A billing import that still lists the contract brings the subscriber back: erase former
 * customers only once the billing export has dropped them.
 */
import { randomBytes } from 'node:crypto';
import type { Store } from './db';
import type { Delivery, DeliveryState, Subscriber } from '../domain/types';
import type { SubscriptionEntry } from './ledger';
import { rebuildRosters, writingSubscribers } from './site-roster';
import { eraseFromRolls } from './notice-rolls';

/** States in which a message has not left us yet: erasure cancels it. */
const PENDING: DeliveryState[] = ['planned', 'sending'];

export const ERASED = 'erased';

export interface SubscriberDataExport {
  contract: string;
  exportedAt: Date;
  /** The record as stored, without internal bookkeeping; null if it was deleted already. */
  subscriber: Omit<Subscriber, 'contentHash'> | null;
  messages: Pick<
    Delivery,
    'incidentId' | 'kind' | 'channel' | 'to' | 'language' | 'state' | 'text' | 'createdAt' | 'updatedAt' | 'history'
  >[];
  /** SMS the subscriber sent us. */
  received: { from: string; text: string; receivedAt: Date; action?: string }[];
  /** What we billed them for the SMS option. */
  billing: Pick<SubscriptionEntry, 'period' | 'description' | 'grossCents' | 'currency' | 'activeFrom' | 'activeTo'>[];
}

export async function exportSubscriberData(
  store: Store,
  contract: string,
  now = new Date(),
): Promise<SubscriberDataExport> {
  const stored = await store.subscribers.findOne({ _id: contract });
  const phones = stored?.phones ?? [];
  const [messages, received, billing] = await Promise.all([
    store.deliveries
      .find(
        { subscriberId: contract },
        {
          projection: {
            _id: 0,
            incidentId: 1,
            kind: 1,
            channel: 1,
            to: 1,
            language: 1,
            state: 1,
            text: 1,
            createdAt: 1,
            updatedAt: 1,
            history: 1,
          },
        },
      )
      .sort({ createdAt: 1 })
      .toArray(),
    store.inbound
      .find(
        { $or: [{ subscriberIds: contract }, ...(phones.length ? [{ from: { $in: phones } }] : [])] },
        { projection: { _id: 0, from: 1, text: 1, receivedAt: 1, action: 1 } },
      )
      .sort({ receivedAt: 1 })
      .toArray(),
    store.ledger
      .find(
        { type: 'subscription', subscriberId: contract },
        { projection: { _id: 0, period: 1, description: 1, grossCents: 1, currency: 1, activeFrom: 1, activeTo: 1 } },
      )
      .sort({ period: 1 })
      .toArray(),
  ]);
  let subscriber: SubscriberDataExport['subscriber'] = null;
  if (stored) {
    const { contentHash: _hash, ...rest } = stored;
    subscriber = rest;
  }
  return {
    contract,
    exportedAt: now,
    subscriber,
    messages,
    received,
    billing: billing as SubscriberDataExport['billing'],
  };
}

export interface ErasureResult {
  contract: string;
  subscriberDeleted: boolean;
  /** Messages not sent yet, deleted. */
  pendingMessagesDeleted: number;
  /** Messages sent, kept without the contract, the number, the text. */
  messagesAnonymized: number;
  receivedDeleted: number;
  /** Ledger entries kept (legal retention). */
  billingEntriesKept: number;
}

/** A delivery while it is being anonymized: `erasedAs` names its anonymous copy. */
type ErasableDelivery = Delivery & { erasedAs?: string };

function anonymousCopy(d: ErasableDelivery, id: string): Delivery {
  const { erasedAs: _copy, text: _text, fallbackOf: _fallback, ...rest } = d;
  const masked = (s?: string) => s?.replace(/\+?\d[\d\s]{6,}\d/g, '[number]').replace(/[^\s@]+@[^\s@]+/g, '[address]');
  return {
    ...rest,
    _id: id,
    subscriberId: ERASED,
    to: ERASED,
    ...(rest.error ? { error: masked(rest.error) } : {}),
    history: (rest.history ?? []).map((h) => (h.note ? { ...h, note: masked(h.note) } : h)),
  };
}

export async function eraseSubscriber(store: Store, contract: string): Promise<ErasureResult> {
  const deliveries = store.db.collection<ErasableDelivery>('deliveries');
  const stored = await store.subscribers.findOne({ _id: contract }, { projection: { phones: 1, siteId: 1 } });

  const pending = await deliveries.deleteMany({ subscriberId: contract, state: { $in: PENDING } });

  let anonymized = 0;
  // One subscriber's messages are few; read them first rather than write under an open cursor.
  for (const d of await deliveries.find({ subscriberId: contract }).toArray()) {
    // The copy's id is chosen once and written on the original first, so a repeat reuses it.
    let copyId = d.erasedAs;
    if (!copyId) {
      copyId = `${d.incidentId}|${d.kind}|${ERASED}-${randomBytes(9).toString('base64url')}|${d.channel}:${ERASED}`;
      await deliveries.updateOne({ _id: d._id, erasedAs: { $exists: false } }, { $set: { erasedAs: copyId } });
      copyId = (await deliveries.findOne({ _id: d._id }, { projection: { erasedAs: 1 } }))?.erasedAs ?? copyId;
    }
    try {
      await deliveries.insertOne(anonymousCopy({ ...d, erasedAs: copyId }, copyId));
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
    }
    await deliveries.deleteOne({ _id: d._id });
    anonymized++;
  }

  // What a resolution would read of them instead of their records (store/notice-rolls.ts).
  await eraseFromRolls(store, contract);

  const phones = stored?.phones ?? [];
  const received = await store.inbound.deleteMany({
    $or: [{ subscriberIds: contract }, ...(phones.length ? [{ from: { $in: phones } }] : [])],
  });
  const billingEntriesKept = await store.ledger.countDocuments({ type: 'subscription', subscriberId: contract });
  // Last: until the record is gone, a repeat can still find the numbers to erase.
  const deleted = await writingSubscribers(store, [stored?.siteId], async (touch) => {
    const d = await store.subscribers.findOneAndDelete({ _id: contract });
    if (d) await touch([d.siteId]); // moved since it was read: that site's roster goes too
    return d;
  });
  // The rosters hold whole subscribers: the site's is rewritten now, not left stale with the erased one in it.
  if (deleted) await rebuildRosters(store, [deleted.siteId]);
  return {
    contract,
    subscriberDeleted: deleted !== null,
    pendingMessagesDeleted: pending.deletedCount,
    messagesAnonymized: anonymized,
    receivedDeleted: received.deletedCount,
    billingEntriesKept,
  };
}
