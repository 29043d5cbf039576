/**
 * The sweeper: watches over what was sent. It applies the stored receipts, asks the provider
 * about messages whose receipt is overdue, retries what was lost, and plans a fallback on the next
 * channel for what has spent its attempts (the decisions are delivery/watchdog.ts's).
 */
import type { Channel, ChannelName } from '../channels/channel';
import { ChannelError } from '../channels/channel';
import type { PlivoSmsChannel } from '../channels/sms-plivo';
import type { Delivery, DeliveryChannel, MessageKind } from '../domain/types';
import type { Logger } from '../domain/log';
import { PROVIDER_STATES } from './lifecycle';
import { fallbackTarget, origin } from './fallback';
import type { WatchdogPolicy } from './watchdog';
import type { DeliveryRepository, PlanInput, ProviderReport, Runtime, Scope, WaitingAnswer } from './ports';
import { ALL_CHANNELS } from './sender';
import { eachParallel } from '../domain/each-parallel';
import { phaseTimer } from './phase-timer';

export interface SweeperDeps {
  repo: DeliveryRepository;
  channels: Partial<Record<ChannelName, Channel>>;
  sms?: PlivoSmsChannel;
  /** Channels to try, in order, when one expires for a recipient. */
  fallbackOrder?: DeliveryChannel[];
  runtime: Runtime;
  logger: Logger;
}

