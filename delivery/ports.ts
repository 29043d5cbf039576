/**
 * What the delivery engine needs from the world, as interfaces: the store's intent methods for
 * delivery records and receipts, the account's rate limits, the texts of an incident, and the
 * runtime it runs in (Temporal's heartbeat and cancellable sleep, in production). The engine
 * (sender.ts, sweeper.ts) is written against these; store/delivery-repository.ts implements the
 * repository over MongoDB, and activities/delivery.ts wires them together.
 */
import type { Delivery, DeliveryChannel, Incident, MessageKind, Subscriber } from '../domain/types';
import type { WatchdogPolicy } from './watchdog';
import type { Origin } from './fallback';

/** One kind of message of one incident on one channel: what a batch and a sweep work on. */
export interface Scope {
  incidentId: string;
  kind: MessageKind;
  channel: DeliveryChannel;
}

/** A message to plan: for whom, on which channel and address, and what it keeps of its origin. */
export interface PlanInput extends Origin {
  channel: DeliveryChannel;
  to: string;
  fallbackOf?: string;
  graceEndsAt?: Date;
  /** Not to be sent: this number was already told by that open incident (see store/coverage.ts). */
  coveredBy?: string;
}

/** A record as a sender took it: on the attempt it makes now, with the request that took it (absent for a record reserved in the old shape, in state `sending`). */
export type Reserved = Delivery & { request?: string };

/** An SMS answer still waiting in its request for the receipt that writes it on its record (store/send-requests.ts). */
export interface WaitingAnswer {
  providerMessageId: string;
  /** The record, on the attempt the answer is about, with the request that took it. */
  record: Reserved;
  answeredAt: Date;
  note?: string;
}

export interface AcceptedOutcome {
  id: string;
  providerMessageId: string;
}

/** A provider's word on one message (a delivery receipt, or its answer when asked). */
export interface ProviderReport {
  messageUuid: string;
  status: string;
  units?: number;
  totalAmount?: string;
  errorCode?: string;
  receivedAt: Date;
}

/** Called between the parts of a long write: the activities heartbeat there. */
export type Progress = () => void;

export interface SweepResult {
  retried: number;
  expired: Delivery[];
  /** Records still on their way (accepted or sent, within the timeout). */
  inFlight: number;
}

/** The delivery records and receipts, as the engine asks for them. */
export interface DeliveryRepository {
  incident(id: string): Promise<Incident | null>;
  subscriber(id: string): Promise<Subscriber | null>;

  /** Whether any record of the scope is planned or reserved. */
  hasOpen(scope: Scope): Promise<boolean>;
  /** How many records of the scope are due now, up to `want`. */
  dueCount(scope: Scope, want: number, now: Date): Promise<number>;
  /** The planned records of the scope that are due now. */
  dueRecords(scope: Scope, now: Date): Promise<Delivery[]>;
  countDue(scope: Scope, now: Date): Promise<number>;
  anyDue(scope: Scope, now: Date): Promise<boolean>;
  /**
   * Whether a planned record of these scopes is due now. `readQuiet`: read the pages seen quiet too
   * (store/quiet-pages.ts), for a "nothing due" that must not rest on a change noted late or lost.
   */
  anyDueIn(scopes: Scope[], now: Date, readQuiet?: boolean): Promise<boolean>;
  nextDueAt(incidentId: string, kinds: MessageKind[], now: Date): Promise<Date | null>;
  /** The (kind, channel) pairs of these kinds the incident has records on. */
  scopesWithRecords(
    incidentId: string,
    kinds: MessageKind[],
  ): Promise<{ kind: MessageKind; channel: DeliveryChannel }[]>;
  plan(inputs: Iterable<PlanInput>, now: Date, note?: string): Promise<{ planned: number }>;

