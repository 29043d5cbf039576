/**
 * Types shared by every layer. Pure data: no behaviour, no imports of clients, so that
 * workflow code may import them too.
 */

export type Language = 'it' | 'en';
export type Segment = 'residential' | 'business';

/** A tower or access point. `uplink` is the site that feeds it; null for a root of the network. */
export interface Site {
  _id: string;
  name: string;
  area: string;
  location?: { lat: number; lon: number };
  uplink: string | null;
}

export interface Subscriber {
  _id: string; // contract id
  name: string;
  phones: string[]; // E.164
  email?: string;
  language: Language;
  siteId: string;
  segment: Segment;
  smsAlerts: { active: boolean; since?: Date; until?: Date };
  optedOut: boolean;
}

export type IncidentKind = 'outage' | 'maintenance';
export type Severity = 'minor' | 'major' | 'critical';

/** Where an incident is in its lifecycle. */
export type IncidentPhase = 'detected' | 'notifying' | 'notified' | 'resolving' | 'resolved';

export interface Incident {
  _id: string;
  key: string;
  kind: IncidentKind;
  severity: Severity;
  /** The sites named when the incident was opened. */
  siteIds: string[];
  /** Those sites and every site downstream of them, fixed when the audience is snapshot. */
  affectedSiteIds?: string[];
  areas: string[];
  title: string;
  source: string;
  phase: IncidentPhase;
  openedAt: Date;
  resolvedAt?: Date;
  workflowId: string;
  timeline: { at: Date; phase: IncidentPhase; note?: string }[];
}

/** What a message tells its reader. */
export type MessageKind = 'outage' | 'restored';

/** The channels a message can take (see channels/channel.ts). */
export type DeliveryChannel = 'sms' | 'voice' | 'email' | 'webhook' | 'status';

/**
 * planned -> sending (reserved for one send attempt) -> accepted (the provider took it)
 * -> sent (the carrier took it) -> delivered | undelivered; failed: never reached the carrier,
 * or refused as invalid; expired: gave up on this channel after its attempts (a fallback follows).
 */
export type DeliveryState = 'planned' | 'sending' | 'accepted' | 'sent' | 'delivered' | 'undelivered' | 'failed' | 'expired';

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
  /** The words sent, kept where the channel fetches them later (a voice call's answer URL). */
  text?: string;
  /** SMS parts billed, from the receipt. */
  units?: number;
  /** What the provider charged, from the receipt, as a decimal string (Plivo's own precision). */
  cost?: string;
  currency?: string;
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
  history: DeliveryStep[];
  createdAt: Date;
  updatedAt: Date;
}
