/**
 * The lifecycle of one incident: detected -> notifying -> notified -> (escalated) -> resolving ->
 * resolved (or cancelled, for a false alarm) -> billed.
 *
 * The rules (pinned when the incident opened) decide who is told, on which channel and when:
 * the activities turn that into delivery records with a due time (grace delay, quiet hours).
 * This workflow only keeps time: it sends what is due, watches what was sent (retry, fall back),
 * fires the rules' timers (an update every N, staff escalation), acts on what operators and
 * monitoring send it (a new estimate, escalate, more sites, cancel, resolve, reopen), and on
 * resolution has the restoration (or one combined message) sent to everyone who was told.
 *
 * Deterministic: time comes from the workflow API, every side effect is an activity, and
 * per-recipient state lives in MongoDB (the workflow sees counts only), so its history stays
 * small however many subscribers an incident reaches; a long incident continues as new.
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
import { countSent, deliveryLoop } from './delivery-loop';
import { setUpdateAndSignal } from './update-and-signal';
import type { IncidentPhase, MessageKind } from '../domain/types';
import type { SignalDefinition, UpdateDefinition } from '@temporalio/common';
import {
  DEFAULT_DELIVERY_POLICY,
  acknowledgeSignal,
  acknowledgeUpdate,
  addUpdateSignal,
  addUpdateUpdate,
  cancelSignal,
  cancelUpdate,
  escalateSignal,
  escalateUpdate,
  extendScopeSignal,
  extendScopeUpdate,
  reopenSignal,
  reopenUpdate,
  resolveSignal,
  resolveUpdate,
  statusQuery,
  type AcknowledgeInput,
  type AddUpdateInput,
  type CancelInput,
  type EscalateInput,
  type ExtendScopeInput,
  type IncidentInput,
  type IncidentSchedule,
  type IncidentSnapshot,
  type IncidentStatus,
  type PendingAction,
  type ResolveInput,
} from './incident-api';
import { legacyIncidentLifecycle } from './incident-legacy';

export * from './incident-api';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  // A killed worker's activity is taken over by another after this long (every activity beats every
  // 3 s: activities/keep-alive.ts); a minute was most of the time a worker kill cost the drill.
  heartbeatTimeout: '15 seconds',
  // A provider outage must delay notices, never drop them: retry without a limit, with backoff.
  retry: {
    initialInterval: '500 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '10 seconds',
    nonRetryableErrorTypes: ['IncidentNotFound'],
  },
});

/** Messages sent while the incident is open, and those that close it. */
const OPEN_KINDS: MessageKind[] = ['outage', 'update', 'escalation', 'message'];
// An operator's message still in flight is watched to the end (an announcement closed at once is billed on its receipts).
const CLOSING_KINDS: MessageKind[] = ['restored', 'outage-restored', 'withdrawn', 'message'];
const MAX_TEXT = 500;

// Workflow time: the SDK makes `Date` replay-safe inside workflows.
const now = () => new Date().getTime();

function validateResolve(r: ResolveInput): void {
  if (r.note !== undefined && (typeof r.note !== 'string' || r.note.length > MAX_TEXT))
    throw new Error(`note must be a string of at most ${MAX_TEXT} characters`);
  if (
    r.settleSeconds !== undefined &&
    !(Number.isFinite(r.settleSeconds) && r.settleSeconds >= 0 && r.settleSeconds <= 3600)
  )
    throw new Error('settleSeconds must be between 0 and 3600');
}

/** The incident's long-lived state: small, and only counts. */
class IncidentState {
  phase: IncidentPhase = 'detected';
  recipients = 0;
  sent: Partial<Record<MessageKind, number>> = {};
  failed = 0;
  retried = 0;
  fellBack = 0;
  resolveRequested = false;
  resolveAt?: string;
  resolveNote?: string;
  settlingUntil?: string;
  cancelRequested = false;
  cancelReason?: string;
  estimatedEnd?: string;
  updates = 0;
  escalations = 0;
  addedSites = 0;
  messages = 0;
  acknowledgedBy?: string;
  acknowledgedAt?: string;
  schedule?: IncidentSchedule;
  /** Per update period (seconds): how many periodic rounds were planned. */
  periodicRounds: Record<string, number> = {};
  /** How many of the schedule's escalations fired. */
  escalationsFired = 0;
  pending: PendingAction[] = [];
  /** Bumped by every accepted request, so that a waiting loop wakes up to recompute its timers. */
  changes = 0;

