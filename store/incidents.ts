import type { Store } from './db';
import { answeredInFlight } from './send-requests';
import type { Incident, IncidentPhase } from '../domain/types';

/** Moves an incident to a phase and appends it to the timeline; repeating the same move is a no-op. */
export async function recordPhase(
  store: Store,
  incidentId: string,
  phase: IncidentPhase,
  at: Date,
  note?: string,
): Promise<void> {
  const set: Partial<Incident> = { phase };
  if (phase === 'resolved' || phase === 'cancelled') set.resolvedAt = at;
  // The `timeline.phase: {$ne}` guard makes a retried activity leave one timeline entry.
  await store.incidents.updateOne(
    { _id: incidentId, 'timeline.phase': { $ne: phase } },
    { $set: set, $push: { timeline: note ? { at, phase, note } : { at, phase } } },
  );
}

export interface DeliveryCounts {
  [channel: string]: { [kind: string]: { [state: string]: number } };
}

interface SharedRun {
  promise: Promise<unknown>;
  startedAt: number;
  /** Set when the run has finished. */
  tookMs?: number;
}

const sharedRuns = new WeakMap<Store, Map<string, SharedRun>>();

/**
 * One run of `run` at a time per `key` in a process, shared by every caller that asks while it runs,
 * and its result given again for as long as it took. For the reads every viewer of an incident
 * repeats (its counts, its held messages): on FerretDB each reads and decodes records of the incident
 * (2-15 s at 5,000 recipients while the sending goes on), and a reader polling every second, or ten
 * operators watching one incident, would otherwise keep the database reading without pause. So such
 * a read takes at most half of one connection per key and process, and a result is never older than
 * twice its reading time (a few milliseconds on a small incident). A failed run is not given again.
 */
export function sharedRun<T>(store: Store, key: string, run: () => Promise<T>, now = Date.now()): Promise<T> {
  let runs = sharedRuns.get(store);
  if (!runs) sharedRuns.set(store, (runs = new Map()));
  const last = runs.get(key);
  const age = last ? now - last.startedAt : 0;
  if (last && (last.tookMs === undefined || (age >= 0 && age < 2 * last.tookMs))) return last.promise as Promise<T>;
  for (const [k, r] of runs) if (r.tookMs !== undefined && now - r.startedAt > 60_000) runs.delete(k);
  const started: SharedRun = { startedAt: now, promise: run() };
  runs.set(key, started);
  started.promise.then(
    () => (started.tookMs = Math.max(1, Date.now() - started.startedAt)),
    () => runs.get(key) === started && runs.delete(key),
  );
  return started.promise as Promise<T>;
}

/**
 * deliveryCounts as the API's readers see it (the incident, the maintenance, the console's progress):
 * shared (sharedRun). With the `phase` the reader saw, a count started in an earlier phase is not
 * given for this one: an incident is billed once its last receipts are written, and a count begun
 * while they were being written showed a billed incident with messages still planned.
 */
export function sharedDeliveryCounts(
  store: Store,
  incidentId: string,
  { phase, now = Date.now() }: { phase?: string; now?: number } = {},
): Promise<DeliveryCounts> {
  return sharedRun(store, `counts:${incidentId}:${phase ?? ''}`, () => deliveryCounts(store, incidentId), now);
}

/** Messages of an incident counted by channel, kind and state. */
export async function deliveryCounts(store: Store, incidentId: string): Promise<DeliveryCounts> {
  const rows = await store.deliveries
    .aggregate<{ _id: { channel: string; kind: string; state: string }; n: number }>([
      { $match: { incidentId } },
      { $group: { _id: { channel: '$channel', kind: '$kind', state: '$state' }, n: { $sum: 1 } } },
    ])
    .toArray();
  const counts: DeliveryCounts = {};
  for (const r of rows) ((counts[r._id.channel] ??= {})[r._id.kind] ??= {})[r._id.state] = r.n;
  // Planned records Plivo has accepted, waiting for their receipt to be written (store/send-requests.ts).
  for (const { channel, kind, n } of await answeredInFlight(store, incidentId)) {
    const states = counts[channel]?.[kind];
    if (!states?.planned) continue;
    const moved = Math.min(n, states.planned);
    states.planned -= moved;
    states.accepted = (states.accepted ?? 0) + moved;
    if (states.planned === 0) delete states.planned;
  }
  return counts;
}
