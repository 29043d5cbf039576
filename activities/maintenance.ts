/**
 * The side effects of planned maintenance: who is told (the notice, planned once from the rules'
 * decisions), and the follow-ups planned at the workflow's request (reminders, the start notice,
 * a reschedule, a cancellation, the completion). Each plans delivery records that the delivery
 * activities (sendDue, sweepAll) then send, exactly as for an outage.
 *
 * Follow-ups go to those the notice reached, as the rules' plan on their notice record says
 * (reminders, start, completion), after their quiet hours. Every activity here is safe to
 * repeat: records have ids fixed by their round, timeline steps are added once per event.
 */
import type { DeliveryChannel, Incident, Language, MaintenancePhase, MessageKind } from '../domain/types';
import { downstreamSites } from '../store/network';
import { subscribersOfSites } from '../store/site-subscribers';
import { transition } from '../store/deliveries';
import { planMaintenanceRecords, recordMaintenanceEvent, type MaintenancePlanInput } from '../store/maintenances';
import { firstNoticeTime, holdUntil, type HoldWindow } from '../rules';
import type { MaintenanceSchedule, MaintenanceWindow, ReminderTime } from '../workflows/maintenance-api';
import { settleAnswered } from '../store/send-requests';
import {
  countAudience,
  incidentFacts,
  loadIncidentOrFail,
  recipientsOn,
  subscriberFacts,
  type NoticeDeps,
} from './notices';

/** Notices whose reader has (or soon will have) the message: a follow-up makes sense to them. */
const REACHED = ['accepted', 'sent', 'delivered'] as const;
/** What may still be waiting to go out while the maintenance is open. */
const OPEN_KINDS: MessageKind[] = ['maintenance', 'reminder', 'started', 'rescheduled', 'escalation'];
const FEED_LANGUAGES: Language[] = ['it', 'en'];

const toWindow = (w: MaintenanceWindow) => ({ startsAt: new Date(w.startsAt), endsAt: new Date(w.endsAt) });

/**
 * For each reminder (seconds before `start`), the earliest moment it goes to anyone: its time, or
 * before the quiet-hours window it would fall in (rules/night.ts), never before `now`.
 */
export function reminderTimes(offsets: number[], start: Date, holds: (HoldWindow | null)[], now: Date): ReminderTime[] {
  return [...new Set(offsets)]
    .sort((a, b) => b - a)
    .map((beforeSeconds) => {
      const due = new Date(start.getTime() - beforeSeconds * 1000);
      const times = (holds.length ? holds : [null]).map((h) => (holdUntil(h, due, 'reminder', now) ?? due).getTime());
      return { beforeSeconds, at: new Date(Math.min(...times)).toISOString() };
    });
}

export interface MaintenancePlanResult {
  recipients: number;
  planned: number;
  /** When the first notice to a subscriber falls due (ISO), or null when nobody is to be told. */
  firstDueAt: string | null;
  schedule: MaintenanceSchedule;
}

