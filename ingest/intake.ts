/**
 * One authenticated delivery, from decoded payload to per-alert results: normalize, find each
 * alert's sites, store each alert with the raw request (the deduplication point), then act on it.
 * Alerts of a batch are handled each on its own; the request fails (5xx, for the tools that retry)
 * only when storing or acting failed, and then what was stored is handled again on the retry.
 */
import type { Store } from '../store/db';
import type { AlertEvent, RawDelivery } from './alert-event';
import { IngestError } from './errors';
import type { Integration } from './integrations';
import { NORMALIZERS } from './normalizers';
import { wouldOpen, type AlertProcessor } from './process';
import { siteIdsFor, type SiteResolution } from './sites';
import {
  createAlertEventInserter,
  createAlertResultRecorder,
  isFinal,
  undecidedAlertEvents,
  type AlertAction,
  type AlertEventDoc,
  type AlertResult,
  type InsertedAlertEvent,
} from './store';
import type { AlertSeverity } from './alert-event';

/** The promise's value if it settles within `ms`, else undefined (a rejection within it is thrown). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

export interface AlertOutcome {
  dedupKey: string;
  eventId: string;
  action: AlertAction;
  incidentId?: string;
  episode?: number;
  /** `silenced`: the planned maintenance its site is under. */
  maintenanceId?: string;
  /** This delivery was received before: its first result is reported. */
  duplicate?: boolean;
  reason?: string;
}

export interface IntakeResult {
  /** 202 when something was new, 200 when every alert was a repeat. */
  status: 200 | 202;
  body: { received: number; results: AlertOutcome[] };
}

export interface Delivery {
  integration: Integration;
  payload: unknown;
  raw: RawDelivery;
  headers: Record<string, string | undefined>;
  receivedAt: Date;
}

/**
 * Each event's sites, with the ids the network does not know turned into a problem. Checked
 * against the network as read at most a second ago (no read per request); only an id missing from
 * it (a site added this very second, or a typo) is looked up.
 */
async function resolveSites(
  store: Store,
  processor: AlertProcessor,
  integration: Integration,
  events: AlertEvent[],
): Promise<SiteResolution[]> {
  const mapped = events.map((e) => siteIdsFor(e.target, integration.site));
  const wanted = [...new Set(mapped.flatMap((m) => ('siteIds' in m ? m.siteIds : [])))];
  const network = wanted.length === 0 ? undefined : await processor.recentNetwork();
  const unsure = wanted.filter((id) => !network?.knows(id));
  const found = new Set(
    unsure.length === 0
      ? []
      : (await store.sites.find({ _id: { $in: unsure } }, { projection: { _id: 1 } }).toArray()).map((s) => s._id),
  );
  return mapped.map((m) => {
    if (!('siteIds' in m)) return m;
    const unknown = m.siteIds.filter((id) => !network?.knows(id) && !found.has(id));
    return unknown.length === 0
      ? m
      : {
          problem: `no site with id ${unknown.map((id) => JSON.stringify(id)).join(', ')}: check the integration's site mapping, or GET /v1/sites`,
        };
  });
}

/** How many final results this process remembers, for answering repeats without a read. */
const REMEMBERED_RESULTS = 20_000;

/**
 * Final results by event id, the oldest forgotten first. A final result never changes once
 * stored (a repeat reports it), so remembering it is the same as reading it again.
 */
function createResultMemory(max = REMEMBERED_RESULTS) {
  const results = new Map<string, AlertResult>();
  return {
    get: (eventId: string) => results.get(eventId),
    remember(eventId: string, result: AlertResult): void {
      if (!isFinal(result)) return;
      results.delete(eventId);
      results.set(eventId, result);
      if (results.size > max) results.delete(results.keys().next().value!);
    },
  };
}

/**
 * Tools whose alerts' identities (event id, dedup key) follow from the body alone, given the
 * integration: the same bytes again are the same alerts. Not the others: some read headers
 * (CloudEvents in binary mode), the clock or the integration's time zone.
 */
const IDS_FROM_BODY: ReadonlySet<string> = new Set(['alertmanager', 'grafana']);

