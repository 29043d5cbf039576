/**
 * Which senders are alive, so that a reconciliation settles only the requests of a dead one.
 *
 * A send request stays open from its reservation until its answer is written. A sender that
 * finds open requests of its scope settles them (it asks the provider what became of them and
 * gives back what was not sent): right for a sender that died, wrong for one still waiting for
 * Plivo's answer, beside it (a planning and a round of one incident, an activity retried while its
 * first attempt still runs after a Temporal restart): what it gave back would go out twice. So each
 * process that sends keeps a lease, renewed every few seconds, and names it on its requests; a
 * request is settled when its sender's lease has lapsed, or when it is older than any answer can
 * take (Plivo's timeout), whoever sent it.
 */
import { randomUUID } from 'node:crypto';
import type { Store } from './db';

interface SenderLeaseDoc {
  _id: string;
  expiresAt: Date;
}

/** A lease lapses this long after its last renewal: a little less than the activities' heartbeat timeout (15 s). */
const LEASE_MS = 12_000;
const RENEW_MS = 4_000;
/** Older than this, a request has had its answer or never will (the Plivo client's timeout is 30 s). */
export const ANSWER_TIMEOUT_MS = 35_000;

/** This process's sender id. */
const SENDER = `sender-${randomUUID()}`;
const leases = new WeakMap<Store, Promise<void>>();

function collection(store: Store) {
  return store.db.collection<SenderLeaseDoc>('sender_leases');
}

async function renew(store: Store): Promise<void> {
  await collection(store).updateOne(
    { _id: SENDER },
    { $set: { expiresAt: new Date(Date.now() + LEASE_MS) } },
    { upsert: true },
  );
}

/**
 * This process's sender id, its lease written before it is named on any request and renewed from
 * then on (the timer stops with the database client).
 */
export async function senderId(store: Store): Promise<string> {
  let first = leases.get(store);
  if (!first) {
    first = renew(store);
    leases.set(store, first);
    first.catch(() => leases.delete(store));
    const timer = setInterval(() => {
      renew(store).catch((err: Error) => {
        if (/closed|connected/i.test(err.message)) clearInterval(timer);
      });
    }, RENEW_MS);
    timer.unref();
  }
  await first;
  return SENDER;
}

/** Of these senders, those whose lease still runs. */
export async function liveSenders(store: Store, ids: string[], now = new Date()): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const found = await collection(store)
    .find({ _id: { $in: [...new Set(ids)] } })
    .toArray();
  return new Set(found.filter((l) => l.expiresAt > now).map((l) => l._id));
}
