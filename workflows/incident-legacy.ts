/**
 * The incident lifecycle as it was before updates, escalation, scope extension and cancellation
 * (patch `lifecycle-v2`). Incidents that started on this code replay and finish on it; new ones
 * run workflows/incident.ts. Do not change: a recorded history (test/replay) holds it to its steps.
 */
import {
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { IncidentPhase, MessageKind } from '../domain/types';
import {
  DEFAULT_DELIVERY_POLICY,
  resolveUpdate,
  statusQuery,
  type IncidentInput,
  type IncidentSnapshot,
  type IncidentStatus,
} from './incident-api';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  // A provider outage must delay notices, never drop them: retry without a limit, with backoff.
  retry: {
    initialInterval: '500 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    nonRetryableErrorTypes: ['IncidentNotFound'],
  },
});

/** The incident's long-lived state: small, and only counts. */
class LegacyIncidentState {
  phase: IncidentPhase = 'detected';
  recipients = 0;
  sent: Partial<Record<MessageKind, number>> = { outage: 0, restored: 0, 'outage-restored': 0 };
  failed = 0;
  retried = 0;
  fellBack = 0;
  resolveRequested = false;
  resolveAt?: string;
  resolveNote?: string;

  constructor(
    readonly incidentId: string,
    from?: IncidentSnapshot,
  ) {
    if (from) Object.assign(this, { ...from, sent: { ...from.sent } });
  }

  status(): IncidentStatus {
    const { incidentId, phase, recipients, resolveRequested, failed, retried, fellBack } = this;
    return { incidentId, phase, recipients, sent: { ...this.sent }, failed, retried, fellBack, resolveRequested };
  }

  snapshot(): IncidentSnapshot {
    return { ...this.status(), resolveAt: this.resolveAt, resolveNote: this.resolveNote };
  }
}

export async function legacyIncidentLifecycle(input: IncidentInput): Promise<IncidentStatus> {
  const policy = input.delivery ?? DEFAULT_DELIVERY_POLICY;
  const state = new LegacyIncidentState(input.incidentId, input.resume);
  setHandler(statusQuery, () => state.status());
  setHandler(
    resolveUpdate,
    (r) => {
      if (!state.resolveRequested) {
        state.resolveRequested = true;
        state.resolveAt = new Date().toISOString();
        state.resolveNote = r.note;
      }
      return state.status();
    },
    {
      validator: (r) => {
        if (r.note !== undefined && (typeof r.note !== 'string' || r.note.length > 500))
          throw new Error('note must be a string of at most 500 characters');
      },
    },
  );

  const enter = async (phase: IncidentPhase, note?: string) => {
    state.phase = phase;
    await acts.recordIncidentPhase({ incidentId: input.incidentId, phase, at: new Date().toISOString(), note });
  };
  /** Hands over to a fresh run when the history grows long (a days-long incident under the watchdog). */
  const continueIfLong = async () => {
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength > 5000) {
      await continueAsNew<(i: IncidentInput) => Promise<IncidentStatus>>({ ...input, resume: state.snapshot() });
    }
  };
  /**
   * Sends what is due, watches what was sent, sleeps until the next due time or watchdog round;
   * returns when nothing is due, held or in flight any more, or when `stop()` says so.
   */
  const deliver = async (kinds: MessageKind[], stop: () => boolean, onAllSent?: () => Promise<void>) => {
    // Receipts usually arrive within seconds: look early once, then at the policy's pace.
    let look = Math.min(5000, policy.sweepEveryMs);
    for (;;) {
      const r = await acts.sendDue({ incidentId: input.incidentId, kinds, batchSize: policy.batchSize });
      for (const [kind, n] of Object.entries(r.accepted))
        state.sent[kind as MessageKind] = (state.sent[kind as MessageKind] ?? 0) + (n ?? 0);
      state.failed += r.invalid;
      if (r.remaining > 0) {
        if (r.retryAfterMs) await sleep(r.retryAfterMs);
        continue;
      }
      const sweep = await acts.sweepAll({
        incidentId: input.incidentId,
        kinds,
        deliveryTimeoutMs: policy.deliveryTimeoutMs,
        maxAttempts: policy.maxAttempts,
      });
      state.retried += sweep.retried;
      state.fellBack += sweep.fellBack;
      if (sweep.retried > 0 || sweep.fellBack > 0) continue;
      if (!sweep.nextDueAt && onAllSent) await onAllSent();
      if (!sweep.nextDueAt && sweep.inFlight === 0) return;
      const untilDue = sweep.nextDueAt ? Math.max(0, Date.parse(sweep.nextDueAt) - new Date().getTime()) : Infinity;
      const wait = Math.min(untilDue, sweep.inFlight > 0 ? look : Infinity);
      if (sweep.inFlight > 0) look = policy.sweepEveryMs;
      if (await condition(stop, wait)) return;
      await continueIfLong();
    }
  };

  if (!input.resume) {
    await enter('detected');
    const plan = await acts.planNotices({ incidentId: input.incidentId });
    state.recipients = plan.planned;
    await enter('notifying', plan.firstDueAt ? `first notices due at ${plan.firstDueAt}` : 'nobody to notify');
  }
  if (!state.resolveRequested && state.phase !== 'resolving') {
    // Until resolved: send as notices fall due (after the grace delay, after quiet hours), retry, fall back.
    await deliver(
      ['outage'],
      () => state.resolveRequested,
      async () => {
        if (state.phase === 'notifying') await enter('notified');
      },
    );
    await condition(() => state.resolveRequested);
  }
  if (state.phase !== 'resolving') {
    await enter('resolving', state.resolveNote);
    await acts.prepareResolution({ incidentId: input.incidentId, at: state.resolveAt! });
  }
  await deliver(['restored', 'outage-restored'], () => false);
  await enter('resolved');
  // The billed stage: what its messages cost goes to the ledger and the incident (runs started before it skip it).
  if (patched('billed-stage')) {
    await acts.billIncident({ incidentId: input.incidentId });
    await enter('billed');
  }
  return state.status();
}
