/**
 * Who is told what, when: the rules' decisions turned into delivery records.
 *
 * `planNotices` runs once per incident: it walks the affected sites and every site they feed,
 * asks the incident's pinned rules about each subscriber there (grouped: the engine runs once
 * per distinct combination of facts), and plans one record per recipient and channel with its
 * due time (grace delay, then quiet hours). The records are the audience snapshot: planning
 * again adds nothing, so a retried activity cannot change who is told.
 *
 * `prepareResolution` runs when service is back: notices still waiting in the grace delay are
 * cancelled; notices held or still being retried become one combined outage-and-restored
 * message; everyone whose outage notice went out gets the restoration notice (after quiet hours).
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Store } from '../store/db';
import type {
  Delivery,
  DeliveryChannel,
  DeliveryState,
  Incident,
  Language,
  MessageKind,
  Site,
  Subscriber,
} from '../domain/types';
import type { IncidentSchedule } from '../workflows/incident-api';
import { downstreamSites } from '../store/network';
import { subscriberFacts } from '../store/audience';
import { subscribersOfSites } from '../store/site-subscribers';
import { countSiteSubscribers } from '../store/site-roster';
import { planAll, transition, type PlanInput } from '../store/deliveries';
import { noticesForResolution } from '../store/notice-rolls';
import {
  claimRestoration,
  coveringOutage,
  handOverNotice,
  LIVE_NOTICE,
  markEnding,
  numbersToldBy,
  OPEN_OUTAGE_PHASES,
  otherOutages,
  type OtherOutage,
  subscriberSites,
  withCoveragePlanning,
} from '../store/coverage';
import type { RulesResolver } from '../store/rule-versions';
import { closingHold, firstNoticeTime, holdUntil, type HoldWindow, type IncidentFacts, type RuleSet } from '../rules';
import type { Logger } from '../domain/log';
import { planOperatorMessage } from './operator-messages';
import type { PlanningSender } from '../delivery/sender';
import { phaseTimer } from '../delivery/phase-timer';

export interface NoticeDeps {
  store: Store;
  rules: RulesResolver;
  logger: Logger;
  /** Sends what a planning makes due at once while it plans (delivery/sender.ts); without it, the workflow's rounds send. */
  whilePlanning?: (stop?: () => Promise<boolean>, batchSize?: number) => PlanningSender;
}

export interface PlanResult {
  sites: number;
  subscribers: number;
  planned: number;
  /** The earliest time a planned notice falls due (ISO), or null when nobody is to be told. */
  firstDueAt: string | null;
  /** The rules' timers: periodic updates and staff escalation. */
  schedule: IncidentSchedule;
  /** Messages sent while planning, by kind (the workflow counts them as its rounds' sends). */
  sent?: Partial<Record<MessageKind, number>>;
  /** Records due at once that planning did not send (absent: it sent nothing itself, the rounds send all). */
  leftDue?: number;
}

/** Languages the public status feed is written in. */
const FEED_LANGUAGES: Language[] = ['it', 'en'];

export function incidentFacts(
  incident: Pick<
    Incident,
    | '_id'
    | 'kind'
    | 'severity'
    | 'source'
    | 'areas'
    | 'affectedSiteIds'
    | 'siteIds'
    | 'openedAt'
    | 'title'
    | 'estimatedEnd'
    | 'window'
    | 'audienceSize'
  >,
): IncidentFacts {
  const estimatedEnd = incident.window?.endsAt ?? incident.estimatedEnd;
  return {
    id: incident._id,
    kind: incident.kind,
    severity: incident.severity,
    source: incident.source,
    areas: incident.areas,
    siteIds: incident.affectedSiteIds ?? incident.siteIds,
    openedAt: incident.openedAt.toISOString(),
    title: incident.title,
    ...(incident.audienceSize !== undefined ? { subscribers: incident.audienceSize } : {}),
    ...(estimatedEnd ? { estimatedEnd: estimatedEnd.toISOString() } : {}),
    ...(incident.window ? { startsAt: incident.window.startsAt.toISOString() } : {}),
  };
}

export { subscriberFacts };

export function recipientsOn(channel: string, s: Subscriber): string[] {
  if (channel === 'sms' || channel === 'voice') return s.phones;
  const email = (s as Subscriber & { email?: string }).email;
  return channel === 'email' && email ? [email] : [];
}

/**
 * Plans the first notice for every subscriber on `sites` (and the public feed when `withFeed`),
 * as the rules decide with the incident's facts as of `decidedAt`. Existing records are left
 * alone, so planning again plans nothing new.
 */