/** What this process remembers of the bodies it normalized, for answering resends without parsing them. */
const REMEMBERED_BODIES = 5_000;
const REMEMBERED_BODY_CHARS = 8_000_000;
const LARGEST_REMEMBERED_BODY = 64 * 1024;

type AlertIdentity = Pick<AlertEvent, 'eventId' | 'dedupKey'>;

/**
 * The alerts of each body received, per integration, the oldest forgotten first (by count and by
 * size). Alertmanager resends a group, byte for byte, until it hears back and then every
 * repeat_interval: in a storm most requests are such resends, and this spares parsing and
 * normalizing them when every alert of the body is decided or queued in this process.
 */
function createBodyMemory() {
  const bodies = new Map<string, { integration: Integration; alerts: AlertIdentity[] }>();
  let chars = 0;
  const keyOf = (raw: RawDelivery) => `${raw.contentType}\n${raw.body}`;
  return {
    get(integration: Integration, raw: RawDelivery): AlertIdentity[] | undefined {
      if (!IDS_FROM_BODY.has(integration.source)) return undefined;
      const known = bodies.get(keyOf(raw));
      return known?.integration === integration ? known.alerts : undefined;
    },
    remember(integration: Integration, raw: RawDelivery, events: AlertEvent[]): void {
      if (!IDS_FROM_BODY.has(integration.source) || raw.body.length > LARGEST_REMEMBERED_BODY) return;
      const key = keyOf(raw);
      if (bodies.has(key)) return;
      bodies.set(key, { integration, alerts: events.map((e) => ({ eventId: e.eventId, dedupKey: e.dedupKey })) });
      chars += key.length;
      for (const oldest of bodies.keys()) {
        if (bodies.size <= REMEMBERED_BODIES && chars <= REMEMBERED_BODY_CHARS) break;
        bodies.delete(oldest);
        chars -= oldest.length;
      }
    },
  };
}

/** The answer for an alert stored and waiting for its decision. */
const PENDING: AlertResult = {
  action: 'accepted',
  reason: 'stored; its incident is decided in order with the other alerts of its network tree',
};

/** The last decision queued for a network tree: whose request it came in, and whether it was first in line. */
interface Tail {
  owner: object;
  clear: boolean;
  done: Promise<void>;
}

/** How long a webhook waits for its alert's decision when no other request's decision is queued in this process. */
export const DEFAULT_DECISION_WAIT_MS = 1_000;

