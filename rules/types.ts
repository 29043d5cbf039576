/**
 * The contract between the rules and the code that acts on them: the facts a rule set
 * decides on, and the decisions it hands back. Plain data only (no classes, no Dates in
 * decisions), so that decisions can cross a Temporal activity boundary as they are.
 *
 * How the incident lifecycle is meant to use a decision (see rules/README.md, "Decisions"):
 *  - each `NoticePlan` is one channel for one subscriber. Its first notice (kind `outage`,
 *    or `maintenance` for planned work) goes out `graceSeconds` after the incident opened,
 *    and is cancelled if the incident resolves before then;
 *  - if that moment falls in `hold`, the night policy says when it goes (`holdUntil(hold, due, kind)`,
 *    rules/night.ts): at the window's end, at once for the kinds in `hold.atOnce`, before the window
 *    for warnings of planned work;
 *    if the incident resolves while a notice is held, send one `outage-restored` instead;
 *  - while unresolved, an `update` every `updates.everySeconds`, and one when the estimated
 *    restoration time changes if `updates.onEtaChange`; updates respect `hold` too;
 *  - `restored` when the incident resolves, if `restoration` and the first notice was sent;
 *  - `withdrawn` instead when it is cancelled as a false alarm (optional: a set without it sends `restored`);
 *  - maintenance: `maintenance` as soon as decided (or `noticeBeforeSeconds` before the start),
 *    a `reminder` at each of `remindersBeforeSeconds` before the start, `started`/`completed` when enabled,
 *    `rescheduled`/`cancelled` when the work moves or is called off;
 *  - texts come from `RuleSet.render({ set: plan.templateSet, kind }, decision.language, vars)`.
 */
import type { TimeWindow } from './time';

/** `announcement` incidents are operators' own words to an audience they chose: the rules decide nothing about them (`incident.kind` tests outage or maintenance). */
export type IncidentKind = 'outage' | 'maintenance' | 'announcement';
export type Severity = 'minor' | 'major' | 'critical';
export const SEVERITIES: readonly Severity[] = ['minor', 'major', 'critical'];

/** Channels that reach one subscriber. */
export const SUBSCRIBER_CHANNELS = ['sms', 'voice', 'email', 'webhook'] as const;
export type SubscriberChannel = (typeof SUBSCRIBER_CHANNELS)[number];
/** Subscriber records hold phones and e-mail addresses, no webhook URL: a subscriber notice on these reaches nobody (`rules check` warns). */
export const UNREACHABLE_SUBSCRIBER_CHANNELS = ['webhook'] as const satisfies readonly SubscriberChannel[];
/** Channels a message that was not delivered can fall back to (`defaults.delivery.fallback`): those that reach a subscriber's own phone or mailbox. */
export const FALLBACK_CHANNELS = ['sms', 'voice', 'email'] as const;
export type FallbackChannel = (typeof FALLBACK_CHANNELS)[number];
/** `feed` is the public status feed: one post per incident, for everyone. */
export const CHANNELS = [...SUBSCRIBER_CHANNELS, 'feed'] as const;
export type Channel = (typeof CHANNELS)[number];
/** Channels on which staff are escalated to. */
export const STAFF_CHANNELS = ['sms', 'voice', 'email', 'webhook'] as const;
export type StaffChannel = (typeof STAFF_CHANNELS)[number];

