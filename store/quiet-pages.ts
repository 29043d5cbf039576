/**
 * Pages the sender found nothing due on, so that it does not read them again every round.
 *
 * A record stays planned until its receipt is applied, so an incident whose messages are all on
 * their way still has every record planned: the sender's look for due records (and the watchdog's
 * "is anything due?") read every page whole each round, a million records at 100,000. A page seen
 * with nothing due and nothing held by another sender is remembered as quiet, with the page's
 * change count in `delivery_pages` as it was read before the page; it is read again when that count
 * moves, when the earliest deferred record on it comes due, or after QUIET_FOR_MS at the latest.
 *
 * Whatever can make a record of a page due notes it there after its own write: records inserted,
 * retried by the watchdog, released by a failed request, freed by a request closed without their
 * answer, handed over from another outage. Written after the change and read before the page,
 * the count cannot miss it: a reader that read the count before the note reads the page after the
 * change, or remembers a count the note then moves. A note lost between the two writes (a crash)
 * costs at most QUIET_FOR_MS before the record is found.
 */
import type { Store } from './db';
import { groupBy } from '../domain/group-by';

/**
 * How long a quiet page is trusted at most without a change noted. Long enough to span the rounds of
 * a large fan-out (a minute or more apart at 100,000 while receipts lag); a lost note costs no more
 * than this, or less: the watchdog's last look before it reports nothing left reads every page.
 */
export const QUIET_FOR_MS = 5 * 60_000;

/** An incident's pages as the sender needs them: the last page number, and each page's change count. */
export interface PageBook {
  last: number;
  changes(page: number): number;
}

const pageKey = (page: number) => `p${page}`;

export async function readPageBook(store: Store, incidentId: string): Promise<PageBook> {
  const doc = await store.deliveryPages.findOne({ _id: incidentId });
  const everyPage = doc?.changedAll ?? 0;
  return { last: doc?.last ?? 0, changes: (page) => everyPage + (doc?.changed?.[pageKey(page)] ?? 0) };
}

/** Notes that records of these pages may have become due (one write; upserted: a reader saw 0 without a document). */
export async function notePagesChanged(store: Store, incidentId: string, pages: Iterable<number>): Promise<void> {
  const inc: Record<string, number> = {};
  for (const page of pages) inc[`changed.${pageKey(page)}`] = 1;
  if (Object.keys(inc).length === 0) return;
  await store.deliveryPages.updateOne({ _id: incidentId }, { $inc: inc }, { upsert: true });
}

/** Notes that records of any page of these incidents may have become due (a change that does not know its pages). */
export async function noteIncidentsChanged(store: Store, incidentIds: Iterable<string>): Promise<void> {
  for (const _id of new Set(incidentIds))
    await store.deliveryPages.updateOne({ _id }, { $inc: { changedAll: 1 } }, { upsert: true });
}

/** Notes the pages of these records, by incident. */
export async function noteRecordsChanged(
  store: Store,
  records: readonly { incidentId: string; page?: number }[],
): Promise<void> {
  for (const [incidentId, ofIncident] of groupBy(records, (d) => d.incidentId))
    await notePagesChanged(store, incidentId, new Set(ofIncident.map((d) => d.page ?? 0)));
}

interface Quiet {
  changes: number;
  until: number;
}

/** Per store (a worker's, a test's), by scope and page. */
const quietPages = new WeakMap<Store, Map<string, Quiet>>();

/** Entries kept before the expired ones are dropped (a long-running worker sees many incidents). */
const PRUNE_ABOVE = 10_000;

function ofStore(store: Store): Map<string, Quiet> {
  let pages = quietPages.get(store);
  if (!pages) quietPages.set(store, (pages = new Map()));
  return pages;
}

/** Whether this page (`key`: its scope and number) was seen quiet, with nothing changed since and its time not come. */
export function isQuiet(store: Store, key: string, changes: number, now: number): boolean {
  const q = quietPages.get(store)?.get(key);
  return q !== undefined && q.changes === changes && now < q.until;
}

/** Remembers a page seen quiet with `changes` noted, until `nextDue` (its earliest deferred record) or QUIET_FOR_MS. */
export function rememberQuiet(store: Store, key: string, changes: number, now: number, nextDue?: number): void {
  const pages = ofStore(store);
  if (pages.size > PRUNE_ABOVE) for (const [k, q] of pages) if (q.until <= now) pages.delete(k);
  pages.set(key, { changes, until: Math.min(now + QUIET_FOR_MS, nextDue ?? Infinity) });
}

/** Forgets a page seen quiet (it was found with something due). */
export function forgetQuiet(store: Store, key: string): void {
  quietPages.get(store)?.delete(key);
}
