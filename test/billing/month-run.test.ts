/**
 * Monthly charges against the real Temporal and FerretDB: a month bills every subscriber whose
 * option was active in it, once; re-running adds nothing; a backfill bills an old month the same
 * way; an SMS opt-out in mid-month is charged for that month and not the next; pages and
 * concurrent runs change nothing; the API and the CLI run, export and report.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { WorkflowFailedError } from '@temporalio/client';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import { billingApp, startBillingWorker, subscriber } from './helpers';
import { startBillingRun } from '../../billing/schedule';
import { DEFAULT_BILLING, type BillingSettings } from '../../billing/settings';
import { createBillingActivities } from '../../activities/billing';
import { createLogger } from '../../domain/log';
import type { SubscriptionEntry } from '../../store/ledger';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');

// Months of 2024: over whatever day the tests run on. Times are UTC; Italy is UTC+2 in summer and
// until 27 October 2024, UTC+1 after.
const SETTINGS: BillingSettings = { ...DEFAULT_BILLING, fx: { USD: 920_000 } };
const SUBSCRIBERS = [
  subscriber('A-001', { active: true, since: new Date('2024-01-01T00:00:00Z') }),
  subscriber('A-002', { active: true, since: new Date('2024-10-20T08:00:00Z') }), // joined mid-October
  subscriber('A-003', { active: false }), // never paid
  // Texted STOP on 15 October: charged for October, not November.
  subscriber(
    'A-004',
    { active: true, since: new Date('2024-01-01T00:00:00Z') },
    { optedOut: true, optedOutAt: new Date('2024-10-15T07:30:00Z') },
  ),
  subscriber('A-005', {
    active: false,
    since: new Date('2024-01-01T00:00:00Z'),
    until: new Date('2024-10-04T22:00:00Z'),
  }), // ended 5 October
  subscriber('A-006', { active: true }, { optedOut: true }), // opted out, date unknown: never charged
  subscriber('A-007', { active: true, since: new Date('2024-11-10T09:00:00Z') }), // joins in November
  subscriber('A-008', { active: true, since: new Date('2024-12-01T09:00:00Z') }), // joins in December
];

let env: IsolatedEnv;
let worker: Awaited<ReturnType<typeof startBillingWorker>>;
let app: FastifyInstance;

before(async () => {
  env = await isolatedEnv(__filename);
  await env.store.subscribers.insertMany(SUBSCRIBERS);
  worker = await startBillingWorker(env, SETTINGS);
  app = await billingApp(env, SETTINGS);
});
after(async () => {
  await app?.close();
  await worker?.stop();
  await env?.close();
});

const entries = async (month: string) =>
  (await env.store.ledger
    .find({ type: 'subscription', period: month })
    .sort({ _id: 1 })
    .toArray()) as SubscriptionEntry[];
const billMonth = async (month: string, pageSize?: number) =>
  (await startBillingRun(env.temporal, env.taskQueue, month, { pageSize })).result();

describe('monthly charges', () => {
  test('October: everyone whose option was active in it, at 1.00 + 22% VAT, one line each', async () => {
    const r = await billMonth('2024-10');
    assert.equal(r.month, '2024-10');
    assert.equal(r.decidedBy, 'input');
    assert.deepEqual(r.terms, SETTINGS.terms);
    assert.equal(r.charged, 4);
    assert.equal(r.added, 4);
    assert.deepEqual(r.summary, {
      month: '2024-10',
      currency: 'EUR',
      lines: 4,
      netCents: 400,
      vatCents: 88,
      grossCents: 488,
    });
    const lines = await entries('2024-10');
    assert.deepEqual(
      lines.map((e) => e._id),
      ['sub:A-001:2024-10', 'sub:A-002:2024-10', 'sub:A-004:2024-10', 'sub:A-005:2024-10'],
    );
    for (const e of lines) {
      assert.deepEqual(
        [e.amountCents, e.vatCents, e.grossCents, e.currency, e.proration],
        [100, 22, 122, 'EUR', 'full'],
      );
      assert.equal(e.description, 'Opzione Avvisi SMS, ottobre 2024');
      assert.match(e.source, /^workflow:billing:2024-10$/);
    }
    assert.equal(lines.find((e) => e.subscriberId === 'A-002')!.daysActive, 12, '20-31 October');
    assert.equal(lines.find((e) => e.subscriberId === 'A-005')!.daysActive, 4, '1-4 October');
    const runDoc = await env.store.billingRuns.findOne({ _id: '2024-10' });
    assert.ok(runDoc?.completedAt);
  });

  test('re-running October bills nobody twice and gives the same lines and export', async () => {
    const before = await entries('2024-10');
    const csvBefore = (await app.inject({ method: 'GET', url: '/v1/billing/months/2024-10/invoice-lines.csv' })).body;
    const again = await billMonth('2024-10');
    assert.equal(again.added, 0);
    assert.equal(again.existing, 4);
    assert.deepEqual(again.summary, {
      month: '2024-10',
      currency: 'EUR',
      lines: 4,
      netCents: 400,
      vatCents: 88,
      grossCents: 488,
    });
    assert.deepEqual(await entries('2024-10'), before, 'the ledger is unchanged, entry for entry');
    const csvAfter = (await app.inject({ method: 'GET', url: '/v1/billing/months/2024-10/invoice-lines.csv' })).body;
    assert.equal(csvAfter, csvBefore);
    assert.equal(await env.store.ledger.countDocuments({ type: 'subscription' }), 4);
  });

  test('a re-run keeps the terms of the first run, even after the price changed', async () => {
    const dearer = createBillingActivities({
      store: env.store,
      logger: createLogger('test', 'silent'),
      billing: { ...SETTINGS, terms: { ...SETTINGS.terms, priceCents: 200 } },
    });
    assert.equal((await dearer.beginBillingMonth({ month: '2024-10' })).terms.priceCents, 100);
    assert.equal(
      (await dearer.beginBillingMonth({ month: '2024-06' })).terms.priceCents,
      200,
      'a month never billed takes the current terms',
    );
  });

  test('November: the mid-October opt-out and the October ending are not charged; the November joiner is', async () => {
    const r = await billMonth('2024-11');
    assert.deepEqual(
      (await entries('2024-11')).map((e) => e.subscriberId),
      ['A-001', 'A-002', 'A-007'],
    );
    assert.equal(r.summary.grossCents, 366);
  });

  test('pages of any size, and two runs at once, give the same month', async () => {
    // September in pages of 2 contract ids: A-001 and A-004 (A-002 and A-007 had not joined; A-005 was active).
    const r = await billMonth('2024-09', 2);
    assert.ok(r.pages >= 3, `${r.pages} pages`);
    assert.deepEqual(
      (await entries('2024-09')).map((e) => e.subscriberId),
      ['A-001', 'A-004', 'A-005'],
    );
    // August charged by two activities at the same time, as two workers would.
    const acts = createBillingActivities({
      store: env.store,
      logger: createLogger('test', 'silent'),
      billing: SETTINGS,
    });
    const { terms } = await acts.beginBillingMonth({ month: '2024-08' });
    const [a, b] = await Promise.all([
      acts.chargeSubscribersPage({ month: '2024-08', terms }),
      acts.chargeSubscribersPage({ month: '2024-08', terms }),
    ]);
    assert.equal(a.added + b.added, 3, 'each line inserted by exactly one of them');
    assert.equal(a.existing + b.existing, 3);
    assert.equal((await entries('2024-08')).length, 3);
  });

  test('a month not over yet is refused', async () => {
    const future = await app.inject({ method: 'POST', url: '/v1/billing/months/2099-01/run' });
    assert.equal(future.statusCode, 409);
    assert.equal(future.json().error.code, 'month_not_ended');
    await assert.rejects(billMonth('2099-01'), (err: WorkflowFailedError) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(
        String((err.cause?.cause as Error | undefined)?.message),
        /2099-01 is not over yet/,
        'the activity refused it, without retrying',
      );
      return true;
    });
    const bad = await app.inject({ method: 'POST', url: '/v1/billing/months/2024-13/run' });
    assert.equal(bad.statusCode, 400);
  });
});

describe('the API', () => {
  test('backfill: an old month run by POST, then its invoice lines as CSV', async () => {
    const notYet = await app.inject({ method: 'GET', url: '/v1/billing/months/2024-05/invoice-lines.csv' });
    assert.equal(notYet.statusCode, 404);
    assert.equal(notYet.json().error.code, 'month_not_billed');

    const started = await app.inject({
      method: 'POST',
      url: '/v1/billing/months/2024-05/run',
      headers: { 'idempotency-key': 'backfill-2024-05' },
    });
    assert.equal(started.statusCode, 202, started.body);
    assert.equal(started.json().workflowId, 'billing:2024-05');
    assert.equal(started.headers.location, '/v1/billing/months/2024-05');
    const waited = await app.inject({
      method: 'POST',
      url: '/v1/billing/months/2024-05/run?wait=true',
      headers: { 'idempotency-key': 'backfill-2024-05' },
    });
    assert.equal(waited.statusCode, 200, waited.body);
    assert.equal(waited.json().result.summary.lines, 3, 'A-001, A-004, A-005 in May');

    const status = await app.inject({ method: 'GET', url: '/v1/billing/months/2024-05' });
    assert.equal(status.json().billed, true);
    assert.equal(status.json().workflow.workflowId, 'billing:2024-05');
    assert.deepEqual(status.json().totals, [
      { month: '2024-05', currency: 'EUR', lines: 3, netCents: 300, vatCents: 66, grossCents: 366 },
    ]);

    const csv = await app.inject({ method: 'GET', url: '/v1/billing/months/2024-05/invoice-lines.csv' });
    assert.equal(csv.statusCode, 200);
    assert.match(String(csv.headers['content-type']), /^text\/csv; charset=utf-8/);
    assert.match(String(csv.headers['content-disposition']), /avviso-invoice-lines-2024-05\.csv/);
    const rows = csv.body.split('\r\n');
    assert.equal(rows.length, 5, 'header, 3 lines, and the final CRLF');
    assert.equal(rows[4], '');
    assert.equal(
      rows[1],
      'sub:A-001:2024-05,A-001,2024-05,2024-05-01,2024-05-31,"Opzione Avvisi SMS, maggio 2024",1,1.00,1.00,22.00,0.22,1.22,EUR,1.00,full,31,31,2024-05-01,2024-05-31',
    );
  });

  test('reports: revenue as JSON and CSV, per subscriber', async () => {
    const json = await app.inject({ method: 'GET', url: '/v1/billing/reports/revenue?from=2024-09&to=2024-11' });
    assert.equal(json.statusCode, 200, json.body);
    assert.deepEqual(json.json().rows, [
      { period: '2024-09', currency: 'EUR', subscribers: 3, netCents: 300, vatCents: 66, grossCents: 366 },
      { period: '2024-10', currency: 'EUR', subscribers: 4, netCents: 400, vatCents: 88, grossCents: 488 },
      { period: '2024-11', currency: 'EUR', subscribers: 3, netCents: 300, vatCents: 66, grossCents: 366 },
    ]);
    const csv = await app.inject({
      method: 'GET',
      url: '/v1/billing/reports/revenue?format=csv&from=2024-10&to=2024-10',
    });
    assert.equal(csv.body, 'period,currency,paying_subscribers,net,vat,gross\r\n2024-10,EUR,4,4.00,0.88,4.88\r\n');
    const per = await app.inject({ method: 'GET', url: '/v1/billing/reports/per-subscriber?from=2024-10&to=2024-10' });
    assert.equal(per.json().rows[0].payingSubscribers, 4);
    assert.equal(per.json().rows[0].revenuePerSubscriberMicros, 1_000_000);
    const unknown = await app.inject({ method: 'GET', url: '/v1/billing/reports/profit' });
    assert.equal(unknown.statusCode, 400);
  });
});

describe('the CLI', () => {
  const cliEnv = () => ({
    ...process.env,
    MONGODB_URI: env.servers.mongoUri,
    MONGODB_DB: env.dbName,
    TEMPORAL_ADDRESS: env.servers.temporalAddress,
    TEMPORAL_TASK_QUEUE: env.taskQueue,
    PLIVO_AUTH_ID: 'MATESTSIMULATOR000001',
    PLIVO_AUTH_TOKEN: 'test-simulator-token',
    LOG_LEVEL: 'silent',
  });
  const avviso = (...args: string[]) =>
    run(process.execPath, [path.join(ROOT, 'bin', 'avviso.js'), 'billing', ...args], {
      env: cliEnv(),
      cwd: ROOT,
      timeout: 120_000,
    });

  test('run a month, export it, report on it', async () => {
    const ran = await avviso('run', '2024-04');
    assert.match(ran.stdout, /2024-04: 3 lines, net 3\.00 \+ VAT 0\.66 = 3\.66 EUR/);
    const exported = await avviso('export', '2024-04');
    const api = await app.inject({ method: 'GET', url: '/v1/billing/months/2024-04/invoice-lines.csv' });
    assert.equal(exported.stdout, api.body, 'the CLI exports what the API does');
    const report = await avviso('report', 'revenue', '--format', 'csv', '--from', '2024-04', '--to', '2024-04');
    assert.equal(report.stdout, 'period,currency,paying_subscribers,net,vat,gross\r\n2024-04,EUR,3,3.00,0.66,3.66\r\n');
    const json = JSON.parse((await avviso('report', 'costs', '--format', 'json')).stdout);
    assert.equal(json.report, 'costs');
    await assert.rejects(
      avviso('run', '2024-4'),
      (err: { code: number; stderr: string }) => err.code === 2 && /YYYY-MM/.test(err.stderr),
    );
    await assert.rejects(
      avviso('export', '2023-01'),
      (err: { code: number; stderr: string }) => err.code === 1 && /has not been billed/.test(err.stderr),
    );
  });
});
