/**
 * What happens to an open incident besides its first notices: a new estimate or a word from
 * operators (updates), calls to staff (escalation), more sites affected (scope), and a false
 * alarm (cancellation). Each plans delivery records; the workflow's delivery loop sends them.
 *
 * Every activity here is safe to repeat: records have ids fixed by their round, so planning the
 * same round again plans nothing new.
 */
import type { Delivery, Incident } from '../domain/types';
import { downstreamSites } from '../store/network';
import { planAll, supersedeOlderUpdates, transition, type PlanInput } from '../store/deliveries';
import { coveredAfterEnd, handOverNotice, markEnding, withCoveragePlanning } from '../store/coverage';
import { closingHold, holdUntil, type HoldWindow } from '../rules';
import type { IncidentSchedule } from '../workflows/incident-api';
import {
  escalationProblems,
  onCallContacts,
  onCallTargets,
  recordEscalationProblem,
  staffTemplateSet,
} from './escalation-targets';
import {
  countAudience,
  incidentFacts,
  loadIncidentOrFail,
  planAudience,
  scheduleOf,
  sentAt,
  type NoticeDeps,
} from './notices';
import { planOperatorMessage, type OperatorMessageInput } from './operator-messages';
import { settleAnswered } from '../store/send-requests';

/** Notices whose reader has (or soon will have) the first message: an update or withdrawal makes sense to them. */
const REACHED = ['accepted', 'sent', 'delivered'] as const;
/** Channels that get updates: a phone call every two hours would be a nuisance, not a service. */
const UPDATE_CHANNELS = ['sms', 'email', 'webhook', 'status'] as const;

