/**
 * The worker: runs the incident workflows and their activities on one task queue. Run as many
 * as you like; Temporal shares the work among them.
 */
import {
  bundleWorkflowCode,
  NativeConnection,
  Worker,
  type WorkflowBundle,
  type WorkflowBundleOption,
} from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import type { TemporalSettings } from '../temporal/client';

/** Bundles the workflow code once (about 2 s); pass the result to every worker of a process. */
export async function bundleWorkflows(): Promise<WorkflowBundle> {
  return bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), logger: quietBundlerLogger });
}

const noop = () => undefined;
const quietBundlerLogger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: (m: string, meta?: unknown) => console.error(m, meta),
  log: noop,
};

export interface WorkerOptions {
  temporal: TemporalSettings;
  deps: ActivityDeps;
  workflowBundle: WorkflowBundleOption;
}

export async function createWorker(o: WorkerOptions): Promise<{ worker: Worker; connection: NativeConnection }> {
  const connection = await NativeConnection.connect({
    address: o.temporal.address,
    ...(o.temporal.tls ? { tls: o.temporal.tls } : {}),
  });
  const worker = await Worker.create({
    connection,
    namespace: o.temporal.namespace,
    taskQueue: o.temporal.taskQueue,
    workflowBundle: o.workflowBundle,
    activities: createActivities(o.deps),
    // A cancel reaches an activity only in the answer to a heartbeat, and heartbeats are sent at most this
    // often (by default 80% of the heartbeat timeout, 48 s): a watch sweep given up at a resolve stops
    // within about a second instead of running on beside the restoration (delivery/sweeper.ts).
    maxHeartbeatThrottleInterval: '1 second',
  });
  return { worker, connection };
}
