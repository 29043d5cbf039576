/**
 * `npm run bench:import`: imports 100,000 subscribers from CSV into a FerretDB of its own, then
 * resolves the audience of a backhaul tower with 20,000 subscribers downstream (three levels of
 * towers and access points below it). Prints rows per second and peak memory for each phase and
 * writes JSON to bench/results/import-<timestamp>.json.
 *
 * Phases: the sites file; the subscribers file into an empty collection (all created); the same
 * file again (all unchanged: nothing written); the file with some rows changed (the monthly
 * churn: in-place updates, FerretDB 1.24's slow path, reported per changed row); then the tower's
 * audience: every page (what the notice planner reads), the SMS notice pages, the counts (what the
 * preview shows), and every page again, checking that both answers are the same and the same as one
 * plain `$in` query's (ids sorted here).
 *
 * Memory is this process's resident set, sampled every 20 ms during each phase (the importer
 * streams, so it should not grow with the file), and FerretDB's own peak (VmHWM, Linux).
 *
 * CPU: the seconds of CPU each phase cost this process, and FerretDB with its PostgreSQL (Linux,
 * from /proc). On a shared machine the wall time follows the load; the CPU time much less.
 *
 * Sizes: BENCH_SUBSCRIBERS (100000), BENCH_DOWNSTREAM (20000), BENCH_CHANGED (200; on FerretDB
 * 1.24 each changed row costs about 0.65 s at 100,000 subscribers, see docs/import-formats.md).
 */
import { createHash } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort } from '../dev/process';
import { ferretDbBackend, startFerretDb } from '../dev/services';
import { connectStore, type Store } from '../store/db';
import { runImport, type ImportReport } from '../import';
import { resolveAudience } from '../store/audience';

const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 100_000);
const DOWNSTREAM = Number(process.env.BENCH_DOWNSTREAM ?? 20_000);
const CHANGED = Number(process.env.BENCH_CHANGED ?? 200);
/** The issue's bar: 100,000 subscribers "well under a minute". */
const TARGET_IMPORT_SECONDS = 60;

/** One backhaul per 5,000 subscribers, like the target: 4 relay towers, one of them feeding a sub-relay; 5 access points on each. */
const BACKHAULS = Math.max(2, Math.ceil(SUBSCRIBERS / DOWNSTREAM) * 4);
const TARGET = 'bh-000';

interface Phase {
  phase: string;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  peakRssMiB: number;
  rssGrowthMiB: number;
  peakHeapMiB: number;
  /** CPU seconds: this process, and FerretDB with its PostgreSQL (undefined where /proc is not). */
  cpuSeconds: { node: number; server?: number };
  detail?: Record<string, unknown>;
}

const MiB = 1024 * 1024;

/** Runs `work` while sampling memory; returns its result, the time taken and the peaks. */
async function measured<T>(work: () => Promise<T>): Promise<{
  result: T;
  seconds: number;
  peakRssMiB: number;
  rssGrowthMiB: number;
  peakHeapMiB: number;
  cpuSeconds: Phase['cpuSeconds'];
}> {
  global.gc?.();
  const start = process.memoryUsage();
  let peakRss = start.rss;
  let peakHeap = start.heapUsed;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 20);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const server0 = serverCpuSeconds();
  try {
    const result = await work();
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const server1 = serverCpuSeconds();
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
    return {
      result,
      seconds,
      peakRssMiB: peakRss / MiB,
      rssGrowthMiB: (peakRss - start.rss) / MiB,
      peakHeapMiB: peakHeap / MiB,
      cpuSeconds: {
        node: (cpu.user + cpu.system) / 1e6,
        ...(server0 !== undefined && server1 !== undefined ? { server: server1 - server0 } : {}),
      },
    };
  } finally {
    clearInterval(timer);
  }
}