export function createIncidentActionActivities(deps: NoticeDeps & { channels?: Partial<Record<string, unknown>> }) {
  const { store, logger } = deps;

  /** Plans one follow-up message for every record the filter finds, after the recipient's quiet hours. */
  async function follow(
    incident: Incident,
    filter: Record<string, unknown>,
    make: (d: Delivery) => Partial<PlanInput> & Pick<PlanInput, 'kind'>,
    at: Date,
    /** Which of the records found get the message (all, by default). */
    wanted: (d: Delivery) => boolean = () => true,
  ): Promise<number> {
    // Notices whose answer still waits for its receipt are written first, so that the filter finds them.
    const now = new Date();
    await settleAnswered(store, { incidentId: incident._id, kind: 'outage' }, now, now);
    async function* inputs(): AsyncIterable<PlanInput> {
      const cursor = store.deliveries.find({ incidentId: incident._id, ...filter }).sort({ _id: 1 });
      for await (const d of cursor) {
        if (!wanted(d)) continue;
        const made = make(d);
        // A withdrawal may break quiet hours only for someone whose outage notice did (rules/night.ts).
        const hold =
          made.kind === 'withdrawn'
            ? closingHold(d.hold as HoldWindow | null | undefined, sentAt(d))
            : ((d.hold ?? null) as HoldWindow | null);
        yield {
          incidentId: d.incidentId,
          subscriberId: d.subscriberId,
          channel: d.channel,
          to: d.to,
          language: d.language,
          templateSet: d.templateSet,
          area: d.area,
          hold,
          notBefore: holdUntil(hold, at, made.kind, at) ?? undefined,
          ...made,
        };
      }
    }
    return (await planAll(store, inputs(), new Date())).planned;
  }

  /** The scope extension itself (`extendIncidentScope`), read and written under the planning lock of outages. */
  async function extend(input: { incidentId: string; siteIds: string[]; at: string }) {
    const incident = await loadIncidentOrFail(store, input.incidentId);
    // Sites of incidents merged into this one: their subscribers were told by those incidents.
    const merged = await store.incidents
      .find({ mergedInto: incident._id }, { projection: { affectedSiteIds: 1, siteIds: 1 } })
      .toArray();
    // Those incidents' sites and everything below them: one merged before its workflow planned
    // (no affectedSiteIds yet) tells the subscribers below its sites itself.
    const mergedSites = merged.length
      ? (
          await downstreamSites(
            store,
            merged.flatMap((m) => m.siteIds),
          )
        ).map((s) => s._id)
      : [];
    const covered = new Set([
      ...(incident.affectedSiteIds ?? incident.siteIds),
      ...merged.flatMap((m) => m.affectedSiteIds ?? m.siteIds),
      ...mergedSites,
    ]);
    const known = new Set(incident.affectedSiteIds ?? incident.siteIds);
    const widening = (await downstreamSites(store, input.siteIds)).filter((s) => !known.has(s._id));
    const added = widening.filter((s) => !covered.has(s._id));
    const siteIds = [...new Set([...incident.siteIds, ...input.siteIds])];
    const affectedSiteIds = [...known, ...widening.map((s) => s._id)];
    const areas = [...new Set([...incident.areas, ...widening.map((s) => s.area)])].sort();
    const widened: Incident = {
      ...incident,
      siteIds,
      affectedSiteIds,
      areas,
      audienceSize: await countAudience(store, affectedSiteIds),
    };
    const r = added.length
      ? await planAudience(deps, widened, incidentFacts(widened), added, new Date(input.at), false)
      : { recipients: 0 };
    await store.incidents.updateOne(
      { _id: incident._id },
      { $set: { siteIds, affectedSiteIds, areas, audienceSize: widened.audienceSize } },
    );
    logger.info({ incidentId: incident._id, newSites: added.length, planned: r.recipients }, 'incident scope extended');
    return { newSites: added.length, planned: r.recipients };
  }

  return {
    /** The rules' timers, for a run that continued from one which did not keep them. */
    async incidentSchedule(input: { incidentId: string }): Promise<IncidentSchedule> {
      const incident = await loadIncidentOrFail(store, input.incidentId);
      const rules = await deps.rules(incident.rulesVersion);
      const periods = await store.deliveries.distinct('updates.everySeconds', {
        incidentId: incident._id,
        kind: 'outage',
      });
      return scheduleOf(
        rules,
        incidentFacts(incident),
        incident,
        (periods as (number | null)[]).filter((p): p is number => typeof p === 'number').sort((a, b) => a - b),
      );
    },

    /** Keeps an operator's update (text, new estimate) on the incident: the page, the feed and later texts read it. */
    async recordIncidentUpdate(input: {
      incidentId: string;
      at: string;
      text?: string;
      estimatedEnd?: string;
    }): Promise<void> {
      const at = new Date(input.at);
      const entry = {
        at,
        ...(input.text ? { text: input.text } : {}),
        ...(input.estimatedEnd ? { estimatedEnd: new Date(input.estimatedEnd) } : {}),
      };
      // The `updates.at` guard makes a retried activity add the entry once.
      await store.incidents.updateOne(
        { _id: input.incidentId, 'updates.at': { $ne: at } },
        {
          $push: { updates: entry },
          ...(input.estimatedEnd ? { $set: { estimatedEnd: new Date(input.estimatedEnd) } } : {}),
        },
      );
    },

    /**
     * Plans update round `round` for those whose first notice went out: the periodic update of
     * period `everySeconds`, or, with `onEtaChange`, the update on a new estimate. A round asked
     * for neither reason (a text alone) reaches only the public feed.
     */
    async planIncidentUpdate(input: {
      incidentId: string;
      round: number;
      at: string;
      everySeconds?: number;
      onEtaChange?: boolean;
    }): Promise<{ planned: number }> {
      const incident = await loadIncidentOrFail(store, input.incidentId);
      const who = input.everySeconds
        ? { 'updates.everySeconds': input.everySeconds }
        : input.onEtaChange
          ? { 'updates.onEtaChange': true }
          : { channel: 'status' };
      const planned = await follow(
        incident,
        { kind: 'outage', state: { $in: REACHED }, channel: { $in: UPDATE_CHANNELS }, ...who },
        () => ({ kind: 'update', round: input.round }),
        new Date(input.at),
      );
      // After the new round is planned (a crash in between leaves both, never neither): what is news is this round.
      const superseded = await supersedeOlderUpdates(store, incident._id, input.round, new Date());
      logger.info(
        {
          incidentId: incident._id,
          round: input.round,
          everySeconds: input.everySeconds,
          onEtaChange: input.onEtaChange,
          planned,
          superseded,
        },
        'update planned',
      );
      return { planned };
    },

    /** An update's text sent as SMS to the paying subscribers of the incident, or of the part the operator chose. */
    async planOperatorMessage(input: OperatorMessageInput): Promise<{ planned: number }> {
      const incident = await loadIncidentOrFail(store, input.incidentId);
      return { planned: (await planOperatorMessage(deps, incident, input)).planned };
    },

    /**
     * Plans escalation round `round`: the rules' escalation `steps` (their timers fired), or, by
     * hand, every contact the rules escalate this incident to; and, either way, the stored staff
     * contacts on call now for the incident's areas (store/contacts.ts). What cannot go (nobody
     * to reach, a call with no voice channel) is recorded on the incident, never dropped.
     */
    async planEscalation(input: {
      incidentId: string;
      round: number;
      steps?: number[];
      reason?: string;
    }): Promise<{ planned: number }> {
      const incident = await loadIncidentOrFail(store, input.incidentId);
      const rules = await deps.rules(incident.rulesVersion);
      const decision = await rules.decider(incidentFacts(incident), { at: incident.openedAt }).incident();
      const steps = input.steps
        ? input.steps.map((i) => decision.escalations[i]).filter((e) => e !== undefined)
        : decision.escalations;
      const language = rules.settings.language as PlanInput['language'];
      const templateKind = incident.kind === 'maintenance' ? 'maintenance' : 'outage';
      const targets = [
        ...steps.map((e) => ({
          contact: e.contact,
          channel: e.channel,
          address: e.address,
          language,
          templateSet: e.templateSet,
        })),
        ...onCallTargets(
          await onCallContacts(store, incident.areas),
          staffTemplateSet(rules, steps[0]?.templateSet, templateKind),
        ),
      ];
      const seen = new Set<string>();
      const inputs: PlanInput[] = [];
      for (const e of targets) {
        const key = `${e.channel}|${e.address}`;
        if (seen.has(key)) continue;
        seen.add(key);
        inputs.push({
          incidentId: incident._id,
          kind: 'escalation',
          templateKind,
          round: input.round,
          subscriberId: `staff-${e.contact}`,
          channel: e.channel,
          to: e.address,
          language: e.language,
          templateSet: e.templateSet,
        });
      }
      const problems = escalationProblems(
        inputs,
        new Set(Object.keys(deps.channels ?? {})),
        deps.channels !== undefined,
      );
      for (const problem of problems) await recordEscalationProblem(store, incident._id, input.round, problem);
      const planned = (
        await planAll(store, inputs, new Date(), input.reason ? `escalated by hand: ${input.reason}` : undefined)
      ).planned;
      logger.info(
        {
          incidentId: incident._id,
          round: input.round,
          contacts: inputs.length,
          planned,
          byHand: !input.steps,
          problems: problems.length,
        },
        'escalation planned',
      );
      return { planned };
    },

    /** Someone took the escalation: what is planned for staff and not yet sent is not sent. */
    async stopEscalation(input: { incidentId: string; at: string; by: string }): Promise<{ expired: number }> {
      const expired = await transition(
        store,
        { incidentId: input.incidentId, kind: 'escalation', state: 'planned' },
        'expired',
        new Date(),
        `not sent: the escalation was acknowledged by ${input.by}`,
      );
      await store.incidents.updateOne(
        { _id: input.incidentId, 'timeline.event': { $ne: 'acknowledged' } },
        {
          $push: {
            timeline: {
              at: new Date(input.at),
              phase: (await loadIncidentOrFail(store, input.incidentId)).phase,
              note: `escalation acknowledged by ${input.by}`,
              event: 'acknowledged',
            },
          },
        },
      );
      logger.info({ incidentId: input.incidentId, expired }, 'escalation acknowledged');
      return { expired };
    },

    /**
     * More sites are affected: the new sites and those downstream of them join the incident, and
     * their subscribers who were not told yet are told (their grace delay counts from now).
     * Planned before the incident's site list changes, so that a retry after a crash plans the same.
     */
    async extendIncidentScope(input: {
      incidentId: string;
      siteIds: string[];
      at: string;
    }): Promise<{ newSites: number; planned: number }> {
      const named = await loadIncidentOrFail(store, input.incidentId);
      // One at a time with the other outages' plannings over these trees (store/coverage.ts), the
      // incident's new sites written before the lock is let go: the next planning finds both.
      return named.kind === 'outage'
        ? withCoveragePlanning(store, [...named.siteIds, ...input.siteIds], () => extend(input))
        : extend(input);
    },

    /**
     * A false alarm: nothing waiting is sent any more, and whoever was told of the outage is told
     * it was a false alarm (the `withdrawn` text; `restored` where the rules' texts have none),
     * unless the rules said no restoration notice for them.
     */
    async prepareCancellation(input: {
      incidentId: string;
      at: string;
      reason?: string;
    }): Promise<{ expired: number; withdrawn: number }> {
      const at = new Date(input.at);
      const incident = await loadIncidentOrFail(store, input.incidentId);
      // Ending: it covers nobody's site any more; another outage still open over some of its sites
      // goes on for their subscribers (store/coverage.ts). Decided one at a time with their plannings.
      const ending = async () => {
        await markEnding(store, incident._id, new Date());
        return coveredAfterEnd(store, incident);
      };
      const overlap =
        incident.kind === 'outage'
          ? await withCoveragePlanning(store, incident.siteIds, ending)
          : { stillOpen: [], stillCovered: () => false };
      const now = new Date();
      const rules = await deps.rules(incident.rulesVersion);
      await store.incidents.updateOne(
        { _id: incident._id, cancelledAt: { $exists: false } },
        { $set: { cancelledAt: at, endedAt: at } },
      );
      const why = `not sent: cancelled as a false alarm${input.reason ? ` (${input.reason})` : ''}`;
      // Not told yet, on a site another outage still covers: that outage tells them, as at a resolution.
      if (overlap.stillOpen.length) {
        const waiting = await store.deliveries
          .find({ incidentId: incident._id, kind: 'outage', state: { $in: ['planned', 'undelivered', 'failed'] } })
          .toArray();
        for (const d of waiting.filter((w) => overlap.stillCovered(w)))
          await handOverNotice(store, incident._id, overlap.stillOpen, d.channel, d.to, now);
      }
      let expired = 0;
      for (const state of ['planned', 'undelivered', 'failed'] as const) {
        expired += await transition(
          store,
          { incidentId: incident._id, kind: { $in: ['outage', 'update', 'escalation'] }, state },
          'expired',
          now,
          why,
        );
      }
      // Told of the outage, on a site another outage still covers: no "false alarm" (for them it is
      // not one); the other outage tells them when service is back (its restoration claims this episode).
      const withdrawn = await follow(
        incident,
        { kind: 'outage', state: { $in: REACHED }, restoration: { $ne: false } },
        (d) => ({
          kind: 'withdrawn',
          ...(rules.hasTemplate(d.templateSet, 'withdrawn') ? {} : { templateKind: 'restored' as const }),
        }),
        at,
        (d) => !overlap.stillCovered(d),
      );
      logger.info({ incidentId: incident._id, expired, withdrawn }, 'cancellation planned');
      return { expired, withdrawn };
    },
  };
}
