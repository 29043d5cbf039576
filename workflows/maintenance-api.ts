/**
 * What the maintenance workflow takes, answers and accepts: its input, its status, and the
 * Updates the API sends it (reschedule, cancel, complete). Declared apart from the workflow so
 * that clients import the definitions without the workflow's code.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { MaintenancePhase, MessageKind } from '../domain/types';
import type { AcknowledgeInput, DeliveryPolicy } from './incident-api';

/** A window as ISO times. */
export interface MaintenanceWindow {
  startsAt: string;
  endsAt: string;
}

/** A reminder (`beforeSeconds` before the start) and the earliest moment it goes to anyone (ISO). */
export interface ReminderTime {
  beforeSeconds: number;
  at: string;
}

/** The rules' timers of a maintenance, from its audience's plans. */
export interface MaintenanceSchedule {
  /** Distinct reminder times, in seconds before the start, earliest first (largest first). */
  remindersBeforeSeconds: number[];
  /**
   * When each reminder round must be planned: its time, or earlier where quiet hours move someone's
   * reminder before the window (rules/night.ts). Missing in runs planned before the night policy.
   */
  remindersAt?: ReminderTime[];
  /** Someone's rules ask for a notice when the work starts (the status feed always gets one). */
  started: boolean;
  /** Staff escalations for an overrun, repeats included, in time order: seconds after the planned end, and the rules' step. */
  escalations: { afterSeconds: number; step: number }[];
}

export interface MaintenanceInput {
  maintenanceId: string;
  /** The window it was created with (the stored document holds it too). */
  window: MaintenanceWindow;
  delivery?: DeliveryPolicy;
  /** Set when the workflow continues as new: where it was. */
  resume?: MaintenanceSnapshot;
}

export interface RescheduleInput {
  /** The new start (ISO). Once the work has begun it cannot move: give the current start, or leave it out. */
  startsAt?: string;
  /** The new end (ISO), after the start and in the future. */
  endsAt: string;
  reason?: string;
}

export interface CancelMaintenanceInput {
  reason?: string;
}

export interface CompleteMaintenanceInput {
  note?: string;
}

export interface MaintenanceStatus {
  maintenanceId: string;
  phase: MaintenancePhase;
  window: MaintenanceWindow;
  /** Recipients planned for the notice. */
  recipients: number;
  sent: Partial<Record<MessageKind, number>>;
  failed: number;
  retried: number;
  fellBack: number;
  reschedules: number;
  /** Reminder rounds planned in the current window. */
  reminders: number;
  /** Escalation rounds planned (overrun). */
  escalations: number;
  cancelRequested: boolean;
  completeRequested: boolean;
  /** Who took the overrun's staff escalation: the rules' escalations repeat no more. */
  acknowledgedBy?: string;
  acknowledgedAt?: string;
}

export interface MaintenanceSnapshot extends MaintenanceStatus {
  schedule?: MaintenanceSchedule;
  /** Reminder offsets (seconds before the start) done or skipped in the current window. */
  remindersDone: number[];
  startedDone: boolean;
  overrunDone: boolean;
  escalationsFired: number;
  /** Follow-up rounds planned so far (every kind shares the counter: record ids stay unique). */
  rounds: number;
  endAt?: string;
  endNote?: string;
  closingPlanned: boolean;
  pending: PendingMaintenanceAction[];
}

/** A request the workflow accepted and has not yet acted on (it survives continue-as-new). */
export type PendingMaintenanceAction =
  | {
      type: 'reschedule';
      at: string;
      number: number;
      window: MaintenanceWindow;
      previous: MaintenanceWindow;
      reason?: string;
    }
  | { type: 'acknowledge'; at: string; by: string };

export const maintenanceStatusQuery = defineQuery<MaintenanceStatus>('maintenanceStatus');
/** A new window: those already told are told; reminders and the start notice follow the new window. */
export const rescheduleUpdate = defineUpdate<MaintenanceStatus, [RescheduleInput]>('reschedule');
/** Called off before it began: those already told are told; nothing else is sent. Repeating it is harmless. */
export const cancelMaintenanceUpdate = defineUpdate<MaintenanceStatus, [CancelMaintenanceInput]>('cancelMaintenance');
/** The work is done (early, on time or late): the completion notice goes out. Repeating it is harmless. */
export const completeMaintenanceUpdate = defineUpdate<MaintenanceStatus, [CompleteMaintenanceInput]>(
  'completeMaintenance',
);
/** Someone took the overrun's staff escalation: no more escalation rounds. Repeating it keeps the first. */
export const acknowledgeMaintenanceUpdate = defineUpdate<MaintenanceStatus, [AcknowledgeInput]>(
  'acknowledgeMaintenance',
);
/** The same as a signal, for an SMS reply that must not wait for a worker; one the workflow cannot take is ignored. */
export const acknowledgeMaintenanceSignal = defineSignal<[AcknowledgeInput]>('acknowledgeMaintenanceRequested');
