/**
 * The sender: sends the planned messages of an incident in batches (reserve, render, send,
 * record), and settles what an earlier attempt left reserved.
 *
 * Exactly one message per record reaches the provider: a record is reserved before its request
 * goes out; when an attempt ends without knowing what the provider accepted (the worker died, the
 * connection dropped after the request was sent), the next attempt asks the provider which of the
 * reserved numbers it accepted since the reservation, and resends only the others.
 */
import type { Channel, ChannelName, OutboundMessage } from '../channels/channel';
import { canListAccepted, ChannelError } from '../channels/channel';
import { PartialSendError } from '../channels/per-recipient';
import type { PlivoSmsChannel } from '../channels/sms-plivo';
import { mayHaveBeenAccepted } from '../channels/plivo-errors';
import { CLOSING_KINDS, type Delivery, type DeliveryChannel, type Incident, type MessageKind } from '../domain/types';
import type { Logger } from '../domain/log';
import { pushTo } from '../domain/group-by';
import { origin } from './fallback';
import { phaseTimer } from './phase-timer';
import {
  IncidentMissing,
  RetryLater,
  type AcceptedOutcome,
  type DeliveryRepository,
  type PlanInput,
  type RateLimiter,
  type Reserved,
  type Runtime,
  type Scope,
  type TextsOf,
} from './ports';