export interface SweepInput extends WatchdogPolicy {
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

export interface SweepAllResult {
  retried: number;
  fellBack: number;
  inFlight: number;
  /** When the next held message falls due (ISO), or null. */
  nextDueAt: string | null;
}

/** Overdue SMS asked about at Plivo in one round. */
const OVERDUE_CHECKS = 1000;
/** Questions to Plivo under way at once (each a GET of one message). */
const OVERDUE_ASKED_AT_ONCE = 20;
/** How often a sweep says it is alive between its checkpoints (the worker sends one a second at most). */
const HEARTBEAT_EVERY_MS = 1000;

export function createSweeper(deps: SweeperDeps) {
  const { repo, logger, runtime } = deps;
  /**
   * Where a sweep may stop when the workflow has given it up (resolved meanwhile: it does not wait for
   * the sweep): before a scope, and before a scope's retries and fallbacks. Nothing is half done there:
   * the receipts, answers and Plivo's reports written so far are each a conditional write that the next
   * sweep would make too. Never between expiring records and planning their fallbacks: an expired record
   * is not looked at again, so its fallback would never be planned.
   */
  const checkpoint = () => {
    runtime.heartbeat();
    runtime.stopIfCancelled?.();
  };

  /**
   * For SMS whose receipt is overdue, ask Plivo what became of them (OVERDUE_ASKED_AT_ONCE at a time,
   * at most OVERDUE_CHECKS a round): first the answers still waiting in their requests, unwritten,
   * then the records written `accepted` or `sent` whose receipt is late. Each answer is recorded as a
   * receipt: a final one (or `sent`) writes the record once, with its answer; Plivo's undelivered and
   * failed are then resent by the sweep, its queued and sent get another timeout (an answer still
   * queued is written `accepted` now). Returns the messages that may be resent as lost: only those
   * Plivo says it does not know (404; an unwritten answer among them is written first, at its own
   * time, for the sweep to find it overdue). A message whose check failed (Plivo unreachable, 5xx,
   * 429) or was not reached this round is never taken for lost: it may well have been delivered, its
   * receipt late (at 20,000 recipients the receipts queue up), and a resend would text the subscriber
   * twice; the next round asks again. `answered` counts the waiting answers that are no longer waiting.
   */
  async function askProviderAboutOverdue(
    scope: Scope,
    stale: Date,
    waiting: WaitingAnswer[],
  ): Promise<{ lost: Set<string>; answered: number }> {
    const lost = new Set<string>();
    const sms = deps.sms;
    if (!sms) return { lost, answered: 0 };
    const answerOf = new Map(waiting.map((a) => [a.providerMessageId, a]));
    const written = await repo.overdue(scope, stale, Math.max(0, OVERDUE_CHECKS - waiting.length));
    const asking = [...answerOf.keys(), ...written.map((d) => d.providerMessageId)];
    const reports: ProviderReport[] = [];
    let unreachable = 0;
    await eachParallel(asking, OVERDUE_ASKED_AT_ONCE, async (uuid) => {
      runtime.heartbeat();
      try {
        const a = await sms.messageState(uuid);
        if (PROVIDER_STATES[a.state])
          reports.push({
            messageUuid: uuid,
            status: a.state,
            units: a.units,
            totalAmount: a.totalAmount,
            errorCode: a.errorCode,
            receivedAt: new Date(),
          });
      } catch (err) {
        if (err instanceof ChannelError && err.status === 404) lost.add(uuid);
        else unreachable++;
      }
    });
    if (asking.length)
      logger.debug(
        {
          incidentId: scope.incidentId,
          kind: scope.kind,
          overdue: asking.length,
          unwritten: waiting.length,
          lost: lost.size,
          states: Object.fromEntries(
            [...new Set(reports.map((r) => r.status))].map((st) => [st, reports.filter((r) => r.status === st).length]),
          ),
        },
        'overdue messages asked about at the provider',
      );
    if (unreachable)
      logger.info(
        { incidentId: scope.incidentId, kind: scope.kind, unreachable },
        'overdue messages Plivo could not be asked about: asking again next round, not resending',
      );
    const now = new Date();
    if (reports.length) await repo.applyReports(reports, now);
    // Still queued at the provider (an answer), queued or sent (a record): not lost, only slow. Another timeout.
    const slow = reports.filter((r) => r.status === 'queued' || r.status === 'sent');
    await repo.writeAnswers(
      slow.flatMap((r) => (r.status === 'queued' && answerOf.has(r.messageUuid) ? [answerOf.get(r.messageUuid)!] : [])),
      now,
    );
    await repo.giveMoreTime(
      slow.filter((r) => !answerOf.has(r.messageUuid)).map((r) => r.messageUuid),
      now,
    );
    await repo.writeAnswers([...lost].flatMap((uuid) => (answerOf.has(uuid) ? [answerOf.get(uuid)!] : [])));
    const answered =
      reports.filter((r) => answerOf.has(r.messageUuid)).length + [...lost].filter((u) => answerOf.has(u)).length;
    return { lost, answered };
  }

  /**
   * The next channel of the order after the one that expired (the whole order when it is not in
   * it) that this worker has and that can reach this subscriber. The rules' order (`fallback`)
   * wins over the worker's.
   */
  async function fallbackFor(d: Delivery, fallback?: DeliveryChannel[]): Promise<PlanInput | null> {
    // The public feed and webhooks reach no subscriber of their own: nothing to fall back from.
    if (d.channel !== 'sms' && d.channel !== 'voice' && d.channel !== 'email') return null;
    const subscriber = await repo.subscriber(d.subscriberId);
    if (!subscriber) return null;
    const next = fallbackTarget(
      d,
      subscriber,
      fallback ?? deps.fallbackOrder ?? ['sms', 'voice', 'email'],
      (c) => !!deps.channels[c],
    );
    return next ? { ...origin(d), ...next, fallbackOf: d._id } : null;
  }

  /**
   * Applies stored receipts, then retries what was not delivered and plans fallbacks for what
   * expired. The workflow calls it on a timer until nothing is in flight.
   */
  async function sweepDeliveries(input: SweepInput): Promise<SweepOutput> {
    await repo.applyStoredReceipts();
    runtime.heartbeat();
    return sweepChannel(input);
  }

  /** sweepDeliveries after the receipts are applied: sweepAll applies them once for all its channels. */
  async function sweepChannel(input: SweepInput): Promise<SweepOutput> {
    const started = Date.now();
    const { phases, lap } = phaseTimer();
    const channel = input.channel ?? 'sms';
    const scope: Scope = { incidentId: input.incidentId, kind: input.kind, channel };
    // SMS answers wait in their requests for the receipt that writes them with it (they count as in
    // flight meanwhile); Plivo is asked about those that got none within the delivery timeout, and
    // only then is anything written (askProviderAboutOverdue). (Under a storm of callbacks a receipt
    // may come minutes after the answer: writing the answer first wrote most records twice.)
    // Overdue by the receipts applied, not by the wall clock: receipts stored but not applied yet
    // (a storm of callbacks) are not late (store/receipts.ts receiptsAppliedUpTo).
    const receiptsClock = repo.receiptsAppliedUpTo(new Date()).getTime();
    const settleBefore = new Date(receiptsClock - input.deliveryTimeoutMs);
    const asking = channel === 'sms' && !!deps.sms;
    const answers = asking
      ? await repo.waitingAnswers(scope, settleBefore, OVERDUE_CHECKS, new Date())
      : { waiting: channel === 'sms' ? await repo.settleAnswered(scope, settleBefore, new Date()) : 0, overdue: [] };
    lap('settle');
    // SMS: an overdue message is resent only when Plivo says it does not know it (or, through its
    // receipt, that it was not delivered). Other channels have no such check: overdue is lost.
    const asked = asking ? await askProviderAboutOverdue(scope, settleBefore, answers.overdue) : undefined;
    const lostAtProvider = asked?.lost;
    const answersInFlight = answers.waiting - (asked?.answered ?? 0);
    lap('overdue');
    checkpoint();
    // Once an outage's end is being planned, its notices are neither retried nor fallen back: the
    // resolution reads them to decide what each becomes (a restoration, one combined message), and
    // it no longer waits for a sweep under way (workflows/delivery-loop.ts); the closing rounds
    // never send an outage notice. prepareResolution writes `endedAt` before it reads them.
    if (input.kind === 'outage' && (await repo.incident(scope.incidentId))?.endedAt)
      return { retried: 0, expired: 0, fellBack: 0, fallbackChannels: [], inFlight: answersInFlight };
    const now = new Date();
    const overdueMayRetry = lostAtProvider
      ? (d: Delivery) => !!d.providerMessageId && lostAtProvider.has(d.providerMessageId)
      : undefined;
    const r = await repo.sweepUndelivered(scope, input, now, overdueMayRetry);
    lap('retry');
    const fallbacks: PlanInput[] = [];
    for (const d of r.expired) {
      const next = await fallbackFor(d, input.fallback);
      if (next) fallbacks.push(next);
    }
    const planned = fallbacks.length ? (await repo.plan(fallbacks, now, 'fallback')).planned : 0;
    const fallbackChannels = [...new Set(fallbacks.map((f) => f.channel))];
    logger.debug(
      {
        incidentId: input.incidentId,
        kind: input.kind,
        channel,
        retried: r.retried,
        expired: r.expired.length,
        inFlight: r.inFlight + answersInFlight,
        ms: Date.now() - started,
        phases,
      },
      'delivery sweep',
    );
    const inFlight = r.inFlight + answersInFlight;
    return { retried: r.retried, expired: r.expired.length, fellBack: planned, fallbackChannels, inFlight };
  }

  /** The watchdog over every channel at once: retries, fallbacks, and when to look again. */
  async function sweepAll(
    input: { incidentId: string; kinds: MessageKind[]; fallback?: DeliveryChannel[] } & WatchdogPolicy,
  ): Promise<SweepAllResult> {
    // Heartbeats during the long steps too (applying a few thousand receipts takes seconds): a cancel
    // comes only in the answer to one, and the sweep stops at its next checkpoint.
    const beat = setInterval(() => runtime.heartbeat(), HEARTBEAT_EVERY_MS);
    try {
      return await sweepAllScopes(input);
    } finally {
      clearInterval(beat);
    }
  }

  async function sweepAllScopes(
    input: { incidentId: string; kinds: MessageKind[]; fallback?: DeliveryChannel[] } & WatchdogPolicy,
  ): Promise<SweepAllResult> {
    const out: SweepAllResult = { retried: 0, fellBack: 0, inFlight: 0, nextDueAt: null };
    const pairs = await repo.scopesWithRecords(input.incidentId, input.kinds);
    const applying = Date.now();
    await repo.applyStoredReceipts();
    logger.debug({ incidentId: input.incidentId, ms: Date.now() - applying }, 'stored receipts applied');
    const used = new Set(pairs.map((p) => `${p.kind}/${p.channel}`));
    for (const kind of input.kinds) {
      for (const channel of ALL_CHANNELS) {
        if (!used.has(`${kind}/${channel}`)) continue;
        checkpoint();
        const r = await sweepChannel({
          incidentId: input.incidentId,
          kind,
          channel,
          deliveryTimeoutMs: input.deliveryTimeoutMs,
          maxAttempts: input.maxAttempts,
          ...(input.fallback ? { fallback: input.fallback } : {}),
        });
        out.retried += r.retried;
        out.fellBack += r.fellBack;
        out.inFlight += r.inFlight;
      }
    }
    checkpoint();
    // Planned records already due (an earlier attempt of this sweep, timed out but still running,
    // may have moved them back to planned; or a sender left them) are due now: the workflow must
    // send before it may call the notices sent. (Without this, a 20,000 drill took 2,877 retries
    // for "all sent" and never sent them.)
    // With nothing in flight either, the workflow may take this for "all done" and stop looking: the
    // pages seen quiet are read too, so that a change whose note was lost (store/quiet-pages.ts) is not
    // left behind. With messages in flight it comes back anyway.
    const now = new Date();
    const dueNow = await repo.anyDueIn(
      pairs.map((p) => ({ incidentId: input.incidentId, ...p })),
      now,
      out.inFlight === 0,
    );
    const next = dueNow ? now : await repo.nextDueAt(input.incidentId, input.kinds, now);
    out.nextDueAt = next ? next.toISOString() : null;
    return out;
  }

  return { sweepDeliveries, sweepAll };
}
