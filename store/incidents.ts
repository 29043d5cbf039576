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
