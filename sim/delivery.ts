import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import { deliverCallback, Limiter, type CallbackOutcome } from './callbacks';
import { maskNumbersIn, maskPhone, plivoNumber } from './phone';
import type { FinalStatus, MessageStatus, MessageStore, NdjsonJournal, SimMessage } from './store';

/** What Plivo charges per part in the simulator (5 decimals, as in Plivo's callbacks). */
export const RATE_PER_UNIT = 0.005;

/** Plivo error codes the simulator reports for the unhappy endings. */
const ERROR_CODES: Record<Exclude<FinalStatus, 'delivered'>, string> = {
  undelivered: '80', // destination temporarily unavailable
  failed: '300', // failed to dispatch message
};

const MAX_CONCURRENT_CALLBACKS = 50;

/** The statuses a message walks through after `queued`, in order; Sequence is index + 1. */
export function statusPlan(finalStatus: FinalStatus): MessageStatus[] {
  return finalStatus === 'failed' ? ['failed'] : ['sent', finalStatus];
}

export function isFinal(status: MessageStatus): boolean {
  return status === 'delivered' || status === 'undelivered' || status === 'failed';
}

/** `failed` never reached a carrier, so Plivo does not charge it. */
export function amounts(message: Pick<SimMessage, 'units' | 'status'>): { totalRate: string; totalAmount: string } {
  const charged = message.status === 'failed' ? 0 : message.units * RATE_PER_UNIT;
  return { totalRate: RATE_PER_UNIT.toFixed(5), totalAmount: charged.toFixed(5) };
}

/** Plivo's callback timestamps: `2024-05-01 10:00:00 +0000`. */
export function callbackTime(iso: string | undefined): string {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)} +0000` : '';
}

export function callbackParams(message: SimMessage, sequence: number): Record<string, string> {
  const { totalRate, totalAmount } = amounts(message);
  return {
    MessageUUID: message.messageUuid,
    ParentMessageUUID: message.messageUuid,
    To: plivoNumber(message.to),
    From: plivoNumber(message.from),
    Status: message.status,
    Units: String(message.units),
    TotalRate: totalRate,
    TotalAmount: totalAmount,
    ErrorCode: message.errorCode,
    Sequence: String(sequence),
    PartInfo: '1 of 1',
    MCC: '',
    MNC: '',
    PowerpackUUID: '',
    MessageTime: callbackTime(message.acceptedAt),
    QueuedTime: callbackTime(message.acceptedAt),
    SentTime: callbackTime(message.sentAt),
    DeliveryReportTime: callbackTime(message.deliveryReportAt),
  };
}

/** One signal watched by every pending message: thousands of listeners are expected, not a leak. */
function sharedController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

export interface DeliveryDeps {
  store: MessageStore;
  journal?: NdjsonJournal;
  log: FastifyBaseLogger;
  authToken: string;
  delayMs: number;
}

/**
 * Moves accepted messages through their statuses on a timer and sends the signed status
 * callbacks. Status changes never wait for the app's webhook (as at Plivo), but the
 * callbacks of one message are sent one after the other so they arrive in Sequence order.
 */
export class DeliveryScheduler {
  private controller = sharedController();
  private readonly running = new Set<Promise<void>>();
  private readonly limiter = new Limiter(MAX_CONCURRENT_CALLBACKS);

  constructor(private readonly deps: DeliveryDeps) {}

  /** Starts (or, after a restart, resumes) a message's life; returns at once. */
  start(message: SimMessage): void {
    const signal = this.controller.signal;
    const run = this.run(message, signal).catch((err: unknown) => {
      if (!signal.aborted) this.deps.log.error({ err }, 'delivery simulation failed');
    });
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
  }

  /** Drops every pending transition and callback (the inbox was cleared). */
  reset(): void {
    this.controller.abort();
    this.controller = sharedController();
  }

  async close(): Promise<void> {
    this.controller.abort();
    await Promise.allSettled([...this.running]);
  }

  private async run(message: SimMessage, signal: AbortSignal): Promise<void> {
    const plan = statusPlan(message.finalStatus);
    let callbacks: Promise<void> = Promise.resolve();
    for (let i = plan.indexOf(message.status) + 1; i < plan.length; i += 1) {
      await sleep(this.deps.delayMs, undefined, { signal });
      const updated = this.advance(message.messageUuid, plan[i]);
      if (!updated) return; // cleared while waiting
      if (updated.callbackUrl) {
        const params = callbackParams(updated, i + 1);
        const url = updated.callbackUrl;
        callbacks = callbacks.then(() => this.sendCallback(updated, url, params, signal));
      }
    }
    await callbacks;
  }

  private advance(messageUuid: string, status: MessageStatus): SimMessage | undefined {
    const errorCode = status === 'undelivered' || status === 'failed' ? ERROR_CODES[status] : '';
    const change = { messageUuid, status, at: new Date().toISOString(), errorCode };
    const updated = this.deps.store.applyStatus(change);
    if (updated) this.deps.journal?.recordStatus(change);
    return updated;
  }

  /** Never rejects: a pending chain of callbacks must not become an unhandled rejection. */
  private async sendCallback(message: SimMessage, url: string, params: Record<string, string>, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    let outcome: CallbackOutcome;
    try {
      outcome = await this.limiter.run(() =>
        deliverCallback({ url, method: message.callbackMethod, params, authToken: this.deps.authToken, signal }),
      );
    } catch (err) {
      if (!signal.aborted) this.deps.log.error({ err }, 'status callback crashed');
      return;
    }
    if (!outcome.ok) {
      // The app's webhook being down is its problem, not ours: note it and carry on.
      this.deps.log.warn(
        { to: maskPhone(message.to), status: params.Status, url: maskNumbersIn(url), attempts: outcome.attempts, reason: outcome.reason },
        'status callback not delivered',
      );
    }
  }
}
