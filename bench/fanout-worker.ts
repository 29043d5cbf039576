/**
 * The fan-out benchmark's worker, in a process of its own so that its peak memory is its own: the
 * Temporal worker with the delivery activities, and the receipt applier (as `avviso worker` runs it).
 * Started by bench/fanout.ts with `fork` (an IPC channel) and its settings as JSON in its first argument.
 *
 * Messages from the parent: `{ type: 'count' }` starts counting the documents this process writes;
 * `{ type: 'phase', phase }` names the bench's phase for the memory lines (watchMemory);
 * `{ type: 'report' }` stops counting and answers `{ type: 'report', counts, byTarget, peakRssMb }`.
 * SIGTERM stops the worker gracefully and exits.
 */
import os from 'node:os';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import path from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { connectStore } from '../store/db';
import { startReceiptApplier } from '../store/receipts';
import { createWorker, bundleWorkflows } from '../worker/worker';
import { buildDeliveryDeps } from '../worker/delivery-deps';
import { RulesHolder } from '../rules';
import { rulesResolver } from '../store/rule-versions';
import { createLogger } from '../domain/log';
import { createChannels } from '../channels';
import { statusFeedCollections } from '../channels/status-feed';
import { countWrites } from './write-counter';

export interface BenchWorkerSettings {
  temporalAddress: string;
  taskQueue: string;
  mongoUri: string;
  mongoDb: string;
  apiUrl: string;
  rulesPath: string;
  plivo: Parameters<typeof buildDeliveryDeps>[0]['plivo'];
}

export type BenchWorkerMessage =
  | { type: 'ready' }
  | {
      type: 'report';
      counts: ReturnType<typeof countWrites>['counts'];
      byTarget: Record<string, number>;
      timeByTarget: ReturnType<typeof countWrites>['timeByTarget'];
      peakRssMb: number;
    };

async function main(): Promise<void> {
  const settings = JSON.parse(process.argv[2] ?? '') as BenchWorkerSettings;
  // The parent stops this process with SIGTERM; the Temporal runtime must not take the signal for itself.
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
  const send = (m: BenchWorkerMessage) => process.send?.(m);
  const store = await connectStore(settings.mongoUri, settings.mongoDb, { monitorCommands: true });
  const rules = await RulesHolder.open({ path: settings.rulesPath });
  const { worker, connection } = await createWorker({
    temporal: { address: settings.temporalAddress, namespace: 'default', taskQueue: settings.taskQueue },
    workflowBundle: await bundleWorkflows(),
    deps: buildDeliveryDeps({
      store,
      plivo: settings.plivo,
      publicUrl: settings.apiUrl,
      logger: createLogger('bench-worker', process.env.BENCH_LOG_LEVEL ?? 'warn'),
      rules: rulesResolver(store, rules),
      otherChannels: Object.fromEntries(createChannels({}, { statusFeed: statusFeedCollections(store) })),
    }),
  });
  const running = worker.run();
  const applier = startReceiptApplier(store, (err) => console.error('applying receipts failed', err), 500);

  let writes: ReturnType<typeof countWrites> | undefined;
  process.on('message', (m: { type: string; phase?: string }) => {
    if (m.type === 'count') writes = countWrites(store.client);
    if (m.type === 'phase') phase = m.phase ?? '';
    if (m.type === 'report' && writes) {
      writes.stop();
      send({
        type: 'report',
        counts: writes.counts,
        byTarget: writes.byTarget,
        timeByTarget: writes.timeByTarget,
        peakRssMb: process.resourceUsage().maxRSS / 1024,
      });
    }
  });
  process.once('SIGTERM', () => worker.shutdown());
  // The parent going away (a crash, a kill) closes the channel: stop rather than stay an orphan.
  process.once('disconnect', () => worker.shutdown());
  watchMemory();
  send({ type: 'ready' });

  try {
    await running;
  } finally {
    await applier.stop();
    await connection.close();
    await rules.close();
    await store.close();
  }
}

/** The bench's phase, as the parent last named it (`idle` before the incident). */
let phase = 'idle';

/**
 * For finding what holds the worker's memory: with BENCH_WORKER_MEMORY_EVERY_MS, a line on stderr that
 * often (RSS, V8's heap, memory outside it); with BENCH_WORKER_HEAP_SNAPSHOT_MB, one heap snapshot
 * (in the system's temporary folder) the first time the heap in use passes that many MB.
 */
function watchMemory(): void {
  const every = Number(process.env.BENCH_WORKER_MEMORY_EVERY_MS ?? 0);
  const snapshotAtMb = Number(process.env.BENCH_WORKER_HEAP_SNAPSHOT_MB ?? 0);
  if (!every && !snapshotAtMb) return;
  const started = Date.now();
  const mb = (bytes: number) => Math.round(bytes / 1048576);
  let snapshotTaken = false;
  // The heap in use just after each full collection is about the live data: its peak says how much heap the worker needs.
  let liveAfterGc = 0;
  let livePeak = 0;
  const isMajor = (e: unknown) =>
    (e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR;
  new PerformanceObserver((entries) => {
    if (!entries.getEntries().some(isMajor)) return;
    liveAfterGc = process.memoryUsage().heapUsed;
    livePeak = Math.max(livePeak, liveAfterGc);
  }).observe({ entryTypes: ['gc'] });
  setInterval(() => {
    const m = process.memoryUsage();
    if (every)
      console.error(
        `worker memory phase=${phase} t=${((Date.now() - started) / 1000).toFixed(1)}s rss=${mb(m.rss)} heapUsed=${mb(m.heapUsed)} heapTotal=${mb(m.heapTotal)} external=${mb(m.external)} arrayBuffers=${mb(m.arrayBuffers)} liveAfterGc=${mb(liveAfterGc)} livePeak=${mb(livePeak)} peakRss=${mb(process.resourceUsage().maxRSS * 1024)}`,
      );
    if (snapshotAtMb && !snapshotTaken && mb(m.heapUsed) >= snapshotAtMb) {
      snapshotTaken = true;
      console.error(
        `worker heap snapshot written to ${writeHeapSnapshot(path.join(os.tmpdir(), `fanout-worker-${process.pid}.heapsnapshot`))}`,
      );
    }
  }, every || 1000).unref();
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
