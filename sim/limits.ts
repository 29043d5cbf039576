/**
 * Plivo's account limits: REST requests per rolling 5 s (excess refused with 429) and
 * messages per second (excess queued, never dropped).
 */

export const REQUEST_WINDOW_MS = 5_000;

/** Counts the requests let through during the last window. */
export class RequestWindow {
  private stamps: number[] = [];

  /** Lets a request through (returns 0) or says how many seconds to wait before retrying. */
  take(limit: number, now = Date.now()): number {
    const cutoff = now - REQUEST_WINDOW_MS;
    let expired = 0;
    while (expired < this.stamps.length && this.stamps[expired] <= cutoff) expired += 1;
    if (expired > 0) this.stamps = this.stamps.slice(expired);
    if (this.stamps.length < limit) {
      this.stamps.push(now);
      return 0;
    }
    return Math.max(1, Math.ceil((this.stamps[0] + REQUEST_WINDOW_MS - now) / 1000));
  }

  reset(): void {
    this.stamps = [];
  }
}

/**
 * Hands out the moments at which queued messages may move to `sent`, first come first
 * served, `perSecond` of them per second across the whole account.
 */
export class SendPacer {
  private nextFree = 0;

  /**
   * Reserves a slot no earlier than `earliest` (epoch ms). Returns undefined without
   * reserving when the slot would fall after `deadline` (the message expires in the queue).
   */
  reserve(earliest: number, perSecond: number | undefined, deadline = Infinity): number | undefined {
    if (!perSecond) return earliest;
    const at = Math.max(earliest, this.nextFree);
    if (at > deadline) return undefined;
    this.nextFree = at + 1000 / perSecond;
    return at;
  }

  reset(): void {
    this.nextFree = 0;
  }
}