export async function planAudience(
  deps: NoticeDeps,
  incident: Incident,
  facts: IncidentFacts,
  sites: Site[],
  decidedAt: Date,
  withFeed: boolean,
  /** The workflow's batch size, for what goes out while planning. */
  batchSize?: number,
) {
  const { store, logger } = deps;
  const rules = await deps.rules(incident.rulesVersion);
  const areaOf = new Map(sites.map((s) => [s._id, s.area]));
  const decider = rules.decider(facts, { at: decidedAt });
  let subscribers = 0;
  let firstDue: number | null = null;
  const updatePeriods = new Set<number>();
  const due = (d: Date) => (firstDue = firstDue === null ? d.getTime() : Math.min(firstDue, d.getTime()));
  // Grace and maintenance notice times count from the decision: for sites added later, from when they were added.
  const timingFacts = { ...facts, openedAt: decidedAt.toISOString() };

  // One message per number, not per contract: a phone on two contracts (a home and a shop) is told
  // once, under the first contract in id order (the same one on a retry). Sites added to an open
  // incident skip the numbers its first planning already reached.
  const told = withFeed ? new Set<string>() : await numbersPlanned(store, incident._id, firstKind(incident));
  // Numbers another open outage covering the same sites already tells (store/coverage.ts).
  const others =
    incident.kind === 'outage'
      ? await otherOutages(
          store,
          sites.map((s) => s._id),
          incident._id,
        )
      : [];
  const toldElsewhere = others.length ? await numbersToldBy(store, others) : new Map<string, OtherOutage[]>();
  async function* inputs(): AsyncIterable<PlanInput> {
    for await (const s of subscribersOfSites(
      store,
      sites.map((s) => s._id),
    )) {
      subscribers++;
      const sf = subscriberFacts(s, areaOf.get(s.siteId), incident.openedAt);
      const decision = decider.known(sf) ?? (await decider.decide(sf));
      if (!decision.notify) continue;
      for (const plan of decision.notices) {
        const when = firstNoticeTime(plan, timingFacts, decidedAt);
        if (plan.updates.everySeconds) updatePeriods.add(plan.updates.everySeconds);
        for (const to of recipientsOn(plan.channel, s)) {
          const number = `${plan.channel}:${to}`;
          if (told.has(number)) continue;
          told.add(number);
          const coveredBy = coveringOutage(toldElsewhere.get(number) ?? [], s.siteId);
          if (!coveredBy) due(when.sendAt);
          yield {
            ...(coveredBy ? { coveredBy } : {}),
            incidentId: incident._id,
            kind: firstKind(incident),
            subscriberId: s._id,
            channel: plan.channel as DeliveryChannel,
            to,
            language: decision.language as Language,
            templateSet: plan.templateSet,
            area: sf.area,
            notBefore: when.sendAt,
            graceEndsAt: when.plannedAt,
            hold: plan.hold,
            restoration: plan.restoration,
            updates: plan.updates,
          };
        }
      }
    }
    // The free public channel: one status post per incident, in each language.
    const feed = withFeed ? (await decider.incident()).feed : null;
    if (feed) {
      const at = new Date(decidedAt.getTime() + feed.graceSeconds * 1000);
      if (feed.updates.everySeconds) updatePeriods.add(feed.updates.everySeconds);
      for (const language of FEED_LANGUAGES) {
        due(at);
        yield {
          incidentId: incident._id,
          kind: firstKind(incident),
          subscriberId: `public-${language}`,
          channel: 'status',
          to: 'public',
          language,
          templateSet: feed.templateSet,
          notBefore: at,
          graceEndsAt: at,
          restoration: feed.restoration,
          updates: feed.updates,
        };
      }
    }
  }
  // The notices due at once go out while the rest is planned, until the incident is being resolved
  // (the resolution then decides what its waiting notices become, as it did before any was sent).
  const sending = withFeed ? deps.whilePlanning?.(() => resolveRequested(store, incident._id), batchSize) : undefined;
  const r = await planAll(store, inputs(), new Date(), undefined, sending?.onPlanned);
  logger.info(
    {
      incidentId: incident._id,
      rules: rules.version,
      sites: sites.length,
      subscribers,
      recipients: r.recipients,
      planned: r.planned,
    },
    'notices planned',
  );
  return {
    subscribers,
    recipients: r.recipients,
    planned: r.planned,
    ...(await sending?.result()),
    firstDue: firstDue as number | null,
    updatePeriods: [...updatePeriods].sort((a, b) => a - b),
  };
}

