/**
 * FerretDB write benchmark: how long the updates the delivery records go through take once a
 * collection holds 1k, 10k and 100k documents, for the filter shapes the store uses.
 *
 *   node --import tsx bench/ferretdb.ts [--sizes 1000,10000,100000] [--bin label=path ...] [--budget 30]
 *   node --import tsx bench/ferretdb.ts --backends postgresql,sqlite   (the two storage backends side by side)
 *
 * Each `--bin` is an avviso-ferretdb binary (default: the one tools/bootstrap.sh built); with two,
 * the table shows them side by side with the ratio first/second (e.g. the build before a change,
 * copied aside, against the one after). Each binary gets its own server on a temporary folder.
 * A case whose predicted time exceeds `--budget` seconds (from the single-update times measured
 * just before it) is skipped and shown as `> N s (est.)`, so that a slow build does not take an hour.
 * (FerretDB's `explain` reports a SCAN for `find({_id})` either way, so it is not shown; to see the
 * plan SQLite itself makes, run EXPLAIN QUERY PLAN on the .sqlite file.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { MongoClient, type AnyBulkWriteOperation, type Collection } from 'mongodb';
import { freePort } from '../dev/process';
import { startFerretDb, TOOL_PATHS, type FerretDbBackend } from '../dev/services';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000,100000' },
    bin: { type: 'string', multiple: true },
    budget: { type: 'string', default: '30' },
    reps: { type: 'string', default: '10' },
    backends: { type: 'string' },
  },
});
const SIZES = args.sizes.split(',').map(Number);
const BUDGET_MS = Number(args.budget) * 1000;
const REPS = Number(args.reps);
const BINS: { label: string; path: string; backend?: FerretDbBackend }[] = args.backends
  ? args.backends.split(',').map((b) => ({ label: b, path: TOOL_PATHS.ferretdb, backend: b as FerretDbBackend }))
  : (args.bin?.length ? args.bin : [`current=${TOOL_PATHS.ferretdb}`]).map((b) => {
      const i = b.indexOf('=');
      return i > 0 ? { label: b.slice(0, i), path: b.slice(i + 1) } : { label: path.basename(b), path: b };
    });

interface Doc {
  _id: string;
  incidentId: string;
  kind: string;
  subscriberId: string;
  channel: string;
  to: string;
  language: string;
  state: string;
  attempts: number;
  history: { at: Date; state: string; note?: string }[];
  createdAt: Date;
  updatedAt: Date;
}

const pad = (i: number) => String(i).padStart(7, '0');
const idOf = (i: number) => `inc_bench|outage|sub_${pad(i)}|sms:+39347${pad(i)}`;
function doc(i: number, now: Date): Doc {
  return {
    _id: idOf(i),
    incidentId: 'inc_bench',
    kind: 'outage',
    subscriberId: `sub_${pad(i)}`,
    channel: 'sms',
    to: `+39347${pad(i)}`,
    language: 'it',
    state: 'planned',
    attempts: 0,
    history: [{ at: now, state: 'planned' }],
    createdAt: now,
    updatedAt: now,
  };
}

/** A small seeded PRNG, so that both binaries update the same documents. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function update(n: number) {
  const now = new Date();
  return {
    $set: { state: 'accepted', updatedAt: now },
    $push: { history: { at: now, state: 'accepted', note: `bench ${n}` } },
  };
}

interface Case {
  name: string;
  /** Documents one run writes (for the per-document time). */
  docs: number;
  /** The case measured before it whose time, times `scale`, predicts this one's. */
  basis?: [string, number];
  run(c: Collection<Doc>, ids: () => string[], n: number): Promise<unknown>;
}

const CASES: Case[] = [
  { name: 'findOne {_id}', docs: 1, run: (c, ids) => c.findOne({ _id: ids()[0]! }) },
  { name: 'updateOne {_id}', docs: 1, run: (c, ids, n) => c.updateOne({ _id: ids()[0]! }, update(n)) },
  {
    name: 'updateOne {_id, state}',
    docs: 1,
    run: (c, ids, n) => c.updateOne({ _id: ids()[0]!, state: { $in: ['planned', 'accepted'] } }, update(n)),
  },
  {
    name: 'updateMany $in 50',
    docs: 50,
    basis: ['updateOne {_id, state}', 5],
    run: (c, ids, n) => c.updateMany({ _id: { $in: ids() } }, update(n)),
  },
  {
    name: 'bulkWrite 50 x {_id}',
    docs: 50,
    basis: ['updateOne {_id}', 50],
    run: (c, ids, n) =>
      c.bulkWrite(
        ids().map((id): AnyBulkWriteOperation<Doc> => ({ updateOne: { filter: { _id: id }, update: update(n) } })),
        { ordered: false },
      ),
  },
  {
    name: 'bulkWrite 50 x {_id, state}',
    docs: 50,
    basis: ['updateOne {_id, state}', 50],
    run: (c, ids, n) =>
      c.bulkWrite(
        ids().map((id): AnyBulkWriteOperation<Doc> => ({
          updateOne: { filter: { _id: id, state: { $in: ['planned', 'accepted'] } }, update: update(n) },
        })),
        { ordered: false },
      ),
  },
  {
    name: 'updateMany $in 1000',
    docs: 1000,
    basis: ['updateMany $in 50', 20],
    run: (c, ids, n) => c.updateMany({ _id: { $in: ids() } }, update(n)),
  },
  // The shapes of the receipt applier and the watchdog at scale: a find of thousands of message
  // ids, and a transition of thousands of listed records.
  {
    name: 'find {to: $in 5000}',
    docs: 5000,
    run: (c, ids) =>
      c
        .find({ to: { $in: ids().map((id) => id.slice(id.lastIndexOf(':') + 1)) } }, { projection: { _id: 1 } })
        .toArray(),
  },
  {
    name: 'updateMany $in 5000',
    docs: 5000,
    basis: ['updateMany $in 1000', 5],
    run: (c, ids, n) => c.updateMany({ _id: { $in: ids() } }, update(n)),
  },
];