  constructor(
    readonly incidentId: string,
    from?: IncidentSnapshot,
  ) {
    if (from)
      Object.assign(this, {
        ...from,
        sent: { ...from.sent },
        periodicRounds: { ...from.periodicRounds },
        pending: [...(from.pending ?? [])],
      });
  }

  /** Open: nothing has started the end (a settling resolve still counts as open). */
  get open(): boolean {
    return (
      !this.cancelRequested &&
      this.phase !== 'resolving' &&
      this.phase !== 'resolved' &&
      this.phase !== 'cancelled' &&
      this.phase !== 'billed'
    );
  }

  status(): IncidentStatus {
    const {
      incidentId,
      phase,
      recipients,
      resolveRequested,
      failed,
      retried,
      fellBack,
      settlingUntil,
      cancelRequested,
      estimatedEnd,
      updates,
      escalations,
      addedSites,
      messages,
      acknowledgedBy,
      acknowledgedAt,
    } = this;
    return {
      incidentId,
      phase,
      recipients,
      sent: { ...this.sent },
      failed,
      retried,
      fellBack,
      resolveRequested,
      settlingUntil,
      cancelRequested,
      estimatedEnd,
      updates,
      escalations,
      addedSites,
      messages,
      acknowledgedBy,
      acknowledgedAt,
    };
  }

  private notOpen(): void {
    if (!this.open)
      throw new Error(
        `incident ${this.incidentId} is ${this.cancelRequested ? 'cancelled' : this.phase}; it takes no more changes`,
      );
  }

  resolve(r: ResolveInput): void {
    if (!this.resolveRequested && !this.cancelRequested) {
      this.resolveRequested = true;
      this.resolveAt = new Date(now()).toISOString();
      this.resolveNote = r.note;
      this.settlingUntil = r.settleSeconds ? new Date(now() + r.settleSeconds * 1000).toISOString() : undefined;
    } else if (this.settlingUntil && !r.settleSeconds) {
      // An operator confirms what monitoring said: no need to wait any longer.
      this.settlingUntil = undefined;
    }
    this.changes++;
  }

  validateReopen(): void {
    this.notOpen();
    if (!this.resolveRequested || !this.settlingUntil)
      throw new Error('only a resolve that is still settling can be reopened');
  }

  reopen(): void {
    this.resolveRequested = false;
    this.resolveAt = this.resolveNote = this.settlingUntil = undefined;
    this.changes++;
  }

  validateAddUpdate(u: AddUpdateInput): void {
    this.notOpen();
    if (this.resolveRequested) throw new Error('the incident is being resolved; reopen it first');
    if (u.text === undefined && u.estimatedEnd === undefined) throw new Error('give text, estimatedEnd or both');
    if (u.text !== undefined && (typeof u.text !== 'string' || u.text.length > MAX_TEXT))
      throw new Error(`text must be a string of at most ${MAX_TEXT} characters`);
    if (u.estimatedEnd !== undefined && !Number.isFinite(Date.parse(u.estimatedEnd)))
      throw new Error('estimatedEnd must be an ISO date-time');
    if (
      u.sms !== undefined &&
      (typeof u.sms?.text !== 'string' || u.sms.text.length === 0 || u.sms.text.length > MAX_TEXT)
    )
      throw new Error(`sms.text must be a string of 1 to ${MAX_TEXT} characters`);
  }

  addUpdate(u: AddUpdateInput): void {
    const etaChanged = u.estimatedEnd !== undefined && u.estimatedEnd !== this.estimatedEnd;
    if (u.estimatedEnd !== undefined) this.estimatedEnd = u.estimatedEnd;
    this.pending.push({
      type: 'update',
      at: new Date(now()).toISOString(),
      text: u.text,
      estimatedEnd: u.estimatedEnd,
      etaChanged,
      ...(u.sms ? { sms: u.sms } : {}),
    });
    this.changes++;
  }

