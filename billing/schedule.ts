/**
 * When billing runs: a Temporal Schedule starts `billingMonthWorkflow` at 02:00 Italian time on
 * the 1st of every month (the workflow bills the month that has just ended), and a person can
 * start the run of any ended month by hand (API, CLI) to re-run or backfill it.
 *
 * The Schedule buffers missed actions (BUFFER_ALL): if the Temporal server is down on the 1st,
 * the run happens when it is back (within Temporal's catch-up window, a year by default), and
 * two missed months run one after the other, each billing its own month (the workflow reads the
 * Schedule's nominal time, not the late start).
 */
import {
  ScheduleOverlapPolicy,
  WorkflowIdConflictPolicy,
  type Client,
  type ScheduleOptionsStartWorkflowAction,
  type WorkflowHandle,
} from '@temporalio/client';
import type { TemporalSettings } from '../temporal/client';
import { ensureSchedule, withTemporalClient } from '../temporal/schedules';
import type { billingMonthWorkflow, BillingMonthInput } from '../workflows/billing';
import { BILLING_TIME_ZONE } from './month';
import type { Logger } from '../domain/log';

export const BILLING_SCHEDULE_ID = 'avviso-monthly-billing';
export const BILLING_WORKFLOW = 'billingMonthWorkflow';

/** A month's run started by hand: one id per month, so a second start joins the running one. */
export function billingWorkflowId(month: string): string {
  return `billing:${month}`;
}

function scheduleParts(taskQueue: string) {
  const action: ScheduleOptionsStartWorkflowAction<typeof billingMonthWorkflow> = {
    type: 'startWorkflow',
    workflowType: BILLING_WORKFLOW,
    taskQueue,
    // Temporal appends the nominal time to it: billing:scheduled-2026-11-01T01:00:00Z.
    workflowId: 'billing:scheduled',
    // No month: the workflow bills the month that ended before the Schedule's nominal time.
    args: [{}],
  };
  return {
    spec: { calendars: [{ dayOfMonth: 1, hour: 2, comment: 'the month just ended' }], timezone: BILLING_TIME_ZONE },
    action,
    policies: { overlap: ScheduleOverlapPolicy.BUFFER_ALL },
  };
}

/**
 * Creates the monthly Schedule, or brings an existing one up to date (time, task queue): every
 * worker calls it at start, so a deploy that changes it changes it. Its paused state is kept.
 */
export async function ensureBillingSchedule(
  client: Client,
  taskQueue: string,
  opts: { scheduleId?: string } = {},
): Promise<{ scheduleId: string; created: boolean }> {
  return ensureSchedule(client, opts.scheduleId ?? BILLING_SCHEDULE_ID, scheduleParts(taskQueue));
}

/** For a process that has no Client of its own (the worker): connects, ensures, disconnects. */
export async function ensureBillingScheduleWith(settings: TemporalSettings, logger?: Logger): Promise<void> {
  const r = await withTemporalClient(settings, (client) => ensureBillingSchedule(client, settings.taskQueue));
  logger?.info({ scheduleId: r.scheduleId, created: r.created }, 'monthly billing schedule in place');
}

/**
 * Starts the run of a month by hand (re-run or backfill), or joins the one running. A finished
 * month may be run again at any time: it adds only what is not in the ledger yet.
 */
export async function startBillingRun(
  client: Client,
  taskQueue: string,
  month: string,
  input: Omit<BillingMonthInput, 'month' | 'resume'> = {},
): Promise<WorkflowHandle<typeof billingMonthWorkflow>> {
  return client.workflow.start<typeof billingMonthWorkflow>(BILLING_WORKFLOW, {
    taskQueue,
    workflowId: billingWorkflowId(month),
    args: [{ ...input, month }],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
  });
}