/** ms per run: the median of the runs made. `skipped` carries the prediction that stopped it. */
type Result = { msPerRun: number; runs: number } | { skipped: number };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function load(c: Collection<Doc>, n: number): Promise<number> {
  const t0 = performance.now();
  const now = new Date();
  for (let i = 0; i < n; i += 1000) {
    await c.insertMany(
      Array.from({ length: Math.min(1000, n - i) }, (_, k) => doc(i + k, now)),
      { ordered: false },
    );
  }
  return performance.now() - t0;
}

async function benchBinary(bin: (typeof BINS)[number]): Promise<Map<string, Result>> {
  const results = new Map<string, Result>();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'avviso-bench-ferretdb-'));
  TOOL_PATHS.ferretdb = bin.path;
  const port = await freePort();
  const server = await startFerretDb({
    port,
    dir: path.join(tmp, 'ferretdb'),
    output: 'ignore',
    ...(bin.backend ? { backend: bin.backend } : {}),
  });
  const client = new MongoClient(`mongodb://127.0.0.1:${port}/`);
  try {
    await client.connect();
    for (const size of SIZES) {
      const c = client.db(`bench_${size}`).collection<Doc>('deliveries');
      await client.db(`bench_${size}`).createCollection('deliveries');
      // A build that adds the _id index does so within a second of a table appearing.
      await new Promise((r) => setTimeout(r, 1500));
      const loadMs = await load(c, size);
      console.log(`[${bin.label}] ${size} docs loaded in ${(loadMs / 1000).toFixed(1)} s`);
      const random = prng(size);
      const pick = (k: number) => () => {
        const set = new Set<string>();
        while (set.size < k) set.add(idOf(Math.floor(random() * size)));
        return [...set];
      };
      for (const cs of CASES) {
        const key = `${size}|${cs.name}`;
        const basis = cs.basis && results.get(`${size}|${cs.basis[0]}`);
        const predicted = !basis
          ? 0
          : 'skipped' in basis
            ? basis.skipped * cs.basis![1]
            : basis.msPerRun * cs.basis![1];
        if (predicted > BUDGET_MS) {
          results.set(key, { skipped: predicted });
          console.log(`[${bin.label}] ${key}: skipped, predicted ${(predicted / 1000).toFixed(0)} s`);
          continue;
        }
        const ids = pick(Math.max(1, cs.docs));
        const times: number[] = [];
        const start = performance.now();
        let n = 0;
        // A warm-up run when runs are cheap; then up to REPS runs within the budget (at least one).
        if (cs.docs === 1) await cs.run(c, ids, n++);
        while (times.length < REPS && (times.length === 0 || performance.now() - start < BUDGET_MS)) {
          const t0 = performance.now();
          await cs.run(c, ids, n++);
          times.push(performance.now() - t0);
        }
        const r = { msPerRun: median(times), runs: times.length };
        results.set(key, r);
        console.log(`[${bin.label}] ${key}: ${r.msPerRun.toFixed(1)} ms per run (median of ${r.runs})`);
      }
      await client.db(`bench_${size}`).dropDatabase();
    }
  } finally {
    await client.close();
    await server.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  return results;
}

function fmt(r: Result | undefined, docs: number): string {
  if (!r) return '-';
  if ('skipped' in r) return `> ${(r.skipped / 1000).toFixed(0)} s (est.)`;
  const perDoc = docs > 1 ? ` (${(r.msPerRun / docs).toFixed(2)}/doc)` : '';
  return `${r.msPerRun.toFixed(1)} ms${perDoc}`;
}

async function main(): Promise<void> {
  const all: { label: string; results: Map<string, Result> }[] = [];
  for (const bin of BINS) all.push({ label: bin.label, results: await benchBinary(bin) });
  const header = ['docs', 'operation', ...all.map((a) => a.label), ...(all.length === 2 ? ['ratio'] : [])];
  const rows: string[][] = [];
  for (const size of SIZES) {
    for (const cs of CASES) {
      const key = `${size}|${cs.name}`;
      const rs = all.map((a) => a.results.get(key));
      const row = [String(size), cs.name, ...rs.map((r) => fmt(r, cs.docs))];
      if (all.length === 2) {
        const [a, b] = rs;
        const ms = (r: Result | undefined) =>
          r && 'msPerRun' in r ? r.msPerRun : r && 'skipped' in r ? r.skipped : NaN;
        const ratio = ms(a) / ms(b);
        row.push(
          Number.isFinite(ratio)
            ? `${a && 'skipped' in a ? '> ' : ''}${ratio >= 10 ? ratio.toFixed(0) : ratio.toFixed(1)}x`
            : '-',
        );
      }
      rows.push(row);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(`\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${rows.map(line).join('\n')}`);
  const out = path.join(os.tmpdir(), `avviso-bench-ferretdb-${Date.now()}.json`);
  writeFileSync(
    out,
    JSON.stringify(
      all.map((a) => ({ label: a.label, results: Object.fromEntries(a.results) })),
      null,
      2,
    ),
  );
  console.log(`\nJSON: ${out}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
