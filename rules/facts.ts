/**
 * The facts a rule can test, what type each has, and how each is read from an incident,
 * a subscriber or the clock. Facts are flat names (`incident.severity`), so that the
 * evaluator can tell exactly which subscriber facts the rules read and group on them.
 */
import { SEVERITIES, SUBSCRIBER_CHANNELS, type IncidentFacts, type SubscriberFacts } from './types';
import { timeFacts, WEEKDAYS } from './time';

export type FactScope = 'incident' | 'subscriber' | 'time';

export type FactType =
  | { kind: 'enum'; values: readonly string[]; ordered?: boolean }
  | { kind: 'text' }
  | { kind: 'list'; values?: readonly string[] }
  | { kind: 'boolean' }
  | { kind: 'number' }
  | { kind: 'duration' }
  | { kind: 'clock' }
  /** Subscriber preferences: whatever scalar the subscriber record holds. */
  | { kind: 'scalar' };

export interface FactDefinition {
  id: string;
  scope: FactScope;
  type: FactType;
  description: string;
}

/** Everything about one incident at one moment that every subscriber shares. */
export interface IncidentContext {
  incident: IncidentFacts;
  at: Date;
  /** Engine facts of the incident and the clock, by fact id. */
  values: Record<string, unknown>;
  affectedSites: ReadonlySet<string>;
  affectedAreas: ReadonlySet<string>;
}

type SubscriberReader = (s: SubscriberFacts, ctx: IncidentContext) => unknown;

export const PREFERENCE_PREFIX = 'subscriber.preferences.';

/** The catalogue of one rule set: the languages it speaks are part of it. */
export class FactCatalog {
  private readonly facts = new Map<string, FactDefinition>();
  private readonly readers = new Map<string, SubscriberReader>();

  constructor(languages: readonly string[]) {
    const incident = (id: string, type: FactType, description: string) =>
      this.facts.set(id, { id, scope: 'incident', type, description });
    const time = (id: string, type: FactType, description: string) =>
      this.facts.set(id, { id, scope: 'time', type, description });
    const subscriber = (id: string, type: FactType, description: string, read: SubscriberReader) => {
      this.facts.set(id, { id, scope: 'subscriber', type, description });
      this.readers.set(id, read);
    };

    incident('incident.kind', { kind: 'enum', values: ['outage', 'maintenance'] }, 'outage or maintenance');
    incident('incident.severity', { kind: 'enum', values: SEVERITIES, ordered: true }, 'minor < major < critical');
    incident('incident.source', { kind: 'text' }, 'the monitoring tool that raised it, or manual');
    incident('incident.areas', { kind: 'list' }, 'the affected areas');
    incident('incident.sites', { kind: 'list' }, 'the affected sites, downstream ones included');
    incident('incident.subscribers', { kind: 'number' }, 'how many subscribers it affects');

    subscriber('subscriber.paidSms', { kind: 'boolean' }, 'pays for the SMS option', (s) => s.paidSms);
    subscriber(
      'subscriber.language',
      { kind: 'enum', values: languages },
      'the language of their messages',
      (s) => s.language,
    );
    subscriber(
      'subscriber.segment',
      { kind: 'enum', values: ['residential', 'business'] },
      'residential or business',
      (s) => s.segment,
    );
    subscriber('subscriber.business', { kind: 'boolean' }, 'a business customer', (s) => s.segment === 'business');
    subscriber('subscriber.site', { kind: 'text' }, 'the site that serves them', (s) => s.siteId);
    subscriber('subscriber.area', { kind: 'text' }, 'their area', (s) => s.area);
    subscriber('subscriber.onAffectedSite', { kind: 'boolean' }, "their site is among the incident's sites", (s, ctx) =>
      ctx.affectedSites.has(s.siteId),
    );
    subscriber(
      'subscriber.inAffectedArea',
      { kind: 'boolean' },
      "their area is among the incident's areas",
      (s, ctx) => s.area !== undefined && ctx.affectedAreas.has(s.area),
    );
    subscriber(
      'subscriber.channels',
      { kind: 'list', values: SUBSCRIBER_CHANNELS },
      'the channels they can be reached on',
      (s) => s.channels ?? [...SUBSCRIBER_CHANNELS],
    );
    subscriber('subscriber.hasQuietHours', { kind: 'boolean' }, 'they set quiet hours of their own', (s) =>
      Boolean(s.quietHours),
    );

    time('time.localTime', { kind: 'clock' }, 'local time of day, HH:MM');
    time('time.weekday', { kind: 'enum', values: WEEKDAYS }, 'mon ... sun');
    time('time.date', { kind: 'text' }, 'local date, YYYY-MM-DD');
    time('time.holiday', { kind: 'boolean' }, 'today is in the holiday list');
  }

  get(id: string): FactDefinition | undefined {
    const known = this.facts.get(id);
    if (known) return known;
    if (id.startsWith(PREFERENCE_PREFIX) && /^[A-Za-z][\w-]*$/.test(id.slice(PREFERENCE_PREFIX.length))) {
      return { id, scope: 'subscriber', type: { kind: 'scalar' }, description: 'a preference of the subscriber' };
    }
    return undefined;
  }

  ids(): string[] {
    return [...this.facts.keys(), `${PREFERENCE_PREFIX}<name>`];
  }

  all(): FactDefinition[] {
    return [...this.facts.values()];
  }

  /** How to read a subscriber fact from a subscriber; preferences are read by name. */
  subscriberReader(id: string): SubscriberReader {
    const reader = this.readers.get(id);
    if (reader) return reader;
    if (id.startsWith(PREFERENCE_PREFIX)) {
      const name = id.slice(PREFERENCE_PREFIX.length);
      return (s) => s.preferences?.[name];
    }
    throw new Error(`${id} is not a subscriber fact`);
  }
}

/** Reads the incident and the clock once; every subscriber evaluation reuses it. */
export function incidentContext(
  incident: IncidentFacts,
  at: Date,
  timeZone: string,
  holidays: ReadonlySet<string>,
): IncidentContext {
  const clock = timeFacts(at, timeZone, holidays);
  const values: Record<string, unknown> = {
    'incident.kind': incident.kind,
    'incident.severity': incident.severity,
    'incident.source': incident.source,
    'incident.areas': incident.areas ?? [],
    'incident.sites': incident.siteIds ?? [],
    'incident.subscribers': incident.subscribers,
    'time.localTime': clock.localTime,
    'time.weekday': clock.weekday,
    'time.date': clock.date,
    'time.holiday': clock.holiday,
  };
  return {
    incident,
    at,
    values,
    affectedSites: new Set(incident.siteIds ?? []),
    affectedAreas: new Set(incident.areas ?? []),
  };
}
