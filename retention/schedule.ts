/**
 * When retention runs: a Temporal Schedule starts `retentionWorkflow` every night at 03:30 Italian
 * time (after the monthly billing run of 02:00 on the 1st, and away from the day's traffic). A run
 * still going when the next is due is left to finish, and the next is skipped (SKIP): the one
 * running deletes what the skipped one would have. A person can start one by hand
 * (`avviso retention run`), or count what it would delete (`--dry-run`).
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
import type { RetentionInput, retentionWorkflow } from '../workflows/retention';
import { BILLING_TIME_ZONE } from '../billing/month';
import type { Logger } from '../domain/log';

export const RETENTION_SCHEDULE_ID = 'avviso-retention';
export const RETENTION_WORKFLOW = 'retentionWorkflow';

function scheduleParts(taskQueue: string) {
  const action: ScheduleOptionsStartWorkflowAction<typeof retentionWorkflow> = {
    type: 'startWorkflow',
    workflowType: RETENTION_WORKFLOW,
    taskQueue,
    // Temporal appends the nominal time to it: retention:scheduled-2026-12-05T02:30:00Z.
    workflowId: 'retention:scheduled',
    args: [{}],
  };
  return {
    spec: { calendars: [{ hour: 3, minute: 30, comment: 'every night' }], timezone: BILLING_TIME_ZONE },
    action,
    policies: { overlap: ScheduleOverlapPolicy.SKIP },
  };
}

/**
 * Creates the nightly Schedule, or brings an existing one up to date (time, task queue): every
 * worker calls it at start. Its paused state is kept: pausing it is how retention is stopped.
 */
export async function ensureRetentionSchedule(
  client: Client,
  taskQueue: string,
  opts: { scheduleId?: string } = {},
): Promise<{ scheduleId: string; created: boolean }> {
  return ensureSchedule(client, opts.scheduleId ?? RETENTION_SCHEDULE_ID, scheduleParts(taskQueue));
}

/** For a process that has no Client of its own (the worker): connects, ensures, disconnects. */
export async function ensureRetentionScheduleWith(settings: TemporalSettings, logger?: Logger): Promise<void> {
  const r = await withTemporalClient(settings, (client) => ensureRetentionSchedule(client, settings.taskQueue));
  logger?.info({ scheduleId: r.scheduleId, created: r.created }, 'nightly retention schedule in place');
}

/** A run started by hand; a second start while one runs joins it. */
export async function startRetentionRun(
  client: Client,
  taskQueue: string,
  input: Omit<RetentionInput, 'resume'> = {},
): Promise<WorkflowHandle<typeof retentionWorkflow>> {
  return client.workflow.start<typeof retentionWorkflow>(RETENTION_WORKFLOW, {
    taskQueue,
    workflowId: input.dryRun ? 'retention:manual-dry-run' : 'retention:manual',
    args: [input],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
  });
}