/** Whether the incident is being resolved (or over): its notices are no longer sent while planning. */
async function resolveRequested(store: Store, incidentId: string): Promise<boolean> {
  const now = new Date();
  const incident = await store.incidents.findOne(
    { _id: incidentId },
    { projection: { resolveRequestedAt: 1, settlingUntil: 1, endedAt: 1, phase: 1 } },
  );
  if (!incident) return true;
  if (incident.endedAt || ['resolving', 'resolved', 'cancelled', 'billed'].includes(incident.phase)) return true;
  return !!incident.resolveRequestedAt && !(incident.settlingUntil && incident.settlingUntil > now);
}

/** How many subscribers the sites serve, paying or not: what the rules call `incident.subscribers`. */
export async function countAudience(store: Store, siteIds: string[]): Promise<number> {
  return countSiteSubscribers(store, siteIds);
}

/** The numbers and addresses an incident's first message was planned to, per channel (`sms:+39...`). */
async function numbersPlanned(store: Store, incidentId: string, kind: MessageKind): Promise<Set<string>> {
  const planned = await store.deliveries.find({ incidentId, kind }, { projection: { channel: 1, to: 1 } }).toArray();
  return new Set(planned.map((d) => `${d.channel}:${d.to}`));
}

/** The first message of an incident: the outage notice, or the maintenance notice. */
export function firstKind(incident: Pick<Incident, 'kind'>): 'outage' | 'maintenance' {
  return incident.kind === 'maintenance' ? 'maintenance' : 'outage';
}

/** No periodic updates and no staff escalation: an announcement's schedule. */
export function noTimers(incident: Pick<Incident, 'openedAt'>): IncidentSchedule {
  return { openedAt: incident.openedAt.toISOString(), updateEverySeconds: [], escalations: [] };
}

/** The rules' timers for an incident: its update periods and its escalations, repeats included, in time order. */
export async function scheduleOf(
  rules: RuleSet,
  facts: IncidentFacts,
  incident: Incident,
  updatePeriods: number[],
): Promise<IncidentSchedule> {
  if (incident.kind === 'announcement') return noTimers(incident);
  const decision = await rules.decider(facts, { at: incident.openedAt }).incident();
  const escalations: IncidentSchedule['escalations'] = [];
  decision.escalations.forEach((e, step) => {
    escalations.push({ afterSeconds: e.afterSeconds, step });
    for (let i = 1; e.repeat && i <= e.repeat.times; i++)
      escalations.push({ afterSeconds: e.afterSeconds + i * e.repeat.everySeconds, step });
  });
  escalations.sort((a, b) => a.afterSeconds - b.afterSeconds || a.step - b.step);
  return { openedAt: incident.openedAt.toISOString(), updateEverySeconds: updatePeriods, escalations };
}

/** The incident, or a failure Temporal does not retry: without its document there is nothing to do. */
export async function loadIncidentOrFail(store: Store, incidentId: string): Promise<Incident> {
  const incident = await store.incidents.findOne({ _id: incidentId });
  if (!incident)
    throw ApplicationFailure.create({
      type: 'IncidentNotFound',
      message: `incident ${incidentId} is not in the database`,
      nonRetryable: true,
    });
  return incident;
}

/** When a message first went to the provider (undefined if it never did): whether it went at night. */
export function sentAt(d: Pick<Delivery, 'history'>): Date | undefined {
  return d.history.find((h) => h.state === 'sending' || h.state === 'accepted')?.at;
}

/** Outage notices no one has read yet at the resolution, and those that reached the provider. */
const WAITING: DeliveryState[] = ['planned', 'undelivered', 'failed'];
const REACHED: DeliveryState[] = ['accepted', 'sent', 'delivered'];

