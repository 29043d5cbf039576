/**
 * The lifecycle of one planned maintenance: scheduled -> in_progress -> (overrun) -> completed,
 * or cancelled before it began; then billed. Reschedules move its window at any point before
 * the end (once the work has begun, only its end).
 *
 * The rules (pinned when it was created) decide who is told, on which channel and when; the
 * activities turn that into delivery records. This workflow keeps time: it sends what is due
 * (the notice, `notice` before the start), fires the rules' timers (a reminder at each
 * `reminder` before the start, the start notice, and, when the window ends before the work is
 * reported completed, the overrun and the staff escalations the rules ask for), and acts on
 * what operators send it (reschedule, cancel, complete), each a Temporal Update.
 *
 * Deterministic: time comes from the workflow API, every side effect is an activity, and
 * per-recipient state lives in MongoDB (the workflow sees counts only); a long-lived one
 * continues as new.
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
import { deliveryLoop } from './delivery-loop';
import { setUpdateAndSignal } from './update-and-signal';
import type { MaintenancePhase, MessageKind } from '../domain/types';
import { DEFAULT_DELIVERY_POLICY } from './incident-api';
import type { AcknowledgeInput } from './incident-api';
import {
  acknowledgeMaintenanceSignal,
  acknowledgeMaintenanceUpdate,
  cancelMaintenanceUpdate,
  completeMaintenanceUpdate,
  maintenanceStatusQuery,
  rescheduleUpdate,
  type MaintenanceInput,
  type MaintenanceSchedule,
  type MaintenanceSnapshot,
  type MaintenanceStatus,
  type MaintenanceWindow,
  type PendingMaintenanceAction,
} from './maintenance-api';

export * from './maintenance-api';

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

/** Messages sent while the maintenance is open, and those that close it. */
const OPEN_KINDS: MessageKind[] = ['maintenance', 'reminder', 'started', 'rescheduled', 'escalation'];
const CLOSING_KINDS: MessageKind[] = ['completed', 'cancelled'];
const MAX_TEXT = 500;

// Workflow time: the SDK makes `Date` replay-safe inside workflows.
const now = () => new Date().getTime();
const iso = (ms: number) => new Date(ms).toISOString();

/** The maintenance's long-lived state: small, and only counts. */
class MaintenanceState {
  phase: MaintenancePhase = 'scheduled';
  window: MaintenanceWindow;
  recipients = 0;
  sent: Partial<Record<MessageKind, number>> = {};
  failed = 0;
  retried = 0;
  fellBack = 0;
  reschedules = 0;
  reminders = 0;
  escalations = 0;
  cancelRequested = false;
  completeRequested = false;
  schedule?: MaintenanceSchedule;
  remindersDone: number[] = [];
  startedDone = false;
  overrunDone = false;
  escalationsFired = 0;
  rounds = 0;
  endAt?: string;
  endNote?: string;
  /** The completion (or cancellation) notices are planned. */
  closingPlanned = false;
  pending: PendingMaintenanceAction[] = [];
  /** Bumped by every accepted request, so that a waiting loop wakes up to recompute its timers. */
  changes = 0;
  acknowledgedBy?: string;
  acknowledgedAt?: string;

  constructor(
    readonly maintenanceId: string,
    window: MaintenanceWindow,
    from?: MaintenanceSnapshot,
  ) {
    this.window = { ...window };
    if (from)
      Object.assign(this, {
        ...from,
        window: { ...from.window },
        sent: { ...from.sent },
        remindersDone: [...from.remindersDone],
        pending: [...from.pending],
      });
  }

  get start(): number {
    return Date.parse(this.window.startsAt);
  }

  get end(): number {
    return Date.parse(this.window.endsAt);
  }

  get ending(): boolean {
    return this.cancelRequested || this.completeRequested;
  }

  get over(): boolean {
    return this.phase === 'completed' || this.phase === 'cancelled' || this.phase === 'billed';
  }

  /** Reminders whose time is past when a window is set are not sent: the notice (or the move) said it all. */
  skipPastReminders(): void {
    const due = (this.schedule?.remindersBeforeSeconds ?? []).filter((r) => this.start - r * 1000 <= now());
    this.remindersDone = [...new Set([...this.remindersDone, ...due])];
  }

