/**
 * Retention against FerretDB: records of several ages, in every collection it reads. Old records of
 * a billed incident go (with their receipts, the parts of a long message included, and send
 * claims); an old incident never billed keeps its own, and alert events that opened it; young
 * records stay; the ledger stays for ten years; the audit log goes by its own age. A dry run counts
 * and deletes nothing; a second run finds nothing; the export and erasure of a subscriber work on
 * what is left. Then the nightly Schedule on the Temporal dev server (the time-skipping server has
 * none): it exists, fires at 03:30 Italian time, and a run it starts deletes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ObjectId } from 'mongodb';
import type { FastifyInstance } from 'fastify';
import type { ScheduleHandle } from '@temporalio/client';
import { eventually, isolatedEnv, type IsolatedEnv } from '../support/env';
import { quietTemporalRuntime } from '../billing/helpers';
import { buildApp } from '../../api/app';
import { createApiKey } from '../../store/api-keys';
import { createLogger } from '../../domain/log';
import { createBillingActivities } from '../../activities/billing';
import { createRetentionActivities } from '../../activities/retention';
import { createWorker } from '../../worker/worker';
import type { ActivityDeps } from '../../activities';
import { plannedRecord } from '../../store/deliveries';
import { insertReceipts } from '../../store/receipts';
import { monthOf } from '../../billing/month';
import { DEFAULT_BILLING } from '../../billing/settings';
import { DEFAULT_RETENTION, monthsBefore, type RetentionSettings } from '../../retention/settings';
import { emptyTotals, runRetentionSteps, type RetentionTotals } from '../../retention/run';
import { ensureRetentionSchedule } from '../../retention/schedule';
import { retentionCommand } from '../../cli/retention';
import type { RetentionResult } from '../../workflows/retention';
import type { Delivery, Incident } from '../../domain/types';
import type { AlertEventDoc } from '../../ingest/store';
import type { AuditEntry } from '../../store/audit-log';
import type { SubscriptionEntry } from '../../store/ledger';

const SETTINGS: RetentionSettings = DEFAULT_RETENTION; // 13 months of records, 24 of audit log, 10 years of ledger
const now = new Date();
const OLD = monthsBefore(now, 14);
const YOUNG = monthsBefore(now, 1);

function incident(id: string, openedAt: Date): Incident {
  return {
    _id: id,
    key: id,
    kind: 'outage',
    severity: 'major',
    siteIds: ['s'],
    areas: ['Lodi'],
    title: 'test',
    source: 'test',
    phase: 'resolved',
    openedAt,
    resolvedAt: openedAt,
    workflowId: `incident:${id}`,
    timeline: [],
  };
}

function record(incidentId: string, subscriberId: string, to: string, at: Date, messageId: string): Delivery {
  const d = plannedRecord({ incidentId, kind: 'outage', subscriberId, channel: 'sms', to, language: 'it' }, at);
  return {
    ...d,
    state: 'delivered',
    attempts: 1,
    providerMessageId: messageId,
    units: 1,
    cost: '0.0500',
    currency: 'USD',
    text: 'Guasto',
    updatedAt: at,
  };
}

/** A receipt as stored, with its id made at `at` (receipts are aged by their id's time too). */
function receipt(messageUuid: string, at: Date, parentMessageUuid?: string) {
  const time = ObjectId.createFromTime(Math.floor(at.getTime() / 1000))
    .toHexString()
    .slice(0, 8);
  return {
    _id: new ObjectId(time + new ObjectId().toHexString().slice(8)),
    messageUuid,
    ...(parentMessageUuid ? { parentMessageUuid } : {}),
    status: 'delivered',
    units: 1,
    receivedAt: at,
  };
}

function alertEvent(id: string, at: Date, incidentId?: string): AlertEventDoc {
  return {
    _id: id,
    source: 'alertmanager',
    integration: 'noc',
    dedupKey: `alertmanager:noc:${id}`,
    eventId: id,
    kind: 'state',
    status: 'firing',
    target: { site: 's', labels: {} },
    severity: 'major',
    summary: 'down',
    receivedAt: at,
    raw: { body: '{"x":1}', contentType: 'application/json', headers: {} },
    ...(incidentId ? { result: { action: 'opened', incidentId }, handledAt: at } : {}),
  };
}

