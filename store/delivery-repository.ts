/**
 * The delivery engine's repository (delivery/ports.ts DeliveryRepository) over MongoDB: the intent
 * methods the sender and the sweeper call, each one of the store's delivery or receipt functions.
 * The engine sees no collection and no filter.
 */
import type { Store } from './db';
import type { DeliveryRepository } from '../delivery/ports';
import type { DeliveryState } from '../domain/types';
import {
  carriedProviderIds,
  countDue,
  countInState,
  dueBy,
  giveMoreTime,
  nextDueAt,
  planAll,
  scopesWithRecords,
  sweepUndelivered,
  transition,
} from './deliveries';
import {
  anyDue,
  anyDueIn,
  closeRequests,
  dueCandidates,
  failReserved,
  markCalling,
  pendingUuids,
  recordAnswers,
  recordSendResults,
  releaseReservations,
  settleAnswered,
  waitingAnswers,
  writeAnswers,
  reserveFresh,
  reserveNextBatch,
  unfinishedReservations,
  abandonRequests,
} from './send-requests';
import { applyReceipts, applyReceiptsFor, applyStoredReceipts, receiptsAppliedUpTo } from './receipts';

const IN_FLIGHT: DeliveryState[] = ['accepted', 'sent'];

export function deliveryRepository(store: Store): DeliveryRepository {
  return {
    incident: (id) => store.incidents.findOne({ _id: id }),
    subscriber: (id) => store.subscribers.findOne({ _id: id }),

    hasOpen: async (scope) => (await countInState(store, scope, ['planned', 'sending'])) > 0,
    dueCount: async (scope, want, now) => (await dueCandidates(store, scope, want, now)).found.length,
    dueRecords: (scope, now) => store.deliveries.find({ ...scope, state: 'planned', ...dueBy(now) }).toArray(),
    countDue: (scope, now) => countDue(store, scope, now),
    anyDue: (scope, now) => anyDue(store, scope, now),
    anyDueIn: (scopes, now, readQuiet) => anyDueIn(store, scopes, now, readQuiet),
    nextDueAt: (incidentId, kinds, now) => nextDueAt(store, incidentId, kinds, now),
    scopesWithRecords: (incidentId, kinds) => scopesWithRecords(store, incidentId, kinds),
    plan: (inputs, now, note) => planAll(store, inputs, now, note),

    reserveNextBatch: (scope, limit, now, skip) => reserveNextBatch(store, scope, limit, now, skip),
    reserveFresh: (scope, records, now, seq) => reserveFresh(store, scope, records, now, seq),
    unfinishedReservations: (scope) => unfinishedReservations(store, scope),
    abandonRequests: (ids) => abandonRequests(store, ids),
    markCalling: (records, text, now) => markCalling(store, records, text, now),
    recordSendResults: (taken, accepted, invalid, now, note, state, progress) =>
      recordSendResults(store, taken, accepted, invalid, now, note, state, progress),
    recordAnswers: (taken, accepted, invalid, now, note, progress) =>
      recordAnswers(store, taken, accepted, invalid, now, note, progress),
    settleAnswered: (scope, answeredBefore, now) => settleAnswered(store, scope, answeredBefore, now),
    waitingAnswers: (scope, answeredBefore, limit, now) => waitingAnswers(store, scope, answeredBefore, limit, now),
    writeAnswers: (answers, at) => writeAnswers(store, answers, at),
    releaseReservations: (records, now, why) => releaseReservations(store, records, now, why),
    failReserved: (records, now, why) => failReserved(store, records, now, why),
    closeRequests: (ids, now) => closeRequests(store, ids, now),
    giveUpDue: (scope, now, why) =>
      transition(store, { ...scope, state: 'planned', ...dueBy(now) }, 'expired', now, why),
    carriedProviderIds: async (ids) => {
      // An answer still pending in its request is carried too: its record gets it with its receipt.
      const [carried, pending] = await Promise.all([carriedProviderIds(store, ids), pendingUuids(store)]);
      return new Set([...carried, ...ids.filter((id) => pending.has(id))]);
    },

    applyStoredReceipts: () => applyStoredReceipts(store),
    receiptsAppliedUpTo: (now) => receiptsAppliedUpTo(store, now),
    applyReports: async (reports, now) => void (await applyReceipts(store, reports, now)),
    applyReceiptsFor: (ids, since) => applyReceiptsFor(store, ids, since),
    overdue: async (scope, stale, limit) => {
      // One query per state, each an equality FerretDB hands down (an `$in` of states would read every record of the incident).
      const found = await Promise.all(
        IN_FLIGHT.map((state) =>
          store.deliveries
            .find(
              { ...scope, state, updatedAt: { $lt: stale } },
              { projection: { providerMessageId: 1, updatedAt: 1 } },
            )
            .toArray(),
        ),
      );
      return found
        .flat()
        .filter((d) => d.providerMessageId)
        .sort((x, y) => x.updatedAt.getTime() - y.updatedAt.getTime())
        .slice(0, limit)
        .map((d) => ({ providerMessageId: d.providerMessageId! }));
    },
    giveMoreTime: (ids, now) => giveMoreTime(store, ids, now),
    sweepUndelivered: (scope, policy, now, overdueMayRetry) =>
      sweepUndelivered(store, scope, policy, now, overdueMayRetry),
  };
}
