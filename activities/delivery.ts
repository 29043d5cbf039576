/**
 * Delivery activities: the delivery engine (delivery/sender.ts, delivery/sweeper.ts) run as
 * Temporal activities. This file only wires it: the repository over MongoDB, the texts from each
 * incident's pinned rules, the activity's heartbeat and sleep, and the engine's errors as Temporal
 * failures (retry later, or give up).
 */
import { ApplicationFailure, type Duration } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import type { Channel, ChannelName } from '../channels/channel';
import type { PlivoSmsChannel } from '../channels/sms-plivo';
import type { Store } from '../store/db';
import type { SharedRateLimiter } from '../store/rate-limits';
import type { RulesResolver } from '../store/rule-versions';
import { deliveryRepository } from '../store/delivery-repository';
import { createSender } from '../delivery/sender';
import { createSweeper } from '../delivery/sweeper';
import { IncidentMissing, RetryLater, type Runtime } from '../delivery/ports';
import { textsFrom } from './message-texts';
import type { DeliveryChannel } from '../domain/types';
import type { Logger } from '../domain/log';

export type { SendBatchInput, SendBatchResult, SendDueResult } from '../delivery/sender';
export type { SweepAllResult, SweepInput, SweepOutput } from '../delivery/sweeper';

export interface DeliveryDeps {
  store: Store;
  channels: Partial<Record<ChannelName, Channel>>;
  /** The SMS channel again, for what only Plivo can answer (what it accepted since a time). */
  sms?: PlivoSmsChannel;
  /** Plivo's account limits, shared by every worker through MongoDB. */
  smsLimits?: { requests: SharedRateLimiter; messages: SharedRateLimiter };
  /** Longest wait for rate capacity inside an activity; longer waits reschedule the attempt. */
  maxInlineWaitMs?: number;
  /** Channels to try, in order, when one expires for a recipient. */
  fallbackOrder?: DeliveryChannel[];
  logger: Logger;
  /** The rules each incident pinned; their templates write every text. */
  rules: RulesResolver;
}

/** Inside an activity: heartbeats reach Temporal, and a sleep (or a sweep, between scopes) ends when the activity is cancelled. */
const activityRuntime: Runtime = {
  heartbeat: () => Context.current().heartbeat(),
  sleep: (ms) => Context.current().sleep(ms),
  // The SDK's CancelledFailure: the worker then reports the activity cancelled, not failed.
  stopIfCancelled: () => Context.current().cancellationSignal.throwIfAborted(),
};

/** The engine's errors as Temporal sees them: retry later (after the wait, when known), or never. */
function asTemporalFailure(err: unknown): unknown {
  if (err instanceof RetryLater)
    return ApplicationFailure.create({
      message: err.message,
      type: err.type,
      nonRetryable: false,
      ...(err.delayMs ? { nextRetryDelay: err.delayMs as Duration } : {}),
    });
  if (err instanceof IncidentMissing)
    return ApplicationFailure.create({ type: 'IncidentNotFound', message: err.message, nonRetryable: true });
  return err;
}

function failingAsTemporal<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return (...args) =>
    fn(...args).catch((err: unknown) => {
      throw asTemporalFailure(err);
    });
}

/** The delivery engine's pieces over MongoDB, inside activities. */
function engineParts(deps: DeliveryDeps) {
  const repo = deliveryRepository(deps.store);
  return { repo, channels: deps.channels, sms: deps.sms, runtime: activityRuntime, logger: deps.logger };
}

/** The sender; the planning activities share it (they send what they plan due at once). */
export function createDeliverySender(deps: DeliveryDeps) {
  return createSender({
    ...engineParts(deps),
    smsLimits: deps.smsLimits,
    maxInlineWaitMs: deps.maxInlineWaitMs,
    texts: textsFrom(deps.rules),
  });
}

export function createDeliveryActivities(deps: DeliveryDeps, sender = createDeliverySender(deps)) {
  const sweeper = createSweeper({ ...engineParts(deps), fallbackOrder: deps.fallbackOrder });
  return {
    /** Sends the next batch of planned messages of one kind on one channel; one request per distinct text. */
    sendNextBatch: failingAsTemporal(sender.sendNextBatch),
    /** Sends what is due of these kinds on every channel, batch after batch, within a time budget. */
    sendDue: failingAsTemporal(sender.sendDue),
    /** Applies stored receipts, retries what was not delivered and plans fallbacks for what expired. */
    sweepDeliveries: failingAsTemporal(sweeper.sweepDeliveries),
    /** The watchdog over every channel at once: retries, fallbacks, and when to look again. */
    sweepAll: failingAsTemporal(sweeper.sweepAll),
  };
}

export type DeliveryActivities = ReturnType<typeof createDeliveryActivities>;