  status(): MaintenanceStatus {
    const {
      maintenanceId,
      phase,
      recipients,
      failed,
      retried,
      fellBack,
      reschedules,
      reminders,
      escalations,
      cancelRequested,
      completeRequested,
      acknowledgedBy,
      acknowledgedAt,
    } = this;
    return {
      maintenanceId,
      phase,
      window: { ...this.window },
      recipients,
      sent: { ...this.sent },
      failed,
      retried,
      fellBack,
      reschedules,
      reminders,
      escalations,
      cancelRequested,
      completeRequested,
      ...(acknowledgedBy !== undefined ? { acknowledgedBy, acknowledgedAt } : {}),
    };
  }

  snapshot(): MaintenanceSnapshot {
    const {
      schedule,
      remindersDone,
      startedDone,
      overrunDone,
      escalationsFired,
      rounds,
      endAt,
      endNote,
      closingPlanned,
      pending,
    } = this;
    return {
      ...this.status(),
      schedule,
      remindersDone: [...remindersDone],
      startedDone,
      overrunDone,
      escalationsFired,
      rounds,
      endAt,
      endNote,
      closingPlanned,
      pending: [...pending],
    };
  }
}

function checkText(name: string, v: unknown): void {
  if (v !== undefined && (typeof v !== 'string' || v.length > MAX_TEXT))
    throw new Error(`${name} must be a string of at most ${MAX_TEXT} characters`);
}

function isoTime(name: string, v: unknown): number {
  const t = typeof v === 'string' ? Date.parse(v) : NaN;
  if (!Number.isFinite(t)) throw new Error(`${name} must be an ISO date-time`);
  return t;
}

