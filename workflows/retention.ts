/**
 * The retention run (docs/retention.md): deletes what is older than its configured age, page by
 * page, started every night by its Schedule (retention/schedule.ts) or by hand (`avviso retention
 * run`). The cut-off dates are decided once, by the first activity, and carried to the end (and
 * through continue-as-new), so one run deletes by one set of dates. Deterministic: the pages are
 * activities, and this only adds up their counts.
 */
import { continueAsNew, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { emptyTotals, runRetentionSteps, type RetentionProgress, type RetentionTotals } from '../retention/run';
import type { RetentionCutoffs } from '../retention/settings';

export interface RetentionInput {
  /** Count what would be deleted, delete nothing. */
  dryRun?: boolean;
  /** Carried over by continue-as-new. */
  resume?: RetentionProgress;
}

export interface RetentionResult extends RetentionTotals {
  dryRun: boolean;
  cutoffs: RetentionCutoffs;
  /** Incidents opened before the cut-off and never billed: their records were kept. */
  unbilledIncidents: number;
}

const acts = proxyActivities<Activities>({
  // A page reads up to 20,000 documents, or all the records of 10 incidents; it heartbeats as it
  // goes, and a retried page finds what is left.
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

export async function retentionWorkflow(input: RetentionInput = {}): Promise<RetentionResult> {
  const dryRun = Boolean(input.dryRun);
  const progress = input.resume ?? { plan: await acts.planRetention({}), stage: 'incidents', totals: emptyTotals() };
  const paused = await runRetentionSteps(acts, progress, dryRun, () => workflowInfo().continueAsNewSuggested);
  if (paused) await continueAsNew<typeof retentionWorkflow>({ dryRun, resume: paused });
  return {
    dryRun,
    cutoffs: progress.plan.cutoffs,
    unbilledIncidents: progress.plan.unbilledIncidents,
    ...progress.totals,
  };
}