export const PRIORITIES = ['low', 'normal', 'high'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** Every kind of message a template set can hold. */
export const MESSAGE_KINDS = [
  'outage',
  'update',
  'restored',
  'outage-restored',
  'withdrawn',
  'maintenance',
  'reminder',
  'started',
  'completed',
  'rescheduled',
  'cancelled',
] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

/** What the rules know about an incident. Missing optional facts make the conditions that read them false. */
export interface IncidentFacts {
  id?: string;
  kind: IncidentKind;
  severity: Severity;
  /** Who raised it: a monitoring tool's name, or `manual`. */
  source?: string;
  /** Areas affected (names as in the site list). */
  areas?: string[];
  /** Affected sites, downstream ones included (what `subscriber.onAffectedSite` tests). */
  siteIds: string[];
  /** ISO time; grace delays count from it. Defaults to the decision time. */
  openedAt?: string | Date;
  /** How many subscribers it affects; `decide()` counts an array it is given when this is missing. */
  subscribers?: number;
  title?: string;
  /** Estimated restoration, or the planned end of maintenance. */
  estimatedEnd?: string | Date;
  /** Planned start of maintenance. */
  startsAt?: string | Date;
}

/**
 * What the rules know about a subscriber. A plain shape on purpose: the caller maps its own
 * subscriber records to it, so that the rules do not depend on how subscribers are stored.
 */
export interface SubscriberFacts {
  id: string;
  /** Pays for the SMS option. */
  paidSms: boolean;
  language: string;
  segment: 'residential' | 'business';
  siteId: string;
  area?: string;
  /** Channels the subscriber can be reached on; every channel when missing. */
  channels?: SubscriberChannel[];
  /** The subscriber's own quiet hours, `HH:MM-HH:MM`, honoured where the rules allow it. */
  quietHours?: string;
  /** Further preferences, readable in rules as `subscriber.preferences.<name>`. */
  preferences?: Record<string, string | number | boolean>;
}

/** A window in which messages wait, in local time of `timeZone`. */
export interface HoldWindow extends TimeWindow {
  timeZone: string;
  /** Whether the window is the rule's or the subscriber's own preference. */
  from: 'rule' | 'subscriber';
  /**
   * The kinds that go at once inside the window at this incident's severity (`quietHours.atOnce`,
   * rules/night.ts); left out when none does. Records planned before the night policy have no list.
   */
  atOnce?: MessageKind[];
}

/** One channel for one subscriber: what to send, when, and what follows. */
export interface NoticePlan {
  channel: SubscriberChannel;
  /** The rule that asked for it. */
  rule: string;
  /** The template set its texts come from. */
  templateSet: string;
  priority: Priority;
  /** Seconds after the incident opened before the first notice; cancelled if it resolves first. */
  graceSeconds: number;
  /** Quiet hours: what falls in this window waits for its end, except the kinds in `hold.atOnce` (rules/night.ts); null when none applies. */
  hold: HoldWindow | null;
  /** Send `restored` once the incident resolves (only to those who got the first notice). */
  restoration: boolean;
  updates: {
    /** An `update` this often while unresolved; null for none. */
    everySeconds: number | null;
    /** An `update` when the estimated restoration time changes. */
    onEtaChange: boolean;
  };
  maintenance: {
    /** Send the maintenance notice this long before the start (at once if that is already past). */
    noticeBeforeSeconds: number;
    /** The earliest reminder (the largest time before the start), or null for none. */
    reminderBeforeSeconds: number | null;
    /** Every reminder, in seconds before the start, earliest first (`reminder: [24h, 1h]`: [86400, 3600]). */
    remindersBeforeSeconds: number[];
    started: boolean;
    completed: boolean;
  };
  /** The SMS parts a text may take; longer renders are reported, not cut. */
  maxParts: number;
}

/** What one subscriber gets for one incident. Shared by every subscriber with the same facts: do not mutate. */
export interface SubscriberDecision {
  /** False when no rule sends this subscriber anything; `notices` is then empty. */
  notify: boolean;
  /** The language of the texts: the subscriber's when the rules have it, else the default. */
  language: string;
  /** At most one per channel, in the order of the rules that asked for them. */
  notices: NoticePlan[];
  /** The rules that applied, in order. */
  rules: string[];
}

/** The public status feed: one post per incident (and its updates and restoration). */
export interface FeedPlan {
  rule: string;
  templateSet: string;
  priority: Priority;
  graceSeconds: number;
  restoration: boolean;
  updates: NoticePlan['updates'];
}

/** Call staff while the incident is unresolved (and, once there is acknowledgement, unacknowledged). */
export interface EscalationStep {
  rule: string;
  contact: string;
  contactName: string;
  channel: StaffChannel;
  /** Phone number, e-mail address or URL, as the channel needs. */
  address: string;
  /** Seconds after the incident opened; for a maintenance, after its planned end (an overrun). */
  afterSeconds: number;
  /** Repeat the call this often, this many more times, while still unresolved. */
  repeat: { everySeconds: number; times: number } | null;
  templateSet: string;
  priority: Priority;
}

/** What the incident as a whole gets, whoever is affected. */
export interface IncidentDecision {
  /** Rules that applied to the incident as a whole (those that read no subscriber facts). */
  rules: string[];
  feed: FeedPlan | null;
  escalations: EscalationStep[];
}

export interface DecisionGroup {
  decision: SubscriberDecision;
  subscriberIds: string[];
}

/** Every subscriber's decision for one incident, grouped by identical decision. */
export interface Decisions {
  /** The rule set that decided: pin it on the incident. */
  version: string;
  /** The moment the time facts were taken (ISO). */
  at: string;
  incident: IncidentDecision;
  groups: DecisionGroup[];
  subscribers: number;
  /** Distinct combinations of the subscriber facts the rules read: decisions actually computed. */
  evaluations: number;
  /** json-rules-engine runs for the subscribers (one rule each, once per value of the facts that rule reads). */
  ruleRuns: number;
}