  validateEscalate(e: EscalateInput): void {
    this.notOpen();
    if (e.reason !== undefined && (typeof e.reason !== 'string' || e.reason.length > MAX_TEXT))
      throw new Error(`reason must be a string of at most ${MAX_TEXT} characters`);
  }

  escalate(e: EscalateInput): void {
    this.pending.push({ type: 'escalate', at: new Date(now()).toISOString(), reason: e.reason });
    this.changes++;
  }

  validateExtendScope(s: ExtendScopeInput): void {
    this.notOpen();
    if (
      !Array.isArray(s.siteIds) ||
      s.siteIds.length === 0 ||
      s.siteIds.some((id: unknown) => typeof id !== 'string' || id.length === 0)
    )
      throw new Error('siteIds must be a non-empty list of site ids');
  }

  extendScope(s: ExtendScopeInput): void {
    this.pending.push({ type: 'scope', at: new Date(now()).toISOString(), siteIds: [...new Set(s.siteIds)] });
    this.changes++;
  }

  validateAcknowledge(a: AcknowledgeInput): void {
    this.notOpen();
    if (typeof a.by !== 'string' || a.by.length === 0 || a.by.length > 200)
      throw new Error('by must name who took the escalation (at most 200 characters)');
    if (!Number.isFinite(Date.parse(a.at))) throw new Error('at must be an ISO date-time');
  }

  /** The first acknowledgement counts; a repeat (an SMS and a click) changes nothing. */
  acknowledge(a: AcknowledgeInput): void {
    if (this.acknowledgedBy !== undefined) return;
    this.acknowledgedBy = a.by;
    this.acknowledgedAt = a.at;
    this.pending.push({ type: 'acknowledge', at: a.at, by: a.by });
    this.changes++;
  }

  validateCancel(c: CancelInput): void {
    if (this.cancelRequested) return;
    this.notOpen();
    if (this.resolveRequested && !this.settlingUntil)
      throw new Error('the incident is resolved already; a false alarm must be cancelled before it is resolved');
    if (c.reason !== undefined && (typeof c.reason !== 'string' || c.reason.length > MAX_TEXT))
      throw new Error(`reason must be a string of at most ${MAX_TEXT} characters`);
  }

  cancel(c: CancelInput): void {
    this.cancelRequested = true;
    this.cancelReason = c.reason;
    this.resolveAt ??= new Date(now()).toISOString();
    this.changes++;
  }

  snapshot(): IncidentSnapshot {
    const { resolveAt, resolveNote, cancelReason, schedule, periodicRounds, escalationsFired, pending } = this;
    return {
      ...this.status(),
      resolveAt,
      resolveNote,
      cancelReason,
      schedule,
      periodicRounds,
      escalationsFired,
      pending,
    };
  }
}

