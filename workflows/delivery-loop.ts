/**
 * The delivery loop the incident and maintenance workflows share: one round sends what is due,
 * then watches what was sent (retry, fall back), and says how long the workflow may wait before
 * the next round. The workflow keeps only counts; per-recipient state stays in the database.
 *
 * Deterministic like its callers: time from the workflow API (`Date` is replay-safe inside a
 * workflow), every side effect an activity. Both workflows issued these same two activities in
 * this same order before the loop was shared, so running histories replay unchanged.
 */
import { CancellationScope, condition, isCancellation, patched, sleep } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { SweepAllResult } from '../delivery/sweeper';
import type { MessageKind } from '../domain/types';
import type { DeliveryPolicy } from './incident-api';

/** What a workflow's status shows of its deliveries: counts only. */
export interface DeliveryCounts {
  sent: Partial<Record<MessageKind, number>>;
  failed: number;
  retried: number;
  fellBack: number;
}

export interface DeliveryRound {
  /** More can be done at once: call again without waiting. */
  busy: boolean;
  /** How long until something is due or worth a look (Infinity: nothing). */
  waitMs: number;
  /** Nothing planned is left to send (what was sent may still be in flight). */
  allSent: boolean;
  /** Nothing left to send and nothing in flight. */
  idle: boolean;
}

/** Adds messages sent (by a round, or by a planning that sent what it made due at once) to the counts. */
export function countSent(counts: DeliveryCounts, sent: Partial<Record<MessageKind, number>> | undefined): void {
  for (const [kind, n] of Object.entries(sent ?? {}))
    counts.sent[kind as MessageKind] = (counts.sent[kind as MessageKind] ?? 0) + (n ?? 0);
}

/** Receipts usually arrive within seconds: look early once after messages went out, then at the policy's pace. */
const EARLY_LOOK_MS = 5000;

/** A delivery loop for one incident or maintenance (its deliveries are keyed by this id). */
export function deliveryLoop(
  acts: Pick<Activities, 'sendDue' | 'sweepAll'>,
  deliveriesOf: string,
  policy: DeliveryPolicy,
  counts: DeliveryCounts,
) {
  const earlyLook = Math.min(EARLY_LOOK_MS, policy.sweepEveryMs);
  let look = earlyLook;
  /**
   * `closing`: the workflow is about to close (resolved, cancelled), and this round's watch is not
   * wanted then. `watchOnly`: nothing is due (the planning that just ran sent all it made due), so
   * the round only watches. `wake`: the workflow has something to act on (a request): a watch-only
   * round's wait before its look ends for it.
   */
  return async function deliveryRound(
    kinds: MessageKind[],
    closing?: () => boolean,
    watchOnly = false,
    wake?: () => boolean,
  ): Promise<DeliveryRound> {
    const budget = policy.sendBudgetMs !== undefined ? { budgetMs: policy.sendBudgetMs } : {};
    // A watch-only round follows a planning that sent all it made due: nothing can be overdue yet, and a
    // sweep at once only shares the database with the receipts streaming in, and with a resolution that
    // comes meanwhile (a fan-out of 4,000 was restored beside such a sweep, which ended 1.4-2.1 s after
    // the resolve). The first look waits the early look, or until the workflow closes or is asked
    // something (`wake`). (Guarded: runs that started before it looked at once.)
    if (watchOnly && closing && patched('first-look-after-early-look')) {
      await condition(() => closing() || !!wake?.(), earlyLook);
      if (closing() || wake?.()) return { busy: false, waitMs: 0, allSent: false, idle: false };
    }
    const r = watchOnly
      ? { accepted: {}, invalid: 0, remaining: 0, retryAfterMs: undefined }
      : await acts.sendDue({ incidentId: deliveriesOf, kinds, batchSize: policy.batchSize, ...budget });
    countSent(counts, r.accepted);
    // A watch-only round follows a planning that sent what it made due: messages just went out too.
    if (watchOnly || Object.values(r.accepted).some((n) => n)) look = earlyLook;
    counts.failed += r.invalid;
    if (r.remaining > 0) {
      if (r.retryAfterMs) await sleep(r.retryAfterMs);
      return { busy: true, waitMs: 0, allSent: false, idle: false };
    }
    // Resolved while this round was sending: the watch (receipts, retries of outage notices, fallbacks)
    // would only delay the restoration notices, and the restoration plans from who was reached, not
    // from receipts. The closing rounds watch whatever is still in flight. (Guarded: runs that
    // started before it watched here.)
    if (closing?.() && patched('no-watch-when-closing')) return { busy: false, waitMs: 0, allSent: false, idle: false };
    // The fallback order rides in the activity's input: the same command, so no patch is needed.
    const fallback = policy.fallback ? { fallback: policy.fallback } : {};
    const watch = () =>
      acts.sweepAll({
        incidentId: deliveriesOf,
        kinds,
        deliveryTimeoutMs: policy.deliveryTimeoutMs,
        maxAttempts: policy.maxAttempts,
        ...fallback,
      });
    // Resolved while this round watches: at 4,000 SMS a sweep applying the receipts streaming in takes
    // seconds, and the restoration waited for it. The sweep is given up (cancelled) and the workflow goes
    // on to its resolution at once. (Guarded: runs that started before it waited for the sweep.)
    const sweep = closing && patched('resolve-interrupts-watch') ? await watchUntil(closing, watch) : await watch();
    if (!sweep) return { busy: false, waitMs: 0, allSent: false, idle: false };
    counts.retried += sweep.retried;
    counts.fellBack += sweep.fellBack;
    if (sweep.retried > 0 || sweep.fellBack > 0) return { busy: true, waitMs: 0, allSent: false, idle: false };
    const untilDue = sweep.nextDueAt ? Math.max(0, Date.parse(sweep.nextDueAt) - new Date().getTime()) : Infinity;
    const waitMs = Math.min(untilDue, sweep.inFlight > 0 ? look : Infinity);
    if (sweep.inFlight > 0) look = policy.sweepEveryMs;
    return { busy: false, waitMs, allSent: !sweep.nextDueAt, idle: !sweep.nextDueAt && sweep.inFlight === 0 };
  };
}

/**
 * Runs the watch unless `closing` becomes true first; then cancels it and returns undefined. The
 * activity learns of the cancel on its next heartbeat and stops before its next scope
 * (delivery/sweeper.ts); the workflow does not wait for that (the default cancellation type).
 */
async function watchUntil(
  closing: () => boolean,
  watch: () => Promise<SweepAllResult>,
): Promise<SweepAllResult | undefined> {
  return CancellationScope.cancellable(async () => {
    const watching = watch();
    await Promise.race([watching, condition(closing)]);
    // Whichever is still waiting: the sweep (resolved meanwhile), or the condition (the sweep ended first).
    CancellationScope.current().cancel();
    try {
      return await watching;
    } catch (err) {
      if (isCancellation(err)) return undefined;
      throw err;
    }
  });
}