export interface SenderDeps {
  repo: DeliveryRepository;
  channels: Partial<Record<ChannelName, Channel>>;
  /** The SMS channel again, for what only Plivo can answer (what it accepted since a time). */
  sms?: PlivoSmsChannel;
  /** Plivo's account limits, shared by every worker. */
  smsLimits?: { requests: RateLimiter; messages: RateLimiter };
  /** Longest wait for rate capacity inside one call; longer waits reschedule it. */
  maxInlineWaitMs?: number;
  texts: TextsOf;
  runtime: Runtime;
  logger: Logger;
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

export interface SendDueResult {
  accepted: Partial<Record<MessageKind, number>>;
  invalid: number;
  /** Due messages left for the next call (the time budget ran out, or a send failed); with the budget spent, only those of the first kind and channel still due are counted: more than 0 means "call again". */
  remaining: number;
  /** When a send failed after others went out: wait this long before the next call. */
  retryAfterMs?: number;
}

/**
 * What a batch may skip of what its caller already knows: `knownOpen`, it has just seen planned or
 * reserved records there; `reconcile: false`, an earlier batch of the same call has settled what
 * earlier attempts left reserved (this call leaves none behind: it returns or throws first);
 * `exactRemaining: false`, "more are due" is enough (then `remaining` is 1 for "some"); `loaded`,
 * the incidents and their texts as the call read them (an incident's texts do not change while
 * one call sends).
 */
interface BatchHow {
  knownOpen: boolean;
  reconcile?: boolean;
  exactRemaining?: boolean;
  loaded?: LoadedIncidents;
  /** Pages an earlier batch of the call left with nothing due (their messages are on their way): not read again. */
  exhausted?: Set<number>;
}

/** A planner's hand-over to the sender (store/deliveries.ts planAll), and what it sent, by kind. */
export interface PlanningSender {
  onPlanned(inserted: Delivery[]): Promise<void>;
  /** What it sent, by kind (accepted by the provider), and how many records due now it left to the rounds; once every answer is written. */
  result(): Promise<{ sent: Partial<Record<MessageKind, number>>; leftDue: number }>;
}

type Loaded = { incident: Incident; textOf: (d: Delivery, kind: MessageKind) => string };
type LoadedIncidents = Map<string, Promise<Loaded>>;

// The public feed last: its social posts may make it wait for a network, and SMS must not wait with it.
export const ALL_CHANNELS: DeliveryChannel[] = ['sms', 'voice', 'email', 'webhook', 'status'];

/** How long to wait before looking again at records another sender holds. */
const HELD_RETRY_MS = 10_000;

export function createSender(deps: SenderDeps) {
  const { repo, logger, runtime } = deps;
  const maxInlineWaitMs = deps.maxInlineWaitMs ?? 20_000;

  async function load(incidentId: string): Promise<Loaded> {
    const incident = await repo.incident(incidentId);
    if (!incident) throw new IncidentMissing(`incident ${incidentId} is not in the database`);
    return { incident, textOf: await deps.texts(incident) };
  }

  /** Settles records an earlier attempt reserved but did not finish. */
  async function reconcile(scope: Scope): Promise<number> {
    const { phases, lap } = phaseTimer();
    const { records: open, requests } = await repo.unfinishedReservations(scope);
    lap('read');
    const now = new Date();
    if (open.length === 0) {
      // Requests whose sender wrote every record and died before closing them: nothing to ask.
      await repo.closeRequests(requests, now);
      return 0;
    }
    const accepted: AcceptedOutcome[] = [];
    // Plivo answers for SMS (its message list) and for calls (its call listings).
    const provider = scope.channel === 'sms' ? deps.sms : deps.channels[scope.channel];
    const since = new Date(Math.min(...open.map((d) => (d.reservedAt ?? d.updatedAt).getTime())) - 2000);
    if (canListAccepted(provider)) {
      const found = await provider.acceptedSince(since, new Set(open.map((d) => d.to)), {
        beforeRequest: () => (provider === deps.sms ? takeRequestCapacity() : Promise.resolve(runtime.heartbeat())),
      });
      lap('list');
      // The list holds every message to these numbers since then, ours for other records too (the
      // outage notice a moment before the restoration, an earlier attempt of this one): a message
      // some record already carries is not the one whose answer was lost.
      const known = await repo.carriedProviderIds([...found.values()].flat());
      for (const d of open) {
        const uuid = found.get(d.to)?.find((u) => !known.has(u));
        if (uuid) accepted.push({ id: d._id, providerMessageId: uuid });
      }
      lap('known');
    }
    const taken = new Set(accepted.map((a) => a.id));
    // The records not found are due again once their request closes (below, or by the answers' write).
    await repo.releaseReservations(
      open.filter((d) => !taken.has(d._id)),
      now,
      'not found at the provider after a lost answer',
    );
    const note = 'found at the provider after a lost answer';
    // SMS found at Plivo: into their requests, as the lost answer would have gone (one write a request);
    // the receipts stored since, applied next, write each record once with its answer. Calls: on the records.
    if (scope.channel === 'sms') await repo.recordAnswers(open, accepted, [], now, note, runtime.heartbeat);
    else await repo.recordSendResults(open, accepted, [], now, note, 'accepted', runtime.heartbeat);
    await repo.applyReceiptsFor(
      accepted.map((a) => a.providerMessageId),
      since,
    );
    await repo.closeRequests(requests, now);
    lap('record');
    logger.warn(
      {
        incidentId: scope.incidentId,
        kind: scope.kind,
        channel: scope.channel,
        open: open.length,
        foundAtProvider: accepted.length,
        ms: phases,
      },
      'reconciled an unfinished send',
    );
    return open.length;
  }

  /**
   * Plans, for the due escalation calls of a scope, the same message by SMS to the same number
   * (before the calls are given up, so that a retry after a crash in between plans nothing new).
   */
  async function escalateBySmsInstead(scope: Scope): Promise<void> {
    const now = new Date();
    const calls = await repo.dueRecords(scope, now);
    const sms = calls.map((d): PlanInput => ({ ...origin(d, now), channel: 'sms', to: d.to, fallbackOf: d._id }));
    const r = await repo.plan(sms, now, 'voice is not configured on this worker: by SMS instead of a call');
    logger.warn(
      { incidentId: scope.incidentId, calls: calls.length, sms: r.planned },
      'staff escalation calls sent by SMS: no voice channel on this worker',
    );
  }

  /** Whether Plivo's account has limits to respect (counting what is due for them is a scan). */
  const limited = () => !!deps.smsLimits && !(deps.smsLimits.requests.unlimited && deps.smsLimits.messages.unlimited);

  /**
   * One request of Plivo's account rate for a listing page (the reconciliation's): the sends' limiter
   * keeps both under the account's limit, so that neither is refused for the other's traffic.
   */
  async function takeRequestCapacity(): Promise<void> {
    runtime.heartbeat();
    const requests = deps.smsLimits?.requests;
    if (!requests || requests.unlimited) return;
    const wait = await requests.reserve(1);
    if (wait > 0) await runtime.sleep(wait);
  }

  /** Waits for Plivo's account limits, or asks to be called again later when the wait is long. */
  async function takeSmsCapacity(messages: number): Promise<void> {
    const limits = deps.smsLimits;
    if (!limits) return;
    const wait = Math.max(await limits.requests.waitFor(1), await limits.messages.waitFor(messages));
    if (wait > maxInlineWaitMs)
      throw new RetryLater(`Plivo account rate: next capacity in ${Math.round(wait / 1000)} s`, 'RateLimited', wait);
    const reserved = Math.max(await limits.requests.reserve(1), await limits.messages.reserve(messages));
    if (reserved > 0) await runtime.sleep(reserved);
  }

  /**
   * Sends records taken for one scope (one request per distinct text) and records the provider's
   * answer; what failed is released, or left taken for the next sender's reconciliation when the
   * provider may have accepted it.
   */
  async function sendTaken(
    scope: Scope,
    channel: Channel,
    records: Reserved[],
    incident: Incident,
    textOf: Loaded['textOf'],
    lap: (phase: string) => void = () => undefined,
  ): Promise<Sent> {
    const sent = await sendOnly(scope, channel, records, incident, textOf, lap);
    await recordSent(scope, records, sent);
    lap('record');
    return sent;
  }

  /** sendTaken up to the provider's answer, which recordSent then writes. */
  async function sendOnly(
    scope: Scope,
    channel: Channel,
    records: Reserved[],
    incident: Incident,
    textOf: Loaded['textOf'],
    lap: (phase: string) => void,
  ): Promise<Sent> {
    const byText = new Map<string, Reserved[]>();
    for (const d of records) {
      const text = textOf(d, scope.kind);
      const same = byText.get(text);
      if (same) same.push(d);
      else byText.set(text, [d]);
    }
    lap('render');
    const accepted: AcceptedOutcome[] = [];
    const invalid: { id: string; error: string }[] = [];
    let failure: ChannelError | undefined;
    // Records whose request may have reached the provider although it failed: their requests stay open for the next attempt to reconcile.
    let leftReserved = false;
    for (const [text, group] of byText) {
      if (failure) {
        // An earlier request failed: these were not sent at all.
        await repo.releaseReservations(group, new Date(), `not sent: ${failure.message}`);
        continue;
      }
      runtime.heartbeat();
      if (scope.channel === 'voice') {
        // A call's words are fetched by Plivo from our answer URL while it rings, and it may hang up
        // before its answer is recorded: calls are marked on their way, with their words, first.
        await repo.markCalling(group, text, new Date());
        for (const d of group) d.state = 'sending';
      }
      const messages: OutboundMessage[] = group.map((d) => ({
        deliveryId: d._id,
        to: d.to,
        text,
        language: d.language,
        ...(d.request ? { request: d.request } : {}),
        meta: {
          incidentId: scope.incidentId,
          kind: scope.kind,
          areas: incident.areas,
          openedAt: incident.openedAt.toISOString(),
          resolves: CLOSING_KINDS.includes(scope.kind),
        },
      }));
      try {
        const answers = await channel.send(messages);
        lap('provider');
        for (const o of answers) {
          if (o.outcome === 'accepted')
            accepted.push({ id: o.deliveryId, providerMessageId: o.providerMessageId ?? o.deliveryId });
          else invalid.push({ id: o.deliveryId, error: o.error });
        }
      } catch (err) {
        const e = err instanceof ChannelError ? err : new ChannelError((err as Error).message ?? String(err), true);
        let unsent = group;
        if (err instanceof PartialSendError) {
          // Some recipients were reached before the failure: keep them, retry only the rest.
          for (const o of err.outcomes) {
            if (o.outcome === 'accepted')
              accepted.push({ id: o.deliveryId, providerMessageId: o.providerMessageId ?? o.deliveryId });
            else invalid.push({ id: o.deliveryId, error: o.error });
          }
          const left = new Set(err.unsent);
          unsent = group.filter((d) => left.has(d._id));
        }
        if (!e.retryable) {
          await repo.failReserved(unsent, new Date(), e.message);
        } else if (!mayHaveBeenAccepted(e)) {
          await repo.releaseReservations(unsent, new Date(), e.message);
          failure = e;
        } else {
          // The request may have been accepted: leave the records reserved for the next attempt to
          // reconcile, which it may do at once (no live sender waits for that answer any more).
          await repo.abandonRequests(unsent.flatMap((d) => (d.request ? [d.request] : [])));
          leftReserved = true;
          failure = e;
        }
      }
    }
    lap('provider');
    return { accepted, invalid, failure, leftReserved };
  }

  /** Writes what the provider answered to a batch sendOnly sent, and closes its requests. */
  async function recordSent(scope: Scope, records: Reserved[], sent: Sent): Promise<void> {
    const { accepted, invalid, leftReserved } = sent;
    // SMS and calls report back; the other channels never will: handing over is all we can know.
    const withReceipts = scope.channel === 'sms' || scope.channel === 'voice';
    // SMS answers go into their requests, one write per batch (the receipt writes each record once);
    // with a request left open for the reconciliation, on the records, as for the other channels.
    if (scope.channel === 'sms' && !leftReserved)
      await repo.recordAnswers(records, accepted, invalid, new Date(), 'accepted by the provider', runtime.heartbeat);
    else
      await repo.recordSendResults(
        records,
        accepted,
        invalid,
        new Date(),
        withReceipts ? 'accepted by the provider' : 'handed over (this channel sends no receipts)',
        withReceipts ? 'accepted' : 'delivered',
        runtime.heartbeat,
      );
    if (!leftReserved)
      await repo.closeRequests(
        records.flatMap((d) => (d.request ? [d.request] : [])),
        new Date(),
      );
  }

  /** Sends one batch of one kind on one channel; one request per distinct text. */
  async function sendBatch(input: SendBatchInput, how: BatchHow): Promise<SendBatchResult> {
    const channelName = input.channel ?? 'sms';
    const scope: Scope = { incidentId: input.incidentId, kind: input.kind, channel: channelName };
    if (!how.knownOpen && !(await repo.hasOpen(scope))) return { accepted: 0, invalid: 0, reconciled: 0, remaining: 0 };
    const channel = deps.channels[channelName];
    if (!channel) {
      // Staff are never left unwarned: a call to the NOC that this worker cannot make goes by SMS to the same number.
      if (input.kind === 'escalation' && channelName === 'voice' && deps.channels.sms)
        await escalateBySmsInstead(scope);
      // Not a reason to hold up the other channels: these give up here, with the reason recorded.
      const gone = await repo.giveUpDue(scope, new Date(), `channel ${channelName} is not configured on this worker`);
      logger.warn(
        { incidentId: input.incidentId, channel: channelName, records: gone },
        'messages for a channel this worker does not have were given up',
      );
      return { accepted: 0, invalid: 0, reconciled: 0, remaining: 0 };
    }
    const { phases, lap } = phaseTimer();
    const reconciled = how.reconcile === false ? 0 : await reconcile(scope);
    lap('reconcile');
    let loading = how.loaded?.get(input.incidentId);
    if (!loading) {
      loading = load(input.incidentId);
      how.loaded?.set(input.incidentId, loading);
      loading.catch(() => how.loaded?.delete(input.incidentId));
    }
    const { incident, textOf } = await loading;
    const size = Math.min(input.batchSize ?? channel.maxBatch, channel.maxBatch);

    // The account's limits are taken for what will be sent, before reserving it (counting is a
    // scan: only when there are limits to respect).
    if (channelName === 'sms' && limited()) {
      const waiting = await repo.dueCount(scope, size, new Date());
      if (waiting === 0) return { accepted: 0, invalid: 0, reconciled, remaining: 0 };
      await takeSmsCapacity(waiting);
    }

    lap('load');
    const { records, more, held, exhausted } = await repo.reserveNextBatch(scope, size, new Date(), how.exhausted);
    for (const page of exhausted ?? []) how.exhausted?.add(page);
    lap('reserve');
    if (records.length === 0) return { accepted: 0, invalid: 0, reconciled, remaining: 0, held };
    const { accepted, invalid, failure } = await sendTaken(scope, channel, records, incident, textOf, lap);
    if (failure) {
      logger.warn(
        { incidentId: input.incidentId, kind: input.kind, channel: channelName, status: failure.status },
        `send failed, will retry: ${failure.message}`,
      );
      throw new RetryLater(failure.message, 'ChannelUnavailable', failure.retryAfterMs);
    }
    // A batch that was not full took every record that was due: nothing is left to count.
    const remaining =
      records.length < size || !more ? 0 : how.exactRemaining === false ? 1 : await repo.countDue(scope, new Date());
    lap('count');
    logger.debug(
      {
        incidentId: input.incidentId,
        kind: input.kind,
        channel: channelName,
        records: records.length,
        accepted: accepted.length,
        held,
        ms: phases,
      },
      'batch sent',
    );
    return { accepted: accepted.length, invalid: invalid.length, reconciled, remaining, held };
  }

  /**
   * Sends what is due of these kinds on every channel, batch after batch, for at most about
   * `budgetMs`; one call instead of one per batch keeps the workflow's history short.
   */
  async function sendDue(input: {
    incidentId: string;
    kinds: MessageKind[];
    batchSize?: number;
    budgetMs?: number;
  }): Promise<SendDueResult> {
    const started = Date.now();
    const total: SendDueResult = { accepted: {}, invalid: 0, remaining: 0 };
    // At least one batch per call, however small the budget: a budget spent on looking at empty
    // channels would otherwise hand back without sending anything, again and again.
    let batches = 0;
    // Due records other senders had claimed, as last seen per kind and channel.
    const held = new Map<string, number>();
    const loaded: LoadedIncidents = new Map();
    // Every pair planned on: one with nothing left costs a look at its unfinished reservations and
    // at its pages, a few milliseconds (asking the records which pairs have work left would read
    // all of them on FerretDB).
    const open = new Set(
      (await repo.scopesWithRecords(input.incidentId, input.kinds)).map((p) => `${p.kind}/${p.channel}`),
    );
    for (const kind of input.kinds) {
      for (const channel of ALL_CHANNELS) {
        if (!open.has(`${kind}/${channel}`)) continue;
        const exhausted = new Set<number>();
        for (let first = true; ; first = false) {
          if (batches > 0 && Date.now() - started > (input.budgetMs ?? 60_000)) {
            // That something is left is all the caller needs: one look, not a count per channel
            // and kind (a count reads every planned record on FerretDB).
            if (
              total.remaining === 0 &&
              (await repo.anyDue({ incidentId: input.incidentId, kind, channel }, new Date()))
            )
              total.remaining = 1;
            break;
          }
          let r: SendBatchResult;
          try {
            r = await sendBatch(
              { incidentId: input.incidentId, kind, channel, batchSize: input.batchSize },
              { knownOpen: true, reconcile: first, exactRemaining: false, loaded, exhausted },
            );
          } catch (err) {
            // With progress made, hand back instead of failing the whole call: Temporal's backoff
            // grows with every failed attempt of one activity, and one failed batch in twenty
            // must not make the next ones wait ten seconds each.
            const progress = Object.values(total.accepted).some((n) => (n ?? 0) > 0);
            if (!progress || !(err instanceof RetryLater)) throw err;
            // What failed is still due: "some are left" is what the workflow needs.
            total.remaining += 1;
            total.retryAfterMs = Math.max(1000, err.delayMs ?? 0);
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
      logger.info(
        { incidentId: input.incidentId, held: stillHeld },
        'due messages claimed by another sender: looking again later',
      );
    }
    return total;
  }

  /**
   * Sends, as a planner inserts them, the messages due at once (an outage with no grace delay, a
   * restoration by day). Taken with the requests of their new page (reserveFresh), they need no
   * read of their page, and the first batch is at Plivo while the rest is being planned. What this
   * leaves (not due yet, a channel this worker lacks, a page already taken, a failed request; all of
   * it under Plivo's account limits) is sent by the workflow's rounds, as everything was before; `leftDue` counts
   * what was due and is left. `stop` is asked before each batch: an incident resolved meanwhile
   * leaves its notices to the resolution.
   */
  function whilePlanning(stop?: () => Promise<boolean>, batchSize?: number): PlanningSender {
    const out = { sent: {} as Partial<Record<MessageKind, number>>, leftDue: 0 };
    const loaded: LoadedIncidents = new Map();
    // With Plivo's account limits the account sets the pace, and the rounds keep it (they count what
    // is due before taking capacity): nothing to gain here, so all is left to them.
    let done = limited();
    let failedInARow = 0;
    /** The write of the last batch's answer (sendFresh). */
    let recording: Promise<void> = Promise.resolve();
    async function onPlanned(inserted: Delivery[]): Promise<void> {
      const now = new Date();
      const due = inserted.filter((d) => d.state === 'planned' && (!d.notBefore || d.notBefore <= now));
      if (due.length === 0) return;
      if (!done && stop && (await stop())) done = true;
      const groups = new Map<string, Delivery[]>();
      for (const d of due) pushTo(groups, `${d.channel}|${d.incidentId}|${d.kind}|${d.page}`, d);
      // SMS first, the public feed last (its social posts may wait for a network), as the rounds send.
      const order = (g: Delivery[]) => ALL_CHANNELS.indexOf(g[0].channel);
      for (const ofPage of [...groups.values()].sort((a, b) => order(a) - order(b))) {
        const channel = deps.channels[ofPage[0].channel];
        const size = channel ? Math.min(batchSize ?? channel.maxBatch, channel.maxBatch) : 0;
        let taken = 0;
        // The page's requests in order (1, 2, ...), each a batch: the first that loses leaves the rest of the page to the rounds.
        for (let seq = 1; channel && !done && taken < ofPage.length; seq++) {
          const batch = ofPage.slice(taken, taken + size);
          if (!(await sendFresh(channel, batch, seq))) break;
          taken += batch.length;
        }
        out.leftDue += ofPage.length - taken;
      }
    }
    /** Sends one batch of fresh records of one page as its request `seq`; false when it could not be taken. */
    async function sendFresh(channel: Channel, batch: Delivery[], seq: number): Promise<boolean> {
      const scope: Scope = { incidentId: batch[0].incidentId, kind: batch[0].kind, channel: batch[0].channel };
      const { phases, lap } = phaseTimer();
      let loading = loaded.get(scope.incidentId);
      if (!loading) loaded.set(scope.incidentId, (loading = load(scope.incidentId)));
      const { incident, textOf } = await loading;
      const records = await repo.reserveFresh(scope, batch, new Date(), seq);
      lap('reserve');
      if (records.length === 0) return false;
      runtime.heartbeat();
      const r = await sendOnly(scope, channel, records, incident, textOf, lap);
      // The answer is written while the next batch goes out (one write of its request, 50-150 ms on
      // FerretDB): the batches follow each other at Plivo's pace. One write waits at most; its failure
      // fails the planning at the next batch or at the end (the request stays open: the retry's
      // reconciliation settles it, as after any lost answer).
      await recording;
      recording = recordSent(scope, records, r);
      recording.catch(() => undefined);
      out.sent[scope.kind] = (out.sent[scope.kind] ?? 0) + r.accepted.length;
      logger.debug({ ...scope, records: records.length, ms: phases }, 'batch sent while planning');
      if (!r.failure) {
        failedInARow = 0;
        return true;
      }
      // What failed is released or left for the reconciliation, with the rest of its page: the rounds
      // take them from here. The next pages are still sent as planned (one failed request in five, as
      // the drill makes them, left 19 of 20 pages to the rounds, which must read them back), unless
      // the provider keeps failing (then the rounds' backoff sets the pace). A 429 is waited out
      // here when its Retry-After is short, as the rounds would (leaving everything to them after
      // one random 429 made a 20,000 restoration read its pages back, 0.5-4 s a batch).
      failedInARow++;
      const wait = r.failure.status === 429 ? (r.failure.retryAfterMs ?? 1000) : 0;
      if (failedInARow >= MAX_FAILED_WHILE_PLANNING || wait > MAX_WAIT_WHILE_PLANNING_MS) done = true;
      else if (wait) await runtime.sleep(wait);
      logger.warn(
        { incidentId: scope.incidentId, kind: scope.kind, channel: scope.channel, status: r.failure.status },
        `send while planning failed, left to the next round${done ? ' with all that follows' : ' with the rest of its page'}: ${r.failure.message}`,
      );
      return false;
    }
    return {
      onPlanned,
      async result() {
        await recording;
        return { ...out, sent: { ...out.sent } };
      },
    };
  }

  return {
    whilePlanning,
    /** The next batch of one kind on one channel, for a caller that knows nothing of claims: held records count as remaining. */
    async sendNextBatch(input: SendBatchInput): Promise<SendBatchResult> {
      const r = await sendBatch(input, { knownOpen: false });
      return { ...r, remaining: r.remaining + (r.held ?? 0) };
    },
    sendDue,
  };
}

/** A batch sent: the provider's answer, and what failed. `leftReserved`: requests left open for a reconciliation. */
interface Sent {
  accepted: AcceptedOutcome[];
  invalid: { id: string; error: string }[];
  failure?: ChannelError;
  leftReserved?: boolean;
}

/** Requests failed one after another that make a planning leave the rest of its sending to the rounds. */
const MAX_FAILED_WHILE_PLANNING = 3;
/** The longest Retry-After a planning waits out before it sends on; a longer one leaves the sending to the rounds. */
const MAX_WAIT_WHILE_PLANNING_MS = 5000;