export async function incidentWorkflow(input: IncidentInput): Promise<IncidentStatus> {
  // Runs that started before updates, escalation, scope and cancel keep their first steps.
  if (!patched('lifecycle-v2')) return legacyIncidentLifecycle(input);
  const policy = input.delivery ?? DEFAULT_DELIVERY_POLICY;
  const state = new IncidentState(input.incidentId, input.resume);
  if (!input.resume && input.estimatedEnd) state.estimatedEnd = input.estimatedEnd;

  setHandler(statusQuery, () => state.status());
  // Each request twice: an Update for callers that wait for the answer, a signal for those that cannot wait.
  const both = <A>(
    update: UpdateDefinition<IncidentStatus, [A]>,
    signal: SignalDefinition<[A]>,
    apply: (a: A) => void,
    validate: (a: A) => void,
  ) => setUpdateAndSignal(update, signal, { apply, validate, status: () => state.status() });
  both(resolveUpdate, resolveSignal, (r) => state.resolve(r), validateResolve);
  both(
    reopenUpdate,
    reopenSignal,
    () => state.reopen(),
    () => state.validateReopen(),
  );
  both(
    addUpdateUpdate,
    addUpdateSignal,
    (u) => state.addUpdate(u),
    (u) => state.validateAddUpdate(u),
  );
  both(
    escalateUpdate,
    escalateSignal,
    (e) => state.escalate(e),
    (e) => state.validateEscalate(e),
  );
  both(
    extendScopeUpdate,
    extendScopeSignal,
    (s) => state.extendScope(s),
    (s) => state.validateExtendScope(s),
  );
  both(
    cancelUpdate,
    cancelSignal,
    (c) => state.cancel(c),
    (c) => state.validateCancel(c),
  );
  both(
    acknowledgeUpdate,
    acknowledgeSignal,
    (a) => state.acknowledge(a),
    (a) => state.validateAcknowledge(a),
  );
  // Only runs that were acknowledged reach these steps; the patch keeps them out of older histories.
  const acknowledged = () => state.acknowledgedBy !== undefined && patched('escalation-ack');

  const enter = async (phase: IncidentPhase, note?: string) => {
    state.phase = phase;
    await acts.recordIncidentPhase({ incidentId: input.incidentId, phase, at: new Date(now()).toISOString(), note });
  };
  /** Hands over to a fresh run when the history grows long (a days-long incident under the watchdog). */
  const continueIfLong = async () => {
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength > (policy.historyLimit ?? 5000)) {
      await continueAsNew<typeof incidentWorkflow>({ ...input, resume: state.snapshot() });
    }
  };

  const deliveryRound = deliveryLoop(acts, input.incidentId, policy, state);

  /** The rules' timers: periodic updates and escalations whose time has come. */
  const fireTimers = async () => {
    const s = state.schedule!;
    const opened = Date.parse(s.openedAt);
    for (const every of s.updateEverySeconds) {
      const due = Math.floor((now() - opened) / (every * 1000));
      if (due > (state.periodicRounds[every] ?? 0)) {
        // Late (a worker was down): one update now, not one per missed period.
        state.periodicRounds[every] = due;
        await acts.planIncidentUpdate({
          incidentId: input.incidentId,
          round: ++state.updates,
          everySeconds: every,
          at: new Date(now()).toISOString(),
        });
      }
    }
    if (acknowledged()) return; // someone took it: the rules' repeats stop
    const steps: number[] = [];
    while (
      state.escalationsFired < s.escalations.length &&
      opened + s.escalations[state.escalationsFired].afterSeconds * 1000 <= now()
    ) {
      steps.push(s.escalations[state.escalationsFired].step);
      state.escalationsFired++;
    }
    if (steps.length > 0)
      await escalate(
        { steps: [...new Set(steps)] },
        `escalated by the rules after ${Math.round((now() - opened) / 60000)} min`,
      );
  };
  const untilNextTimer = (): number => {
    const s = state.schedule!;
    const opened = Date.parse(s.openedAt);
    const next = [
      ...s.updateEverySeconds.map((every) => opened + ((state.periodicRounds[every] ?? 0) + 1) * every * 1000),
      ...(state.escalationsFired < s.escalations.length && !acknowledged()
        ? [opened + s.escalations[state.escalationsFired].afterSeconds * 1000]
        : []),
      ...(state.settlingUntil ? [Date.parse(state.settlingUntil)] : []),
    ];
    return next.length ? Math.max(0, Math.min(...next) - now()) : Infinity;
  };
  const escalate = async (which: { steps?: number[]; reason?: string }, note: string) => {
    const r = await acts.planEscalation({ incidentId: input.incidentId, round: ++state.escalations, ...which });
    if (r.planned > 0 && (state.phase === 'notifying' || state.phase === 'notified')) await enter('escalated', note);
  };
  /** Acts on what operators and monitoring asked for, in the order they asked. */
  const actOnRequests = async () => {
    while (state.pending.length > 0) {
      const a = state.pending[0];
      if (a.type === 'update') {
        await acts.recordIncidentUpdate({
          incidentId: input.incidentId,
          at: a.at,
          text: a.text,
          estimatedEnd: a.estimatedEnd,
        });
        // A new estimate is news for those who asked for it; a text alone goes to the status page and feed.
        await acts.planIncidentUpdate({
          incidentId: input.incidentId,
          round: ++state.updates,
          onEtaChange: a.etaChanged,
          at: a.at,
        });
        // The operator's words by SMS: a new step, which runs that started before it never reach (no update of theirs has `sms`).
        if (a.sms && patched('operator-sms'))
          await acts.planOperatorMessage({ incidentId: input.incidentId, round: ++state.messages, at: a.at, ...a.sms });
      } else if (a.type === 'acknowledge') {
        if (acknowledged()) await acts.stopEscalation({ incidentId: input.incidentId, at: a.at, by: a.by });
      } else if (a.type === 'escalate') {
        await escalate({ reason: a.reason }, `escalated by hand${a.reason ? `: ${a.reason}` : ''}`);
      } else {
        const r = await acts.extendIncidentScope({ incidentId: input.incidentId, siteIds: a.siteIds, at: a.at });
        state.recipients += r.planned;
        state.addedSites += r.newSites;
      }
      state.pending.shift();
    }
  };
  const closing = () =>
    state.cancelRequested ||
    (state.resolveRequested && (!state.settlingUntil || now() >= Date.parse(state.settlingUntil)));

  let watchOnly = false;
  if (!input.resume) {
    await enter('detected');
    // The group window: the other alerts of a burst (a relay and the towers it feeds) settle into
    // this incident (scope, absorption) before its first notices are planned. Guarded: runs that
    // started before the window keep their history.
    if (input.groupWaitSeconds && patched('group-window'))
      await condition(() => !state.open || state.resolveRequested, input.groupWaitSeconds * 1000);
    const plan = await acts.planNotices({ incidentId: input.incidentId, batchSize: policy.batchSize });
    state.recipients = plan.planned;
    countSent(state, plan.sent);
    // The planning sent everything it made due: the first round only watches (a round that sends
    // reads every page of records to find nothing due). Guarded: runs before it sent in that round.
    watchOnly = plan.leftDue === 0 && patched('planning-sends');
    state.schedule = plan.schedule;
    await enter('notifying', plan.firstDueAt ? `first notices due at ${plan.firstDueAt}` : 'nobody to notify');
  }
  state.schedule ??= await acts.incidentSchedule({ incidentId: input.incidentId });

  // Open: send as notices fall due (after the grace delay, after quiet hours), retry, fall back;
  // fire the rules' timers and act on requests, until resolved (and settled) or cancelled.
  while (state.open && !closing()) {
    await actOnRequests();
    await fireTimers();
    if (closing()) break;
    const round = await deliveryRound(OPEN_KINDS, closing, watchOnly, () => state.pending.length > 0);
    watchOnly = false;
    if (round.busy) {
      await continueIfLong(); // a large audience: many batches in a row
      continue;
    }
    if (round.allSent && state.phase === 'notifying') await enter('notified');
    const wait = Math.min(round.waitMs, untilNextTimer());
    const seen = state.changes;
    const wake = () => state.pending.length > 0 || closing() || state.changes !== seen;
    if (wait === Infinity) await condition(wake);
    else await condition(wake, wait);
    await continueIfLong();
  }
  await actOnRequests(); // accepted before the end: an estimate still reaches the page, added sites their records

  if (
    state.phase !== 'resolving' &&
    state.phase !== 'resolved' &&
    state.phase !== 'cancelled' &&
    state.phase !== 'billed'
  ) {
    state.settlingUntil = undefined;
    if (state.cancelRequested) {
      await enter('resolving', `cancelled${state.cancelReason ? `: ${state.cancelReason}` : ''}`);
      await acts.prepareCancellation({
        incidentId: input.incidentId,
        at: state.resolveAt!,
        reason: state.cancelReason,
      });
    } else {
      await enter('resolving', state.resolveNote);
      const resolution = await acts.prepareResolution({
        incidentId: input.incidentId,
        at: state.resolveAt!,
        batchSize: policy.batchSize,
      });
      countSent(state, resolution.sent);
      // As after the planning: what the resolution made due is sent, the first closing round only watches.
      watchOnly = resolution.leftDue === 0 && patched('planning-sends');
    }
  }
  if (state.phase === 'resolving') {
    for (;;) {
      const round = await deliveryRound(CLOSING_KINDS, undefined, watchOnly);
      watchOnly = false;
      if (round.busy) {
        await continueIfLong();
        continue;
      }
      if (round.idle) break;
      await sleep(round.waitMs);
      await continueIfLong();
    }
    await enter(state.cancelRequested ? 'cancelled' : 'resolved');
  }
  // The billed stage: what its messages cost goes to the ledger and the incident.
  if (state.phase !== 'billed') {
    await acts.billIncident({ incidentId: input.incidentId });
    await enter('billed');
  }
  return state.status();
}