export function createIntake(deps: {
  store: Store;
  processor: AlertProcessor;
  decisionWaitMs?: number;
  log?: (err: unknown, eventId: string) => void;
}) {
  const { store, processor } = deps;
  const decisionWaitMs = deps.decisionWaitMs ?? DEFAULT_DECISION_WAIT_MS;
  /**
   * Decisions queue per network tree in this process (the tree's lock in the database serializes
   * them across processes; queueing here first spares the lock's polling): the tail of each
   * tree's queue, and the decisions queued or running, by event id.
   */
  const tails = new Map<string, Tail>();
  const queued = new Map<string, Promise<AlertResult>>();
  const remembered = createResultMemory();
  const bodies = createBodyMemory();
  const insertGrouped = createAlertEventInserter(store);
  const recordAlertResult = createAlertResultRecorder(store);
  /** Inserts under way, by event id: in a storm a resend often arrives while the first copy is being stored. */
  const inserting = new Map<string, Promise<InsertedAlertEvent>>();

  /**
   * Stores the alert, or, when this process is storing the same delivery right now, waits for that
   * insert and reports what it found: its document as the first one (no insert bound to fail, no
   * read after it), or the one stored before it. Should that insert fail, this one is tried on its own.
   */
  async function insertAlertEvent(doc: AlertEventDoc): Promise<InsertedAlertEvent> {
    const under = await inserting.get(doc._id)?.catch(() => undefined);
    if (under) return under.first ? { first: false, existing: doc } : under;
    const insert = insertGrouped(doc);
    inserting.set(doc._id, insert);
    try {
      return await insert;
    } finally {
      if (inserting.get(doc._id) === insert) inserting.delete(doc._id);
    }
  }
  let sweptLegacy = false;

  /**
   * Queues the event's decision behind those of its trees. `idle` when nothing of another request
   * is queued in this process, in any tree (a quiet moment): only then does the webhook wait for
   * the decision. In a storm the answer goes at once, so a decision never holds up a request.
   */
  function submit(
    event: AlertEvent,
    sites: SiteResolution,
    minSeverity: AlertSeverity,
    owner: object,
    roots: string[],
  ): { decided: Promise<AlertResult>; idle: boolean } {
    const running = queued.get(event.eventId);
    if (running) return { decided: running, idle: false };
    const keys = roots.length ? roots : [''];
    const ahead = keys.map((k) => tails.get(k)).filter((t): t is Tail => t !== undefined);
    const decided = Promise.allSettled(ahead.map((t) => t.done)).then(async () => {
      const result = await processor.handle(event, sites, minSeverity);
      await recordAlertResult(event.eventId, result);
      remembered.remember(event.eventId, result);
      return result;
    });
    const quiet = [...tails.values()].every((t) => t.owner === owner && t.clear);
    const tail: Tail = { owner, clear: quiet, done: Promise.resolve() };
    tail.done = decided
      .then(
        () => undefined,
        (err: unknown) => deps.log?.(err, event.eventId),
      )
      .finally(() => {
        queued.delete(event.eventId);
        for (const k of keys) if (tails.get(k) === tail) tails.delete(k);
      });
    queued.set(event.eventId, decided);
    for (const k of keys) tails.set(k, tail);
    return { decided, idle: tail.clear };
  }

  /**
   * Alerts stored and not decided (the process stopped before deciding them): decided now, in
   * order of arrival. Run at start and now and then; a decision made twice changes nothing.
   */
  async function resume(
    integrationOf: (source: string, name: string) => Integration | undefined,
    olderThanMs = 30_000,
  ): Promise<number> {
    // The first sweep of a process also finds alerts stored before the `undecided` marker existed.
    const stale = await undecidedAlertEvents(store, olderThanMs, !sweptLegacy);
    sweptLegacy = true;
    let n = 0;
    for (const doc of stale) {
      const integration = integrationOf(doc.source, doc.integration);
      if (!integration || queued.has(doc._id)) continue;
      const { _id, raw: _raw, siteIds, siteProblem, result: _r, handledAt: _h, undecided: _u, ...event } = doc;
      const sites: SiteResolution = siteIds ? { siteIds } : { problem: siteProblem ?? 'no site' };
      const alert = { ...event, eventId: _id };
      await submit(alert, sites, integration.minSeverity, doc, await processor.treesOf(alert, sites)).decided.catch(
        () => undefined,
      );
      n++;
    }
    return n;
  }

  /** The answer to a repeat whose alerts all have a final result in this process; undefined otherwise. */
  function repeatFromMemory(alerts: readonly AlertIdentity[], results: (AlertResult | undefined)[]) {
    if (alerts.length === 0 || !results.every(isFinal)) return undefined;
    return {
      status: 200 as const,
      body: {
        received: alerts.length,
        results: alerts.map((e, i) => ({ dedupKey: e.dedupKey, eventId: e.eventId, ...results[i]!, duplicate: true })),
      },
    };
  }

  return {
    resume,
    /** Decisions still queued in this process (for tests and shutdown). */
    pending: () => queued.size,
    /**
     * A resend of a body seen before (same integration, same bytes), each of whose alerts has a
     * final result remembered or is stored and queued for its decision: its answer, without
     * parsing or normalizing it. Undefined otherwise (then `accept` it). Only after the request
     * is authenticated.
     */
    answerResend(integration: Integration, raw: RawDelivery): IntakeResult | undefined {
      const alerts = bodies.get(integration, raw);
      if (!alerts || alerts.length === 0) return undefined;
      const results: AlertOutcome[] = [];
      for (const { dedupKey, eventId } of alerts) {
        // Final, or stored and queued for its decision here (what `accept` would answer too).
        const result = remembered.get(eventId) ?? (queued.has(eventId) ? PENDING : undefined);
        if (!result) return undefined;
        results.push({ dedupKey, eventId, ...result, duplicate: true });
      }
      return { status: 200, body: { received: alerts.length, results } };
    },
    /** Throws IngestError for a payload to refuse as a whole (malformed, or no alert with a known site). */
    async accept(delivery: Delivery): Promise<IntakeResult> {
      const { integration } = delivery;
      const events = NORMALIZERS[integration.source](delivery.payload, {
        integration: integration.name,
        timeZone: integration.timeZone,
        receivedAt: delivery.receivedAt,
        headers: delivery.headers,
      });
      // Repeats are most of a storm (tools resend until they hear back): a repeat of an alert
      // decided, or queued for its decision, in this process is answered from memory. Any other
      // alert is inserted below, and only a duplicate-key error (one stored by another process, or
      // before a restart) costs a read.
      bodies.remember(integration, delivery.raw, events);
      const seen = events.map((e): Pick<AlertEventDoc, '_id' | 'result'> | undefined => {
        const result = remembered.get(e.eventId);
        if (result) return { _id: e.eventId, result };
        return queued.has(e.eventId) ? { _id: e.eventId } : undefined;
      });
      const repeat = repeatFromMemory(
        events,
        seen.map((d) => d?.result),
      );
      if (repeat) return repeat;
      const sites = await resolveSites(store, processor, integration, events);

      // Refused as a whole only when no alert of it can be acted on for want of a site.
      const unplaceable = events.map((e, i) => wouldOpen(e, integration.minSeverity) && 'problem' in sites[i]!);
      if (unplaceable.every(Boolean)) {
        const problems = [...new Set(sites.flatMap((s) => ('problem' in s ? [s.problem] : [])))];
        throw new IngestError('unknown_site', problems.join('; '), undefined, {
          alerts: events.map((e) => e.dedupKey),
        });
      }

      // Each alert new to us stored first (the insert is the deduplication point between two first
      // deliveries racing; the loser reports the winner's document). Then queued for its decision
      // in the payload's order, so that a batch is decided as listed (a firing and its resolution;
      // a relay, then a tower it feeds).
      const minSeverity = integration.minSeverity;
      const stored = await Promise.all(
        events.map(async (event, i) => {
          const before = seen[i];
          if (before) return { first: false as const, existing: before };
          const site = sites[i]!;
          return insertAlertEvent({
            _id: event.eventId,
            ...event,
            raw: delivery.raw,
            ...('siteIds' in site ? { siteIds: site.siteIds } : { siteProblem: site.problem }),
          });
        }),
      );
      const results: AlertOutcome[] = new Array(events.length);
      const open: number[] = [];
      events.forEach((e, i) => {
        const s = stored[i]!;
        if (!s.first && isFinal(s.existing.result)) {
          remembered.remember(e.eventId, s.existing.result);
          results[i] = { dedupKey: e.dedupKey, eventId: e.eventId, ...s.existing.result, duplicate: true };
        } else open.push(i);
      });
      const roots = await Promise.all(open.map((i) => processor.treesOf(events[i]!, sites[i]!)));
      const owner = {}; // this request, in the decision queues
      const submitted = open.map((i, k) => ({ i, ...submit(events[i]!, sites[i]!, minSeverity, owner, roots[k]!) }));
      await Promise.all(
        submitted.map(async ({ i, decided, idle }) => {
          const e = events[i]!;
          const repeat = stored[i]!.first ? {} : { duplicate: true };
          // Stored: the alert is safe. With its tree busy (a storm), answer at once and decide after;
          // otherwise wait a little for the decision, so that the tool (and its operator) see it.
          const result = idle ? await within(decided, decisionWaitMs) : undefined;
          if (!result) decided.catch(() => undefined); // logged by submit; a stored alert not decided is decided again later
          results[i] = result
            ? { dedupKey: e.dedupKey, eventId: e.eventId, ...result, ...repeat }
            : {
                dedupKey: e.dedupKey,
                eventId: e.eventId,
                ...PENDING,
                ...repeat,
              };
        }),
      );
      return { status: results.every((r) => r.duplicate) ? 200 : 202, body: { received: events.length, results } };
    },
  };
}

export type Intake = ReturnType<typeof createIntake>;
