/**
 * Types shared by every layer. Pure data: no behaviour, no imports of clients, so that
 * workflow code may import them too.
 */
import type { Acknowledgement } from './acknowledgement';

export type Language = 'it' | 'en';
export type Segment = 'residential' | 'business';

/**
 * Bookkeeping on the records an import or the API writes. `contentHash` digests the fields the
 * last writer set, so that importing an unchanged row can be recognised without rewriting it.
 */
export interface Tracked {
  contentHash?: string;
  createdAt?: Date;
  updatedAt?: Date;
}

export type SiteKind = 'tower' | 'access_point';

/** A tower or access point. `uplink` is the site that feeds it; null for a root of the network. */
export interface Site extends Tracked {
  _id: string;
  name: string;
  /** The town it serves: what messages name. */
  area: string;
  kind?: SiteKind;
  location?: { lat: number; lon: number };
  uplink: string | null;
}

export interface Subscriber extends Tracked {
  _id: string; // contract id
  name: string;
  phones: string[]; // E.164 mobile numbers, at least one
  email?: string;
  language: Language;
  /** The site or access point that serves this subscriber. */
  siteId: string;
  segment: Segment;
  /**
   * The paid SMS alert option. It is in force at time t when `active` and `since <= t < until`
   * (a missing bound is open).
   */
  smsAlerts: { active: boolean; since?: Date; until?: Date };
  /** Set by STOP, by the API or by an import that carries the opt-out column. */
  optedOut: boolean;
  optedOutAt?: Date;
  /**
   * The subscriber's own quiet hours, `HH:MM-HH:MM` in Europe/Rome time (`22:00-07:00` spans
   * midnight), in the form the rules read; the rules decide what may break through.
   */
  quietHours?: string;
}

export type ContactKind = 'person' | 'team';

/** Someone staff escalation reaches: an on-call person, or a team with its own number and address. */
export interface Contact extends Tracked {
  _id: string;
  name: string;
  kind: ContactKind;
  phones: string[]; // E.164
  email?: string;
  language: Language;
  /** Whether escalations go to this contact now. */
  onCall: boolean;
  /** For a team: the ids of the people in it. */
  members?: string[];
  /** The areas this contact covers; none means all. */
  areas?: string[];
  notes?: string;
}

/** `announcement`: operators' own words to an area or a list of sites, without an outage (a storm warning). */
export type IncidentKind = 'outage' | 'maintenance' | 'announcement';
export type Severity = 'minor' | 'major' | 'critical';

/**
 * Where an incident is in its lifecycle. `escalated`: staff were called while it is open;
 * `cancelled`: ended as a false alarm instead of `resolved`; `billed`: after either, its cost is
 * in the ledger.
 */
export type OutagePhase =
  'detected' | 'notifying' | 'notified' | 'escalated' | 'resolving' | 'resolved' | 'cancelled' | 'billed';

/**
 * Where a planned maintenance is: `scheduled` (announced, not begun) -> `in_progress` (its window
 * began) -> `overrun` (its window ended before it was completed) -> `completed`; or `cancelled`
 * before it began; then `billed`. A reschedule keeps the phase and is an event on the timeline.
 */
export type MaintenancePhase = 'scheduled' | 'in_progress' | 'overrun' | 'completed' | 'cancelled' | 'billed';

export type IncidentPhase = OutagePhase | MaintenancePhase;

/** One step on an incident's (or maintenance's) timeline. */
export interface TimelineEntry {
  at: Date;
  phase: IncidentPhase;
  note?: string;
  /**
   * Maintenance: what happened, unique on its timeline (`scheduled`, `rescheduled#2`, `reminder#1`,
   * `in_progress`, `overrun#0`, `escalated#1`, `completed`...), so that a retried activity adds it once.
   */
  event?: string;
  /** Maintenance: the window in force after this step (a reschedule's new window). */
  window?: { startsAt: Date; endsAt: Date };
}

