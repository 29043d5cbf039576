/**
 * Group commit for receipts: callbacks arriving within 25 ms are stored as one document (a receipt batch), and
 * each request is answered only once its receipt is stored. Under a storm of callbacks this turns
 * thousands of inserts into a few, without ever answering 200 for a receipt not yet stored.
 */
import type { Store } from '../../store/db';
import { insertReceipts, type Receipt } from '../../store/receipts';

export class ReceiptBuffer {
  private pending: { receipt: Receipt; done: (err?: unknown) => void }[] = [];
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly store: Store,
    private readonly maxWaitMs = 25,
    private readonly maxBatch = 500,
  ) {}

  add(receipt: Receipt): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ receipt, done: (err) => (err ? reject(err) : resolve()) });
      if (this.pending.length >= this.maxBatch) void this.flush();
      else this.timer ??= setTimeout(() => void this.flush(), this.maxWaitMs);
    });
  }

  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    try {
      await insertReceipts(
        this.store,
        batch.map((b) => b.receipt),
      );
      batch.forEach((b) => b.done());
    } catch (err) {
      batch.forEach((b) => b.done(err));
    }
  }
}
