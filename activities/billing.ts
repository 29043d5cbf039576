/**
 * Billing activities: the monthly charges of the SMS option, in pages of subscribers, and the
 * billed stage of an incident (what its messages cost). Every write is an insert into the
 * append-only ledger under a key (store/ledger.ts), so an activity retried, a month re-run or an
 * incident billed twice adds nothing the first time did not.
 */
import { ApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import type { Store } from '../store/db';
import type { Logger } from '../domain/log';
import type { Incident, IncidentCost } from '../domain/types';
import { billingSettingsFromEnv } from '../config';
import type { BillingSettings } from '../billing/settings';
import { chargeDescription, chargeFor, type BillingTerms, type OptionFacts } from '../billing/charges';
import { CHANNELS, CostAccumulator, type CostFacts } from '../billing/costs';
import { microsToCents } from '../billing/money';
import { isMonth, monthOf } from '../billing/month';
import { monthBounds, monthHasEnded, type MonthBounds } from '../billing/period';
import {
  appendToLedger,
  closeBillingRun,
  incidentCostEntries,
  incidentCostKey,
  monthTotals,
  openBillingRun,
  subscriptionKey,
  type IncidentCostEntry,
  type MonthSummary,
  type SubscriptionEntry,
} from '../store/ledger';
import { settleAnswered } from '../store/send-requests';

export interface BillingDeps {
  store: Store;
  logger: Logger;
  /** Price, VAT, proration, provider rates; the BILLING_* variables when not given. */
  billing?: BillingSettings;
}

export interface ChargePageInput {
  month: string;
  terms: BillingTerms;
  /** The last contract id of the previous page; none for the first page. */
  after?: string;
  /** Subscribers per page (default 20,000), read through one cursor in batches of 1,000. */
  limit?: number;
}

export interface ChargePageResult {
  /** Subscribers read, and those with a charge for the month (new or already in the ledger). */
  considered: number;
  charged: number;
  added: number;
  existing: number;
  /** Where the next page starts; absent after the last page. */
  next?: string;
}

/**
 * Subscribers per page: one query each. FerretDB reads the whole collection for every query with
 * a sort (measured: about 2 s per 30,000 subscribers, whatever the limit), so pages are large and
 * few, and each is read through one cursor, in batches of CHARGE_BATCH, one ledger insert each.
 */
export const DEFAULT_CHARGE_PAGE = 20_000;
const CHARGE_BATCH = 1000;

function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined; // a test calling the function directly
  }
}

/** Heartbeats when running as an activity; a no-op when a test calls the function directly. */
function heartbeat(details?: unknown): void {
  activityContext()?.heartbeat(details);
}

/** What writes an entry: the workflow the activity runs for. */
function source(fallback: string): string {
  const id = activityContext()?.info.workflowExecution?.workflowId;
  return id ? `workflow:${id}` : fallback;
}

/** A subscriber's ledger entry for the month, or none when the option owes nothing for it. */
function chargeEntry(s: OptionFacts, bounds: MonthBounds, input: ChargePageInput, source: string): SubscriptionEntry[] {
  const c = chargeFor(s, bounds, input.terms);
  if (!c) return [];
  return [
    {
      _id: subscriptionKey(s._id, input.month),
      type: 'subscription',
      period: input.month,
      subscriberId: s._id,
      currency: input.terms.currency,
      amountCents: c.netCents,
      unitPriceCents: input.terms.priceCents,
      vatBasisPoints: input.terms.vatBasisPoints,
      vatCents: c.vatCents,
      grossCents: c.grossCents,
      proration: input.terms.proration,
      daysActive: c.daysActive,
      daysInMonth: c.daysInMonth,
      activeFrom: c.from,
      activeTo: c.to,
      description: chargeDescription(c, input.terms.proration),
      createdAt: new Date(),
      source,
    },
  ];
}