function sitesCsv(): { csv: string; targetSites: string[]; leaves: string[][] } {
  const lines = ['site_id,name,area,kind,lat,lon,uplink'];
  const leaves: string[][] = [];
  let targetSites: string[] = [];
  for (let b = 0; b < BACKHAULS; b++) {
    const bh = `bh-${String(b).padStart(3, '0')}`;
    const area = `Comune ${b}`;
    const mine = [bh];
    const lat = (45 + b / 100).toFixed(4);
    lines.push(`${bh},Backhaul ${b},${area},tower,${lat},9.5000,`);
    const towers: string[] = [];
    for (let r = 0; r < 4; r++) {
      const tw = `${bh}-tw${r}`;
      lines.push(`${tw},Torre ${b}.${r},${area} ${r},tower,${lat},9.51${r},${bh}`);
      towers.push(tw);
    }
    const sub = `${bh}-tw0-sub`;
    lines.push(`${sub},Sub-relay ${b},${area} 0 bis,tower,${lat},9.520,${bh}-tw0`);
    towers.push(sub);
    const aps: string[] = [];
    for (const tw of towers) {
      for (let a = 0; a < 5; a++) {
        lines.push(`${tw}-ap${a},AP ${tw} ${a},${area},access_point,,,${tw}`);
        aps.push(`${tw}-ap${a}`);
      }
    }
    mine.push(...towers, ...aps);
    // Most subscribers hang from access points; a few from towers directly.
    leaves.push([...aps, ...aps, ...aps, ...towers]);
    if (bh === TARGET) targetSites = mine;
  }
  return { csv: lines.join('\n') + '\n', targetSites, leaves };
}

/** Writes the subscribers file, streaming; `changed` rows get a new name (the 1% churn). */
async function writeSubscribersCsv(file: string, leaves: string[][], changed = 0): Promise<void> {
  const out = createWriteStream(file);
  const write = async (line: string) => {
    if (!out.write(line)) await once(out, 'drain');
  };
  await write(
    'contract_id,name,phones,email,language,site_id,segment,sms_alerts,sms_alerts_since,sms_alerts_until,opted_out,quiet_hours\n',
  );
  const perOther = Math.ceil((SUBSCRIBERS - DOWNSTREAM) / (leaves.length - 1));
  for (let i = 0; i < SUBSCRIBERS; i++) {
    // The first DOWNSTREAM subscribers are below the target backhaul; the rest spread over the others.
    const b = i < DOWNSTREAM ? 0 : 1 + Math.floor((i - DOWNSTREAM) / perOther);
    const sites = leaves[Math.min(b, leaves.length - 1)]!;
    const siteId = sites[i % sites.length]!;
    const phone = `+39347${String(1_000_000 + i).padStart(7, '0')}`;
    const phones = i % 10 === 0 ? `${phone};+39328${String(1_000_000 + i).padStart(7, '0')}` : phone;
    const name =
      i % Math.max(1, Math.floor(SUBSCRIBERS / Math.max(1, changed))) === 0 && changed > 0
        ? `Cliente ${i} (nuovo nome)`
        : `Cliente ${i}`;
    const paid = i % 5 < 3;
    await write(
      [
        `C${String(i).padStart(7, '0')}`,
        name,
        phones,
        i % 3 === 0 ? `cliente${i}@example.it` : '',
        i % 10 === 3 ? 'en' : 'it',
        siteId,
        i % 7 === 0 ? 'business' : 'residential',
        paid ? 'yes' : 'no',
        paid ? '2025-01-01' : '',
        paid && i % 50 === 0 ? '2025-12-31' : '',
        i % 97 === 0 ? 'yes' : '',
        i % 20 === 0 ? '22:00-07:00' : '',
      ].join(',') + '\n',
    );
  }
  out.end();
  await once(out, 'finish');
}

function importPhase(name: string, m: Awaited<ReturnType<typeof measured<ImportReport>>>): Phase {
  const r = m.result;
  return {
    phase: name,
    rows: r.rows,
    seconds: m.seconds,
    rowsPerSecond: r.rows / m.seconds,
    peakRssMiB: m.peakRssMiB,
    rssGrowthMiB: m.rssGrowthMiB,
    peakHeapMiB: m.peakHeapMiB,
    cpuSeconds: m.cpuSeconds,
    detail: { created: r.created, updated: r.updated, unchanged: r.unchanged, rejected: r.rejected },
  };
}

/** The audience's subscribers, every page, with a digest of the ids in order (to compare two runs). */
async function readPages(store: Store, at: Date, scope: 'all' | 'smsNotice') {
  const audience = await resolveAudience(store, [TARGET], { at });
  const digest = createHash('sha256');
  let rows = 0;
  let pages = 0;
  for await (const page of audience.pages(scope)) {
    pages++;
    rows += page.length;
    for (const s of page) digest.update(s._id).update('\n');
  }
  return { sites: audience.siteIds.length, areas: audience.areas.length, rows, pages, digest: digest.digest('hex') };
}

/** The digest `readPages` makes, from one `$in` query over the tower's sites, the ids sorted here. */
async function oneQueryDigest(store: Store, siteIds: string[]): Promise<string> {
  const found = await store.subscribers.find({ siteId: { $in: siteIds } }, { projection: { _id: 1 } }).toArray();
  const ids = found.map((s) => s._id).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const digest = createHash('sha256');
  for (const id of ids) digest.update(id).update('\n');
  return digest.digest('hex');
}

