/**
 * `avviso retention run|schedule`: data retention by hand (docs/retention.md). `run --dry-run`
 * counts what a run would delete, reading MongoDB only (MONGODB_URI and the RETENTION_* ages);
 * `run` starts the retention workflow on a worker and waits for its counts; `schedule` creates or
 * updates the nightly Schedule (the worker does it when it starts).
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, mongoFromEnv, retentionSettingsFromEnv } from '../config';
import { connectStore } from '../store/db';
import { connectTemporal } from '../temporal/client';
import { createLogger } from '../domain/log';
import { createRetentionActivities } from '../activities/retention';
import { emptyTotals, runRetentionSteps } from '../retention/run';
import { ensureRetentionSchedule, startRetentionRun } from '../retention/schedule';
import type { RetentionResult } from '../workflows/retention';

const HELP = `usage: avviso retention <command> [options]

Commands:
  run              delete what is older than its age (RETENTION_MONTHS, RETENTION_AUDIT_MONTHS,
                   RETENTION_LEDGER_YEARS), as the nightly run does; waits and prints the counts
                     --dry-run   count what would be deleted, delete nothing (needs MONGODB_URI only)
                     --no-wait   start the run and return
                     --json      the counts as JSON
  schedule         create or update the nightly Schedule (03:30 Europe/Rome; the worker does it when it starts)

run (without --dry-run) and schedule need the worker's environment (TEMPORAL_*, MONGODB_*, PLIVO_*)
and, for run, a worker. E.g. against avviso dev:
  MONGODB_URI=mongodb://127.0.0.1:27017/avviso avviso retention run --dry-run
`;

/** The counts, one line each. */
export function describeResult(r: RetentionResult): string[] {
  const day = (iso?: string) => (iso ? `before ${iso.slice(0, 10)}` : 'kept forever');
  return [
    `retention${r.dryRun ? ' (dry run: nothing deleted)' : ''}: records ${day(r.cutoffs.records)}, audit log ${day(r.cutoffs.audit)}, ledger ${r.cutoffs.ledgerBefore ? `months before ${r.cutoffs.ledgerBefore}` : 'kept forever'}`,
    `  billed incidents swept   ${r.incidents}: ${r.deliveries} delivery records, ${r.receipts} receipts, ${r.sendClaims} send claims`,
    `  alert events             ${r.alertEvents} (${r.alertEventsKept} kept: their incident is not billed)`,
    `  refused webhook bodies   ${r.rejectedPayloads}`,
    `  received SMS             ${r.inbound}`,
    `  audit log entries        ${r.auditLog}`,
    `  ledger entries           ${r.ledgerEntries} (and ${r.billingRuns} months' runs)`,
    ...(r.unbilledIncidents
      ? [
          `  kept: ${r.unbilledIncidents} incident${r.unbilledIncidents === 1 ? '' : 's'} opened before the cut-off and never billed, with their records`,
        ]
      : []),
  ];
}

/** A dry run here, against MongoDB: the same steps as the workflow, on the activities themselves. */
async function dryRun(env: NodeJS.ProcessEnv): Promise<RetentionResult> {
  const mongo = mongoFromEnv(env);
  const retention = retentionSettingsFromEnv(env);
  const store = await connectStore(mongo.uri, mongo.db);
  try {
    const acts = createRetentionActivities({ store, logger: createLogger('retention', 'warn'), retention });
    const plan = await acts.planRetention({});
    const progress = { plan, stage: 'incidents' as const, totals: emptyTotals() };
    await runRetentionSteps(acts, progress, true);
    return { dryRun: true, cutoffs: plan.cutoffs, unbilledIncidents: plan.unbilledIncidents, ...progress.totals };
  } finally {
    await store.close();
  }
}

export async function retentionCommand(
  args: string[],
  out: (line: string) => void = console.log,
  err: (line: string) => void = console.error,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const [command, ...rest] = args;
  let values;
  try {
    values = parseArgs({
      args: rest,
      strict: true,
      options: {
        'dry-run': { type: 'boolean' },
        'no-wait': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    err(`avviso retention: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (!command || command === 'help' || command === '--help' || command === '-h' || values.help) {
    out(HELP);
    return command ? 0 : 2;
  }
  const print = (r: RetentionResult) =>
    values.json ? out(JSON.stringify(r, null, 2)) : describeResult(r).forEach((l) => out(l));
  try {
    switch (command) {
      case 'run': {
        if (values['dry-run']) {
          print(await dryRun(env));
          return 0;
        }
        const config = loadConfig(env);
        const client = await connectTemporal(config.temporal);
        try {
          const handle = await startRetentionRun(client, config.temporal.taskQueue);
          if (values['no-wait']) {
            out(`started ${handle.workflowId} (see it in the Temporal UI)`);
            return 0;
          }
          err(`retention run ${handle.workflowId}; a worker must be running...`);
          print(await handle.result());
          return 0;
        } finally {
          await client.connection.close();
        }
      }
      case 'schedule': {
        const config = loadConfig(env);
        const client = await connectTemporal(config.temporal);
        try {
          const r = await ensureRetentionSchedule(client, config.temporal.taskQueue);
          out(`${r.scheduleId}: ${r.created ? 'created' : 'updated'} (every night at 03:30 Europe/Rome)`);
          return 0;
        } finally {
          await client.connection.close();
        }
      }
      default:
        err(`avviso retention: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      err(`avviso retention: ${e.problems.join('; ')}`);
      return 2;
    }
    throw e;
  }
}
