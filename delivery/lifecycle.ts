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

/** What a receipt needs to be ordered and held: the fields Plivo's callbacks carry. */
export interface ReceiptWord {
  messageUuid: string;
  parentMessageUuid?: string;
  status: string;
  sequence?: number;
  receivedAt: Date;
}

/** The message a receipt is about: a part of a long message names the first part, whose id we hold. */
export const messageOf = (r: ReceiptWord): string => r.parentMessageUuid || r.messageUuid;

/** Per message, the receipt that says the most (ordered by Plivo's Sequence, a final state never replaced by an earlier one). */
export function latestWords<R extends ReceiptWord>(receipts: R[]): Map<string, R> {
  const latest = new Map<string, R>();
  for (const r of [...receipts].sort((a, b) => (a.sequence ?? 0) - (b.sequence ?? 0))) {
    const state = PROVIDER_STATES[r.status];
    if (!state) continue;
    const prev = latest.get(messageOf(r));
    if (laterWord(prev ? PROVIDER_STATES[prev.status] : undefined, state)) latest.set(messageOf(r), r);
  }
  return latest;
}

/** How a message ended at the provider; a receipt saying anything else is an intermediate word. */
const FINAL: ReadonlySet<DeliveryState> = new Set<DeliveryState>(['delivered', 'undelivered', 'failed']);

/** Whether a receipt says how its message ended (no later word changes its record). */
export const isFinalWord = (r: ReceiptWord): boolean => FINAL.has(PROVIDER_STATES[r.status]!);

/**
 * Splits receipts into those to apply now and those to hold back: a message whose latest word is
 * an intermediate one (`sent`) younger than `holdMs` waits for its final word, so that its record
 * is written once (`delivered`) rather than twice (`sent`, then `delivered`): Plivo's `sent` and
 * `delivered` come seconds apart and often fall into two rounds of the applier. A message that
 * never gets a final word has its `sent` applied once the hold is over.
 */
export function holdIntermediate<R extends ReceiptWord>(
  receipts: R[],
  now: Date,
  holdMs: number,
): { apply: R[]; hold: R[] } {
  const held = new Set<string>();
  const hold: R[] = [];
  for (const [message, r] of latestWords(receipts)) {
    if (isFinalWord(r) || now.getTime() - r.receivedAt.getTime() >= holdMs) continue;
    held.add(message);
    hold.push(r);
  }
  return { apply: receipts.filter((r) => !held.has(messageOf(r))), hold };
}
