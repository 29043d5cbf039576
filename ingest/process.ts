/**
 * From one alert event to what happens to incidents: a firing alert opens an incident (or finds
 * the one its episode opened), a resolved alert resolves it, everything else is recorded.
 *
 * Episodes: the tools reuse an alert's identity for the next outage of the same thing
 * (Alertmanager fingerprints, Uptime Kuma monitor ids...), so the incident key is the alert's
 * dedupKey plus an episode number that grows each time the alert fires after being resolved.
 * The same key always reaches the same incident (services/incidents.ts), so handling an event
 * twice changes nothing.
 *
 * Correlation across sites and time (`decide`, pure; `factsFor` gathers what it reads):
 * - an alert for a site that an open incident already covers (a site below one that is down)
 *   joins that incident: nobody is told twice, and its resolution leaves the incident open;
 * - an alert for a site above open incidents absorbs them: the oldest carries on with the new
 *   sites added (only subscribers not told yet are told), the others are merged into it and
 *   resolve with it (the absorbed alerts' episodes become joined: the new alert owns the incident);
 * - every decision, and its writes, happens under the lock of the network trees its sites are in
 *   (./correlation.ts, ../store/tree-lock.ts), so alerts and API calls for one tree are decided one
 *   after the other, whatever their timing (docs/correlation.md);
 * - nothing here waits for a worker: new incidents' workflows are started, and resolve, reopen
 *   and absorb reach running ones as signals;
 * - a flapping site (down, up, down within minutes) does not text everyone each time: a
 *   monitoring resolve settles for `settleSeconds` before the restoration notices, and the
 *   alert firing again within it reopens the same incident.
 *
 * Planned maintenance works like a silence: an alert that fires for a site under maintenance
 * (its window has begun and it is not completed or cancelled), or below such a site, is recorded
 * as `silenced` with the maintenance's id and opens no incident; when only some of its sites are
 * under maintenance, the others go on as usual.
 */
import type { Store } from '../store/db';
import type { Incident, Severity } from '../domain/types';
import { IncidentInputError, incidentIdForKey, type IncidentService } from '../services/incidents';
import { ALERT_SEVERITIES, type AlertEvent, type AlertSeverity } from './alert-event';
import type { SiteResolution } from './sites';
import { createCorrelation, Network } from './correlation';
import {
  closeEpisode,
  latestEpisode,
  recordEpisode,
  reopenEpisode,
  type AlertEpisodeDoc,
  type AlertResult,
} from './store';
import { maintenanceCovering } from '../store/maintenances';

export interface DecisionFacts {
  /** The alert's latest episode, if it ever fired. */
  episode?: AlertEpisodeDoc;
  /** When that episode's incident was resolved (or asked to), if it was: by an operator, while the alert still fired. */
  incidentClosedAt?: Date;
  /** The episode's incident is not stored: an earlier attempt failed before opening it. */
  incidentMissing?: boolean;
  sites: SiteResolution;
  minSeverity: AlertSeverity;
  /** The latest episode is resolved but its incident is still settling: it can be reopened. */
  settling?: { incidentId: string };
  /** An open incident already covers every site of this alert. */
  covering?: { incidentId: string };
  /** Open incidents whose sites all lie below this alert's sites, oldest first. */
  downstreamOpen?: string[];
  /** Maintenance under way on some of this alert's sites (or above them): which, and the sites it covers. */
  maintenance?: { maintenanceId: string; siteIds: string[] }[];
}

export type Decision =
  | { action: 'open'; incidentKey: string; episode: number; siteIds: string[] }
  | { action: 'resolve'; incidentKey: string; incidentId: string }
  | { action: 'reopen'; incidentKey: string; incidentId: string }
  | { action: 'join'; incidentKey: string; episode: number; incidentId: string; siteIds: string[] }
  | {
      action: 'absorb';
      incidentKey: string;
      episode: number;
      incidentId: string;
      absorbed: string[];
      siteIds: string[];
    }
  /** Firing again while its episode, which joined an incident, is open. */
  | { action: 'known'; incidentId: string; episode: number }
  /** The alert's episode ends, the incident it joined carries on. */
  | { action: 'leave'; incidentKey: string; incidentId: string }
  /** `notOpen`: a resolution with nothing open to resolve (reported as `not_open`). */
  | { action: 'record'; reason: string; notOpen?: boolean }
  /** Every site of the alert is under planned maintenance: recorded, no incident. */
  | { action: 'silence'; maintenanceId: string; reason: string }
  | { action: 'reject'; reason: string };

/** An alert with no severity is taken as major: it was routed to us to tell customers. */
function rank(severity: AlertSeverity): number {
  return ALERT_SEVERITIES.indexOf(severity === 'unknown' ? 'major' : severity);
}