function audit(at: Date, route: string): AuditEntry {
  return {
    at,
    requestId: route,
    actor: { via: 'api-key', keyId: 'k', ip: '127.0.0.1' },
    action: { method: 'POST', route },
    result: { status: 200, ms: 1 },
  };
}

function charge(subscriberId: string, month: string): SubscriptionEntry {
  const at = new Date(`${month}-15T00:00:00Z`);
  return {
    _id: `sub:${subscriberId}:${month}`,
    type: 'subscription',
    period: month,
    subscriberId,
    currency: 'EUR',
    amountCents: 100,
    unitPriceCents: 100,
    vatBasisPoints: 2200,
    vatCents: 22,
    grossCents: 122,
    proration: 'full',
    daysActive: 30,
    daysInMonth: 30,
    activeFrom: at,
    activeTo: at,
    description: 'Avvisi SMS',
    createdAt: at,
    source: 'test',
  };
}

const logger = createLogger('test-retention', 'silent');

describe('retention', () => {
  let env: IsolatedEnv;
  let app: FastifyInstance;
  let adminKey = '';
  const OLD_MONTH = monthOf(OLD);
  const ANCIENT_MONTH = monthOf(monthsBefore(now, 11 * 12));

  before(async () => {
    env = await isolatedEnv(__filename);
    const s = env.store;
    await s.subscribers.insertOne({
      _id: 'S-1',
      name: 'Giulia',
      phones: ['+393470000001'],
      language: 'it',
      siteId: 's',
      segment: 'residential',
      smsAlerts: { active: true },
      optedOut: false,
    });
    // A: old, billed (below, by the billing activity itself). B: old, never billed. C: young, billed.
    await s.incidents.insertMany([incident('inc_A', OLD), incident('inc_B', OLD), incident('inc_C', YOUNG)]);
    await s.deliveries.insertMany([
      record('inc_A', 'S-1', '+393470000001', OLD, 'msg-a1'),
      { ...record('inc_A', 'S-2', '+393470000002', OLD, 'msg-a2'), page: 1 },
      record('inc_B', 'S-1', '+393470000001', OLD, 'msg-b1'),
      record('inc_C', 'S-1', '+393470000001', YOUNG, 'msg-c1'),
    ]);
    // Receipts as versions before receipt batches stored them, one per document: they go with their incident.
    await s.receipts.insertMany([
      receipt('msg-a1', OLD),
      receipt('msg-a1-part2', OLD, 'msg-a1'),
      receipt('msg-a2', OLD),
      receipt('msg-b1', OLD),
      receipt('msg-c1', YOUNG),
    ]);
    // Receipt batches go by age: the old one's two receipts, whatever incident they are for.
    await insertReceipts(s, [receipt('msg-a1', OLD), receipt('msg-b1', OLD)], receipt('', OLD)._id);
    await insertReceipts(s, [receipt('msg-c1', YOUNG)], receipt('', YOUNG)._id);
    const a1 = (await s.deliveries.findOne({ providerMessageId: 'msg-a1' }))!;
    await s.sendClaims.insertMany([{ _id: `${a1._id}#1`, at: OLD }]);
    await s.deliveryPages.insertOne({ _id: 'inc_A', last: 1 });
    const billing = createBillingActivities({ store: s, logger, billing: DEFAULT_BILLING });
    await billing.billIncident({ incidentId: 'inc_A' });
    await billing.billIncident({ incidentId: 'inc_C' });

    await s.alertEvents.insertMany([
      alertEvent('ev-old-A', OLD, 'inc_A'),
      alertEvent('ev-old-B', OLD, 'inc_B'),
      alertEvent('ev-old-none', OLD),
      alertEvent('ev-young-C', YOUNG, 'inc_C'),
    ]);
    const raw = { body: 'garbage', contentType: 'text/plain', headers: {} };
    await s.rejectedPayloads.insertMany([
      { receivedAt: OLD, source: 'alertmanager', integration: 'noc', status: 400, code: 'bad', message: 'old', raw },
      {
        receivedAt: YOUNG,
        source: 'alertmanager',
        integration: 'noc',
        status: 400,
        code: 'bad',
        message: 'young',
        raw,
      },
    ]);
    await s.inbound.insertMany([
      {
        messageUuid: 'in-old',
        from: '+393470000001',
        to: 'Avviso',
        text: 'INFO',
        receivedAt: OLD,
        action: 'info',
        subscriberIds: ['S-1'],
      },
      {
        messageUuid: 'in-young',
        from: '+393470000001',
        to: 'Avviso',
        text: 'STOP',
        receivedAt: YOUNG,
        action: 'stop',
        subscriberIds: ['S-1'],
      },
    ]);
    await s.auditLog.insertMany([audit(monthsBefore(now, 30), '/ancient'), audit(OLD, '/old'), audit(YOUNG, '/young')]);
    await s.ledger.insertMany([charge('S-1', ANCIENT_MONTH), charge('S-1', OLD_MONTH)]);
    await s.billingRuns.insertMany([
      { _id: ANCIENT_MONTH, terms: DEFAULT_BILLING.terms, createdAt: now, completedAt: now },
      { _id: OLD_MONTH, terms: DEFAULT_BILLING.terms, createdAt: now, completedAt: now },
    ]);

    app = await buildApp({
      store: s,
      temporal: env.temporal,
      taskQueue: env.taskQueue,
      publicUrl: 'http://127.0.0.1:1',
      plivoAuthToken: 'test-token',
      applyReceiptsEveryMs: 0,
    });
    adminKey = (await createApiKey(s, { name: 'retention admin', role: 'admin', createdBy: 'test' })).key;
  });
  after(async () => {
    await app?.close();
    await env?.close();
  });

  async function run(dryRun: boolean): Promise<RetentionTotals> {
    const acts = createRetentionActivities({ store: env.store, logger, retention: SETTINGS });
    const progress = { plan: await acts.planRetention({}), stage: 'incidents' as const, totals: emptyTotals() };
    assert.equal(progress.plan.unbilledIncidents, 1, 'inc_B is old and was never billed');
    assert.equal(await runRetentionSteps(acts, progress, dryRun), undefined);
    return progress.totals;
  }

  async function counts() {
    const s = env.store;
    return {
      deliveries: await s.deliveries.countDocuments(),
      receipts: await s.receipts.countDocuments(),
      receiptBatches: await s.receiptBatches.countDocuments(),
      sendClaims: await s.sendClaims.countDocuments(),
      alertEvents: await s.alertEvents.countDocuments(),
      rejectedPayloads: await s.rejectedPayloads.countDocuments(),
      inbound: await s.inbound.countDocuments(),
      auditLog: await s.auditLog.countDocuments(),
      ledger: await s.ledger.countDocuments(),
      billingRuns: await s.billingRuns.countDocuments(),
    };
  }

  const EXPECTED: RetentionTotals = {
    incidents: 1,
    deliveries: 2,
    receipts: 5,
    sendClaims: 1,
    alertEvents: 2,
    alertEventsKept: 1,
    rejectedPayloads: 1,
    inbound: 1,
    auditLog: 1,
    ledgerEntries: 1,
    billingRuns: 1,
  };

  test('a dry run counts what would go and deletes nothing', async () => {
    const before = await counts();
    assert.deepEqual(await run(true), EXPECTED);
    assert.deepEqual(await counts(), before);
    assert.equal(
      (await env.store.db.collection('incidents').findOne({ _id: 'inc_A' } as never))?.recordsDeletedAt,
      undefined,
    );
  });

  test('avviso retention run --dry-run prints the counts, reading MongoDB only', async () => {
    const before = await counts();
    const out: string[] = [];
    const errors: string[] = [];
    const code = await retentionCommand(
      ['run', '--dry-run'],
      (l) => out.push(l),
      (l) => errors.push(l),
      { MONGODB_URI: env.servers.mongoUri, MONGODB_DB: env.dbName },
    );
    assert.equal(code, 0, errors.join('\n'));
    const text = out.join('\n');
    assert.match(text, /dry run: nothing deleted/);
    assert.match(text, /billed incidents swept +1: 2 delivery records, 5 receipts, 1 send claims/);
    assert.match(text, /alert events +2 \(1 kept: their incident is not billed\)/);
    assert.match(text, /audit log entries +1/);
    assert.match(text, /kept: 1 incident opened before the cut-off and never billed/);
    assert.doesNotMatch(text, /\+39/, 'no phone numbers');
    assert.deepEqual(await counts(), before);
    const bad = await retentionCommand(
      ['run', '--dry-run'],
      () => undefined,
      (l) => errors.push(l),
      { MONGODB_URI: env.servers.mongoUri, MONGODB_DB: env.dbName, RETENTION_LEDGER_YEARS: '3' },
    );
    assert.equal(bad, 2);
    assert.match(errors.join('\n'), /RETENTION_LEDGER_YEARS is "3": must be 0 \(keep forever\) or at least 10/);
  });

  test('old records of billed incidents go; unbilled, young, the ledger and the younger audit log stay', async () => {
    const s = env.store;
    assert.deepEqual(await run(false), EXPECTED);

    assert.deepEqual((await s.deliveries.find({}).toArray()).map((d) => d.providerMessageId).sort(), [
      'msg-b1',
      'msg-c1',
    ]);
    assert.deepEqual(
      (await s.receipts.find({}).toArray()).map((r) => r.messageUuid).sort(),
      ['msg-b1', 'msg-c1'],
      'the part of a long message went with it',
    );
    assert.deepEqual(
      (await s.receiptBatches.find({}).toArray()).flatMap((b) => b.receipts.map((r) => r.messageUuid)),
      ['msg-c1'],
      'the old batch went, the young one stays',
    );
    assert.equal(await s.sendClaims.countDocuments(), 0);
    assert.equal(await s.deliveryPages.countDocuments({ _id: 'inc_A' }), 0);
    assert.deepEqual(
      (await s.alertEvents.find({}).toArray()).map((e) => e._id).sort(),
      ['ev-old-B', 'ev-young-C'],
      'the unbilled incident keeps the alert that opened it',
    );
    assert.deepEqual(
      (await s.rejectedPayloads.find({}).toArray()).map((p) => p.message),
      ['young'],
    );
    assert.deepEqual(
      (await s.inbound.find({}).toArray()).map((m) => m.messageUuid),
      ['in-young'],
    );
    assert.deepEqual(
      (await s.auditLog.find({}).sort({ at: 1 }).toArray()).map((a) => a.action.route),
      ['/old', '/young'],
      'the audit log has its own age (24 months)',
    );

    // The ledger: the incidents' costs and the charges of the last ten years stay.
    assert.deepEqual(
      (await s.ledger.find({ type: 'incident_cost' }).toArray())
        .map((e) => (e.type === 'incident_cost' ? e.incidentId : ''))
        .sort(),
      ['inc_A', 'inc_C'],
    );
    assert.deepEqual(
      (await s.ledger.find({ type: 'subscription' }).toArray()).map((e) => e.period),
      [OLD_MONTH],
    );
    assert.deepEqual(
      (await s.billingRuns.find({}).toArray()).map((r) => r._id),
      [OLD_MONTH],
    );
    const a = (await s.incidents.findOne({ _id: 'inc_A' }))!;
    assert.ok(a.cost, 'the incident keeps its cost');
    assert.ok((a as Incident & { recordsDeletedAt?: Date }).recordsDeletedAt instanceof Date);

    // Again: nothing left to delete.
    const again = await run(false);
    assert.deepEqual(again, { ...emptyTotals(), alertEventsKept: 1 });
  });

  test('export and erasure work on what is left', async () => {
    const call = async (method: 'GET' | 'POST', url: string) => {
      const res = await app.inject({ method, url, headers: { authorization: `Bearer ${adminKey}` } });
      return { status: res.statusCode, body: JSON.parse(res.body) };
    };
    const exported = await call('GET', '/v1/subscribers/S-1/export');
    assert.equal(exported.status, 200, JSON.stringify(exported.body));
    assert.deepEqual(
      exported.body.messages.map((m: { incidentId: string }) => m.incidentId),
      ['inc_B', 'inc_C'],
    );
    assert.deepEqual(
      exported.body.received.map((m: { text: string }) => m.text),
      ['STOP'],
    );
    assert.deepEqual(
      exported.body.billing.map((b: { period: string }) => b.period),
      [OLD_MONTH],
    );
    const erased = await call('POST', '/v1/subscribers/S-1/erase');
    assert.equal(erased.status, 200, JSON.stringify(erased.body));
    assert.deepEqual(
      [
        erased.body.subscriberDeleted,
        erased.body.messagesAnonymized,
        erased.body.receivedDeleted,
        erased.body.billingEntriesKept,
      ],
      [true, 2, 1, 1],
    );
  });
});