export function createBillingActivities(deps: BillingDeps) {
  const { store, logger } = deps;
  let settings = deps.billing;
  const billing = (): BillingSettings => (settings ??= billingSettingsFromEnv());

  return {
    /**
     * Opens the month's run (or finds it): returns the terms to bill it on, those of its first
     * run. Refuses a month that is not over yet, or is not a month.
     */
    async beginBillingMonth(input: { month: string }): Promise<{ month: string; terms: BillingTerms }> {
      if (!isMonth(input.month))
        throw ApplicationFailure.create({
          type: 'InvalidMonth',
          message: `${JSON.stringify(input.month)} is not a month: write YYYY-MM`,
          nonRetryable: true,
        });
      const now = new Date();
      if (!monthHasEnded(input.month, now))
        throw ApplicationFailure.create({
          type: 'MonthNotEnded',
          message: `${input.month} is not over yet (Italian time): a month is billed once it has ended`,
          nonRetryable: true,
        });
      const run = await openBillingRun(store, input.month, billing().terms, now);
      logger.info({ month: input.month, terms: run.terms }, 'billing month');
      return { month: input.month, terms: run.terms };
    },

    /**
     * Charges one page of subscribers, in contract id order after `after`: one query, read in
     * batches of 1,000 with only the fields that decide the charge, one ledger insert per batch.
     * It heartbeats where it got to; a retried attempt carries on from there.
     */
    async chargeSubscribersPage(input: ChargePageInput): Promise<ChargePageResult> {
      const limit = input.limit ?? DEFAULT_CHARGE_PAGE;
      const bounds = monthBounds(input.month);
      const from = source(`billing:${input.month}`);
      const resumed = activityContext()?.info.heartbeatDetails as
        { done: ChargePageResult & { read: number } } | undefined;
      const done = resumed?.done ?? { considered: 0, charged: 0, added: 0, existing: 0, read: 0 };
      const start = done.next ?? input.after;
      const beat = setInterval(() => heartbeat({ done }), 5000);
      try {
        let batch: OptionFacts[] = [];
        const flush = async () => {
          const entries = batch.flatMap((s) => chargeEntry(s, bounds, input, from));
          const r = await appendToLedger(store, entries);
          done.considered += batch.length;
          done.read += batch.length;
          done.charged += entries.length;
          done.added += r.added;
          done.existing += r.existing;
          done.next = batch[batch.length - 1]!._id;
          batch = [];
          heartbeat({ done });
        };
        if (done.read < limit) {
          // Every subscriber is read: a filter here makes FerretDB slower, not faster.
          const cursor = store.subscribers
            .find(start !== undefined ? { _id: { $gt: start } } : {}, {
              projection: { _id: 1, smsAlerts: 1, optedOut: 1, optedOutAt: 1 },
            })
            .sort({ _id: 1 })
            .limit(limit - done.read)
            .batchSize(CHARGE_BATCH);
          for await (const s of cursor) {
            batch.push(s as OptionFacts);
            if (batch.length >= CHARGE_BATCH) await flush();
          }
          if (batch.length) await flush();
        }
      } finally {
        clearInterval(beat);
      }
      const { read, next, ...counts } = done;
      return { ...counts, ...(read >= limit && next !== undefined ? { next } : {}) };
    },

    /** Sums the month from the ledger and marks its run complete. */
    async finishBillingMonth(input: { month: string; terms: BillingTerms }): Promise<MonthSummary> {
      const totals = await monthTotals(store, input.month);
      const summary = totals.find((t) => t.currency === input.terms.currency) ??
        totals[0] ?? {
          month: input.month,
          currency: input.terms.currency,
          lines: 0,
          netCents: 0,
          vatCents: 0,
          grossCents: 0,
        };
      await closeBillingRun(store, summary, new Date());
      logger.info({ ...summary }, 'billing month done');
      return summary;
    },

    /**
     * The billed stage: what the incident's messages cost, per channel, from the receipts' amounts
     * or the rate table, into the ledger (once) and onto the incident document. Streams the
     * delivery records; keeps a few numbers per channel in memory.
     */
    async billIncident(input: { incidentId: string }): Promise<IncidentCost> {
      const incident = (await store.incidents.findOne(
        { _id: input.incidentId },
        { projection: { _id: 1, openedAt: 1 } },
      )) as Pick<Incident, '_id' | 'openedAt'> | null;
      if (!incident)
        throw ApplicationFailure.create({
          type: 'IncidentNotFound',
          message: `incident ${input.incidentId} is not in the database`,
          nonRetryable: true,
        });
      // Messages whose answer still waits for its receipt (a watch cut short by the end) are billed as accepted.
      const settledAt = new Date();
      await settleAnswered(store, { incidentId: input.incidentId }, settledAt, settledAt);
      const period = monthOf(incident.openedAt);
      const { rates } = billing();
      const costs = new CostAccumulator(rates);
      const cursor = store.deliveries
        .find(
          { incidentId: input.incidentId },
          {
            projection: {
              _id: 0,
              channel: 1,
              state: 1,
              to: 1,
              units: 1,
              cost: 1,
              currency: 1,
              invalidRecipient: 1,
              history: 1,
            },
          },
        )
        .batchSize(1000);
      let seen = 0;
      // On a timer: the query itself may take a while on a large deliveries collection.
      const beat = setInterval(() => heartbeat(), 5000);
      try {
        for await (const d of cursor) {
          costs.add(d as unknown as CostFacts);
          seen++;
        }
      } finally {
        clearInterval(beat);
      }
      const rows = costs.result();
      const now = new Date();
      const from = source(`incident:${input.incidentId}`);
      // One entry per channel; a channel's second currency, if ever, gets a key of its own.
      const primary = new Map<string, (typeof rows)[number]>();
      for (const r of rows) {
        const p = primary.get(r.channel);
        if (!p || (r.currency === rates.currency && p.currency !== rates.currency)) primary.set(r.channel, r);
      }
      const entries: IncidentCostEntry[] = rows.map((r) => {
        return {
          _id: incidentCostKey(input.incidentId, r.channel, primary.get(r.channel) === r ? undefined : r.currency),
          type: 'incident_cost',
          period,
          incidentId: input.incidentId,
          channel: r.channel,
          currency: r.currency,
          messages: r.messages,
          units: r.units,
          amountMicros: r.amountMicros,
          amountCents: microsToCents(r.amountMicros),
          fromReceipts: r.fromReceipts,
          fromRateTable: r.fromRateTable,
          unpriced: r.unpriced,
          createdAt: now,
          source: from,
        };
      });
      const added = await appendToLedger(store, entries);
      // The incident shows what the ledger holds: on a repeat, the first run's entries.
      const stored = await incidentCostEntries(store, input.incidentId);
      const cost = costSummary(stored, period, now);
      await store.incidents.updateOne({ _id: input.incidentId }, { $set: { cost } });
      logger.info(
        { incidentId: input.incidentId, messages: seen, added: added.added, totals: cost.totals },
        'incident billed',
      );
      return cost;
    },
  };
}

export function costSummary(entries: IncidentCostEntry[], period: string, billedAt: Date): IncidentCost {
  const totals = new Map<string, number>();
  for (const e of entries) totals.set(e.currency, (totals.get(e.currency) ?? 0) + e.amountMicros);
  return {
    billedAt: entries.reduce((min, e) => (e.createdAt < min ? e.createdAt : min), billedAt),
    period: entries[0]?.period ?? period,
    channels: [...entries]
      .sort((a, b) => CHANNELS.indexOf(a.channel) - CHANNELS.indexOf(b.channel) || a._id.localeCompare(b._id))
      .map((e) => ({
        channel: e.channel,
        currency: e.currency,
        messages: e.messages,
        units: e.units,
        amountMicros: e.amountMicros,
        amountCents: e.amountCents,
        fromReceipts: e.fromReceipts,
        fromRateTable: e.fromRateTable,
        unpriced: e.unpriced,
        ledgerKey: e._id,
      })),
    totals: [...totals]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([currency, amountMicros]) => ({ currency, amountMicros, amountCents: microsToCents(amountMicros) })),
  };
}

export type BillingActivities = ReturnType<typeof createBillingActivities>;