export function isBelow(severity: AlertSeverity, min: AlertSeverity): boolean {
  return rank(severity) > rank(min);
}

/** Whether this event would open an incident, and so needs its sites. */
export function wouldOpen(event: AlertEvent, minSeverity: AlertSeverity): boolean {
  return event.kind === 'state' && event.status === 'firing' && !isBelow(event.severity, minSeverity);
}

export function incidentKeyOf(dedupKey: string, episode: number): string {
  return `${dedupKey}#${episode}`;
}

export function decide(event: AlertEvent, facts: DecisionFacts): Decision {
  if (event.kind !== 'state')
    return { action: 'record', reason: `${event.kind} events are recorded, they do not open or close incidents` };
  const { episode } = facts;
  const open = episode?.state === 'open' ? episode : undefined;

  if (event.status === 'resolved') {
    if (!open) return { action: 'record', reason: 'no open incident for this alert', notOpen: true };
    if (open.joined) return { action: 'leave', incidentKey: open._id, incidentId: open.incidentId };
    return { action: 'resolve', incidentKey: open._id, incidentId: open.incidentId };
  }

  if (isBelow(event.severity, facts.minSeverity))
    return {
      action: 'record',
      reason: `severity ${event.severity} is below the integration's min_severity (${facts.minSeverity})`,
    };
  if ('problem' in facts.sites) return { action: 'reject', reason: facts.sites.problem };
  let siteIds = facts.sites.siteIds;
  const next = (episode?.episode ?? 0) + 1;
  if (!open) {
    if (facts.settling && episode)
      return { action: 'reopen', incidentKey: episode._id, incidentId: facts.settling.incidentId };
    if (facts.maintenance?.length) {
      const covered = new Set(facts.maintenance.flatMap((m) => m.siteIds));
      const rest = siteIds.filter((id) => !covered.has(id));
      const first = facts.maintenance[0]!;
      if (rest.length === 0)
        return {
          action: 'silence',
          maintenanceId: first.maintenanceId,
          reason: `${siteIds.length > 1 ? 'its sites are' : `${siteIds[0]} is`} under planned maintenance (${facts.maintenance.map((m) => m.maintenanceId).join(', ')})`,
        };
      siteIds = rest; // the sites under maintenance are expected to be down
    }
    const incidentKey = incidentKeyOf(event.dedupKey, next);
    if (facts.covering)
      return { action: 'join', incidentKey, episode: next, incidentId: facts.covering.incidentId, siteIds };
    if (facts.downstreamOpen?.length)
      return {
        action: 'absorb',
        incidentKey,
        episode: next,
        incidentId: facts.downstreamOpen[0],
        absorbed: facts.downstreamOpen.slice(1),
        siteIds,
      };
    return { action: 'open', incidentKey, episode: next, siteIds };
  }
  // Firing again while its episode is open: a joined one reports the incident it joined (its own
  // key never named an incident); the others open theirs again, harmlessly (the same key).
  if (open.joined && !facts.incidentMissing && !facts.incidentClosedAt)
    return { action: 'known', incidentId: open.incidentId, episode: open.episode };
  if (facts.incidentMissing || !facts.incidentClosedAt)
    return { action: 'open', incidentKey: open._id, episode: open.episode, siteIds };
  // An operator resolved the incident while the tool still said "firing". A problem that began
  // after that is a new outage; the same problem reported again must not text everyone twice.
  if (event.startsAt && event.startsAt > facts.incidentClosedAt)
    return { action: 'open', incidentKey: incidentKeyOf(event.dedupKey, next), episode: next, siteIds };
  return {
    action: 'record',
    reason: `its incident ${open.incidentId} was resolved by hand while this alert kept firing`,
  };
}

const INCIDENT_SEVERITY: Record<AlertSeverity, Severity> = {
  critical: 'critical',
  major: 'major',
  unknown: 'major',
  minor: 'minor',
  warning: 'minor',
  info: 'minor',
};

function closedAt(incident: Incident): Date | undefined {
  if (incident.phase !== 'resolving' && incident.phase !== 'resolved' && incident.phase !== 'billed') return undefined;
  return (
    incident.timeline.find((t) => t.phase === 'resolving' || t.phase === 'resolved')?.at ??
    incident.resolvedAt ??
    new Date(0)
  );
}

export interface AlertProcessorDeps {
  store: Store;
  incidents: IncidentService;
  /** How long a monitoring resolve waits for the alert to stay quiet before restoration notices (default 300). */
  settleSeconds?: number;
}

/** A settling resolve this close to its end is not reopened (see factsFor). */
const REOPEN_MARGIN_MS = 5_000;

export const DEFAULT_SETTLE_SECONDS = 300;

