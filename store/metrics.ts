/**
 * What /metrics reads from MongoDB (api/plugins/metrics.ts), so that the numbers are those of the
 * whole system, whichever process did the work:
 * - counts of incidents by kind and phase, and of messages by channel and state ($group);
 * - delivery events found in the delivery records' histories since this process started: each
 *   message delivered (with the time from accepted to delivered) and each provider error (a send
 *   attempt that failed, a message refused or reported undelivered). The worker does the sending,
 *   in another process; the records are where its outcomes meet.
 */
import type { Store } from './db';
import type { Delivery, DeliveryStep } from '../domain/types';

export interface CountRow {
  labels: Record<string, string>;
  count: number;
}

async function groupCount(
  store: Store,
  collection: 'incidents' | 'deliveries',
  fields: Record<string, string>,
  fallback: Record<string, string>,
): Promise<CountRow[]> {
  const id = Object.fromEntries(Object.entries(fields).map(([label, field]) => [label, `$${field}`]));
  const rows = await store[collection]
    .aggregate<{ _id: Record<string, unknown>; n: number }>([{ $group: { _id: id, n: { $sum: 1 } } }])
    .toArray();
  return rows.map((r) => ({
    labels: Object.fromEntries(
      Object.keys(fields).map((label) => [
        label,
        typeof r._id?.[label] === 'string' ? (r._id[label] as string) : fallback[label]!,
      ]),
    ),
    count: r.n,
  }));
}

export function incidentsByPhase(store: Store): Promise<CountRow[]> {
  return groupCount(store, 'incidents', { kind: 'kind', phase: 'phase' }, { kind: 'outage', phase: 'unknown' });
}

export function messagesByChannelAndState(store: Store): Promise<CountRow[]> {
  // Records from before channels existed are SMS.
  return groupCount(store, 'deliveries', { channel: 'channel', state: 'state' }, { channel: 'sms', state: 'unknown' });
}

export type DeliveryEvent =
  | { type: 'delivered'; channel: string; latencySeconds: number }
  /** stage send: an attempt to hand the message over failed; delivery: the provider reported it undelivered or failed. */
  | { type: 'provider_error'; channel: string; stage: 'send' | 'delivery' };

/** One history step as an event, or undefined when it is neither a delivery nor a provider error. */
export function eventOfStep(history: DeliveryStep[], i: number, channel: string): DeliveryEvent | undefined {
  const step = history[i]!;
  const previous = history[i - 1];
  if (step.state === 'delivered') {
    const accepted = history
      .slice(0, i)
      .reverse()
      .find((s) => s.state === 'accepted');
    if (!accepted) return undefined;
    return {
      type: 'delivered',
      channel,
      latencySeconds: Math.max(0, (new Date(step.at).getTime() - new Date(accepted.at).getTime()) / 1000),
    };
  }
  if (step.state === 'failed' || step.state === 'undelivered')
    return { type: 'provider_error', channel, stage: previous?.state === 'sending' ? 'send' : 'delivery' };
  // Released after an attempt that did not reach the provider: it will be sent again.
  if (step.state === 'planned' && previous?.state === 'sending')
    return { type: 'provider_error', channel, stage: 'send' };
  return undefined;
}

export interface ScannerSettings {
  /** Records changed this recently are left for the next scan, so that writes still in flight are not skipped (default 30 s). */
  settleMs?: number;
  /** How far back, before the last record read, steps are still looked at (default 10 min). */
  lookbackMs?: number;
  pageSize?: number;
  /** Pages read per scan at most; the rest waits for the next one (default 10). */
  maxPages?: number;
}

/**
 * Walks the delivery records in the order they last changed (updatedAt, then _id), from where
 * the last scan stopped, and reports each delivery event once. A record can change again before
 * it is read: steps up to `lookbackMs` older than the newest record read are still considered,
 * and the ones already reported are remembered for that long.
 */
export class DeliveryEventScanner {
  private cursor: { at: Date; id: string };
  private readonly seen = new Map<string, number>();
  private readonly settleMs: number;
  private readonly lookbackMs: number;
  private readonly pageSize: number;
  private readonly maxPages: number;

  constructor(
    private readonly store: Store,
    private readonly since: Date,
    settings: ScannerSettings = {},
  ) {
    this.cursor = { at: since, id: '' };
    this.settleMs = settings.settleMs ?? 30_000;
    this.lookbackMs = settings.lookbackMs ?? 10 * 60_000;
    this.pageSize = settings.pageSize ?? 2000;
    this.maxPages = settings.maxPages ?? 10;
  }

  async scan(now = new Date()): Promise<DeliveryEvent[]> {
    const end = new Date(now.getTime() - this.settleMs);
    const events: DeliveryEvent[] = [];
    for (let page = 0; page < this.maxPages && this.cursor.at < end; page++) {
      const { at, id } = this.cursor;
      const docs = await this.store.deliveries
        .find(
          { updatedAt: { $lt: end }, $or: [{ updatedAt: { $gt: at } }, { updatedAt: at, _id: { $gt: id } }] },
          { projection: { channel: 1, history: 1, updatedAt: 1 } },
        )
        .sort({ updatedAt: 1, _id: 1 })
        .limit(this.pageSize)
        .toArray();
      for (const d of docs) events.push(...this.eventsOf(d, end));
      const last = docs[docs.length - 1];
      if (last) this.cursor = { at: last.updatedAt, id: last._id };
      if (docs.length < this.pageSize) break;
    }
    const floor = this.cursor.at.getTime() - this.lookbackMs;
    for (const [key, at] of this.seen) if (at < floor) this.seen.delete(key);
    return events;
  }

  private eventsOf(d: Pick<Delivery, '_id' | 'channel' | 'history'>, end: Date): DeliveryEvent[] {
    const floor = Math.max(this.since.getTime(), this.cursor.at.getTime() - this.lookbackMs);
    const out: DeliveryEvent[] = [];
    const history = d.history ?? [];
    for (let i = 0; i < history.length; i++) {
      const at = new Date(history[i]!.at).getTime();
      if (at < floor || at >= end.getTime()) continue;
      const key = `${d._id}#${i}`;
      if (this.seen.has(key)) continue;
      const event = eventOfStep(history, i, d.channel ?? 'sms');
      if (!event) continue;
      this.seen.set(key, at);
      out.push(event);
    }
    return out;
  }
}
