/**
 * A rate limit shared by every worker, kept in MongoDB: the generic cell rate algorithm (GCRA).
 * The state is the "theoretical arrival time" (tat) of the next unit of work; reserving n units
 * moves it n intervals ahead.
 *
 * Concurrency without transactions: each change inserts the next version of the state as a new
 * document whose `_id` is `key#version`. The unique `_id` lets exactly one writer create a given
 * version, so two workers never take the same capacity. (A conditional update is not enough:
 * FerretDB applies an update as read-then-write, and two updates of the same old value can both
 * succeed, as the test of this module showed.)
 */
import type { Collection } from 'mongodb';

export interface RateLimitDoc {
  _id: string; // `${key}#${version}`
  key: string;
  version: number;
  tat: number; // ms since the epoch
}

export interface RateLimit {
  /** Units allowed per `perMs` on average; 0 or less means unlimited. */
  units: number;
  perMs: number;
  /** How far ahead of the average rate work may run, in ms (the burst). */
  burstMs: number;
}

const KEEP_VERSIONS = 100;

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

  private async latest(): Promise<RateLimitDoc | null> {
    return this.collection.findOne({ key: this.key }, { sort: { version: -1 } });
  }

  /** How long until `n` units could be reserved without waiting; reserves nothing. */
  async waitFor(n: number): Promise<number> {
    if (this.unlimited) return 0;
    const doc = await this.latest();
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
    for (let attempt = 0; attempt < 100; attempt++) {
      const doc = await this.latest();
      const now = this.now();
      const version = (doc?.version ?? 0) + 1;
      const tat = Math.max(doc?.tat ?? now, now) + n * this.interval();
      const won = await this.collection.insertOne({ _id: `${this.key}#${version}`, key: this.key, version, tat }).then(
        () => true,
        (err: { code?: number }) => {
          if (err.code === 11000) return false; // another worker took this version: read again
          throw err;
        },
      );
      if (won) {
        if (version % KEEP_VERSIONS === 0)
          await this.collection.deleteMany({ key: this.key, version: { $lt: version - KEEP_VERSIONS } });
        return Math.max(0, tat - now - this.limit.burstMs);
      }
    }
    throw new Error(`rate limit ${this.key}: too much contention, gave up after 100 tries`);
  }
}
