/**
 * The life of one message (a delivery record), with neither Temporal nor the database inside:
 * which states there are, which move may follow which, and what a provider's word means. The store
 * writes these moves and the activities drive them; both ask here what is allowed.
 *
 *   planned ──reserve──> sending ──answer──> accepted ──receipt──> sent ──> delivered
 *      ^                    │                   │                    └───> undelivered ─┐
 *      └──── lost answer, not at the provider ──┘                                       │
 *      └──────────── retry (watchdog) <──── failed / undelivered / overdue <────────────┘
 *   any waiting state ──> expired (given up: attempts spent, cancelled, covered, superseded, STOP)
 */
import type { DeliveryState } from '../domain/types';

/** Plivo's status words, as delivery states (`queued` is what its answer already told us). */
export const PROVIDER_STATES: Record<string, DeliveryState> = {
  queued: 'accepted',
  sent: 'sent',
  delivered: 'delivered',
  undelivered: 'undelivered',
  failed: 'failed',
  rejected: 'failed',
};

/** States in which a message has reached the provider (and so its reader may have seen it). */
export const REACHED_PROVIDER: DeliveryState[] = ['accepted', 'sent', 'delivered', 'undelivered'];

/** On its way: the provider has it, and its receipt has not said how it ended. */
export const IN_FLIGHT: DeliveryState[] = ['accepted', 'sent'];

/**
 * The states a receipt may replace. A receipt only moves a record forward, so a repeated or late
 * one (a `sent` arriving after `delivered`) changes nothing; `delivered` may follow `undelivered`
 * (a carrier's late success), never the other way round.
 */
export const RECEIPT_MAY_REPLACE: Record<DeliveryState, DeliveryState[]> = {
  planned: [],
  sending: [],
  accepted: [],
  sent: ['accepted'],
  delivered: ['accepted', 'sent', 'undelivered'],
  undelivered: ['accepted', 'sent'],
  failed: ['accepted', 'sent'],
  expired: [],
};

/** Whether a receipt saying `to` may move a record that is in `from`. */
export function receiptMoves(from: DeliveryState, to: DeliveryState): boolean {
  return RECEIPT_MAY_REPLACE[to].includes(from);
}

/**
 * Of two receipts for one message, the one that says more: the later in Plivo's sequence unless it
 * would move the message backwards (receipts arrive out of order; `Sequence` orders them).
 */
export function laterWord(prev: DeliveryState | undefined, next: DeliveryState): boolean {
  return prev === undefined || prev === next || RECEIPT_MAY_REPLACE[next].includes(prev);
}
