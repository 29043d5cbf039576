/**
 * The lifecycle of one incident: detected -> notifying -> notified -> resolving -> resolved.
 *
 * Deterministic: time comes from the workflow API, every side effect is an activity, and
 * per-recipient state lives in MongoDB (the workflow only sees batch counts), so its history
 * stays small however many subscribers an incident reaches.
 */
import { condition, defineQuery, defineUpdate, proxyActivities, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { DeliveryChannel, IncidentPhase, MessageKind } from '../domain/types';

/** How the delivery watchdog treats messages not delivered (the rules will set these). */
export interface DeliveryPolicy {
  /** Accepted but no delivery receipt within this long: treated as lost. */
  deliveryTimeoutMs: number;
  /** Send attempts on one channel before falling back to the next. */
  maxAttempts: number;
  /** How often the watchdog looks while messages are in flight. */
  sweepEveryMs: number;
  /** Recipients per send request (the SMS channel takes up to 1,000). */
  batchSize?: number;
}

export const DEFAULT_DELIVERY_POLICY: DeliveryPolicy = { deliveryTimeoutMs: 10 * 60_000, maxAttempts: 3, sweepEveryMs: 60_000 };

export interface IncidentInput {
  incidentId: string;
  siteIds: string[];
  delivery?: DeliveryPolicy;
}

export interface ResolveInput {
  note?: string;
}

export interface IncidentStatus {
  incidentId: string;
  phase: IncidentPhase;
  recipients: number;
  sent: Record<MessageKind, number>;
  failed: Record<MessageKind, number>;
  retried: number;
  fellBack: number;
  resolveRequested: boolean;
}

export const statusQuery = defineQuery<IncidentStatus>('status');
/** Resolving answers at once with the status; the restoration notices follow. Repeating it is harmless. */
export const resolveUpdate = defineUpdate<IncidentStatus, [ResolveInput]>('resolve');

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '1 minute',
  // A provider outage must delay notices, never drop them: retry without a limit, with backoff.
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '10 seconds', nonRetryableErrorTypes: ['IncidentNotFound'] },
});

/** The incident's long-lived state: small, and only counts. */
class IncidentState {
  phase: IncidentPhase = 'detected';
  recipients = 0;
  sent: Record<MessageKind, number> = { outage: 0, restored: 0 };
  failed: Record<MessageKind, number> = { outage: 0, restored: 0 };
  retried = 0;
  fellBack = 0;
  resolveNote?: string;
  resolveRequested = false;

  constructor(readonly incidentId: string) {}

  status(): IncidentStatus {
    const { incidentId, phase, recipients, resolveRequested, retried, fellBack } = this;
    return { incidentId, phase, recipients, sent: { ...this.sent }, failed: { ...this.failed }, retried, fellBack, resolveRequested };
  }
}

export async function incidentWorkflow(input: IncidentInput): Promise<IncidentStatus> {
  const policy = input.delivery ?? DEFAULT_DELIVERY_POLICY;
  const state = new IncidentState(input.incidentId);
  setHandler(statusQuery, () => state.status());
  setHandler(
    resolveUpdate,
    (r) => {
      if (!state.resolveRequested) {
        state.resolveRequested = true;
        state.resolveNote = r.note;
      }
      return state.status();
    },
    {
      validator: (r) => {
        if (r.note !== undefined && (typeof r.note !== 'string' || r.note.length > 500)) throw new Error('note must be a string of at most 500 characters');
      },
    },
  );

  const enter = async (phase: IncidentPhase, note?: string) => {
    state.phase = phase;
    await acts.recordIncidentPhase({ incidentId: input.incidentId, phase, at: new Date().toISOString(), note });
  };
  const sendAll = async (kind: MessageKind, channel: DeliveryChannel = 'sms') => {
    for (;;) {
      const r = await acts.sendNextBatch({ incidentId: input.incidentId, kind, channel, batchSize: policy.batchSize });
      state.sent[kind] += r.accepted;
      state.failed[kind] += r.invalid;
      if (r.remaining === 0) return;
    }
  };
  /**
   * Watches one kind of message until every record is delivered or has given up on every
   * channel: retries what was not delivered, sends fallbacks. Stops early when `stop()` says so.
   */
  const watch = async (kind: MessageKind, stop: () => boolean) => {
    const channels = new Set<DeliveryChannel>(['sms']);
    // Receipts usually arrive within seconds: look early once, then at the policy's pace.
    let wait = Math.min(5000, policy.sweepEveryMs);
    for (;;) {
      if (await condition(stop, wait)) return;
      wait = policy.sweepEveryMs;
      let again = false;
      for (const channel of channels) {
        const r = await acts.sweepDeliveries({ incidentId: input.incidentId, kind, channel, deliveryTimeoutMs: policy.deliveryTimeoutMs, maxAttempts: policy.maxAttempts });
        state.retried += r.retried;
        state.fellBack += r.fellBack;
        for (const c of r.fallbackChannels) channels.add(c);
        if (r.retried > 0 || r.fellBack > 0 || r.inFlight > 0) again = true;
      }
      if (!again) return;
      for (const channel of channels) await sendAll(kind, channel);
    }
  };

  await enter('detected');
  await enter('notifying');
  const audience = await acts.snapshotAudience({ incidentId: input.incidentId, siteIds: input.siteIds });
  state.recipients = audience.recipients;
  await sendAll('outage');
  await enter('notified');

  // Until resolved, keep the outage notices' promise: retry and fall back as needed.
  await watch('outage', () => state.resolveRequested);
  await condition(() => state.resolveRequested);
  await enter('resolving', state.resolveNote);
  await acts.planRestorationNotices({ incidentId: input.incidentId });
  for (const channel of ['sms', 'voice', 'email'] as DeliveryChannel[]) await sendAll('restored', channel);
  await watch('restored', () => false);
  await enter('resolved');
  return state.status();
}