/** The FerretDB the bench started, for the CPU it uses. */
let ferretPid: number | undefined;

/** A process's CPU seconds from /proc/<pid>/stat: its own, and that of its children it has reaped. */
function procCpuSeconds(pid: number): { ppid: number; own: number; reaped: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const hz = 100; // USER_HZ on Linux
    return {
      ppid: Number(f[1]),
      own: (Number(f[11]) + Number(f[12])) / hz,
      reaped: (Number(f[13]) + Number(f[14])) / hz,
    };
  } catch {
    return undefined;
  }
}

/**
 * FerretDB's CPU seconds so far, with its PostgreSQL: the postmaster (and the backends it has
 * reaped) and the live backends (Linux); undefined elsewhere.
 */
function serverCpuSeconds(): number | undefined {
  if (ferretPid === undefined) return undefined;
  const ferret = procCpuSeconds(ferretPid);
  if (!ferret) return undefined;
  const all = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => [Number(d), procCpuSeconds(Number(d))] as const);
  const children = new Set(all.filter(([, p]) => p?.ppid === ferretPid).map(([pid]) => pid));
  let total = ferret.own;
  for (const [pid, p] of all) {
    if (!p) continue;
    if (children.has(pid)) total += p.own + p.reaped;
    else if (children.has(p.ppid)) total += p.own;
  }
  return total;
}

