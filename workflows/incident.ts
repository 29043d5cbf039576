/**
 * The lifecycle of one incident: detected -> notifying -> notified -> resolving -> resolved.
 *
 * Deterministic: time comes from the workflow API, every side effect is an activity, and
 * per-recipient state lives in MongoDB (the workflow only sees batch counts), so its history
 * stays small however many subscribers an incident reaches.
 */
import { condition, defineQuery, defineUpdate, proxyActivities, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { IncidentPhase, MessageKind } from '../domain/types';

export interface IncidentInput {
  incidentId: string;
  siteIds: string[];
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
  resolveRequested: boolean;
}

export const statusQuery = defineQuery<IncidentStatus>('status');
/** Resolving answers at once with the status; the restoration notices follow. Repeating it is harmless. */
export const resolveUpdate = defineUpdate<IncidentStatus, [ResolveInput]>('resolve');

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  // A provider outage must delay notices, never drop them: retry without a limit, with backoff.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: ['IncidentNotFound'] },
});

/** The incident's long-lived state: small, and only counts. */
class IncidentState {
  phase: IncidentPhase = 'detected';
  recipients = 0;
  sent: Record<MessageKind, number> = { outage: 0, restored: 0 };
  failed: Record<MessageKind, number> = { outage: 0, restored: 0 };
  resolveNote?: string;
  resolveRequested = false;

  constructor(readonly incidentId: string) {}

  status(): IncidentStatus {
    const { incidentId, phase, recipients, resolveRequested } = this;
    return { incidentId, phase, recipients, sent: { ...this.sent }, failed: { ...this.failed }, resolveRequested };
  }
}

export async function incidentWorkflow(input: IncidentInput): Promise<IncidentStatus> {
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
  const sendAll = async (kind: MessageKind) => {
    for (;;) {
      const r = await acts.sendNextBatch({ incidentId: input.incidentId, kind });
      state.sent[kind] += r.accepted;
      state.failed[kind] += r.failed;
      if (r.remaining === 0) return;
    }
  };

  await enter('detected');
  await enter('notifying');
  const audience = await acts.snapshotAudience({ incidentId: input.incidentId, siteIds: input.siteIds });
  state.recipients = audience.recipients;
  await sendAll('outage');
  await enter('notified');

  await condition(() => state.resolveRequested);
  await enter('resolving', state.resolveNote);
  await acts.planRestorationNotices({ incidentId: input.incidentId });
  await sendAll('restored');
  await enter('resolved');
  return state.status();
}
