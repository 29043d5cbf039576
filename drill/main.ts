/**
 * `npm run drill`: the fault drill (./run.ts) with the figures of issue 9 by default, 20,000
 * subscribers, two workers, three worker kills, one FerretDB and one Temporal restart, 20% of
 * requests failing and 10% of messages undelivered. Prints the verdict and the timings, writes
 * JSON to bench/results/drill-<timestamp>.json, and exits 1 unless lost, duplicated and
 * out-of-order are all 0.
 *
 *   npm run drill -- --subscribers 1000 --seed 7
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Runtime, DefaultLogger } from '@temporalio/worker';
import { PROJECT_ROOT } from '../dev/services';
import { DRILL_DEFAULTS, runDrill, type DrillOptions } from './run';

const { values } = parseArgs({
  options: {
    subscribers: { type: 'string' },
    workers: { type: 'string' },
    seed: { type: 'string' },
    'batch-size': { type: 'string' },
    'timeout-minutes': { type: 'string' },
    'fail-share': { type: 'string' },
    'undelivered-rate': { type: 'string' },
  },
});

function whole(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number >= 0, got "${value}"`);
  return n;
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const options: DrillOptions = {
    ...DRILL_DEFAULTS,
    subscribers: whole('subscribers', values.subscribers, DRILL_DEFAULTS.subscribers),
    workers: whole('workers', values.workers, DRILL_DEFAULTS.workers),
    seed: whole('seed', values.seed, DRILL_DEFAULTS.seed),
    batchSize: whole('batch-size', values['batch-size'], DRILL_DEFAULTS.batchSize),
    timeoutMs: whole('timeout-minutes', values['timeout-minutes'], DRILL_DEFAULTS.timeoutMs / 60_000) * 60_000,
    requestFailShare: whole('fail-share', values['fail-share'], DRILL_DEFAULTS.requestFailShare),
    undeliveredRate: whole('undelivered-rate', values['undelivered-rate'], DRILL_DEFAULTS.undeliveredRate),
  };
  const r = await runDrill(options);
  const rows: [string, string][] = [
    ['subscribers', String(r.subscribers)],
    ['workers', `${options.workers} (killed ${r.events.filter((e) => e.what === 'kill a worker').length} times)`],
    ['faults fired', r.events.map((e) => `${e.what} @${Math.round(e.progress * 100)}%`).join('; ')],
    ['lost', String(r.lost)],
    ['duplicated', String(r.duplicated)],
    ['out of order', String(r.outOfOrder)],
    ['strays', String(r.strays)],
    ['resends after undelivered', String(r.resends)],
    ['outage notices delivered after', `${(r.outageMs / 1000).toFixed(1)} s`],
    ['restoration and billing after resolve', `${(r.restorationMs / 1000).toFixed(1)} s`],
    ['total', `${(r.durationMs / 1000).toFixed(1)} s${r.timedOut ? ' (TIMED OUT)' : ''}`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n'));
  for (const e of r.examples) console.log(`  ${e}`);
  const dir = path.join(PROJECT_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `drill-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(r, null, 2));
  console.log(`written ${path.relative(PROJECT_ROOT, file)}`);
  const ok = r.lost === 0 && r.duplicated === 0 && r.outOfOrder === 0 && r.strays === 0 && !r.timedOut;
  console.log(ok ? 'drill passed: nothing lost, nothing duplicated, everything in order' : 'drill FAILED');
  process.exit(ok ? 0 : 1);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