export async function maintenanceWorkflow(input: MaintenanceInput): Promise<MaintenanceStatus> {
  const id = input.maintenanceId;
  const policy = input.delivery ?? DEFAULT_DELIVERY_POLICY;
  const state = new MaintenanceState(id, input.window, input.resume);
  const notOver = () => {
    if (state.over || state.ending)
      throw new Error(
        `maintenance ${id} is ${state.cancelRequested ? 'cancelled' : state.completeRequested ? 'completed' : state.phase}; it takes no more changes`,
      );
  };
  const begun = () => now() >= state.start;

  /** The window a reschedule asks for, or an error saying why it cannot have it. */
  const requestedWindow = (r: { startsAt?: string; endsAt: string }): MaintenanceWindow => {
    const end = isoTime('endsAt', r.endsAt);
    let start = state.start;
    if (r.startsAt !== undefined) {
      const asked = isoTime('startsAt', r.startsAt);
      if (begun() && asked !== state.start)
        throw new Error(`the work began at ${state.window.startsAt}: its start cannot move; give only endsAt`);
      if (!begun() && asked < now() - 60_000) throw new Error('startsAt is in the past; give when the work will begin');
      start = asked;
    }
    if (end <= start) throw new Error('endsAt must be after startsAt');
    if (end <= now()) throw new Error('endsAt is in the past; give when the work will end');
    return { startsAt: iso(start), endsAt: iso(end) };
  };

  setHandler(maintenanceStatusQuery, () => state.status());
  // Acknowledging the overrun's escalation: an Update for the API and the console, a signal for an SMS reply
  // (it must not wait for a worker; one the workflow cannot take is ignored).
  const validateAcknowledge = (a: AcknowledgeInput) => {
    notOver();
    if (state.escalations === 0 && state.phase !== 'overrun')
      throw new Error(
        `maintenance ${id} is ${state.phase}: only an overrun escalates to staff; nothing to acknowledge`,
      );
    if (typeof a.by !== 'string' || a.by.length === 0 || a.by.length > 200)
      throw new Error('by must name who took the escalation (at most 200 characters)');
    isoTime('at', a.at);
  };
  /** The first acknowledgement counts; a repeat (an SMS and a click) changes nothing. */
  const acknowledge = (a: AcknowledgeInput) => {
    if (state.acknowledgedBy !== undefined) return;
    state.acknowledgedBy = a.by;
    state.acknowledgedAt = a.at;
    state.pending.push({ type: 'acknowledge', at: a.at, by: a.by });
    state.changes++;
  };
  setUpdateAndSignal(acknowledgeMaintenanceUpdate, acknowledgeMaintenanceSignal, {
    apply: acknowledge,
    validate: validateAcknowledge,
    status: () => state.status(),
  });
  // Only runs that were acknowledged reach these steps; the patch keeps them out of older histories.
  const acknowledged = () => state.acknowledgedBy !== undefined && patched('maintenance-escalation-ack');
  setHandler(
    rescheduleUpdate,
    (r) => {
      const window = requestedWindow(r);
      if (window.startsAt === state.window.startsAt && window.endsAt === state.window.endsAt) return state.status(); // a repeat
      const previous = state.window;
      state.window = window;
      state.reschedules++;
      state.pending.push({
        type: 'reschedule',
        at: iso(now()),
        number: state.reschedules,
        window,
        previous,
        ...(r.reason ? { reason: r.reason } : {}),
      });
      // The new window's timers: its reminders (those still ahead), and the overrun once it ends.
      state.remindersDone = [];
      state.skipPastReminders();
      if (state.end > now()) {
        state.overrunDone = false;
        state.escalationsFired = 0;
      }
      state.changes++;
      return state.status();
    },
    {
      validator: (r) => {
        notOver();
        checkText('reason', r.reason);
        requestedWindow(r);
      },
    },
  );
  setHandler(
    cancelMaintenanceUpdate,
    (c) => {
      if (!state.cancelRequested) {
        state.cancelRequested = true;
        state.endAt = iso(now());
        state.endNote = c.reason;
        state.changes++;
      }
      return state.status();
    },
    {
      validator: (c) => {
        if (state.cancelRequested) return;
        notOver();
        checkText('reason', c.reason);
        if (begun())
          throw new Error(`the work began at ${state.window.startsAt}: it cannot be called off; complete it instead`);
      },
    },
  );
  setHandler(
    completeMaintenanceUpdate,
    (c) => {
      if (!state.completeRequested) {
        state.completeRequested = true;
        state.endAt = iso(now());
        state.endNote = c.note;
        state.changes++;
      }
      return state.status();
    },
    {
      validator: (c) => {
        if (state.completeRequested) return;
        notOver();
        checkText('note', c.note);
        if (!begun())
          throw new Error(
            `the work has not begun (it starts at ${state.window.startsAt}); cancel or reschedule it instead`,
          );
      },
    },
  );

  const enter = async (phase: MaintenancePhase, event: string, note?: string) => {
    state.phase = phase;
    await acts.recordMaintenancePhase({ maintenanceId: id, phase, event, at: iso(now()), note });
  };
  /** A step on the timeline that does not change the phase (a reminder, an escalation). */
  const mark = (event: string, note: string) =>
    acts.recordMaintenancePhase({ maintenanceId: id, phase: state.phase, event, at: iso(now()), note });
  const continueIfLong = async () => {
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength > (policy.historyLimit ?? 5000)) {
      await continueAsNew<typeof maintenanceWorkflow>({ ...input, resume: state.snapshot() });
    }
  };

  const deliveryRound = deliveryLoop(acts, id, policy, state);

  /**
   * When a reminder round is planned: at its time, or as early as quiet hours move someone's
   * reminder before the window (the records wait for each recipient's own time). Guarded: runs
   * planned before the night policy have no such times and keep their timers.
   */
  const reminderAt = (r: number): number => {
    const early = state.schedule?.remindersAt?.find((t) => t.beforeSeconds === r);
    return early && patched('reminders-before-quiet-hours')
      ? Math.min(Date.parse(early.at), state.start - r * 1000)
      : state.start - r * 1000;
  };

  /** The rules' timers whose time has come: reminders, the start, the overrun and its escalations. */
  const fireTimers = async () => {
    const s = state.schedule!;
    const due = s.remindersBeforeSeconds.filter((r) => !state.remindersDone.includes(r) && reminderAt(r) <= now());
    if (due.length) {
      state.remindersDone = [...state.remindersDone, ...due];
      // Late (a worker was down) and the work has begun: the start notice says more than a reminder.
      if (!begun()) {
        const round = ++state.rounds;
        state.reminders++;
        await acts.planMaintenanceRound({
          maintenanceId: id,
          kind: 'reminder',
          round,
          at: iso(now()),
          beforeSeconds: due,
        });
        await mark(
          `reminder#${round}`,
          `reminder ${due.map((r) => `${Math.round(r / 60)} min`).join(', ')} before the start`,
        );
      }
    }
    if (!state.startedDone && begun()) {
      state.startedDone = true;
      await acts.planMaintenanceRound({ maintenanceId: id, kind: 'started', round: ++state.rounds, at: iso(now()) });
      await enter('in_progress', 'in_progress', `the window began at ${state.window.startsAt}`);
    }
    if (state.startedDone && !state.overrunDone && now() >= state.end) {
      state.overrunDone = true;
      await enter(
        'overrun',
        `overrun#${state.reschedules}`,
        `the window ended at ${state.window.endsAt} and the work is not reported completed`,
      );
    }
    if (state.overrunDone && !acknowledged()) {
      const steps: number[] = [];
      while (
        state.escalationsFired < s.escalations.length &&
        state.end + s.escalations[state.escalationsFired].afterSeconds * 1000 <= now()
      ) {
        steps.push(s.escalations[state.escalationsFired].step);
        state.escalationsFired++;
      }
      if (steps.length) {
        const round = ++state.rounds;
        state.escalations++;
        const r = await acts.planEscalation({ incidentId: id, round, steps: [...new Set(steps)] });
        await mark(
          `escalated#${round}`,
          `escalated to staff by the rules, ${Math.round((now() - state.end) / 60000)} min after the planned end (${r.planned} message(s))`,
        );
      }
    }
  };
  const untilNextTimer = (): number => {
    const s = state.schedule!;
    const next = [
      ...s.remindersBeforeSeconds.filter((r) => !state.remindersDone.includes(r)).map(reminderAt),
      ...(!state.startedDone ? [state.start] : []),
      ...(state.startedDone && !state.overrunDone ? [state.end] : []),
      ...(state.overrunDone && state.escalationsFired < s.escalations.length && !acknowledged()
        ? [state.end + s.escalations[state.escalationsFired].afterSeconds * 1000]
        : []),
    ];
    return next.length ? Math.max(0, Math.min(...next) - now()) : Infinity;
  };
  /** Reschedules and the acknowledgement, in the order they were accepted. */
  const actOnRequests = async () => {
    while (state.pending.length > 0) {
      const a = state.pending[0];
      if (a.type === 'acknowledge') {
        if (acknowledged()) await acts.stopEscalation({ incidentId: id, at: a.at, by: a.by });
        state.pending.shift();
        continue;
      }
      const moved = await acts.rescheduleMaintenance({
        maintenanceId: id,
        number: a.number,
        round: ++state.rounds,
        at: a.at,
        phase: state.phase,
        window: a.window,
        previous: a.previous,
        reason: a.reason,
      });
      // The new window's reminder times (quiet hours move them with it); absent from older runs' results.
      if (moved.remindersAt && state.schedule) state.schedule = { ...state.schedule, remindersAt: moved.remindersAt };
      // An overrun whose end moved into the future is under way again.
      if (state.phase === 'overrun' && !state.overrunDone)
        await enter('in_progress', `in_progress#${a.number}`, `the window now ends at ${a.window.endsAt}`);
      state.pending.shift();
    }
  };

  if (!input.resume) {
    const plan = await acts.planMaintenance({ maintenanceId: id });
    state.recipients = plan.recipients;
    state.schedule = plan.schedule;
    state.skipPastReminders();
    await mark(
      'announced',
      plan.firstDueAt
        ? `notices to ${plan.recipients} recipient(s), the first due at ${plan.firstDueAt}`
        : 'nobody to notify',
    );
  }

  // Open: send as notices fall due, fire the timers, act on reschedules, until completed or cancelled.
  while (!state.over && !state.ending) {
    await actOnRequests();
    await fireTimers();
    if (state.ending) break;
    // Completed or cancelled meanwhile: the round does not watch (or stops watching) the open notices.
    const round = await deliveryRound(OPEN_KINDS, () => state.ending);
    if (round.busy) {
      await continueIfLong();
      continue;
    }
    const wait = Math.min(round.waitMs, untilNextTimer());
    const seen = state.changes;
    const wake = () => state.ending || state.changes !== seen;
    if (wait === Infinity) await condition(wake);
    else await condition(wake, wait);
    await continueIfLong();
  }
  await actOnRequests(); // accepted before the end: the document gets the window it had

  if (!state.over) {
    const closing = state.cancelRequested ? 'cancelled' : 'completed';
    if (!state.closingPlanned) {
      if (state.cancelRequested)
        await acts.cancelMaintenance({
          maintenanceId: id,
          round: ++state.rounds,
          at: state.endAt!,
          reason: state.endNote,
        });
      else await acts.completeMaintenance({ maintenanceId: id, round: ++state.rounds, at: state.endAt! });
      state.closingPlanned = true;
    }
    for (;;) {
      const round = await deliveryRound(CLOSING_KINDS);
      if (round.busy) {
        await continueIfLong();
        continue;
      }
      if (round.idle) break;
      await sleep(round.waitMs);
      await continueIfLong();
    }
    await enter(closing, closing, state.endNote);
  }
  // The billed stage: what its messages cost goes to the ledger and the document.
  if (state.phase !== 'billed') {
    await acts.billIncident({ incidentId: id });
    await enter('billed', 'billed');
  }
  return state.status();
}
