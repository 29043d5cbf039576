/**
 * `npm run bench`: every benchmark in one run, one after the other (they would disturb each other
 * side by side on a small machine), then one table and one JSON file, bench/results/bench-<time>.json.
 * Each benchmark starts its own servers and the simulator, and compares Avviso with a plain
 * baseline inside its own run, so the ratios hold however noisy the machine is.
 *
 *   npm run bench                   rules, ingest storm, fan-outs of 4,000 and 100,000 (no limits), fan-out with Plivo's rates
 *   npm run bench -- --quick        without the fan-out of 100,000 (about half an hour of the whole: see README, Performance and guarantees)
 *   npm run bench -- --rated-n 300  subscribers of the fan-out under Plivo's default rates (default 500: 100 s of SMS each way)
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(__dirname, '..');
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'rated-n': { type: 'string', default: '500' },
    n: { type: 'string', default: '4000' },
  },
});

interface Step {
  name: string;
  script: string;
  args: string[];
}

const steps: Step[] = [
  { name: 'rules', script: 'bench/rules.ts', args: [] },
  { name: 'ingest', script: 'bench/ingest.ts', args: [] },
  { name: `fan-out ${values.n}`, script: 'bench/fanout.ts', args: ['--n', values.n] },
  ...(values.quick ? [] : [{ name: 'fan-out 100000', script: 'bench/fanout.ts', args: ['--n', '100000'] }]),
  {
    name: `fan-out ${values['rated-n']} at Plivo's rates`,
    script: 'bench/fanout.ts',
    args: ['--n', values['rated-n'], '--rates', 'plivo'],
  },
];

/** Runs one benchmark, passing its output through, and returns the JSON file it says it wrote. */
function run(step: Step): Promise<{ code: number; file?: string; seconds: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', step.script, ...step.args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      process.stdout.write(d);
      out += d.toString();
    });
    child.once('exit', (code) => {
      const written = /(?:written to|results written to) (\S+\.json)/.exec(out)?.[1];
      resolve({
        code: code ?? 1,
        file: written ? path.resolve(ROOT, written) : undefined,
        seconds: Math.round((Date.now() - started) / 1000),
      });
    });
  });
}

type Json = Record<string, unknown>;

function summary(name: string, r: Json): string {
  if (name === 'rules') {
    const results = (r.results as Json[]) ?? [];
    return results
      .map(
        (x) =>
          `${x.policy}: ${((x.grouped as Json).seconds as number).toFixed(3)}s grouped for 100,000, ${Math.round(x.ratio as number)}x plain json-rules-engine`,
      )
      .join('; ');
  }
  if (name === 'ingest') {
    const l = r.latencyMs as Json;
    return `${r.requestsPerSecond} requests/s; p50 ${l.p50} ms, p99 ${l.p99} ms`;
  }
  return `plain ${r.plainSenderSeconds}s, Avviso outage ${r.avvisoOutageSeconds}s (ratio ${r.ratioToPlain}x), restoration ${r.avvisoRestorationSeconds}s; ${r.outageMessagesPerSecond} msg/s; peak RSS ${r.peakRssMb} MB; history ${r.historyEvents} events; writes per SMS ${JSON.stringify(r.writesPerSms)}`;
}

async function main(): Promise<void> {
  const results: { name: string; code: number; seconds: number; result?: Json }[] = [];
  for (const step of steps) {
    console.log(`\n=== ${step.name}: node --import tsx ${step.script} ${step.args.join(' ')}`);
    const r = await run(step);
    results.push({
      name: step.name,
      code: r.code,
      seconds: r.seconds,
      result: r.file ? (JSON.parse(readFileSync(r.file, 'utf8')) as Json) : undefined,
    });
  }
  console.log('\n=== summary');
  const width = Math.max(...results.map((r) => r.name.length));
  for (const r of results)
    console.log(
      `${r.name.padEnd(width)}  ${r.result ? summary(r.name.startsWith('fan-out') ? 'fanout' : r.name, r.result) : `FAILED (exit ${r.code})`}  [${r.seconds} s]`,
    );
  const dir = path.join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), results }, null, 2)}\n`);
  console.log(`written to ${path.relative(ROOT, file)}`);
  process.exit(results.every((r) => r.code === 0) ? 0 : 1);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