export function createNoticeActivities(deps: NoticeDeps) {
  const { store, logger } = deps;

  const loadIncident = (incidentId: string) => loadIncidentOrFail(store, incidentId);

  return {
    async planNotices(input: { incidentId: string; batchSize?: number }): Promise<PlanResult> {
      const { phases, lap } = phaseTimer();
      const incident = await loadIncident(input.incidentId);
      const sites = await downstreamSites(store, incident.siteIds);
      lap('sites');
      const affected = sites.map((s) => s._id);
      const areas = [...new Set(sites.map((s) => s.area))].sort();
      const audienceSize = await countAudience(store, affected);
      lap('count');
      await store.incidents.updateOne(
        { _id: incident._id },
        { $set: { areas, affectedSiteIds: affected, audienceSize } },
      );
      lap('write');
      // An announcement is the operators' words to the paying subscribers there: the rules decide nothing about it.
      if (incident.kind === 'announcement') {
        const r = await planOperatorMessage(
          deps,
          { ...incident, affectedSiteIds: affected },
          { round: 0, text: incident.announcement?.text ?? incident.title, at: incident.openedAt.toISOString() },
        );
        return {
          sites: affected.length,
          subscribers: audienceSize,
          planned: r.recipients,
          firstDueAt: r.recipients ? incident.openedAt.toISOString() : null,
          schedule: noTimers(incident),
        };
      }
      const rules = await deps.rules(incident.rulesVersion);
      const facts = incidentFacts({ ...incident, areas, affectedSiteIds: affected, audienceSize });
      // Decided as of the opening, so that a retry, hours later, decides the same. An outage plans
      // one at a time with the other outages of its trees (store/coverage.ts).
      lap('rules');
      const plan = () => {
        lap('lock');
        return planAudience(deps, incident, facts, sites, incident.openedAt, true, input.batchSize);
      };
      const r = incident.kind === 'outage' ? await withCoveragePlanning(store, incident.siteIds, plan) : await plan();
      lap('plan');
      logger.debug({ incidentId: incident._id, ms: phases }, 'planning phases');
      let firstDue = r.firstDue;
      // On a repeat nothing new is planned; the due time still comes from the records.
      if (r.planned === 0) {
        const next = await store.deliveries
          .find({ incidentId: incident._id, kind: 'outage', state: 'planned' }, { projection: { notBefore: 1 } })
          .sort({ notBefore: 1 })
          .limit(1)
          .toArray();
        firstDue = next[0]?.notBefore ? next[0].notBefore.getTime() : null;
      }
      return {
        sites: affected.length,
        subscribers: r.subscribers,
        planned: r.recipients,
        firstDueAt: firstDue === null ? null : new Date(firstDue).toISOString(),
        schedule: await scheduleOf(rules, facts, incident, r.updatePeriods),
        ...(r.sent ? { sent: r.sent, leftDue: r.leftDue } : {}),
      };
    },

    async prepareResolution(input: { incidentId: string; at: string; batchSize?: number }): Promise<{
      cancelled: number;
      combined: number;
      restored: number;
      sent?: Partial<Record<MessageKind, number>>;
      leftDue?: number;
    }> {
      /**
       * What other outages over the same sites mean for this one's restorations (store/coverage.ts):
       * a restoration waits while another open outage covers the subscriber's site; where another
       * outage is involved at all, it is claimed per number and per episode, so that two outages
       * ending together send it once. Nothing to read when no other outage covers these sites.
       */
      const overlapAtResolution = (incident: Incident) =>
        withCoveragePlanning(store, incident.siteIds, () => overlapOf(incident));
      const overlapOf = async (incident: Incident) => {
        const now = new Date();
        const sites = incident.affectedSiteIds ?? incident.siteIds;
        await markEnding(store, incident._id, now);
        const stillOpen = await otherOutages(store, sites, incident._id);
        const involved = await otherOutages(store, sites, incident._id, [...OPEN_OUTAGE_PHASES, 'resolving']);
        const shared = involved.length
          ? await numbersToldBy(store, involved, [...LIVE_NOTICE, 'expired'])
          : new Map<string, OtherOutage[]>();
        const siteOf = involved.length ? await subscriberSites(store, sites) : new Map<string, string>();
        return {
          stillOpen,
          stillCovered: (d: Delivery) => coveringOutage(stillOpen, siteOf.get(d.subscriberId)) !== undefined,
          async restorationWaits(d: Delivery): Promise<boolean> {
            const number = `${d.channel}:${d.to}`;
            if (!d.coveredBy && !shared.has(number)) return false;
            if (coveringOutage(stillOpen, siteOf.get(d.subscriberId))) return true;
            return !(await claimRestoration(store, d.coveredBy ?? incident._id, number, incident._id, now));
          },
        };
      };
      const { phases, lap } = phaseTimer();
      const at = new Date(input.at);
      const incident = await loadIncident(input.incidentId);
      if (!incident.endedAt)
        await store.incidents.updateOne({ _id: incident._id, endedAt: { $exists: false } }, { $set: { endedAt: at } });
      const now = new Date();
      // At night, the end goes at once only to someone the start reached at night (rules/night.ts).
      const follow = (d: Delivery, kind: 'restored' | 'outage-restored'): PlanInput => {
        const hold = closingHold(d.hold as HoldWindow | null | undefined, sentAt(d));
        return {
          incidentId: d.incidentId,
          kind,
          subscriberId: d.subscriberId,
          channel: d.channel,
          to: d.to,
          language: d.language,
          templateSet: d.templateSet,
          area: d.area,
          hold,
          notBefore: holdUntil(hold, at, kind, at) ?? undefined,
        };
      };

      // An update or a call to staff still waiting is old news now.
      // An update still waiting (held by quiet hours) is replaced by the restoration: the record says so.
      await transition(
        store,
        { incidentId: incident._id, kind: 'update', state: 'planned' },
        'expired',
        now,
        'superseded: the incident was resolved first',
        { supersededBy: `${incident._id}|restored` },
      );
      await transition(
        store,
        { incidentId: incident._id, kind: 'escalation', state: 'planned' },
        'expired',
        now,
        'not sent: the incident was resolved first',
      );
      // One read of the incident's outage notices (100,000 at the largest), sorted out as it goes:
      // those that reached the provider get a restoration notice; those not yet read by anyone
      // (waiting for the grace delay, quiet hours or a retry, or reported not delivered) are kept
      // apart. One read, not one per state: a receipt that moves a notice from one state to another
      // between two reads would hide it from both, and its subscriber would never hear of the end.
      lap('expire');
      const waiting: Delivery[] = [];
      const overlap = await overlapAtResolution(incident);
      lap('overlap');
      let deferred = 0;
      // Notices on their way whose answer waits for its receipt read as accepted (store/send-requests.ts);
      // from the notices' rolls where the incident has them (store/notice-rolls.ts): most records are not read.
      const outageNotices = await noticesForResolution(store, incident._id, 'outage');
      lap('answers');
      async function* reached(): AsyncIterable<PlanInput> {
        for await (const d of outageNotices) {
          if (WAITING.includes(d.state)) {
            if (!d.invalidRecipient) waiting.push(d);
          } else if ((REACHED.includes(d.state) || d.coveredBy) && d.restoration !== false) {
            // Told by this outage, or by one it covered for: the restoration goes now unless another
            // outage still covers the site (that one sends it when it ends).
            if (await overlap.restorationWaits(d)) deferred++;
            else yield follow(d, 'restored');
          }
        }
      }
      // The restorations due at once go out while the rest is planned (the closing rounds send the others).
      const sending = deps.whilePlanning?.(undefined, input.batchSize);
      const restored = (await planAll(store, reached(), now, undefined, sending?.onPlanned)).planned;
      lap('restorations');
      if (deferred)
        logger.info(
          { incidentId: incident._id, deferred },
          'restorations left to the outages that still cover their sites',
        );
      waiting.sort((a, b) => (a._id < b._id ? -1 : a._id > b._id ? 1 : 0));
      // Not yet told by this outage, while another one still covers the site: that one tells them.
      for (const d of waiting.filter((w) => overlap.stillCovered(w))) {
        if (await handOverNotice(store, incident._id, overlap.stillOpen, d.channel, d.to, now)) {
          await transition(
            store,
            { _id: d._id, state: d.state },
            'expired',
            now,
            'handed over to the outage that still covers this site',
          );
          waiting.splice(waiting.indexOf(d), 1);
        }
      }
      // Resolved within the grace delay: a blip costs nothing.
      const inGrace = waiting.filter((d) => d.attempts === 0 && d.graceEndsAt && d.graceEndsAt > at);
      const graceIds = new Set(inGrace.map((d) => d._id));
      // Held by quiet hours, or being retried: one message instead of two, never "restored" before
      // "down". Planned before the notices it replaces are given up, so that a retry after a crash
      // in between still finds them waiting and plans (nothing new) again.
      const toCombine = waiting.filter((d) => !graceIds.has(d._id));
      const combined = (
        await planAll(
          store,
          toCombine.map((d) => follow(d, 'outage-restored')),
          now,
          undefined,
          sending?.onPlanned,
        )
      ).planned;
      // Only with ids to write: on FerretDB an `_id: {$in: []}` is a read of every record (a second at 4,000).
      const cancelled = inGrace.length
        ? await transition(
            store,
            { _id: { $in: inGrace.map((d) => d._id) }, state: 'planned' },
            'expired',
            now,
            'cancelled: resolved within the grace delay',
          )
        : 0;
      for (const state of WAITING) {
        const ids = toCombine.filter((d) => d.state === state).map((d) => d._id);
        if (ids.length)
          await transition(
            store,
            { _id: { $in: ids }, state },
            'expired',
            now,
            'replaced by one combined outage-and-restored message',
          );
      }
      const result = { cancelled, combined, restored, ...(await sending?.result()) };
      lap('rest');
      logger.info({ incidentId: incident._id, cancelled, combined, restored }, 'resolution planned');
      logger.debug({ incidentId: incident._id, ms: phases }, 'resolution phases');
      return result;
    },
  };
}
