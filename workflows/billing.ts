/**
 * The monthly billing run: charges every subscriber whose paid SMS option was active in a month,
 * in pages of contract ids, into the append-only ledger. Started by the monthly Schedule
 * (billing/schedule.ts) or by hand (API, CLI) to re-run or backfill a month; every run of a month
 * gives the same ledger, since each charge's key is its contract and month.
 *
 * Which month: the input's, when given (by hand). A scheduled run is given none and bills the
 * month that ended before the Schedule's nominal action time: the `TemporalScheduledStartTime`
 * search attribute that Temporal sets on every workflow a Schedule starts (so a run started late,
 * after an outage, or caught up, still bills the month it was scheduled for); failing that, the
 * run's own start time. Both are recorded in history, so replay decides the same; the time zone
 * arithmetic (billing/month.ts) reads no clock.
 *
 * Deterministic, and small in history: one activity per page of 20,000 subscribers; the
 * subscribers themselves never enter it.
 */
import { ApplicationFailure, continueAsNew, proxyActivities, workflowInfo } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { Activities } from '../activities';
import type { BillingTerms } from '../billing/charges';
import type { MonthSummary } from '../store/ledger';
import { isMonth, monthJustEnded } from '../billing/month';

export interface BillingMonthInput {
  /** YYYY-MM; none: the month just ended (scheduled runs). */
  month?: string;
  /** Subscribers per page (default 20,000: one query each, streamed in batches of 1,000). */
  pageSize?: number;
  /** Carried over by continue-as-new. */
  resume?: { terms: BillingTerms; after: string; progress: BillingProgress; decidedBy: MonthSource };
}

export type MonthSource = 'input' | 'schedule' | 'start-time';

export interface BillingProgress {
  pages: number;
  considered: number;
  charged: number;
  /** Charges this run added to the ledger, and those already there from an earlier run. */
  added: number;
  existing: number;
}

export interface BillingMonthResult extends BillingProgress {
  month: string;
  decidedBy: MonthSource;
  terms: BillingTerms;
  summary: MonthSummary;
}

const acts = proxyActivities<Activities>({
  // A page reads up to 20,000 subscribers (a minute or two on FerretDB); it heartbeats every 5 s
  // with how far it got, and a retry carries on from there.
  startToCloseTimeout: '30 minutes',
  // Billing beats every 5 s: a killed worker's run is taken over after this long.
  heartbeatTimeout: '20 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: ['InvalidMonth', 'MonthNotEnded'],
  },
});

const SCHEDULED_START = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

/** The month a run bills, and what decided it. */
export function billingMonthOf(input: BillingMonthInput): { month: string; decidedBy: MonthSource } {
  if (input.month !== undefined) return { month: input.month, decidedBy: 'input' };
  const info = workflowInfo();
  const scheduled = info.typedSearchAttributes.get(SCHEDULED_START);
  if (scheduled) return { month: monthJustEnded(scheduled), decidedBy: 'schedule' };
  return { month: monthJustEnded(info.startTime), decidedBy: 'start-time' };
}

export async function billingMonthWorkflow(input: BillingMonthInput = {}): Promise<BillingMonthResult> {
  const { month, decidedBy } = input.resume
    ? { month: input.month!, decidedBy: input.resume.decidedBy }
    : billingMonthOf(input);
  if (!isMonth(month))
    throw ApplicationFailure.create({
      type: 'InvalidMonth',
      message: `${JSON.stringify(month)} is not a month: write YYYY-MM`,
      nonRetryable: true,
    });
  const { terms } = input.resume ?? (await acts.beginBillingMonth({ month }));
  const progress: BillingProgress = input.resume?.progress ?? {
    pages: 0,
    considered: 0,
    charged: 0,
    added: 0,
    existing: 0,
  };
  let after = input.resume?.after;
  for (;;) {
    const r = await acts.chargeSubscribersPage({ month, terms, after, limit: input.pageSize });
    progress.pages++;
    progress.considered += r.considered;
    progress.charged += r.charged;
    progress.added += r.added;
    progress.existing += r.existing;
    if (r.next === undefined) break;
    after = r.next;
    if (workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof billingMonthWorkflow>({
        month,
        pageSize: input.pageSize,
        resume: { terms, after, progress, decidedBy },
      });
    }
  }
  const summary = await acts.finishBillingMonth({ month, terms });
  return { month, decidedBy, terms, ...progress, summary };
}
