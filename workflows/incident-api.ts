/**
 * What the incident workflow takes, answers and accepts: its input, its status, and the messages
 * (Updates and a query) that the API, the alert intake and the CLI send it. Declared apart from
 * the workflow so that clients import the definitions without the workflow's code.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { DeliveryChannel, IncidentPhase, MessageKind } from '../domain/types';

/** How the delivery watchdog treats messages not delivered. */
export interface DeliveryPolicy {
  /** Accepted but no delivery receipt within this long: ask the provider, then treat as lost. */
  deliveryTimeoutMs: number;
  /** Send attempts on one channel before falling back to the next. */
  maxAttempts: number;
  /**
   * The channels to fall back to, in order (the rules' `defaults.delivery.fallback`); absent: the
   * worker's own order. Passed to the delivery sweep in its input.
   */
  fallback?: DeliveryChannel[];
  /** How often the watchdog looks while messages are in flight. */
  sweepEveryMs: number;
  /** Recipients per send request (the SMS channel takes up to 1,000). */
  batchSize?: number;
  /** How long one sendDue activity keeps sending batches before it reports back (default 60 s). */
  sendBudgetMs?: number;
  /** Continue as new once the history has this many events (default 5,000; Temporal's own limit is 51,200). */
  historyLimit?: number;
}

export const DEFAULT_DELIVERY_POLICY: DeliveryPolicy = {
  deliveryTimeoutMs: 10 * 60_000,
  maxAttempts: 3,
  sweepEveryMs: 60_000,
};

/** When the periodic updates and the staff escalations of an incident fall due, from its rules. */
export interface IncidentSchedule {
  /** ISO time the incident opened: the timers count from it. */
  openedAt: string;
  /** Distinct periods, in seconds, of the `update` messages the rules ask for while unresolved. */
  updateEverySeconds: number[];
  /** Each escalation the rules ask for, repeats included, in time order: seconds after opening, and the rules' step. */
  escalations: { afterSeconds: number; step: number }[];
}

export interface IncidentInput {
  incidentId: string;
  siteIds: string[];
  delivery?: DeliveryPolicy;
  /**
   * The group window (the rules' `defaults.groupWait`, like Alertmanager's group_wait): how long a
   * new incident waits before planning its first notices, so that the alerts of one burst (a relay
   * and the towers it feeds) settle into it first. Absent or 0: no wait.
   */
  groupWaitSeconds?: number;
  /** The estimate given when the incident was opened (ISO): a later update with the same one is no news. */
  estimatedEnd?: string;
  /** Set when the workflow continues as new: where it was. */
  resume?: IncidentSnapshot;
}

export interface ResolveInput {
  note?: string;
  /**
   * Wait this long before the restoration notices, in case the trouble comes back (a flapping
   * site): a `reopen` within it carries on as if nothing was resolved. Monitoring resolves use it.
   */
  settleSeconds?: number;
}

export interface AddUpdateInput {
  /** What operators tell the public (status page and feed). */
  text?: string;
  /** ISO time: the new estimate of when service is back. A change notifies as the rules say. */
  estimatedEnd?: string;
  /** Also send these words (checked and transliterated by the API) by SMS to the paying subscribers, or to the chosen areas or sites. */
  sms?: OperatorSms;
}

/** An operator's words by SMS and to whom: the whole audience, or the chosen areas and sites (and what they feed). */
export interface OperatorSms {
  text: string;
  areas?: string[];
  siteIds?: string[];
}

export interface EscalateInput {
  reason?: string;
}

export interface AcknowledgeInput {
  /** Who took the escalation (a key's name, a staff contact's name). */
  by: string;
  /** ISO time it was taken, as stored on the incident. */
  at: string;
}

export interface ExtendScopeInput {
  /** More sites affected; subscribers on them (and downstream) who were not told yet are told now. */
  siteIds: string[];
}

export interface CancelInput {
  /** Why: a false alarm, opened by mistake. Those already told are told it was a false alarm. */
  reason?: string;
}

export interface IncidentStatus {
  incidentId: string;
  phase: IncidentPhase;
  recipients: number;
  sent: Partial<Record<MessageKind, number>>;
  failed: number;
  retried: number;
  fellBack: number;
  resolveRequested: boolean;
  /** While a monitoring resolve waits for the site to stay up (ISO). */
  settlingUntil?: string;
  cancelRequested?: boolean;
  estimatedEnd?: string;
  /** Update rounds planned (periodic and on a new estimate). */
  updates?: number;
  /** Escalation rounds planned (by the rules' timers and by hand). */
  escalations?: number;
  /** Sites added after the incident opened. */
  addedSites?: number;
  /** Operators' messages sent by SMS so far (updates with `sms`). */
  messages?: number;
  /** Who took the staff escalation: the rules' escalations repeat no more. */
  acknowledgedBy?: string;
  acknowledgedAt?: string;
}

export interface IncidentSnapshot extends IncidentStatus {
  resolveAt?: string;
  resolveNote?: string;
  cancelReason?: string;
  schedule?: IncidentSchedule;
  periodicRounds?: Record<string, number>;
  escalationsFired?: number;
  pending?: PendingAction[];
}

/** A request the workflow has accepted and not yet acted on (it survives continue-as-new). */
export type PendingAction =
  | { type: 'update'; at: string; text?: string; estimatedEnd?: string; etaChanged: boolean; sms?: OperatorSms }
  | { type: 'escalate'; at: string; reason?: string }
  | { type: 'scope'; at: string; siteIds: string[] }
  | { type: 'acknowledge'; at: string; by: string };

export const statusQuery = defineQuery<IncidentStatus>('status');
/** Resolving answers at once with the status; the restoration notices follow. Repeating it is harmless. */
export const resolveUpdate = defineUpdate<IncidentStatus, [ResolveInput]>('resolve');
/** The trouble came back while a resolve was settling: carry on as open. Rejected once restoration began. */
export const reopenUpdate = defineUpdate<IncidentStatus, [{ note?: string }]>('reopen');
export const addUpdateUpdate = defineUpdate<IncidentStatus, [AddUpdateInput]>('addUpdate');
export const escalateUpdate = defineUpdate<IncidentStatus, [EscalateInput]>('escalate');
export const extendScopeUpdate = defineUpdate<IncidentStatus, [ExtendScopeInput]>('extendScope');
export const cancelUpdate = defineUpdate<IncidentStatus, [CancelInput]>('cancel');
/** Someone took the staff escalation: no more escalation rounds from the rules' timers. Repeating it keeps the first. */
export const acknowledgeUpdate = defineUpdate<IncidentStatus, [AcknowledgeInput]>('acknowledge');

/**
 * The same requests as signals, for callers that must not wait for a worker: a monitoring webhook
 * always, an operator when no worker is polling. A signal is written to the workflow's history at
 * once and applied when a worker runs; one the workflow can no longer take (the validator of its
 * Update would refuse it) is ignored. Repeating one is as harmless as repeating the Update.
 */
export const resolveSignal = defineSignal<[ResolveInput]>('resolveRequested');
export const reopenSignal = defineSignal<[{ note?: string }]>('reopenRequested');
export const addUpdateSignal = defineSignal<[AddUpdateInput]>('addUpdateRequested');
export const escalateSignal = defineSignal<[EscalateInput]>('escalateRequested');
export const extendScopeSignal = defineSignal<[ExtendScopeInput]>('extendScopeRequested');
export const cancelSignal = defineSignal<[CancelInput]>('cancelRequested');
export const acknowledgeSignal = defineSignal<[AcknowledgeInput]>('acknowledgeRequested');
