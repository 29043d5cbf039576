/**
 * `avviso billing run|export|report|schedule`: billing by hand. `run` and `schedule` talk to
 * Temporal and need the environment of the worker and the API; `export` and `report` read MongoDB
 * only (MONGODB_URI, and BILLING_* for the reports' currency and rates).
 */
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { billingSettingsFromEnv, loadConfig, mongoFromEnv, type Config } from '../config';
import { connectStore, type Store } from '../store/db';
import { connectTemporal } from '../temporal/client';
import { isMonth } from '../billing/month';
import { monthHasEnded } from '../billing/period';
import { ensureBillingSchedule, startBillingRun } from '../billing/schedule';
import { invoiceLinesCsv } from '../billing/invoice-lines';
import { csvText } from '../billing/csv';
import { loadReport, reportJson, REPORTS, type ReportName } from '../billing/reports';
import { formatCents } from '../billing/money';

const HELP = `usage: avviso billing <command> [options]

Commands:
  run YYYY-MM          bill a month that has ended: the monthly run again, or a backfill (safe to
                       repeat: it adds only what the ledger lacks); waits for the run and prints
                       its totals (--no-wait: start it and return)
  export YYYY-MM       the month's invoice lines as CSV on stdout, e.g. > lines-2026-10.csv
  report NAME          revenue, costs, incidents or per-subscriber
                         --format csv|json   (default csv)
                         --from YYYY-MM --to YYYY-MM   months to include (default all)
                         --limit N           incidents: how many (default 20)
  schedule             create or update the monthly Schedule (the worker does it when it starts)

run and schedule need the worker's environment (TEMPORAL_*, MONGODB_*, PLIVO_*) and, for run, a
worker; export and report need MONGODB_URI only, e.g. against avviso dev:
  MONGODB_URI=mongodb://127.0.0.1:27017/avviso avviso billing report revenue
`;

class UsageError extends Error {}

function monthArg(value: string | undefined): string {
  if (!value || !isMonth(value))
    throw new UsageError(
      `name a month as YYYY-MM, e.g. avviso billing run 2026-10${value ? ` (not ${JSON.stringify(value)})` : ''}`,
    );
  return value;
}

async function withStore<T>(f: (store: Store) => Promise<T>): Promise<T> {
  const mongo = mongoFromEnv();
  const store = await connectStore(mongo.uri, mongo.db);
  try {
    return await f(store);
  } finally {
    await store.close();
  }
}

async function run(config: Config, month: string, wait: boolean): Promise<number> {
  if (!monthHasEnded(month, new Date()))
    throw new UsageError(`${month} is not over yet (Italian time): a month is billed once it has ended`);
  const client = await connectTemporal(config.temporal);
  try {
    const handle = await startBillingRun(client, config.temporal.taskQueue, month);
    if (!wait) {
      console.log(`started ${handle.workflowId} (see it in the Temporal UI, or: avviso billing report revenue)`);
      return 0;
    }
    console.error(`billing ${month} (${handle.workflowId}); a worker must be running...`);
    const r = await handle.result();
    const s = r.summary;
    console.log(
      `${month}: ${s.lines} lines, net ${formatCents(s.netCents)} + VAT ${formatCents(s.vatCents)} = ${formatCents(s.grossCents)} ${s.currency}`,
    );
    console.log(
      `  this run: ${r.considered} subscribers read, ${r.charged} charged, ${r.added} new lines, ${r.existing} already in the ledger`,
    );
    console.log(
      `  terms: ${formatCents(r.terms.priceCents)} ${r.terms.currency} a month, VAT ${formatCents(r.terms.vatBasisPoints)}%, proration ${r.terms.proration}`,
    );
    return 0;
  } finally {
    await client.connection.close();
  }
}

async function exportLines(month: string): Promise<number> {
  return withStore(async (store) => {
    const billed = await store.billingRuns.findOne({ _id: month }, { projection: { completedAt: 1 } });
    if (!billed?.completedAt) {
      console.error(
        `avviso billing: ${month} ${billed ? 'has no completed run yet' : 'has not been billed'}: run avviso billing run ${month} first`,
      );
      return 1;
    }
    await pipeline(invoiceLinesCsv(store, month), process.stdout, { end: false });
    return 0;
  });
}

async function report(
  name: string | undefined,
  v: { format?: string; from?: string; to?: string; limit?: string },
): Promise<number> {
  if (!name || !(REPORTS as readonly string[]).includes(name))
    throw new UsageError(`name a report: ${REPORTS.join(', ')}`);
  const format = v.format ?? 'csv';
  if (format !== 'csv' && format !== 'json') throw new UsageError('--format is csv or json');
  if (v.from && !isMonth(v.from)) throw new UsageError('--from takes a month, YYYY-MM');
  if (v.to && !isMonth(v.to)) throw new UsageError('--to takes a month, YYYY-MM');
  const limit = v.limit === undefined ? undefined : Number(v.limit);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 1000))
    throw new UsageError('--limit takes a whole number from 1 to 1000');
  const settings = billingSettingsFromEnv();
  return withStore(async (store) => {
    const r = await loadReport(store, name as ReportName, settings, { from: v.from, to: v.to, limit });
    process.stdout.write(
      format === 'csv' ? await csvText(r.columns, r.rows) : `${JSON.stringify(reportJson(r), null, 2)}\n`,
    );
    return 0;
  });
}

export async function billingCommand(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: {
        format: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        limit: { type: 'string' },
        'no-wait': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    console.error(`avviso billing: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (!command || command === 'help' || command === '--help' || command === '-h' || values.help) {
    console.log(HELP);
    return 0;
  }
  try {
    switch (command) {
      case 'run':
        return await run(loadConfig(), monthArg(positionals[0]), !values['no-wait']);
      case 'export':
        return await exportLines(monthArg(positionals[0]));
      case 'report':
        return await report(positionals[0], values);
      case 'schedule': {
        const config = loadConfig();
        const client = await connectTemporal(config.temporal);
        try {
          const r = await ensureBillingSchedule(client, config.temporal.taskQueue);
          console.log(
            `${r.scheduleId}: ${r.created ? 'created' : 'updated'} (the 1st of every month, 02:00 Europe/Rome)`,
          );
          return 0;
        } finally {
          await client.connection.close();
        }
      }
      default:
        console.error(`avviso billing: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`avviso billing: ${err.message}`);
      return 2;
    }
    throw err;
  }
}