  /**
   * Takes the next batch of due records for this sender (exactly one sender gets each), leaving out
   * `skipPages`; says which pages it left with nothing due and nothing held (`exhausted`).
   */
  reserveNextBatch(
    scope: Scope,
    limit: number,
    now: Date,
    skipPages?: ReadonlySet<number>,
  ): Promise<{ records: Reserved[]; more: boolean; held: number; exhausted?: number[] }>;
  /** Takes records just planned on a new page with its request number `seq`, to send them at once (none when that request exists). */
  reserveFresh(scope: Scope, records: Delivery[], now: Date, seq: number): Promise<Reserved[]>;
  /** What earlier senders took and did not record, and their requests (to close once settled): not a live sender's recent ones. */
  unfinishedReservations(scope: Scope): Promise<{ records: Reserved[]; requests: string[] }>;
  /** Requests whose answer this sender lost (the provider may have them): the next sender settles them at once. */
  abandonRequests(ids: string[]): Promise<void>;
  /** Calls about to be made move to `sending` with their words (Plivo fetches them from our answer URL while it rings). */
  markCalling(records: Reserved[], text: string, now: Date): Promise<void>;
  /** What the provider accepted and what it refused as invalid, written on the records taken. */
  recordSendResults(
    taken: Reserved[],
    accepted: AcceptedOutcome[],
    invalid: { id: string; error: string }[],
    now: Date,
    note: string,
    acceptedState: 'accepted' | 'delivered',
    progress?: Progress,
  ): Promise<void>;
  /** What the provider accepted of a batch of SMS, into its requests (the records carry it once their receipt comes); the invalid, on the records. */
  recordAnswers(
    taken: Reserved[],
    accepted: AcceptedOutcome[],
    invalid: { id: string; error: string }[],
    now: Date,
    note: string,
    progress?: Progress,
  ): Promise<void>;
  /** Writes the answers answered before `answeredBefore` that no receipt wrote yet on their records; returns how many younger answers are still in flight. */
  settleAnswered(scope: Scope, answeredBefore: Date, now: Date): Promise<number>;
  /**
   * The SMS answers of a scope still waiting for their receipt, unwritten: how many, and the first `limit` of
   * those answered before `answeredBefore` (the watchdog asks the provider about them before writing anything).
   * Requests whose answers are all written stop being pending.
   */
  waitingAnswers(
    scope: Scope,
    answeredBefore: Date,
    limit: number,
    now: Date,
  ): Promise<{ waiting: number; overdue: WaitingAnswer[] }>;
  /** Writes these answers on their records as `accepted`, at `at` (when not given, at the answer's own time: overdue at once). */
  writeAnswers(answers: WaitingAnswer[], at?: Date): Promise<void>;
  /** The request certainly failed before the provider accepted anything: due again. */
  releaseReservations(records: Reserved[], now: Date, why: string): Promise<void>;
  /** The provider will never take these (a non-retryable refusal). */
  failReserved(records: Reserved[], now: Date, why: string): Promise<void>;
  /** Closes the requests of a batch once every record they took is written (or released). */
  closeRequests(ids: string[], now: Date): Promise<void>;
  /** Gives up the due records of a scope, with the reason. */
  giveUpDue(scope: Scope, now: Date, why: string): Promise<number>;
  /** Of these provider message ids, those a record already carries. */
  carriedProviderIds(ids: string[]): Promise<Set<string>>;

  /** Applies the receipts stored since the last round. */
  applyStoredReceipts(): Promise<number>;
  /** The time up to which stored receipts are applied (at most `now`): the watchdog's clock for overdue receipts. */
  receiptsAppliedUpTo(now: Date): Date;
  /** Applies these reports now (the provider's answers when asked). */
  applyReports(reports: ProviderReport[], now: Date): Promise<void>;
  /** Applies the receipts stored since `since` for these messages (found at the provider after a lost answer). */
  applyReceiptsFor(providerIds: string[], since: Date): Promise<void>;
  /** SMS reached by the provider with no final receipt since before `stale`, oldest first. */
  overdue(scope: Scope, stale: Date, limit: number): Promise<{ providerMessageId: string }[]>;
  /** Messages the provider still has queued or sent: another delivery timeout from `now`. */
  giveMoreTime(providerIds: string[], now: Date): Promise<void>;
  /** The watchdog's moves: retry what was lost, expire what has spent its attempts. */
  sweepUndelivered(
    scope: Scope,
    policy: WatchdogPolicy,
    now: Date,
    overdueMayRetry?: (d: Delivery) => boolean,
  ): Promise<SweepResult>;
}

/** Plivo's account limits, shared by every worker (store/rate-limits.ts). */
export interface RateLimiter {
  readonly unlimited: boolean;
  /** How long until `n` units are free (ms). */
  waitFor(n: number): Promise<number>;
  /** Takes `n` units; how long to wait before using them (ms). */
  reserve(n: number): Promise<number>;
}

/** Where the engine runs: Temporal's activity context in production. */
export interface Runtime {
  /** Says "still alive" between the parts of long work. */
  heartbeat(): void;
  sleep(ms: number): Promise<void>;
  /** Throws when the caller has given the work up (the workflow cancelled the activity): the work stops there. */
  stopIfCancelled?(): void;
}

/** The texts of one incident's messages: what its pinned rules' templates say for a record. */
export type TextsOf = (incident: Incident) => Promise<(d: Delivery, kind: MessageKind) => string>;

/** Try again later (capacity, a provider outage); `delayMs` when the wait is known. */
export class RetryLater extends Error {
  constructor(
    message: string,
    readonly type: string,
    readonly delayMs?: number,
  ) {
    super(message);
  }
}

/** The incident is not in the database: no retry can help. */
export class IncidentMissing extends Error {}