/** What an incident's messages cost at the providers (written at the billed stage; see billing/costs.ts). */
export interface IncidentCost {
  billedAt: Date;
  /** The month (YYYY-MM, Italian time) it was opened in, which its costs count towards. */
  period: string;
  /** Per channel and currency, as in the ledger (entry `ledgerKey`). */
  channels: {
    channel: DeliveryChannel;
    currency: string;
    messages: number;
    units: number;
    amountMicros: number;
    amountCents: number;
    fromReceipts: number;
    fromRateTable: number;
    unpriced: number;
    ledgerKey: string;
  }[];
  totals: { currency: string; amountMicros: number; amountCents: number }[];
}

export interface Incident {
  _id: string;
  key: string;
  kind: IncidentKind;
  severity: Severity;
  /** The sites named when the incident was opened. */
  siteIds: string[];
  /** Those sites and every site downstream of them, fixed when the audience is snapshot. */
  affectedSiteIds?: string[];
  /** How many subscribers those sites serve, counted with them (the rules' `incident.subscribers`). */
  audienceSize?: number;
  areas: string[];
  title: string;
  source: string;
  phase: IncidentPhase;
  openedAt: Date;
  /** When service came back (the resolve request); restoration texts name this time. */
  endedAt?: Date;
  /** The latest estimate of when service is back (an outage), set by `addUpdate`. */
  estimatedEnd?: Date;
  /** Operator updates, newest last: what the `update` messages and the status page say. */
  updates?: { at: Date; text?: string; estimatedEnd?: Date }[];
  /** An announcement: the operators' words its first message carries (checked and transliterated like a template). */
  announcement?: { text: string };
  /** A maintenance's planned window (the `start` and `eta` of its texts). */
  window?: { startsAt: Date; endsAt: Date };
  /** A maintenance's window before its last reschedule (`previousStart`/`previousEnd`). */
  previousWindow?: { startsAt: Date; endsAt: Date };
  /** A maintenance: what the work is, for operators (not sent to subscribers). */
  description?: string;
  /** A maintenance: how many times its window moved. */
  reschedules?: number;
  /** A maintenance: when it was reported completed. */
  completedAt?: Date;
  /** When a resolve was asked for (cleared by a reopen): from then on, new alerts do not join it. */
  resolveRequestedAt?: Date;
  /** A monitoring resolve waits until then for the site to stay up before restoration notices. */
  settlingUntil?: Date;
  /** Set when it was cancelled (a false alarm, or maintenance called off). */
  cancelledAt?: Date;
  /** Incidents that were absorbed into this one by correlation (an upstream site went down). */
  absorbed?: string[];
  /** Set on an incident absorbed into another: that one carries on for it. */
  mergedInto?: string;
  resolvedAt?: Date;
  workflowId: string;
  /** The rule set this incident follows, pinned when it opened (a reload applies to new incidents). */
  rulesVersion?: string;
  timeline: TimelineEntry[];
  cost?: IncidentCost;
  /** Who took the staff escalation, and when: from then on the rules' escalations stop repeating. */
  acknowledged?: Acknowledgement;
  /** Escalations that could not go as planned (no voice channel, nobody to reach): shown, never dropped. */
  escalationProblems?: EscalationProblem[];
}

/** Why (part of) an escalation round could not be sent as the rules and the on-call list said. */
export interface EscalationProblem {
  /** Fixed by round and cause, so that a retried activity records it once. */
  key: string;
  at: Date;
  round: number;
  problem: string;
}

/**
 * What a message tells its reader. Outages: `outage`, then `update`s while open, then `restored`
 * (or one `outage-restored` when the first never went out), or `withdrawn` for a false alarm;
 * `escalation` is a message to staff. Maintenance: `maintenance` (the notice), `reminder`,
 * `started`, `completed`, `rescheduled`, `cancelled`. `message`: an operator's own words (an update
 * sent as SMS, an announcement), carried on the record itself rather than from a template.
 */
export type MessageKind =
  | 'outage'
  | 'update'
  | 'restored'
  | 'outage-restored'
  | 'withdrawn'
  | 'escalation'
  | 'maintenance'
  | 'reminder'
  | 'started'
  | 'completed'
  | 'rescheduled'
  | 'cancelled'
  | 'message';

