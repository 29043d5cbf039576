/**
 * A rate limit shared by every worker, kept in MongoDB: the generic cell rate algorithm (GCRA).
 * One small document per limit holds the "theoretical arrival time" (tat) of the next unit of
 * work; reserving n units moves it n intervals ahead. Updates are compare-and-set on the old
 * tat, so concurrent workers never both take the same capacity (no transactions needed, which
 * FerretDB lacks).
 */
import type { Collection } from 'mongodb';

export interface RateLimitDoc {
  _id: string;
  tat: number; // ms since the epoch
}

export interface RateLimit {
  /** Units allowed per `perMs` on average; 0 or less means unlimited. */
  units: number;
  perMs: number;
  /** How far ahead of the average rate work may run, in ms (the burst). */
  burstMs: number;
}

export class SharedRateLimiter {
  constructor(
    private readonly collection: Collection<RateLimitDoc>,
    private readonly key: string,
    private readonly limit: RateLimit,
    private readonly now: () => number = Date.now,
  ) {}

  get unlimited(): boolean {
    return this.limit.units <= 0;
  }

  private interval(): number {
    return this.limit.perMs / this.limit.units;
  }

  /** How long until `n` units could be reserved without waiting; reserves nothing. */
  async waitFor(n: number): Promise<number> {
    if (this.unlimited) return 0;
    const doc = await this.collection.findOne({ _id: this.key });
    const now = this.now();
    const tat = Math.max(doc?.tat ?? now, now);
    return Math.max(0, tat + n * this.interval() - now - this.limit.burstMs);
  }

  /**
   * Reserves `n` units and returns how long the caller must wait before using them (0 when there
   * is room now). Never waits itself, so the caller decides whether to sleep or reschedule.
   */
  async reserve(n: number): Promise<number> {
    if (this.unlimited) return 0;
    for (let attempt = 0; attempt < 50; attempt++) {
      const doc = await this.collection.findOne({ _id: this.key });
      const now = this.now();
      const tat = Math.max(doc?.tat ?? now, now) + n * this.interval();
      const swapped = doc
        ? (await this.collection.updateOne({ _id: this.key, tat: doc.tat }, { $set: { tat } })).modifiedCount === 1
        : await this.collection.insertOne({ _id: this.key, tat }).then(() => true, () => false);
      if (swapped) return Math.max(0, tat - now - this.limit.burstMs);
    }
    throw new Error(`rate limit ${this.key}: too much contention, gave up after 50 tries`);
  }
}
