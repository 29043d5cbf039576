/**
 * Who a maintenance will tell, and when: the notice, each reminder and the start notice, with
 * their send times (after quiet hours) and how many messages each channel carries. Computed from
 * the rules and the subscribers as they are now, the same decisions planMaintenance makes
 * (activities/maintenance.ts), for a maintenance being scheduled (nothing stored) or one scheduled.
 */
import type { Store } from '../store/db';
import type { Incident, Severity } from '../domain/types';
import { downstreamSites } from '../store/network';
import { subscriberFacts } from '../store/audience';
import { firstNoticeTime, holdUntil, type RuleSet } from '../rules';
import { incidentFacts, recipientsOn } from '../activities/notices';

export interface PreviewInput {
  id?: string;
  siteIds: string[];
  startsAt: Date;
  endsAt: Date;
  title?: string;
  severity?: Severity;
  /** When the notices are decided: the maintenance's creation (now, for one being scheduled). */
  decidedAt: Date;
}

export interface PreviewRound {
  kind: 'maintenance' | 'reminder' | 'started';
  /** For a reminder: how long before the start the rules ask for it. */
  beforeSeconds?: number;
  /** When these messages go out (ISO): quiet hours can move some later, so one round may have several. */
  sendAt: string;
  /** That time is past: these went out already (or go at once). */
  past: boolean;
  byChannel: Record<string, number>;
  total: number;
}

export interface MaintenancePreview {
  rulesVersion: string;
  sites: number;
  areas: string[];
  subscribers: number;
  /** Subscribers the rules tell about it (on one channel or more). */
  told: number;
  rounds: PreviewRound[];
  /** Reminders whose time is already past when decided: the rules skip them. */
  skippedReminders: number[];
}

export async function previewMaintenance(
  store: Store,
  rules: RuleSet,
  input: PreviewInput,
  now: Date,
): Promise<MaintenancePreview> {
  const sites = await downstreamSites(store, input.siteIds);
  const affected = sites.map((s) => s._id);
  const areas = [...new Set(sites.map((s) => s.area))].sort();
  const areaOf = new Map(sites.map((s) => [s._id, s.area]));
  const pseudo = {
    _id: input.id ?? 'preview',
    kind: 'maintenance',
    severity: input.severity ?? 'minor',
    source: 'preview',
    areas,
    siteIds: input.siteIds,
    affectedSiteIds: affected,
    openedAt: input.decidedAt,
    title: input.title ?? '',
    window: { startsAt: input.startsAt, endsAt: input.endsAt },
  } as Pick<
    Incident,
    '_id' | 'kind' | 'severity' | 'source' | 'areas' | 'affectedSiteIds' | 'siteIds' | 'openedAt' | 'title' | 'window'
  >;
  const facts = incidentFacts(pseudo);
  const decider = rules.decider(facts, { at: input.decidedAt });
  const rounds = new Map<string, PreviewRound>();
  const skipped = new Set<number>();
  const add = (kind: PreviewRound['kind'], at: Date, channel: string, n: number, beforeSeconds?: number) => {
    const sendAt = at.toISOString();
    const key = `${kind}|${beforeSeconds ?? ''}|${sendAt}`;
    const r = rounds.get(key) ?? {
      kind,
      ...(beforeSeconds !== undefined ? { beforeSeconds } : {}),
      sendAt,
      past: at < now,
      byChannel: {},
      total: 0,
    };
    r.byChannel[channel] = (r.byChannel[channel] ?? 0) + n;
    r.total += n;
    rounds.set(key, r);
  };
  let subscribers = 0;
  let told = 0;
  for await (const s of store.subscribers.find({ siteId: { $in: affected } }).sort({ _id: 1 })) {
    subscribers++;
    const sf = subscriberFacts(s, areaOf.get(s.siteId), input.decidedAt);
    const decision = decider.known(sf) ?? (await decider.decide(sf));
    if (!decision.notify) continue;
    let reached = false;
    for (const plan of decision.notices) {
      const to = recipientsOn(plan.channel, s).length;
      if (!to) continue;
      reached = true;
      const notice = firstNoticeTime(plan, facts, input.decidedAt);
      add('maintenance', notice.sendAt, plan.channel, to);
      for (const before of plan.maintenance.remindersBeforeSeconds) {
        const at = new Date(input.startsAt.getTime() - before * 1000);
        // As the workflow does: a reminder already due when the maintenance is decided is skipped.
        if (at <= input.decidedAt) {
          skipped.add(before);
          continue;
        }
        add('reminder', holdUntil(plan.hold, at) ?? at, plan.channel, to, before);
      }
      if (plan.maintenance.started)
        add('started', holdUntil(plan.hold, input.startsAt) ?? input.startsAt, plan.channel, to);
    }
    if (reached) told++;
  }
  const order = { maintenance: 0, reminder: 1, started: 2 } as const;
  return {
    rulesVersion: rules.version,
    sites: sites.length,
    areas,
    subscribers,
    told,
    rounds: [...rounds.values()].sort((a, b) => a.sendAt.localeCompare(b.sendAt) || order[a.kind] - order[b.kind]),
    skippedReminders: [...skipped].sort((a, b) => b - a),
  };
}
