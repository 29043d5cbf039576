/**
 * What serializing conflicting writes in avviso-ferretdb costs (tools/ferretdb/serialize.go,
 * docs/ferretdb-serialization.md): update throughput with 1 and 3 concurrent clients under each
 * --avviso-write-locks mode (off: FerretDB as it is, collection: every write locks its collection,
 * id: writes by _id lock their documents, others their collection), and how many increments of one
 * document each mode keeps.
 *
 *   node --import tsx bench/ferretdb-atomic.ts [--modes off,collection,id] [--clients 1,3] [--seconds 3] [--rounds 3] [--docs 10000] [--bin path]
 *
 * Each mode gets its own server (PostgreSQL backend, or AVVISO_FERRETDB_BACKEND) on a temporary
 * folder, loaded with --docs delivery-like documents; all run at once, and the modes take turns
 * on each measurement, --rounds times, so that other work on the machine weighs on each alike.
 * Each client is a MongoClient of its own with one connection, doing one operation after another
 * for --seconds; the figure is the median of the rounds, in operations (or documents, for bulks)
 * per second, all clients together.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { MongoClient, type AnyBulkWriteOperation, type Collection } from 'mongodb';
import { freePort, spawnManaged, waitUntilHealthy } from '../dev/process';
import { ferretDbBackend, pingMongo, TOOL_PATHS } from '../dev/services';

const { values: args } = parseArgs({
  options: {
    modes: { type: 'string', default: 'off,collection,id' },
    clients: { type: 'string', default: '1,3' },
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    docs: { type: 'string', default: '10000' },
    bin: { type: 'string', default: TOOL_PATHS.ferretdb },
  },
});
const MODES = args.modes.split(',');
const CLIENTS = args.clients.split(',').map(Number);
const SECONDS = Number(args.seconds);
const ROUNDS = Number(args.rounds);
const DOCS = Number(args.docs);

interface Doc {
  _id: string;
  to: string;
  state: string;
  attempts: number;
  n: number;
  history: { at: Date; state: string }[];
  updatedAt: Date;
}

const pad = (i: number) => String(i).padStart(7, '0');
const idOf = (i: number) => `inc_bench|outage|sub_${pad(i)}|sms:+39347${pad(i)}`;
const toOf = (i: number) => `+39347${pad(i)}`;
const pick = () => Math.floor(Math.random() * DOCS);
let fresh = 0;
const step = () => {
  const now = new Date();
  return {
    $set: { state: 'accepted', updatedAt: now },
    $inc: { attempts: 1 },
    $push: { history: { $each: [{ at: now, state: 'accepted' }], $slice: -5 } },
  };
};

interface Workload {
  name: string;
  /** Documents one operation writes. */
  docs: number;
  run(c: Collection<Doc>): Promise<unknown>;
}

const WORKLOADS: Workload[] = [
  { name: 'updateOne {_id}, random documents', docs: 1, run: (c) => c.updateOne({ _id: idOf(pick()) }, step()) },
  {
    name: 'updateOne {_id, state}, random documents',
    docs: 1,
    run: (c) => c.updateOne({ _id: idOf(pick()), state: { $in: ['planned', 'accepted'] } }, step()),
  },
  {
    name: 'updateOne {to} (not by _id), random documents',
    docs: 1,
    run: (c) => c.updateOne({ to: toOf(pick()) }, step()),
  },
  {
    name: 'findOneAndUpdate {_id, state}, random documents',
    docs: 1,
    run: (c) => c.findOneAndUpdate({ _id: idOf(pick()), state: { $in: ['planned', 'accepted'] } }, step()),
  },
  { name: '$inc of one document by _id', docs: 1, run: (c) => c.updateOne({ _id: 'hot' }, { $inc: { n: 1 } }) },
  {
    name: 'bulkWrite of 50 {_id} updates (documents/s)',
    docs: 50,
    run: (c) =>
      c.bulkWrite(
        Array.from({ length: 50 }, (): AnyBulkWriteOperation<Doc> => ({
          updateOne: { filter: { _id: idOf(pick()) }, update: step() },
        })),
        { ordered: false },
      ),
  },
  {
    name: 'insertMany of 100 new documents (documents/s)',
    docs: 100,
    run: (c) => {
      const now = new Date();
      return c.insertMany(
        Array.from({ length: 100 }, () => ({
          _id: `new|${fresh++}`,
          to: `new${fresh}`,
          state: 'planned',
          attempts: 0,
          n: 0,
          history: [{ at: now, state: 'planned' }],
          updatedAt: now,
        })),
        { ordered: false },
      );
    },
  },
  { name: 'find {_id} (a read, for comparison)', docs: 1, run: (c) => c.findOne({ _id: idOf(pick()) }) },
];

interface Row {
  mode: string;
  workload: string;
  clients: number;
  perSecond: number[];
  kept: string[];
}

interface Server {
  mode: string;
  stop(): Promise<void>;
  clients: MongoClient[];
  c0: Collection<Doc>;
}