describe('the nightly retention Schedule (Temporal dev server)', () => {
  let env: IsolatedEnv;
  let schedule: ScheduleHandle | undefined;
  let stopWorker: (() => Promise<void>) | undefined;

  before(async () => {
    env = await isolatedEnv(__filename);
    quietTemporalRuntime();
    const deps = {
      store: env.store,
      logger,
      channels: {},
      rules: (() => Promise.reject(new Error('no rules'))) as unknown as ActivityDeps['rules'],
      retention: SETTINGS,
      billing: DEFAULT_BILLING,
    } as ActivityDeps;
    const { worker, connection } = await createWorker({
      temporal: { address: env.servers.temporalAddress, namespace: 'default', taskQueue: env.taskQueue },
      workflowBundle: { codePath: env.servers.workflowBundlePath },
      deps,
    });
    const running = worker.run();
    stopWorker = async () => {
      worker.shutdown();
      await running;
      await connection.close();
    };
  });
  after(async () => {
    await schedule?.delete().catch(() => undefined);
    await stopWorker?.();
    await env?.close();
  });

  test('it exists, runs at 03:30 Italian time, and a run it starts deletes old records of billed incidents', async () => {
    const s = env.store;
    await s.incidents.insertMany([incident('inc_D', OLD), incident('inc_E', YOUNG)]);
    await s.deliveries.insertMany([
      record('inc_D', 'S-9', '+393470000009', OLD, 'msg-d1'),
      record('inc_E', 'S-9', '+393470000009', YOUNG, 'msg-e1'),
    ]);
    await insertReceipts(s, [receipt('msg-d1', OLD)], receipt('', OLD)._id);
    await insertReceipts(s, [receipt('msg-e1', YOUNG)], receipt('', YOUNG)._id);
    const billing = createBillingActivities({ store: s, logger, billing: DEFAULT_BILLING });
    await billing.billIncident({ incidentId: 'inc_D' });
    await billing.billIncident({ incidentId: 'inc_E' });

    const scheduleId = `avviso-retention-${env.name}`;
    assert.deepEqual(await ensureRetentionSchedule(env.temporal, 'some-old-queue', { scheduleId }), {
      scheduleId,
      created: true,
    });
    assert.deepEqual(
      await ensureRetentionSchedule(env.temporal, env.taskQueue, { scheduleId }),
      { scheduleId, created: false },
      'a second worker start updates it',
    );
    schedule = env.temporal.schedule.getHandle(scheduleId);
    const d = await schedule.describe();
    assert.equal(d.spec.timezone, 'Europe/Rome');
    assert.deepEqual(d.spec.calendars![0]!.hour, [{ start: 3, end: 3, step: 1 }]);
    assert.deepEqual(d.spec.calendars![0]!.minute, [{ start: 30, end: 30, step: 1 }]);
    assert.equal(d.action.type === 'startWorkflow' && d.action.workflowType, 'retentionWorkflow');
    assert.equal(d.action.type === 'startWorkflow' && d.action.taskQueue, env.taskQueue);
    assert.equal(d.policies.overlap, 'SKIP');
    const local = new Intl.DateTimeFormat('en-GB', {
      timeZone: 'Europe/Rome',
      hour: '2-digit',
      hourCycle: 'h23',
      minute: '2-digit',
    }).format(d.info.nextActionTimes[0]!);
    assert.equal(local, '03:30');

    await schedule.trigger();
    const workflowId = await eventually(
      'the schedule to start a run',
      async () => (await schedule!.describe()).info.recentActions[0]?.action.workflow.workflowId,
    );
    assert.match(workflowId, /^retention:scheduled-/);
    const result: RetentionResult = await env.temporal.workflow.getHandle(workflowId).result();
    assert.equal(result.dryRun, false);
    assert.deepEqual([result.incidents, result.deliveries, result.receipts], [1, 1, 1]);
    assert.deepEqual(
      (await s.deliveries.find({}).toArray()).map((r) => r.incidentId),
      ['inc_E'],
    );
    assert.deepEqual(
      (await s.receiptBatches.find({}).toArray()).flatMap((b) => b.receipts.map((r) => r.messageUuid)),
      ['msg-e1'],
    );
    assert.equal(await s.ledger.countDocuments({ type: 'incident_cost' }), 2, "the ledger keeps both incidents' costs");
  });
});
