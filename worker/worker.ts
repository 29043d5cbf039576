/**
 * The worker: runs the incident workflows and their activities on one task queue. Run as many
 * as you like; Temporal shares the work among them.
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { NativeConnection, Worker, type WorkflowBundle, type WorkflowBundleOption } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import type { TemporalSettings } from '../temporal/client';

/**
 * Bundles the workflow code once (about 2 s); pass the result to every worker of a process. Bundled in
 * a child process (worker/bundle-child.js): webpack left about 110 MB of RSS in the process that ran it,
 * a fifth of the worker's budget (docs/performance-history.md).
 */
export async function bundleWorkflows(): Promise<WorkflowBundle> {
  const child = fork(path.join(__dirname, 'bundle-child.js'), [require.resolve('../workflows')], {
    // Plain Node: neither the parent's heap limit nor its TypeScript loader is needed to run webpack.
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    let bundle: WorkflowBundle | undefined;
    child.once('message', (m: WorkflowBundle) => (bundle = m));
    child.once('error', reject);
    child.once('exit', (code) =>
      bundle ? resolve({ code: bundle.code }) : reject(new Error(`bundling the workflow code failed (exit ${code})`)),
    );
  });
}

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