export function createMaintenanceActivities(deps: NoticeDeps) {
  const { store, logger } = deps;

  /** Plans one follow-up for every record the filter finds (reached notices), after the recipient's quiet hours. */
  async function follow(
    m: Incident,
    filter: Record<string, unknown>,
    kind: MessageKind,
    round: number,
    at: Date,
    note?: string,
    planned: Date = at,
  ): Promise<number> {
    // Notices whose answer still waits for its receipt are written first, so that the filter finds them.
    const now = new Date();
    await settleAnswered(store, { incidentId: m._id, kind: 'maintenance' }, now, now);
    async function* inputs(): AsyncIterable<MaintenancePlanInput> {
      const cursor = store.deliveries
        .find({ incidentId: m._id, kind: 'maintenance', state: { $in: [...REACHED] }, ...filter })
        .sort({ _id: 1 });
      for await (const d of cursor) {
        const moved = holdUntil((d.hold ?? null) as HoldWindow | null, planned, kind, at);
        const notBefore = moved ?? (planned > at ? planned : undefined);
        yield {
          incidentId: d.incidentId,
          kind,
          round,
          subscriberId: d.subscriberId,
          channel: d.channel,
          to: d.to,
          language: d.language,
          templateSet: d.templateSet,
          area: d.area,
          hold: d.hold,
          notBefore,
        };
      }
    }
    return (await planMaintenanceRecords(store, inputs(), new Date(), note)).planned;
  }

  /** Nothing of these kinds that still waits is sent any more. */
  async function expireWaiting(
    m: Incident,
    kinds: MessageKind[],
    why: string,
    except?: { round: number },
  ): Promise<number> {
    let n = 0;
    for (const state of ['planned', 'undelivered', 'failed'] as const) {
      n += await transition(
        store,
        { incidentId: m._id, kind: { $in: kinds }, state, ...(except ? { round: { $ne: except.round } } : {}) },
        'expired',
        new Date(),
        why,
      );
    }
    return n;
  }

  return {
    /**
     * The notice: for every subscriber of the maintenance's sites (and every site they feed),
     * the rules decide, as of its creation, who is told on which channel, when (`notice` before
     * the start, after quiet hours) and what follows (reminders, start, completion). The public
     * status feed is told at once: the status page lists planned maintenance from then on.
     */
    async planMaintenance(input: { maintenanceId: string }): Promise<MaintenancePlanResult> {
      const m = await loadIncidentOrFail(store, input.maintenanceId);
      const rules = await deps.rules(m.rulesVersion);
      const sites = await downstreamSites(store, m.siteIds);
      const affected = sites.map((s) => s._id);
      const areas = [...new Set(sites.map((s) => s.area))].sort();
      const audienceSize = await countAudience(store, affected);
      await store.incidents.updateOne({ _id: m._id }, { $set: { areas, affectedSiteIds: affected, audienceSize } });
      const facts = incidentFacts({ ...m, areas, affectedSiteIds: affected, audienceSize });
      const decidedAt = m.openedAt;
      const decider = rules.decider(facts, { at: decidedAt });
      const areaOf = new Map(sites.map((s) => [s._id, s.area]));
      const reminders = new Set<number>();
      const holds = new Map<string, HoldWindow | null>();
      let started = false;
      let firstDue: number | null = null;

      async function* inputs(): AsyncIterable<MaintenancePlanInput> {
        for await (const s of subscribersOfSites(store, affected)) {
          const sf = subscriberFacts(s, areaOf.get(s.siteId), decidedAt);
          const decision = decider.known(sf) ?? (await decider.decide(sf));
          if (!decision.notify) continue;
          for (const plan of decision.notices) {
            const when = firstNoticeTime(plan, facts, decidedAt);
            const plannedFor = {
              noticeBeforeSeconds: plan.maintenance.noticeBeforeSeconds,
              remindersBeforeSeconds: [...plan.maintenance.remindersBeforeSeconds],
              started: plan.maintenance.started,
              completed: plan.maintenance.completed,
            };
            plannedFor.remindersBeforeSeconds.forEach((r) => reminders.add(r));
            holds.set(JSON.stringify(plan.hold), plan.hold);
            started ||= plan.maintenance.started;
            for (const to of recipientsOn(plan.channel, s)) {
              firstDue = firstDue === null ? when.sendAt.getTime() : Math.min(firstDue, when.sendAt.getTime());
              yield {
                incidentId: m._id,
                kind: 'maintenance',
                subscriberId: s._id,
                channel: plan.channel as DeliveryChannel,
                to,
                language: decision.language as Language,
                templateSet: plan.templateSet,
                area: sf.area,
                notBefore: when.sendAt,
                hold: plan.hold,
                restoration: false,
                maintenance: plannedFor,
              };
            }
          }
        }
        const incidentDecision = await decider.incident();
        if (incidentDecision.feed) {
          for (const language of FEED_LANGUAGES) {
            yield {
              incidentId: m._id,
              kind: 'maintenance',
              subscriberId: `public-${language}`,
              channel: 'status',
              to: 'public',
              language,
              templateSet: incidentDecision.feed.templateSet,
              notBefore: decidedAt,
            };
          }
        }
      }
      const r = await planMaintenanceRecords(store, inputs(), new Date());
      const decision = await decider.incident();
      const escalations: MaintenanceSchedule['escalations'] = [];
      decision.escalations.forEach((e, step) => {
        escalations.push({ afterSeconds: e.afterSeconds, step });
        for (let i = 1; e.repeat && i <= e.repeat.times; i++)
          escalations.push({ afterSeconds: e.afterSeconds + i * e.repeat.everySeconds, step });
      });
      escalations.sort((a, b) => a.afterSeconds - b.afterSeconds || a.step - b.step);
      logger.info(
        {
          maintenanceId: m._id,
          rules: rules.version,
          sites: sites.length,
          recipients: r.recipients,
          planned: r.planned,
        },
        'maintenance notices planned',
      );
      const firstDueAt = firstDue as number | null;
      return {
        recipients: r.recipients,
        planned: r.planned,
        firstDueAt: firstDueAt === null ? null : new Date(firstDueAt).toISOString(),
        schedule: {
          remindersBeforeSeconds: [...reminders].sort((a, b) => b - a),
          ...(m.window
            ? { remindersAt: reminderTimes([...reminders], m.window.startsAt, [...holds.values()], new Date()) }
            : {}),
          started,
          escalations,
        },
      };
    },

    /** A step on the maintenance's timeline (once per `event`), with the phase it moves to. */
    async recordMaintenancePhase(input: {
      maintenanceId: string;
      phase: MaintenancePhase;
      event: string;
      at: string;
      note?: string;
    }): Promise<void> {
      await recordMaintenanceEvent(store, input.maintenanceId, {
        at: new Date(input.at),
        phase: input.phase,
        event: input.event,
        note: input.note,
      });
    },

    /**
     * A reminder round (those whose rules ask for a reminder at one of `beforeSeconds`) or the
     * start notice (those whose rules ask for it, and the status feed), to those the notice reached.
     */
    async planMaintenanceRound(input: {
      maintenanceId: string;
      kind: 'reminder' | 'started';
      round: number;
      at: string;
      beforeSeconds?: number[];
    }): Promise<{ planned: number }> {
      const m = await loadIncidentOrFail(store, input.maintenanceId);
      const filter =
        input.kind === 'reminder'
          ? { channel: { $ne: 'status' }, 'maintenance.remindersBeforeSeconds': { $in: input.beforeSeconds ?? [] } }
          : { $or: [{ channel: 'status' }, { 'maintenance.started': true }] };
      const at = new Date(input.at);
      // A round planned ahead (quiet hours move someone's reminder before the window): each record
      // waits for its own time, the earliest reminder of the round, moved out of its quiet hours.
      const earliest =
        input.kind === 'reminder' && m.window && input.beforeSeconds?.length
          ? new Date(m.window.startsAt.getTime() - Math.max(...input.beforeSeconds) * 1000)
          : at;
      const planned = await follow(m, filter, input.kind, input.round, at, undefined, earliest > at ? earliest : at);
      logger.info(
        { maintenanceId: m._id, kind: input.kind, round: input.round, beforeSeconds: input.beforeSeconds, planned },
        'maintenance round planned',
      );
      return { planned };
    },

    /**
     * A new window. Those the notice reached are told (`rescheduled`); notices not yet sent are
     * planned again for the new window (`notice` before the new start); reminders and start
     * notices still waiting are dropped (the workflow plans the new window's). The window and
     * the previous one (the texts' `previousStart`/`previousEnd`) go on the document.
     */
    async rescheduleMaintenance(input: {
      maintenanceId: string;
      number: number;
      round: number;
      at: string;
      phase: MaintenancePhase;
      window: MaintenanceWindow;
      previous: MaintenanceWindow;
      reason?: string;
    }): Promise<{ told: number; moved: number; remindersAt: ReminderTime[] }> {
      const at = new Date(input.at);
      const m = await loadIncidentOrFail(store, input.maintenanceId);
      const window = toWindow(input.window);
      const previous = toWindow(input.previous);
      const note = `rescheduled to ${input.window.startsAt} – ${input.window.endsAt}${input.reason ? `: ${input.reason}` : ''}`;
      await recordMaintenanceEvent(
        store,
        m._id,
        { at, phase: input.phase, event: `rescheduled#${input.number}`, note, window },
        { window, previousWindow: previous, reschedules: input.number, estimatedEnd: window.endsAt },
      );

      // Notices on their way (answered, their receipt not written yet) are told: written as such first.
      await settleAnswered(store, { incidentId: m._id, kind: 'maintenance' }, new Date(), new Date());
      // Not told yet: the notice again, at its time before the new start (first, so that a retry still finds them).
      const waiting = store.deliveries
        .find({ incidentId: m._id, kind: 'maintenance', state: 'planned', round: { $ne: input.round } })
        .sort({ _id: 1 });
      const facts = incidentFacts({ ...m, window });
      async function* again(): AsyncIterable<MaintenancePlanInput> {
        for await (const d of waiting) {
          const plan = {
            graceSeconds: 0,
            hold: (d.hold ?? null) as HoldWindow | null,
            maintenance: {
              noticeBeforeSeconds: d.maintenance?.noticeBeforeSeconds ?? 0,
              reminderBeforeSeconds: null,
              remindersBeforeSeconds: [],
              started: false,
              completed: false,
            },
          };
          const when = firstNoticeTime(plan, facts, at);
          yield {
            incidentId: d.incidentId,
            kind: 'maintenance',
            round: input.round,
            subscriberId: d.subscriberId,
            channel: d.channel,
            to: d.to,
            language: d.language,
            templateSet: d.templateSet,
            area: d.area,
            hold: d.hold,
            notBefore: d.channel === 'status' ? at : when.sendAt,
            restoration: false,
            maintenance: d.maintenance,
          };
        }
      }
      const moved = (await planMaintenanceRecords(store, again(), new Date(), `planned again: ${note}`)).planned;
      await transition(
        store,
        { incidentId: m._id, kind: 'maintenance', state: 'planned', round: { $ne: input.round } },
        'expired',
        new Date(),
        `replaced: ${note}`,
      );
      // Told already: they hear of the move. An earlier move's message still waiting is old news.
      const told = await follow(m, {}, 'rescheduled', input.round, at);
      await expireWaiting(m, ['reminder', 'started', 'rescheduled'], `not sent: ${note}`, { round: input.round });
      // The new window's reminder times, as quiet hours move them (the holds the notices were planned with).
      const holds = (
        await store.deliveries
          .aggregate<{ _id: HoldWindow | null }>([
            { $match: { incidentId: m._id, kind: 'maintenance', channel: { $ne: 'status' } } },
            { $group: { _id: '$hold' } },
          ])
          .toArray()
      ).map((h) => h._id ?? null);
      const offsets = (await store.deliveries.distinct('maintenance.remindersBeforeSeconds', {
        incidentId: m._id,
        kind: 'maintenance',
      })) as number[];
      const remindersAt = reminderTimes(offsets, window.startsAt, holds, new Date());
      logger.info({ maintenanceId: m._id, number: input.number, told, moved }, 'maintenance rescheduled');
      return { told, moved, remindersAt };
    },

    /** Called off before it began: nothing waiting is sent, and whoever the notice reached is told. */
    async cancelMaintenance(input: {
      maintenanceId: string;
      round: number;
      at: string;
      reason?: string;
    }): Promise<{ expired: number; told: number }> {
      const at = new Date(input.at);
      const m = await loadIncidentOrFail(store, input.maintenanceId);
      await store.incidents.updateOne(
        { _id: m._id, cancelledAt: { $exists: false } },
        { $set: { cancelledAt: at, endedAt: at } },
      );
      const expired = await expireWaiting(
        m,
        OPEN_KINDS,
        `not sent: the maintenance was cancelled${input.reason ? ` (${input.reason})` : ''}`,
      );
      const told = await follow(m, {}, 'cancelled', input.round, at);
      logger.info({ maintenanceId: m._id, expired, told }, 'maintenance cancelled');
      return { expired, told };
    },

    /** The work is done: nothing waiting is sent any more, and the completion notice goes to those whose rules ask for it. */
    async completeMaintenance(input: {
      maintenanceId: string;
      round: number;
      at: string;
    }): Promise<{ expired: number; told: number }> {
      const at = new Date(input.at);
      const m = await loadIncidentOrFail(store, input.maintenanceId);
      await store.incidents.updateOne(
        { _id: m._id, completedAt: { $exists: false } },
        { $set: { completedAt: at, endedAt: at } },
      );
      const expired = await expireWaiting(m, OPEN_KINDS, 'not sent: the maintenance was completed');
      const told = await follow(
        m,
        { $or: [{ channel: 'status' }, { 'maintenance.completed': true }] },
        'completed',
        input.round,
        at,
      );
      logger.info({ maintenanceId: m._id, expired, told }, 'maintenance completed');
      return { expired, told };
    },
  };
}

export type MaintenanceActivities = ReturnType<typeof createMaintenanceActivities>;
