/**
 * Delivery activities: send the planned messages of an incident in batches, reconcile after a
 * lost answer, and watch over what was sent (retry, then fall back to another channel).
 *
 * Exactly one message per record reaches the provider: a record is reserved (`sending`) before
 * its request goes out; when an attempt ends without knowing what the provider accepted (the
 * worker died, the connection dropped after the request was sent), the next attempt asks the
 * provider which of the reserved numbers it accepted since the reservation, and resends only
 * the others.
 */
import { ApplicationFailure, type Duration } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import type { Channel, ChannelName, OutboundMessage } from '../channels/channel';
import { canListAccepted, ChannelError } from '../channels/channel';
import { PartialSendError } from '../channels/per-recipient';
import type { PlivoSmsChannel } from '../channels/sms-plivo';
import { mayHaveBeenAccepted } from '../channels/plivo-errors';
import type { Store } from '../store/db';
import type { SharedRateLimiter } from '../store/rate-limits';
import {
  anyDue, anyDueIn, countDue, countInState, dueCandidates, scopesWithRecords, dueBy, nextDueAt, planAll, recordSendResults, releaseReservations, reserveNextBatch, sweepUndelivered, transition, unfinishedReservations,
  type AcceptedOutcome, type PlanInput, type SweepPolicy,
} from '../store/deliveries';
import { eachParallel, findByValues, serverKind } from '../store/server';
import { applyReceipts, applyReceiptsFor, applyStoredReceipts, PROVIDER_STATES, type Receipt } from '../store/receipts';
import type { RulesResolver } from '../store/rule-versions';
import { messageVariables } from '../rules';
import { acknowledgementCode } from '../domain/acknowledgement';
import { fallbackTarget, origin } from '../delivery/fallback';
import { incidentFacts } from './notices';
import { CLOSING_KINDS, type Delivery, type DeliveryChannel, type DeliveryState, type Incident, type MessageKind } from '../domain/types';
import type { Logger } from '../domain/log';

export interface DeliveryDeps {
  store: Store;
  channels: Partial<Record<ChannelName, Channel>>;
  /** The SMS channel again, for what only Plivo can answer (what it accepted since a time). */
  sms?: PlivoSmsChannel;
  /** Plivo's account limits, shared by every worker through MongoDB. */
  smsLimits?: { requests: SharedRateLimiter; messages: SharedRateLimiter };
  /** Longest wait for rate capacity inside an activity; longer waits reschedule the attempt. */
  maxInlineWaitMs?: number;
  /** Channels to try, in order, when one expires for a recipient. */
  fallbackOrder?: DeliveryChannel[];
  logger: Logger;
  /** The rules each incident pinned; their templates write every text. */
  rules: RulesResolver;
}

export interface SendBatchInput {
  incidentId: string;
  kind: MessageKind;
  channel?: DeliveryChannel;
  batchSize?: number;
}

export interface SendBatchResult {
  accepted: number;
  invalid: number;
  reconciled: number;
  remaining: number;
  /** Due records another sender had claimed (it is sending them, or died less than a minute ago): call again later. */
  held?: number;
}

/** Overdue SMS asked about at Plivo in one round of the watchdog (ten at a time). */
const OVERDUE_CHECKS = 1000;

/** How long to wait before looking again at records another sender holds. */
const HELD_RETRY_MS = 10_000;

/** The incidents (and their rules) one sendDue call has read, shared by its batches. */
type LoadedIncidents = Map<string, Promise<{ incident: Incident; rules: Awaited<ReturnType<RulesResolver>> }>>;

const ALL_CHANNELS: DeliveryChannel[] = ['status', 'sms', 'voice', 'email', 'webhook'];

export interface SendDueResult {
  accepted: Partial<Record<MessageKind, number>>;
  invalid: number;
  /** Due messages left for the next call (the time budget ran out, or a send failed); with the budget spent, only those of the first kind and channel still due are counted: more than 0 means "call again". */
  remaining: number;
  /** When a send failed after others went out: wait this long before the next call. */
  retryAfterMs?: number;
}

