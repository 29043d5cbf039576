import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import { deliverCallback, Limiter, type CallbackOutcome } from './callbacks';
import type { FaultEngine } from './faults';
import { SendPacer } from './limits';
import { maskNumbersIn, maskPhone, plivoNumber } from './phone';
import type { SimStats } from './stats';
import type { FinalStatus, MessageStatus, MessageStore, NdjsonJournal, SimMessage } from './store';

/** What Plivo charges per part in the simulator (5 decimals, as in Plivo's callbacks). */
export const RATE_PER_UNIT = 0.005;

/** Plivo error codes the simulator reports for the unhappy endings. */
const ERROR_CODES: Record<Exclude<FinalStatus, 'delivered'>, string> = {
  undelivered: '80', // destination temporarily unavailable
  failed: '300', // failed to dispatch message
};

/** Plivo's code for a message that waited in the queue too long. */
const EXPIRED_CODE = '420';
/** Plivo drops queued messages after 3 hours. */
const DEFAULT_QUEUE_EXPIRY_SECONDS = 3 * 60 * 60;
/** Gap between a callback and its duplicate. */
const DUPLICATE_GAP_MS = 5;

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
  /** Pacing (limits.messagesPerSecond) and callback faults; none when absent. */
  faults?: FaultEngine;
  stats?: SimStats;
}

type Params = Record<string, string>;

async function sleepUntil(at: number, signal: AbortSignal): Promise<void> {
  await sleep(Math.max(0, at - Date.now()), undefined, { signal });
}

/**
 * Moves accepted messages through their statuses on a timer and sends the signed status
 * callbacks. Status changes never wait for the app's webhook (as at Plivo), but the
 * callbacks of one message are sent one after the other so they arrive in Sequence order,
 * unless the reorder fault holds the `sent` callback back until the final one has gone.
 * With `limits.messagesPerSecond` the queued→sent step is paced account-wide, first come
 * first served; a message that would wait past the queue expiry ends `failed` (420).
 */
export class DeliveryScheduler {
  private controller = sharedController();
  private readonly running = new Set<Promise<void>>();
  private readonly limiter = new Limiter(MAX_CONCURRENT_CALLBACKS);
  private readonly pacer = new SendPacer();

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
    this.pacer.reset();
  }

  async close(): Promise<void> {
    this.controller.abort();
    await Promise.allSettled([...this.running]);
  }

  private async run(message: SimMessage, signal: AbortSignal): Promise<void> {
    const plan = statusPlan(message.finalStatus);
    const first = plan.indexOf(message.status) + 1;
    const callbacks = new MessageCallbacks(
      this,
      message,
      signal,
      plan.length - first >= 2 && (this.deps.faults?.reorderCallbacks() ?? false),
    );
    for (let i = first; i < plan.length; i += 1) {
      let status = plan[i];
      if (status === 'sent') {
        const slot = this.sendSlot(message);
        await sleepUntil(slot.at, signal);
        if (slot.expired) status = 'failed';
      } else {
        await sleep(this.deps.delayMs, undefined, { signal });
      }
      const updated = this.advance(
        message,
        status,
        status === 'failed' && plan[i] === 'sent' ? EXPIRED_CODE : undefined,
      );
      if (!updated) return; // cleared while waiting
      const last = i === plan.length - 1 || status !== plan[i];
      if (updated.callbackUrl) callbacks.push(updated.callbackUrl, callbackParams(updated, i + 1), last);
      if (last) break;
    }
    await callbacks.done();
  }

  /** When the message may move to `sent`, or when it expires in the queue instead. */
  private sendSlot(message: SimMessage): { at: number; expired: boolean } {
    const earliest = Date.now() + this.deps.delayMs;
    const limits = this.deps.faults?.limits ?? {};
    if (!limits.messagesPerSecond) return { at: earliest, expired: false };
    const deadline =
      Date.parse(message.acceptedAt) + (limits.queueExpirySeconds ?? DEFAULT_QUEUE_EXPIRY_SECONDS) * 1000;
    const at = this.pacer.reserve(earliest, limits.messagesPerSecond, deadline);
    if (at !== undefined) return { at, expired: false };
    this.deps.stats?.messageExpired();
    return { at: Math.max(earliest, deadline), expired: true };
  }

  private advance(message: SimMessage, status: MessageStatus, errorCodeOverride?: string): SimMessage | undefined {
    const unhappy = status === 'undelivered' || status === 'failed';
    const errorCode = unhappy ? (errorCodeOverride ?? message.finalErrorCode ?? ERROR_CODES[status]) : '';
    const change = { messageUuid: message.messageUuid, status, at: new Date().toISOString(), errorCode };
    const updated = this.deps.store.applyStatus(change);
    if (updated) this.deps.journal?.recordStatus(change);
    return updated;
  }

  /** Sends one callback (and its duplicate, if the fault says so); never rejects. */
  async dispatch(
    message: SimMessage,
    url: string,
    params: Params,
    signal: AbortSignal,
    delayMs: number,
    duplicate: boolean,
  ): Promise<void> {
    try {
      if (delayMs > 0) await sleep(delayMs, undefined, { signal });
      await this.sendCallback(message, url, params, signal, false);
      if (duplicate) {
        await sleep(DUPLICATE_GAP_MS, undefined, { signal });
        await this.sendCallback(message, url, params, signal, true);
      }
    } catch (err) {
      if (!signal.aborted) this.deps.log.error({ err }, 'status callback crashed');
    }
  }

  get faults(): FaultEngine | undefined {
    return this.deps.faults;
  }

  noteReordered(): void {
    this.deps.stats?.callbacksReordered();
  }

  /** Never rejects: a pending chain of callbacks must not become an unhandled rejection. */
  private async sendCallback(
    message: SimMessage,
    url: string,
    params: Params,
    signal: AbortSignal,
    duplicate: boolean,
  ): Promise<void> {
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
    this.deps.stats?.callback(outcome, duplicate);
    if (!outcome.ok) {
      // The app's webhook being down is its problem, not ours: note it and carry on.
      this.deps.log.warn(
        {
          to: maskPhone(message.to),
          status: params.Status,
          url: maskNumbersIn(url),
          attempts: outcome.attempts,
          reason: outcome.reason,
        },
        'status callback not delivered',
      );
    }
  }
}

/**
 * One message's callbacks, sent one after the other. The fault decisions (extra delay,
 * duplicate) are drawn when a callback is queued, so a seeded run draws them in the order
 * the status changes happen.
 */
class MessageCallbacks {
  private chain: Promise<void> = Promise.resolve();
  private readonly held: Array<{ url: string; params: Params }> = [];

  constructor(
    private readonly scheduler: DeliveryScheduler,
    private readonly message: SimMessage,
    private readonly signal: AbortSignal,
    private readonly reorder: boolean,
  ) {}

  push(url: string, params: Params, last: boolean): void {
    if (this.reorder && !last) {
      this.held.push({ url, params });
      return;
    }
    this.enqueue(url, params);
    if (this.held.length > 0) {
      this.scheduler.noteReordered();
      for (const held of this.held.splice(0)) this.enqueue(held.url, held.params);
    }
  }

  done(): Promise<void> {
    return this.chain;
  }

  private enqueue(url: string, params: Params): void {
    const faults = this.scheduler.faults;
    const delayMs = faults?.callbackDelayMs() ?? 0;
    const duplicate = faults?.duplicateCallback() ?? false;
    this.chain = this.chain.then(() =>
      this.scheduler.dispatch(this.message, url, params, this.signal, delayMs, duplicate),
    );
  }
}