async function startServer(mode: string, tmp: string): Promise<Server> {
  const port = await freePort();
  const backend = ferretDbBackend();
  const dir = path.join(tmp, mode);
  mkdirSync(dir, { recursive: true });
  const storage = backend === 'sqlite' ? ['--sqlite-dir', dir] : ['--postgresql-dir', path.join(dir, 'postgresql')];
  const proc = spawnManaged(
    `ferretdb-${mode}`,
    args.bin,
    ['--listen-addr', `127.0.0.1:${port}`, ...storage, '--log-level', 'warn', `--avviso-write-locks=${mode}`],
    { output: 'ignore' },
  );
  const uri = `mongodb://127.0.0.1:${port}/`;
  const clients: MongoClient[] = [];
  const stop = async () => {
    await Promise.all(clients.map((c) => c.close()));
    await proc.stop(10_000);
  };
  try {
    await waitUntilHealthy(`FerretDB (${mode})`, () => pingMongo(uri), { proc, timeoutMs: 90_000 });
    for (let i = 0; i < Math.max(...CLIENTS); i++)
      clients.push(await new MongoClient(uri, { maxPoolSize: 1 }).connect());
    const c0 = clients[0]!.db('bench').collection<Doc>('deliveries');
    await c0.createIndex({ to: 1 });
    const now = new Date();
    for (let i = 0; i < DOCS; i += 1000) {
      await c0.insertMany(
        Array.from({ length: Math.min(1000, DOCS - i) }, (_, k) => ({
          _id: idOf(i + k),
          to: toOf(i + k),
          state: 'planned',
          attempts: 0,
          n: 0,
          history: [{ at: now, state: 'planned' }],
          updatedAt: now,
        })),
      );
    }
    await c0.insertOne({ _id: 'hot', to: 'hot', state: 'planned', attempts: 0, n: 0, history: [], updatedAt: now });
    return { mode, stop, clients, c0 };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** One measurement: n clients run w for SECONDS; operations (or documents) per second, and for the $inc how many increments were kept. */
async function measure(s: Server, w: Workload, n: number): Promise<{ perSecond: number; kept?: string }> {
  const cs = s.clients.slice(0, n).map((cl) => cl.db('bench').collection<Doc>('deliveries'));
  const before = (await s.c0.findOne({ _id: 'hot' }))!.n;
  await Promise.all(cs.map((c) => w.run(c))); // warm-up
  let ops = 0;
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(
    cs.map(async (c) => {
      while (performance.now() < end) {
        await w.run(c);
        ops++;
      }
    }),
  );
  const perSecond = (ops * w.docs) / ((performance.now() - start) / 1000);
  if (!w.name.startsWith('$inc')) return { perSecond };
  const after = (await s.c0.findOne({ _id: 'hot' }))!.n;
  return { perSecond, kept: `${after - before} of ${ops + n}` };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'avviso-bench-atomic-'));
  const servers: Server[] = [];
  const rows: Row[] = [];
  try {
    for (const mode of MODES) servers.push(await startServer(mode, tmp));
    // avviso-ferretdb adds its GIN indexes within a second or two of a new index.
    await new Promise((r) => setTimeout(r, 3000));
    console.log(
      `load average at start: ${os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')} (${os.cpus().length} cores)`,
    );
    for (const w of WORKLOADS) {
      for (const n of CLIENTS) {
        const byMode = new Map(
          MODES.map((m) => [
            m,
            { mode: m, workload: w.name, clients: n, perSecond: [] as number[], kept: [] as string[] },
          ]),
        );
        // The modes take turns, ROUNDS times, so that a machine busy with something else slows each alike.
        for (let round = 0; round < ROUNDS; round++) {
          for (const s of servers) {
            const r = await measure(s, w, n);
            byMode.get(s.mode)!.perSecond.push(r.perSecond);
            if (r.kept) byMode.get(s.mode)!.kept.push(r.kept);
          }
        }
        for (const r of byMode.values()) {
          rows.push(r);
          console.log(
            `[${r.mode}] ${w.name}, ${n} client${n > 1 ? 's' : ''}: ${median(r.perSecond).toFixed(0)}/s (${r.perSecond.map((x) => x.toFixed(0)).join(', ')})${r.kept.length ? `, kept ${r.kept.join(', ')}` : ''}`,
          );
        }
      }
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(tmp, { recursive: true, force: true });
  }
  const header = ['workload', 'clients', ...MODES];
  const table: string[][] = [];
  for (const w of WORKLOADS) {
    for (const n of CLIENTS) {
      table.push([
        w.name,
        String(n),
        ...MODES.map((m) => {
          const r = rows.find((x) => x.mode === m && x.workload === w.name && x.clients === n);
          return r ? `${median(r.perSecond).toFixed(0)}/s${r.kept.length ? ` (kept ${r.kept[0]})` : ''}` : '-';
        }),
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(
    `\nmedian of ${ROUNDS} runs of ${SECONDS} s each; load average at the end: ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
  );
  console.log(`\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${table.map(line).join('\n')}`);
  const out = path.join(os.tmpdir(), `avviso-bench-ferretdb-atomic-${Date.now()}.json`);
  writeFileSync(out, JSON.stringify(rows, null, 2));
  console.log(`\nJSON: ${out}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