export interface SweepAllResult {
  retried: number;
  fellBack: number;
  inFlight: number;
  /** When the next held message falls due (ISO), or null. */
  nextDueAt: string | null;
}

export interface SweepInput extends SweepPolicy {
  incidentId: string;
  kind: MessageKind;
  channel?: DeliveryChannel;
  /** The channels to fall back to, in order (from the rules); wins over the worker's `fallbackOrder`. */
  fallback?: DeliveryChannel[];
}

export interface SweepOutput {
  retried: number;
  expired: number;
  fellBack: number;
  /** The channels the fallbacks were planned on: the workflow sends them next. */
  fallbackChannels: DeliveryChannel[];
  inFlight: number;
}

function sleep(ms: number): Promise<void> {
  return Context.current().sleep(ms);
}

/** Between the chunks of long writes: a slow database must not look like a dead worker to Temporal. */
function heartbeat(): void {
  Context.current().heartbeat();
}

function retryLater(message: string, type: string, delayMs?: number): ApplicationFailure {
  return ApplicationFailure.create({ message, type, nonRetryable: false, ...(delayMs ? { nextRetryDelay: delayMs as Duration } : {}) });
}

export function createDeliveryActivities(deps: DeliveryDeps) {
  const { store, logger } = deps;
  const maxInlineWaitMs = deps.maxInlineWaitMs ?? 20_000;

  async function loadIncident(incidentId: string) {
    const incident = await store.incidents.findOne({ _id: incidentId });
    if (!incident) throw ApplicationFailure.create({ type: 'IncidentNotFound', message: `incident ${incidentId} is not in the database`, nonRetryable: true });
    return incident;
  }

  /** Settles records an earlier attempt reserved but did not finish. */
  async function reconcile(scope: { incidentId: string; kind: MessageKind; channel: DeliveryChannel }): Promise<number> {
    const open = await unfinishedReservations(store, scope);
    if (open.length === 0) return 0;
    const now = new Date();
    const accepted: AcceptedOutcome[] = [];
    // Plivo answers for SMS (its message list) and for calls (its call listings).
    const provider = scope.channel === 'sms' ? deps.sms : deps.channels[scope.channel];
    if (canListAccepted(provider)) {
      const since = new Date(Math.min(...open.map((d) => (d.reservedAt ?? d.updatedAt).getTime())) - 2000);
      const found = await provider.acceptedSince(since, new Set(open.map((d) => d.to)));
      // The list holds every message to these numbers since then, ours for other records too (the
      // outage notice a moment before the restoration, an earlier attempt of this one): a message
      // some record already carries is not the one whose answer was lost.
      const listed = [...found.values()].flat();
      const known = new Set((await findByValues(store, store.deliveries, 'providerMessageId', listed, {}, { projection: { providerMessageId: 1 } })).map((d) => d.providerMessageId));
      for (const d of open) {
        const uuid = found.get(d.to)?.find((u) => !known.has(u));
        if (uuid) accepted.push({ id: d._id, providerMessageId: uuid });
      }
    }
    const taken = new Set(accepted.map((a) => a.id));
    await recordSendResults(store, accepted, [], now, 'found at the provider after a lost answer', 'accepted', heartbeat);
    await applyReceiptsFor(store, accepted.map((a) => a.providerMessageId));
    await releaseReservations(store, open.filter((d) => !taken.has(d._id)).map((d) => d._id), now, 'not found at the provider after a lost answer');
    logger.warn({ incidentId: scope.incidentId, kind: scope.kind, channel: scope.channel, open: open.length, foundAtProvider: accepted.length }, 'reconciled an unfinished send');
    return open.length;
  }

  /**
   * Plans, for the due escalation calls of a scope, the same message by SMS to the same number
   * (before the calls are given up, so that a retry after a crash in between plans nothing new).
   */
  async function escalateBySmsInstead(scope: { incidentId: string; kind: MessageKind; channel: DeliveryChannel }): Promise<void> {
    const now = new Date();
    const calls = await store.deliveries.find({ ...scope, state: 'planned', ...dueBy(now) }).toArray();
    const sms = calls.map((d): PlanInput => ({ ...origin(d, now), channel: 'sms', to: d.to, fallbackOf: d._id }));
    const r = await planAll(store, sms, now, 'voice is not configured on this worker: by SMS instead of a call');
    logger.warn({ incidentId: scope.incidentId, calls: calls.length, sms: r.planned }, 'staff escalation calls sent by SMS: no voice channel on this worker');
  }

  /** Waits for Plivo's account limits, or asks Temporal to retry later when the wait is long. */
  async function takeSmsCapacity(messages: number): Promise<void> {
    const limits = deps.smsLimits;
    if (!limits) return;
    const wait = Math.max(await limits.requests.waitFor(1), await limits.messages.waitFor(messages));
    if (wait > maxInlineWaitMs) throw retryLater(`Plivo account rate: next capacity in ${Math.round(wait / 1000)} s`, 'RateLimited', wait);
    const reserved = Math.max(await limits.requests.reserve(1), await limits.messages.reserve(messages));
    if (reserved > 0) await sleep(reserved);
  }

  /**
   * One batch of one kind on one channel; one request per distinct text. Every count and every
   * filtered find is a scan of the incident's records on FerretDB, so `how` lets a caller that
   * sends batch after batch skip what it already knows: `knownOpen`, it has just seen planned or
   * sending records there; `reconcile: false`, an earlier batch of the same call has settled what
   * earlier attempts left reserved (this call leaves none behind: it returns or throws first);
   * `exactRemaining: false`, "more are due" is enough (then `remaining` is 1 for "some");
   * `loaded`, the incident and its rules as the call read them (an incident's texts do not change
   * while one call sends).
   */
  async function sendBatch(input: SendBatchInput, how: { knownOpen: boolean; reconcile?: boolean; exactRemaining?: boolean; loaded?: LoadedIncidents }): Promise<SendBatchResult> {
      const channelName = input.channel ?? 'sms';
      const scope = { incidentId: input.incidentId, kind: input.kind, channel: channelName };
      if (!how.knownOpen && (await countInState(store, scope, ['planned', 'sending'])) === 0) return { accepted: 0, invalid: 0, reconciled: 0, remaining: 0 };
      const channel = deps.channels[channelName];
      if (!channel) {
        // Staff are never left unwarned: a call to the NOC that this worker cannot make goes by SMS to the same number.
        if (input.kind === 'escalation' && channelName === 'voice' && deps.channels.sms) await escalateBySmsInstead(scope);
        // Not a reason to hold up the other channels: these give up here, with the reason recorded.
        const gone = await transition(store, { ...scope, state: 'planned', ...dueBy(new Date()) }, 'expired', new Date(), `channel ${channelName} is not configured on this worker`);
        logger.warn({ incidentId: input.incidentId, channel: channelName, records: gone }, 'messages for a channel this worker does not have were given up');
        return { accepted: 0, invalid: 0, reconciled: 0, remaining: 0 };
      }
      // Where a batch's time goes, for the debug log (the fan-out benchmark reads it).
      const phases: Record<string, number> = {};
      let mark = Date.now();
      const lap = (name: string) => {
        const t = Date.now();
        phases[name] = (phases[name] ?? 0) + t - mark;
        mark = t;
      };
      const reconciled = how.reconcile === false ? 0 : await reconcile(scope);
      lap('reconcile');
      const load = async () => {
        const incident = await loadIncident(input.incidentId);
        return { incident, rules: await deps.rules(incident.rulesVersion) };
      };
      let loading = how.loaded?.get(input.incidentId);
      if (!loading) {
        loading = load();
        how.loaded?.set(input.incidentId, loading);
        loading.catch(() => how.loaded?.delete(input.incidentId));
      }
      const { incident, rules } = await loading;
      const facts = incidentFacts(incident);
      const size = Math.min(input.batchSize ?? channel.maxBatch, channel.maxBatch);

      // The account's limits are taken for what will be sent, before reserving it (counting is a
      // scan: only when there are limits to respect).
      if (channelName === 'sms' && deps.smsLimits && !(deps.smsLimits.requests.unlimited && deps.smsLimits.messages.unlimited)) {
        const waiting = (await dueCandidates(store, scope, size, new Date())).found.length;
        if (waiting === 0) return { accepted: 0, invalid: 0, reconciled, remaining: 0 };
        await takeSmsCapacity(waiting);
      }

      lap('load');
      const { records, more, held } = await reserveNextBatch(store, scope, size, new Date(), heartbeat);
      lap('reserve');
      if (records.length === 0) return { accepted: 0, invalid: 0, reconciled, remaining: 0, held };
      const byText = new Map<string, Delivery[]>();
      const now = new Date();
      for (const d of records) {
        const vars = messageVariables(facts, { area: d.area }, incident.endedAt ?? now, endVariables(incident));
        const kind = d.templateKind ?? (input.kind === 'escalation' ? incident.kind : input.kind);
        const text = rules.render(d.templateSet ? { set: d.templateSet, kind } : kind, d.language, vars).text;
        const same = byText.get(text);
        if (same) same.push(d);
        else byText.set(text, [d]);
      }
      lap('render');
      const accepted: AcceptedOutcome[] = [];
      const invalid: { id: string; error: string }[] = [];
      let failure: ChannelError | undefined;
      for (const [text, group] of byText) {
        if (failure) {
          // An earlier request failed: these were not sent at all.
          await releaseReservations(store, group.map((d) => d._id), new Date(), `not sent: ${failure.message}`);
          continue;
        }
        Context.current().heartbeat();
        // A call's words are fetched by Plivo from our answer URL while it rings: store them first.
        if (channelName === 'voice') await store.deliveries.updateMany({ _id: { $in: group.map((d) => d._id) } }, { $set: { text } });
        const messages: OutboundMessage[] = group.map((d) => ({ deliveryId: d._id, to: d.to, text, language: d.language, meta: { incidentId: input.incidentId, kind: input.kind, areas: incident.areas, openedAt: incident.openedAt.toISOString(), resolves: CLOSING_KINDS.includes(input.kind) } }));
        try {
          const answers = await channel.send(messages);
          lap('provider');
          for (const o of answers) {
            if (o.outcome === 'accepted') accepted.push({ id: o.deliveryId, providerMessageId: o.providerMessageId ?? o.deliveryId });
            else invalid.push({ id: o.deliveryId, error: o.error });
          }
        } catch (err) {
          const e = err instanceof ChannelError ? err : new ChannelError((err as Error).message ?? String(err), true);
          let ids = group.map((d) => d._id);
          if (err instanceof PartialSendError) {
            // Some recipients were reached before the failure: keep them, retry only the rest.
            for (const o of err.outcomes) {
              if (o.outcome === 'accepted') accepted.push({ id: o.deliveryId, providerMessageId: o.providerMessageId ?? o.deliveryId });
              else invalid.push({ id: o.deliveryId, error: o.error });
            }
            ids = err.unsent;
          }
          if (!e.retryable) {
            await transition(store, { _id: { $in: ids }, state: 'sending' }, 'failed', new Date(), e.message, { error: e.message });
          } else if (!mayHaveBeenAccepted(e)) {
            await releaseReservations(store, ids, new Date(), e.message);
            failure = e;
          } else {
            // The request may have been accepted: leave the records reserved for the next attempt to reconcile.
            failure = e;
          }
        }
      }
      // SMS and calls report back; the other channels never will: handing over is all we can know.
      const withReceipts = channelName === 'sms' || channelName === 'voice';
      lap('provider');
      await recordSendResults(store, accepted, invalid, new Date(), withReceipts ? 'accepted by the provider' : 'handed over (this channel sends no receipts)', withReceipts ? 'accepted' : 'delivered', heartbeat);
      lap('record');
      if (failure) {
        logger.warn({ incidentId: input.incidentId, kind: input.kind, channel: channelName, status: failure.status }, `send failed, will retry: ${failure.message}`);
        throw retryLater(failure.message, 'ChannelUnavailable', failure.retryAfterMs);
      }
      // A batch that was not full took every record that was due: nothing is left to count.
      const remaining = records.length < size || !more ? 0 : how.exactRemaining === false ? 1 : await countDue(store, scope, new Date());
      lap('count');
      logger.debug({ incidentId: input.incidentId, kind: input.kind, channel: channelName, records: records.length, accepted: accepted.length, held, ms: phases }, 'batch sent');
      return { accepted: accepted.length, invalid: invalid.length, reconciled, remaining, held };
  }

  const api = {
    /** Sends the next batch of planned messages of one kind on one channel; one request per distinct text. */
    async sendNextBatch(input: SendBatchInput): Promise<SendBatchResult> {
      const r = await sendBatch(input, { knownOpen: false });
      // Held records are still to be sent: "remaining" for a caller that knows nothing of claims.
      return { ...r, remaining: r.remaining + (r.held ?? 0) };
    },

    /**
     * Applies stored receipts, then retries what was not delivered and plans fallbacks for what
     * expired. The workflow calls it on a timer until nothing is in flight.
     */
    async sweepDeliveries(input: SweepInput): Promise<SweepOutput> {
      const started = Date.now();
      await applyStoredReceipts(store);
      heartbeat();
      const channel = input.channel ?? 'sms';
      // SMS: an overdue message is resent only when Plivo says it does not know it (or, through its
      // receipt, that it was not delivered). Other channels have no such check: overdue is lost.
      const lostAtProvider = channel === 'sms' && deps.sms ? await askProviderAboutOverdue({ incidentId: input.incidentId, kind: input.kind, channel }, input.deliveryTimeoutMs) : undefined;
      heartbeat();
      const now = new Date();
      const overdueMayRetry = lostAtProvider ? (d: Delivery) => !!d.providerMessageId && lostAtProvider.has(d.providerMessageId) : undefined;
      const r = await sweepUndelivered(store, { incidentId: input.incidentId, kind: input.kind, channel }, input, now, overdueMayRetry);
      const fallbacks: PlanInput[] = [];
      for (const d of r.expired) {
        const next = await fallbackFor(d, input.fallback);
        if (next) fallbacks.push(next);
      }
      const planned = fallbacks.length ? (await planAll(store, fallbacks, now, 'fallback')).planned : 0;
      const fallbackChannels = [...new Set(fallbacks.map((f) => f.channel))];
      logger.debug({ incidentId: input.incidentId, kind: input.kind, channel, retried: r.retried, expired: r.expired.length, inFlight: r.inFlight, ms: Date.now() - started }, 'delivery sweep');
      return { retried: r.retried, expired: r.expired.length, fellBack: planned, fallbackChannels, inFlight: r.inFlight };
    },
  };

  return {
    ...api,

    /**
     * Sends what is due of these kinds on every channel, batch after batch, for at most about
     * `budgetMs`; one activity instead of one per batch keeps the workflow's history short.
     */
    async sendDue(input: { incidentId: string; kinds: MessageKind[]; batchSize?: number; budgetMs?: number }): Promise<SendDueResult> {
      const started = Date.now();
      const total: SendDueResult = { accepted: {}, invalid: 0, remaining: 0 };
      // At least one batch per call, however small the budget: a budget spent on looking at empty
      // channels would otherwise hand back without sending anything, again and again.
      let batches = 0;
      // Due records other senders had claimed, as last seen per kind and channel.
      const held = new Map<string, number>();
      const loaded: LoadedIncidents = new Map();
      // Every pair planned on: one with nothing left costs a look at its unfinished reservations
      // and at its pages, a few milliseconds (asking the records which pairs have work left would
      // read all of them on FerretDB).
      const open = new Set((await scopesWithRecords(store, input.incidentId, input.kinds)).map((p) => `${p.kind}/${p.channel}`));
      for (const kind of input.kinds) {
        for (const channel of ALL_CHANNELS) {
          if (!open.has(`${kind}/${channel}`)) continue;
          for (let first = true; ; first = false) {
            if (batches > 0 && Date.now() - started > (input.budgetMs ?? 60_000)) {
              // That something is left is all the caller needs: one look, not a count per channel
              // and kind (a count reads every planned record on FerretDB).
              if (total.remaining === 0 && (await anyDue(store, { incidentId: input.incidentId, kind, channel }, new Date()))) total.remaining = 1;
              break;
            }
            let r: SendBatchResult;
            try {
              r = await sendBatch({ incidentId: input.incidentId, kind, channel, batchSize: input.batchSize }, { knownOpen: true, reconcile: first, exactRemaining: false, loaded });
            } catch (err) {
              // With progress made, hand back instead of failing the whole call: Temporal's backoff
              // grows with every failed attempt of one activity, and one failed batch in twenty
              // must not make the next ones wait ten seconds each.
              const progress = Object.values(total.accepted).some((n) => (n ?? 0) > 0);
              if (!progress || !(err instanceof ApplicationFailure) || err.nonRetryable) throw err;
              // What failed is still due: "some are left" is what the workflow needs.
              total.remaining += 1;
              total.retryAfterMs = Math.max(1000, Number(err.nextRetryDelay ?? 0) || 0);
              return total;
            }
            total.accepted[kind] = (total.accepted[kind] ?? 0) + r.accepted;
            total.invalid += r.invalid;
            held.set(`${kind}/${channel}`, r.held ?? 0);
            if (r.accepted + r.invalid > 0) batches++;
            if (r.remaining === 0) break;
          }
        }
      }
      // Records another sender holds are not sent yet: the workflow must come back for them (that
      // sender may be a dead one, whose claims can be taken over once a minute old).
      const stillHeld = [...held.values()].reduce((a, b) => a + b, 0);
      if (stillHeld > 0 && total.remaining === 0) {
        total.remaining = stillHeld;
        total.retryAfterMs = HELD_RETRY_MS;
        logger.info({ incidentId: input.incidentId, held: stillHeld }, 'due messages claimed by another sender: looking again later');
      }
      return total;
    },

    /** The watchdog over every channel at once: retries, fallbacks, and when to look again. */
    async sweepAll(input: { incidentId: string; kinds: MessageKind[]; fallback?: DeliveryChannel[] } & SweepPolicy): Promise<SweepAllResult> {
      const out: SweepAllResult = { retried: 0, fellBack: 0, inFlight: 0, nextDueAt: null };
      const pairs = await scopesWithRecords(store, input.incidentId, input.kinds);
      const used = new Set(pairs.map((p) => `${p.kind}/${p.channel}`));
      for (const kind of input.kinds) {
        for (const channel of ALL_CHANNELS) {
          if (!used.has(`${kind}/${channel}`)) continue;
          heartbeat();
          const r = await api.sweepDeliveries({ incidentId: input.incidentId, kind, channel, deliveryTimeoutMs: input.deliveryTimeoutMs, maxAttempts: input.maxAttempts, ...(input.fallback ? { fallback: input.fallback } : {}) });
          out.retried += r.retried;
          out.fellBack += r.fellBack;
          out.inFlight += r.inFlight;
        }
      }
      heartbeat();
      // Planned records already due (an earlier attempt of this sweep, timed out but still running,
      // may have moved them back to planned; or a sender left them) are due now: the workflow must
      // send before it may call the notices sent. (Without this, a 20,000 drill took 2,877 retries
      // for "all sent" and never sent them.)
      const now = new Date();
      const dueNow = await anyDueIn(store, pairs.map((p) => ({ incidentId: input.incidentId, ...p })), now);
      const next = dueNow ? now : await nextDueAt(store, input.incidentId, input.kinds, now);
      out.nextDueAt = next ? next.toISOString() : null;
      return out;
    },
  };

  /**
   * For SMS whose receipt is overdue, ask Plivo what became of them (ten at a time, at most
   * OVERDUE_CHECKS a round) and record each answer as a receipt: Plivo's undelivered and failed
   * are then resent by the sweep, its queued and sent get another timeout. Returns the messages
   * that may be resent as lost: only those Plivo says it does not know (404). A message whose check
   * failed (Plivo unreachable, 5xx, 429) or was not reached this round is never taken for lost: it
   * may well have been delivered, its receipt late (at 20,000 recipients the receipts queue up), and
   * a resend would text the subscriber twice; the next round asks again.
   */
  async function askProviderAboutOverdue(scope: { incidentId: string; kind: MessageKind; channel: DeliveryChannel }, timeoutMs: number): Promise<Set<string>> {
    const lost = new Set<string>();
    if (!deps.sms) return lost;
    const stale = new Date(Date.now() - timeoutMs);
    const overdue = (
      await Promise.all((['accepted', 'sent'] as DeliveryState[]).map((state) => store.deliveries.find({ ...scope, state, updatedAt: { $lt: stale } }, { projection: { providerMessageId: 1, updatedAt: 1 } }).toArray()))
    )
      .flat()
      .filter((d) => d.providerMessageId)
      .sort((x, y) => x.updatedAt.getTime() - y.updatedAt.getTime())
      .slice(0, OVERDUE_CHECKS);
    const receipts: Receipt[] = [];
    let unreachable = 0;
    await eachParallel(overdue, 10, async (d) => {
      heartbeat();
      try {
        const a = await deps.sms!.messageState(d.providerMessageId!);
        if (PROVIDER_STATES[a.state]) receipts.push({ messageUuid: d.providerMessageId!, status: a.state, units: a.units, totalAmount: a.totalAmount, errorCode: a.errorCode, receivedAt: new Date() });
      } catch (err) {
        if (err instanceof ChannelError && err.status === 404) lost.add(d.providerMessageId!);
        else unreachable++;
      }
    });
    if (unreachable) logger.info({ incidentId: scope.incidentId, kind: scope.kind, unreachable }, 'overdue messages Plivo could not be asked about: asking again next round, not resending');
    if (receipts.length) await applyReceipts(store, receipts, new Date());
    // Still queued or sent at the provider: not lost, only slow. Give them another timeout.
    const slow = receipts.filter((r) => r.status === 'queued' || r.status === 'sent').map((r) => r.messageUuid);
    if (slow.length) {
      const stillOpen = { state: { $in: ['accepted', 'sent'] as DeliveryState[] } };
      const later = { $set: { updatedAt: new Date() } };
      // One equality per message on FerretDB over PostgreSQL (findByValues says why).
      if ((await serverKind(store)) === 'ferretdb-postgresql') await eachParallel(slow, 16, async (id) => void (await store.deliveries.updateMany({ providerMessageId: id, ...stillOpen }, later)));
      else await store.deliveries.updateMany({ providerMessageId: { $in: slow }, ...stillOpen }, later);
    }
    return lost;
  }


  /**
   * The next channel of the order after the one that expired (the whole order when it is not in
   * it) that this worker has and that can reach this subscriber. The rules' order (`fallback`)
   * wins over the worker's.
   */
  async function fallbackFor(d: Delivery, fallback?: DeliveryChannel[]): Promise<PlanInput | null> {
    // The public feed and webhooks reach no subscriber of their own: nothing to fall back from.
    if (d.channel !== 'sms' && d.channel !== 'voice' && d.channel !== 'email') return null;
    const subscriber = await store.subscribers.findOne({ _id: d.subscriberId });
    if (!subscriber) return null;
    const next = fallbackTarget(d, subscriber, fallback ?? deps.fallbackOrder ?? ['sms', 'voice', 'email'], (c) => !!deps.channels[c]);
    return next ? { ...origin(d), ...next, fallbackOf: d._id } : null;
  }
}

export type DeliveryActivities = ReturnType<typeof createDeliveryActivities>;

/** The variables only some messages have: the end of an outage, the earlier window of moved maintenance. */
function endVariables(incident: Incident): { end?: string; previousStart?: string; previousEnd?: string; ackCode: string } {
  return {
    ackCode: acknowledgementCode(incident._id),
    ...(incident.endedAt ? { end: incident.endedAt.toISOString() } : {}),
    ...(incident.previousWindow ? { previousStart: incident.previousWindow.startsAt.toISOString(), previousEnd: incident.previousWindow.endsAt.toISOString() } : {}),
  };
}
