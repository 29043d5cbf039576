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

export type DeliveryState = 'planned' | 'sending' | 'accepted' | 'sent' | 'delivered' | 'undelivered' | 'failed' | 'expired';

/** One message to one phone number for one incident. Its id makes it unique. */
export interface Delivery {
  _id: string; // `${incidentId}|${kind}|${subscriberId}|${phone}`
  incidentId: string;
  kind: MessageKind;
  subscriberId: string;
  phone: string;
  language: Language;
  state: DeliveryState;
  providerMessageId?: string;
  /** Why the last attempt failed, when it did. */
  error?: string;
  attempts: number;
  createdAt: Date;
  updatedAt: Date;
}