export function createAlertProcessor({ store, incidents, settleSeconds = DEFAULT_SETTLE_SECONDS }: AlertProcessorDeps) {
  const correlation = createCorrelation(store);

  /** How this alert's sites relate to the incidents open in their trees (under the trees' locks). */
  async function related(
    siteIds: string[],
    network: Network,
  ): Promise<Pick<DecisionFacts, 'covering' | 'downstreamOpen'>> {
    const r = await correlation.relate(siteIds, network);
    if (r.covering) return { covering: { incidentId: r.covering } };
    return r.downstreamOpen ? { downstreamOpen: r.downstreamOpen } : {};
  }

  async function factsFor(
    event: AlertEvent,
    sites: SiteResolution,
    minSeverity: AlertSeverity,
    network: Network,
  ): Promise<DecisionFacts> {
    if (event.kind !== 'state') return { sites, minSeverity };
    const episode = await latestEpisode(store, event.dedupKey);
    if (event.status === 'firing' && episode?.state !== 'open' && 'siteIds' in sites && wouldOpen(event, minSeverity)) {
      const now = new Date();
      const last = episode && !episode.joined ? await correlation.get(episode.incidentId) : null;
      // Reopened by a signal, which the workflow ignores once its restoration has begun: too close
      // to the end of the settling time, the alert is a new outage instead.
      if (
        last?.state === 'settling' &&
        last.settlingUntil &&
        last.settlingUntil.getTime() > now.getTime() + REOPEN_MARGIN_MS
      )
        return { episode, sites, minSeverity, settling: { incidentId: last._id } };
      // Side by side: the common case (no maintenance) costs no extra round trip before the correlation.
      const [maintenance, correlated] = await Promise.all([
        maintenanceCovering(store, sites.siteIds, now),
        related(sites.siteIds, network),
      ]);
      if (maintenance.length === 0) return { episode, sites, minSeverity, ...correlated };
      const covered = new Set(maintenance.flatMap((m) => m.siteIds));
      const rest = sites.siteIds.filter((id) => !covered.has(id));
      return { episode, sites, minSeverity, maintenance, ...(rest.length ? await related(rest, network) : {}) };
    }
    if (episode?.state !== 'open' || event.status === 'resolved') return { episode, sites, minSeverity };
    const incident = await store.incidents.findOne({ _id: episode.incidentId });
    if (!incident) return { episode, incidentMissing: true, sites, minSeverity };
    // Resolved by hand is known at once from the correlation state (the phase follows once a worker runs).
    const state = await correlation.get(incident._id);
    const byHand =
      state && state.state !== 'open' && !state.mergedInto ? (incident.resolveRequestedAt ?? new Date(0)) : undefined;
    return { episode, incidentClosedAt: closedAt(incident) ?? byHand, sites, minSeverity };
  }

  return {
    /** The network as it was at most a second ago (which sites exist, which tree each is in). */
    recentNetwork: () => correlation.recentNetwork(),

    /** The roots of the network trees an event's decision locks (empty: it locks none). */
    async treesOf(event: AlertEvent, sites: SiteResolution): Promise<string[]> {
      if (event.kind !== 'state') return [];
      const network = await correlation.recentNetwork();
      const siteIds =
        'siteIds' in sites ? sites.siteIds : ((await latestEpisode(store, event.dedupKey))?.siteIds ?? []);
      return [...new Set(siteIds.map((id) => network.rootOf(id)))];
    },

    /**
     * Acts on one event; throws only on failures worth a retry (database, Temporal). Decided and
     * written under the lock of the network trees its sites are in (./correlation.ts): alerts for
     * one tree, in one payload or in parallel requests, are decided one after the other.
     */
    async handle(event: AlertEvent, sites: SiteResolution, minSeverity: AlertSeverity): Promise<AlertResult> {
      // A resolution whose site the mapping no longer finds locks the trees its episode was in.
      const siteIds =
        'siteIds' in sites
          ? sites.siteIds
          : event.kind === 'state'
            ? ((await latestEpisode(store, event.dedupKey))?.siteIds ?? [])
            : [];
      if (event.kind !== 'state' || siteIds.length === 0) {
        const facts = await factsFor(event, sites, minSeverity, new Network(new Map()));
        return handleDecision(event, facts, decide(event, facts), new Network(new Map()));
      }
      return correlation.withTrees(siteIds, async (network) => {
        const facts = await factsFor(event, sites, minSeverity, network);
        return handleDecision(event, facts, decide(event, facts), network);
      });
    },
  };

  async function handleDecision(
    event: AlertEvent,
    facts: DecisionFacts,
    decision: Decision,
    network: Network,
  ): Promise<AlertResult> {
    switch (decision.action) {
      case 'record':
        return { action: decision.notOpen ? 'not_open' : 'recorded', reason: decision.reason };
      case 'reject':
        return { action: 'rejected', reason: decision.reason };
      case 'known':
        return { action: 'already_open', incidentId: decision.incidentId, episode: decision.episode };
      case 'silence':
        return { action: 'silenced', maintenanceId: decision.maintenanceId, reason: decision.reason };
      case 'resolve': {
        try {
          await incidents.resolve(
            decision.incidentId,
            `Resolved by ${event.source}/${event.integration}: ${event.summary}`.slice(0, 500),
            { settleSeconds, mode: 'signal' },
          );
        } catch (err) {
          // Already over (its workflow finished) or never opened: either way there is nothing left to resolve.
          if (!(err instanceof IncidentInputError) || err.code === 'unknown_site') throw err;
        }
        await closeEpisode(store, decision.incidentKey, event.endsAt ?? event.receivedAt);
        return { action: 'resolved', incidentId: decision.incidentId, episode: facts.episode?.episode };
      }
      case 'leave':
        await closeEpisode(store, decision.incidentKey, event.endsAt ?? event.receivedAt);
        return {
          action: 'recorded',
          incidentId: decision.incidentId,
          reason: `this alert had joined incident ${decision.incidentId}, which stays open for the site above it`,
        };
      case 'reopen': {
        try {
          await incidents.reopen(
            decision.incidentId,
            `${event.source}/${event.integration} fired again: ${event.summary}`.slice(0, 500),
            'signal',
          );
        } catch (err) {
          // Too late: its restoration notices have begun. This is a new outage.
          if (!(err instanceof IncidentInputError)) throw err;
          const fresh: DecisionFacts = {
            ...facts,
            settling: undefined,
            ...(await related('siteIds' in facts.sites ? facts.sites.siteIds : [], network)),
          };
          return handleDecision(event, fresh, decide(event, fresh), network);
        }
        await reopenEpisode(store, decision.incidentKey);
        return { action: 'reopened', incidentId: decision.incidentId, episode: facts.episode?.episode };
      }
      case 'join':
      case 'absorb': {
        if (decision.action === 'absorb') {
          try {
            await incidents.absorb(decision.incidentId, decision.absorbed, decision.siteIds, network);
            // This alert is the root cause now: the alerts of the incidents below end without ending it.
            await store.alertIncidents.updateMany(
              { incidentId: { $in: [decision.incidentId, ...decision.absorbed] }, state: 'open' },
              { $set: { joined: true } },
            );
          } catch (err) {
            // It was resolved a moment ago: this alert is an incident of its own.
            if (!(err instanceof IncidentInputError) || err.code === 'unknown_site') throw err;
            return handleDecision(
              event,
              facts,
              {
                action: 'open',
                incidentKey: decision.incidentKey,
                episode: decision.episode,
                siteIds: decision.siteIds,
              },
              network,
            );
          }
        }
        await recordEpisode(store, {
          _id: decision.incidentKey,
          dedupKey: event.dedupKey,
          episode: decision.episode,
          incidentId: decision.incidentId,
          state: 'open',
          siteIds: decision.siteIds,
          openedAt: event.startsAt ?? event.receivedAt,
          ...(decision.action === 'join' ? { joined: true } : {}),
        });
        return {
          action: decision.action === 'join' ? 'joined' : 'absorbed',
          incidentId: decision.incidentId,
          episode: decision.episode,
        };
      }
      case 'open': {
        let opened: { incident: Incident; created: boolean };
        try {
          opened = await incidents.openDecided(
            {
              siteIds: decision.siteIds,
              kind: 'outage',
              severity: INCIDENT_SEVERITY[event.severity],
              title: event.summary.slice(0, 200),
              source: `${event.source}/${event.integration}`,
              key: decision.incidentKey,
            },
            network,
          );
        } catch (err) {
          if (err instanceof IncidentInputError && err.code === 'unknown_site')
            return { action: 'rejected', reason: err.message };
          throw err;
        }
        const result: AlertResult = {
          action: opened.created ? 'opened' : 'already_open',
          incidentId: opened.incident._id,
          episode: decision.episode,
        };
        const previous = facts.episode;
        if (previous?._id === decision.incidentKey) return result; // this episode is recorded already
        // A new episode while the previous one is still open: its incident was resolved by hand.
        if (previous?.state === 'open') await closeEpisode(store, previous._id, event.startsAt ?? event.receivedAt);
        await recordEpisode(store, {
          _id: decision.incidentKey,
          dedupKey: event.dedupKey,
          episode: decision.episode,
          incidentId: incidentIdForKey(decision.incidentKey),
          state: 'open',
          siteIds: decision.siteIds,
          openedAt: event.startsAt ?? event.receivedAt,
        });
        return result;
      }
    }
  }
}

export type AlertProcessor = ReturnType<typeof createAlertProcessor>;