/** The kinds a template set has texts for: escalation messages read the incident's own kind (`templateKind`); an operator's message has no template. */
export type TemplateKind = Exclude<MessageKind, 'escalation' | 'message'>;

/** Kinds that tell the reader the trouble is over (the status feed closes the entry on these). */
export const CLOSING_KINDS: readonly MessageKind[] = [
  'restored',
  'outage-restored',
  'withdrawn',
  'completed',
  'cancelled',
];

/** The channels a message can take (see channels/channel.ts). */
export type DeliveryChannel = 'sms' | 'voice' | 'email' | 'webhook' | 'status';

/**
 * planned -> sending (reserved for one send attempt) -> accepted (the provider took it)
 * -> sent (the carrier took it) -> delivered | undelivered; failed: never reached the carrier,
 * or refused as invalid; expired: gave up on this channel after its attempts (a fallback follows).
 */
export type DeliveryState =
  'planned' | 'sending' | 'accepted' | 'sent' | 'delivered' | 'undelivered' | 'failed' | 'expired';

/** One step in a delivery record's life, shown to operators. */
export interface DeliveryStep {
  at: Date;
  state: DeliveryState;
  note?: string;
}

/** One message to one recipient, on one channel, for one incident. Its id makes it unique. */
export interface Delivery {
  _id: string; // `${incidentId}|${kind}|${subscriberId}|${channel}:${to}`
  incidentId: string;
  kind: MessageKind;
  subscriberId: string;
  channel: DeliveryChannel;
  /** Phone number (E.164), e-mail address or URL, by channel. */
  to: string;
  language: Language;
  state: DeliveryState;
  providerMessageId?: string;
  /** The rules' template set its words come from. */
  templateSet?: string;
  /** The subscriber's area (the `area` of the text). */
  area?: string;
  /** For kinds sent more than once per recipient (updates, reminders, escalation repeats): which one. */
  round?: number;
  /** The template kind its words come from when it is not `kind` (staff escalation reads `outage` or `maintenance`). */
  templateKind?: TemplateKind;
  /** Not sent before this time: the grace delay, or quiet hours holding it until the morning. */
  notBefore?: Date;
  /** The end of the grace delay: resolved before it, the notice is cancelled rather than sent. */
  graceEndsAt?: Date;
  /** Quiet hours that apply to this recipient's messages (restoration included). */
  hold?: { start: string; end: string; timeZone: string; from?: 'rule' | 'subscriber'; atOnce?: MessageKind[] } | null;
  /** Whether a restoration notice follows this outage notice. */
  restoration?: boolean;
  /** What the rules said about updates for this recipient (on the first notice's record). */
  updates?: { everySeconds: number | null; onEtaChange: boolean };
  /** Maintenance: what the rules said for this recipient (on the notice's record): reminders, start and completion notices. */
  maintenance?: { noticeBeforeSeconds: number; remindersBeforeSeconds: number[]; started: boolean; completed: boolean };
  /** The words sent, kept where the channel fetches them later (a voice call's answer URL); an operator's `message` carries its words here from planning on. */
  text?: string;
  /** SMS parts billed, from the receipt. */
  units?: number;
  /** What the provider charged, from the receipt, as a decimal string (Plivo's own precision). */
  cost?: string;
  currency?: string;
  /** Which page of its incident's plan it is on: the sender reads planned records page by page (store/deliveries.ts). */
  page?: number;
  /** Send attempts that reached the provider (or may have). */
  attempts: number;
  /** When the current reservation was taken, for reconciliation after a lost answer. */
  reservedAt?: Date;
  /** Why the last attempt failed, when it did. */
  error?: string;
  /** The provider refused the recipient itself (invalid number): no retry on this channel. */
  invalidRecipient?: boolean;
  /** The record this one replaces on another channel, after that one expired. */
  fallbackOf?: string;
  /**
   * Not sent: another open outage covering the subscriber's site had already told this number
   * (that incident's id). Its restoration goes when the last outage covering the site ends.
   */
  coveredBy?: string;
  /** Not sent: a newer message replaced it before it went out (`inc_…|update#3`). */
  supersededBy?: string;
  history: DeliveryStep[];
  createdAt: Date;
  updatedAt: Date;
}