/** FerretDB's peak resident set, from /proc (Linux); undefined elsewhere. */
function peakRssOf(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'avviso-bench-import-'));
  const port = await freePort();
  const ferret = await startFerretDb({ port, dir: path.join(tmp, 'ferretdb'), output: 'ignore' });
  ferretPid = ferret.pid;
  const store = await connectStore(`mongodb://127.0.0.1:${port}/`, 'bench');
  const phases: Phase[] = [];
  try {
    const { csv, targetSites, leaves } = sitesCsv();
    const sitesFile = path.join(tmp, 'sites.csv');
    writeFileSync(sitesFile, csv);
    const subsFile = path.join(tmp, 'subscribers.csv');
    const changedFile = path.join(tmp, 'subscribers-changed.csv');
    await writeSubscribersCsv(subsFile, leaves);
    await writeSubscribersCsv(changedFile, leaves, CHANGED);
    const fileMiB = readFileSync(subsFile).length / MiB;
    console.error(
      `bench: FerretDB on 127.0.0.1:${port}; ${BACKHAULS * 31} sites, ${SUBSCRIBERS} subscribers (${fileMiB.toFixed(1)} MiB CSV), ${DOWNSTREAM} below ${TARGET} (${targetSites.length} sites)`,
    );

    const imp = (file: string) => () =>
      runImport(store, file === sitesFile ? 'sites' : 'subscribers', createReadStream(file), { format: 'csv' });
    phases.push(importPhase('import sites', await measured(imp(sitesFile))));
    console.error('bench: importing subscribers (new)...');
    phases.push(importPhase('import subscribers: new', await measured(imp(subsFile))));
    console.error('bench: importing the same file again...');
    phases.push(importPhase('import subscribers: same file again', await measured(imp(subsFile))));
    console.error(`bench: importing with ${CHANGED} changed rows...`);
    const churn = importPhase(`import subscribers: ${CHANGED} rows changed`, await measured(imp(changedFile)));
    // What the changed rows cost on top of reading the file as in the unchanged run.
    churn.detail!.msPerChangedRow =
      CHANGED > 0 ? Math.round(((churn.seconds - phases[2]!.seconds) * 1000) / CHANGED) : 0;
    phases.push(churn);

    const at = new Date('2026-06-01T12:00:00Z');
    console.error('bench: resolving the audience...');
    const audiencePhase = (
      phase: string,
      m: Awaited<ReturnType<typeof measured<{ rows: number } & Record<string, unknown>>>>,
    ): Phase => ({
      phase,
      rows: m.result.rows,
      seconds: m.seconds,
      rowsPerSecond: m.result.rows / m.seconds,
      peakRssMiB: m.peakRssMiB,
      rssGrowthMiB: m.rssGrowthMiB,
      peakHeapMiB: m.peakHeapMiB,
      cpuSeconds: m.cpuSeconds,
      detail: m.result,
    });
    const everyPage = await measured(() => readPages(store, at, 'all'));
    phases.push(audiencePhase(`audience of ${TARGET}: sites, then every subscriber page`, everyPage));
    const notice = await measured(() => readPages(store, at, 'smsNotice'));
    phases.push(audiencePhase('audience: the SMS notice pages', notice));
    const counted = await measured(async () => {
      const counts = await (await resolveAudience(store, [TARGET], { at })).counts();
      return { rows: counts.subscribers, counts };
    });
    phases.push(audiencePhase('audience: counts by segment', counted));
    const again = await measured(() => readPages(store, at, 'all'));
    phases.push(audiencePhase('audience again: every page', again));
    const same = again.result.digest === everyPage.result.digest && again.result.rows === everyPage.result.rows;
    // The pages (merged per site on FerretDB over PostgreSQL) against one plain query, ids sorted here.
    const oneQuery = await oneQueryDigest(store, targetSites);
    const sameAsOneQuery = oneQuery === everyPage.result.digest;

    const newImport = phases[1]!;
    const result = {
      bench: 'import',
      at: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
        loadAverage: os.loadavg(),
        node: process.version,
        platform: `${os.platform()} ${os.release()}`,
      },
      database: `FerretDB 1.24 (${ferretDbBackend()}), started by the bench`,
      sizes: {
        subscribers: SUBSCRIBERS,
        downstreamOfTower: DOWNSTREAM,
        sites: BACKHAULS * 31,
        sitesBelowTower: targetSites.length,
        changedRows: CHANGED,
        csvMiB: Number(fileMiB.toFixed(1)),
      },
      phases,
      processPeakRssMiB: process.resourceUsage().maxRSS / 1024,
      ferretdbPeakRssMiB: peakRssOf(ferret.pid),
      checks: {
        importUnderTarget: newImport.seconds < TARGET_IMPORT_SECONDS,
        targetSeconds: TARGET_IMPORT_SECONDS,
        everyRowImported: (newImport.detail!.created as number) === SUBSCRIBERS,
        repeatWroteNothing: phases[2]!.detail!.unchanged === SUBSCRIBERS,
        changedRowsUpdated: phases[3]!.detail!.updated === CHANGED,
        audienceIsTheTower: everyPage.result.rows === DOWNSTREAM,
        sameAudienceTwice: same,
        sameAsOneQuery,
      },
    };

    const rows = phases.map((p) => [
      p.phase,
      String(p.rows),
      p.seconds.toFixed(2),
      Math.round(p.rowsPerSecond).toLocaleString('en'),
      p.peakRssMiB.toFixed(0),
      p.rssGrowthMiB.toFixed(0),
      p.peakHeapMiB.toFixed(0),
      p.cpuSeconds.node.toFixed(2),
      p.cpuSeconds.server?.toFixed(2) ?? '?',
    ]);
    const header = [
      'phase',
      'rows',
      'seconds',
      'rows/s',
      'peak RSS MiB',
      'RSS growth MiB',
      'peak heap MiB',
      'CPU s: bench',
      'FerretDB+PG',
    ];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const fmt = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
    console.log(fmt(header));
    console.log(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const r of rows) console.log(fmt(r));
    console.log('');
    console.log(
      `audience of ${TARGET}: ${everyPage.result.sites} sites, ${everyPage.result.rows} subscribers in ${everyPage.result.pages} pages; SMS notice to ${notice.result.rows} subscribers (${counted.result.counts.smsNotice.phones} messages); same answer twice: ${same}, same as one plain query: ${sameAsOneQuery}`,
    );
    console.log(
      `changed rows: ${phases[3]!.detail!.msPerChangedRow} ms each, beyond reading the file (in-place updates; FerretDB 1.24 scans the table for each, see docs/import-formats.md)`,
    );
    console.log(
      `peak RSS: this process ${result.processPeakRssMiB.toFixed(0)} MiB, FerretDB ${result.ferretdbPeakRssMiB?.toFixed(0) ?? '?'} MiB; load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')} on ${os.cpus().length} CPUs`,
    );
    console.log(
      `checks: ${Object.entries(result.checks)
        .filter(([k]) => k !== 'targetSeconds')
        .map(([k, v]) => `${k} ${v ? 'ok' : 'FAILED'}`)
        .join(', ')}`,
    );

    const dir = path.join(__dirname, 'results');
    mkdirSync(dir, { recursive: true });
    const out = path.join(dir, `import-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
    console.log(`written to ${path.relative(process.cwd(), out)}`);
    if (Object.values(result.checks).some((v) => v === false)) process.exitCode = 1;
  } finally {
    await store.close();
    await ferret.stop(5000);
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
