/**
 * The reduced fault drill (issue 9): the drill of `npm run drill` (drill/run.ts) on a smaller
 * audience, with one fault of each kind: a worker SIGKILLed and started again, FerretDB restarted,
 * the Temporal dev server restarted, and the simulator failing 20% of requests (5xx, 429, dropped
 * connections) and reporting 10% of messages undelivered, with delayed, duplicated and reordered
 * receipts. It brings its own Temporal and FerretDB (it restarts them), not the harness's.
 * Nothing may be lost, duplicated or out of order, as the simulator recorded it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DRILL_DEFAULTS, runDrill } from '../../drill/run';

const SUBSCRIBERS = Number(process.env.AVVISO_DRILL_SUBSCRIBERS ?? 300);

test(
  `the reduced drill: ${SUBSCRIBERS} subscribers, two workers, one fault of each kind; nothing lost, duplicated or out of order`,
  { timeout: 20 * 60_000 },
  async () => {
    const report = await runDrill({
      ...DRILL_DEFAULTS,
      subscribers: SUBSCRIBERS,
      workerKills: 1,
      ferretRestarts: 1,
      temporalRestarts: 1,
      batchSize: 50,
      seed: 20261203,
      timeoutMs: 15 * 60_000,
      log: (line) => console.log(`drill: ${line}`),
    });
    console.log(
      `drill: ${JSON.stringify({ lost: report.lost, duplicated: report.duplicated, outOfOrder: report.outOfOrder, strays: report.strays, resends: report.resends, outageS: report.outageMs / 1000, restorationS: report.restorationMs / 1000 })}`,
    );
    assert.equal(report.timedOut, false, 'the drill finished in time');
    assert.deepEqual(
      report.events.map((e) => e.what).sort(),
      ['kill a worker', 'restart FerretDB', 'restart Temporal'],
      'every fault fired while messages were going out',
    );
    assert.deepEqual(
      { lost: report.lost, duplicated: report.duplicated, outOfOrder: report.outOfOrder, strays: report.strays },
      { lost: 0, duplicated: 0, outOfOrder: 0, strays: 0 },
      report.examples.join('\n'),
    );
    assert.ok(report.resends > 0, 'the undelivered share did force resends');
  },
);
