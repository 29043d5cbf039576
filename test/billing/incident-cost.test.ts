/**
 * The billed stage: what an incident's messages cost, by channel, from the receipts' amounts or,
 * where a receipt has none, from the rate table; into the ledger once and onto the incident. Then
 * end to end: a resolved incident reaches `billed` with its cost, and the reports show it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isolatedEnv, eventually, type IsolatedEnv } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';
import { createBillingActivities } from '../../activities/billing';
import { createLogger } from '../../domain/log';
import { plannedRecord } from '../../store/deliveries';
import { loadDemoDataIfEmpty } from '../../store/demo';
import { parseRates, type RateTable } from '../../billing/costs';
import { DEFAULT_BILLING, type BillingSettings } from '../../billing/settings';
import type { Delivery, DeliveryChannel, DeliveryState, Incident } from '../../domain/types';

const RATES: RateTable = {
  currency: 'USD',
  rates: parseRates('sms=0.0500,sms:+1=0.0080,voice=0.0200') as RateTable['rates'],
};
const SETTINGS: BillingSettings = { ...DEFAULT_BILLING, rates: RATES };

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
    workflowId: `incident:${id}`,
    timeline: [],
  };
}

let n = 0;
function record(
  incidentId: string,
  channel: DeliveryChannel,
  state: DeliveryState,
  extra: Partial<Delivery> = {},
  to = `+39347${String(++n).padStart(7, '0')}`,
): Delivery {
  const d = plannedRecord(
    { incidentId, kind: 'outage', subscriberId: `C-${n}`, channel, to, language: 'it' },
    new Date('2024-10-05T10:00:00Z'),
  );
  return { ...d, state, ...extra };
}

describe('incident cost (the billing activity)', () => {
  let env: IsolatedEnv;
  before(async () => (env = await isolatedEnv(__filename)));
  after(async () => env?.close());
  const activities = () =>
    createBillingActivities({ store: env.store, logger: createLogger('test', 'silent'), billing: SETTINGS });

  test('amounts from receipts, the rate table where a receipt has none; ledger and incident agree', async () => {
    const id = 'inc_cost000000000001';
    // Opened at 23:30 UTC on 31 October 2024: already 1 November in Italy.
    await env.store.incidents.insertOne(incident(id, new Date('2024-10-31T23:30:00Z')));
    await env.store.deliveries.insertMany([
      record(id, 'sms', 'delivered', { units: 1, cost: '0.00500', currency: 'USD' }),
      record(id, 'sms', 'undelivered', { units: 2, cost: '0.01000', currency: 'USD' }),
      record(id, 'sms', 'sent', { units: 3 }), // no receipt amount yet: 3 x 0.05
      record(id, 'sms', 'accepted', {}, '+15550000001'), // a US number: 0.008
      record(id, 'sms', 'failed', { invalidRecipient: true, error: 'invalid' }), // never reached a carrier
      record(id, 'sms', 'planned'), // never sent
      record(id, 'voice', 'delivered'), // 0.02 a call
      record(id, 'email', 'delivered', { to: 'a@example.com' }), // no rate: unpriced
      record('inc_someoneelse00001', 'sms', 'delivered', { units: 9, cost: '9.00000', currency: 'USD' }),
    ]);

    const cost = await activities().billIncident({ incidentId: id });
    assert.equal(cost.period, '2024-11');
    assert.deepEqual(
      cost.channels.map(
        ({
          ledgerKey,
          channel,
          messages,
          units,
          amountMicros,
          amountCents,
          fromReceipts,
          fromRateTable,
          unpriced,
        }) => ({
          ledgerKey,
          channel,
          messages,
          units,
          amountMicros,
          amountCents,
          fromReceipts,
          fromRateTable,
          unpriced,
        }),
      ),
      [
        {
          ledgerKey: `inc:${id}:sms`,
          channel: 'sms',
          messages: 4,
          units: 7,
          amountMicros: 5000 + 10_000 + 150_000 + 8000,
          amountCents: 17,
          fromReceipts: 2,
          fromRateTable: 2,
          unpriced: 0,
        },
        {
          ledgerKey: `inc:${id}:voice`,
          channel: 'voice',
          messages: 1,
          units: 1,
          amountMicros: 20_000,
          amountCents: 2,
          fromReceipts: 0,
          fromRateTable: 1,
          unpriced: 0,
        },
        {
          ledgerKey: `inc:${id}:email`,
          channel: 'email',
          messages: 1,
          units: 1,
          amountMicros: 0,
          amountCents: 0,
          fromReceipts: 0,
          fromRateTable: 0,
          unpriced: 1,
        },
      ],
    );
    assert.deepEqual(cost.totals, [{ currency: 'USD', amountMicros: 193_000, amountCents: 19 }]);

    const ledger = await env.store.ledger.find({ incidentId: id }).sort({ _id: 1 }).toArray();
    assert.deepEqual(
      ledger.map((e) => [e._id, e.type, e.period, e.currency, e.amountCents]),
      [
        [`inc:${id}:email`, 'incident_cost', '2024-11', 'USD', 0],
        [`inc:${id}:sms`, 'incident_cost', '2024-11', 'USD', 17],
        [`inc:${id}:voice`, 'incident_cost', '2024-11', 'USD', 2],
      ],
    );
    const stored = await env.store.incidents.findOne({ _id: id });
    assert.deepEqual(stored!.cost!.totals, cost.totals);
    assert.equal(stored!.cost!.channels.length, 3);
  });

  test('billing an incident again adds nothing, even after late receipts changed its records', async () => {
    const id = 'inc_cost000000000002';
    await env.store.incidents.insertOne(incident(id, new Date('2024-10-05T10:00:00Z')));
    const d = record(id, 'sms', 'sent', { units: 1 });
    await env.store.deliveries.insertOne(d);
    const first = await activities().billIncident({ incidentId: id });
    assert.equal(first.channels[0]!.fromRateTable, 1);
    assert.equal(first.channels[0]!.amountMicros, 50_000);
    await env.store.deliveries.updateOne(
      { _id: d._id },
      { $set: { state: 'delivered', cost: '0.00500', currency: 'USD' } },
    );
    const second = await activities().billIncident({ incidentId: id });
    assert.deepEqual(second.channels, first.channels, 'the ledger entry of the first run stands');
    assert.equal(await env.store.ledger.countDocuments({ incidentId: id }), 1);
    assert.equal((await env.store.incidents.findOne({ _id: id }))!.cost!.channels[0]!.amountMicros, 50_000);
  });

  test('an incident with no messages is billed at nothing; an unknown incident fails for good', async () => {
    const id = 'inc_cost000000000003';
    await env.store.incidents.insertOne(incident(id, new Date('2024-10-05T10:00:00Z')));
    const cost = await activities().billIncident({ incidentId: id });
    assert.deepEqual([cost.channels, cost.totals], [[], []]);
    await assert.rejects(
      activities().billIncident({ incidentId: 'inc_nothere000000000' }),
      (err: Error & { type?: string; nonRetryable?: boolean }) =>
        err.type === 'IncidentNotFound' && err.nonRetryable === true,
    );
  });
});

describe('incident cost end to end', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(__filename, {
      deliveryPolicy: { deliveryTimeoutMs: 10_000, maxAttempts: 3, sweepEveryMs: 200 },
    });
    await loadDemoDataIfEmpty(stack.store);
  });
  after(async () => stack?.stop());

  test('a resolved incident reaches billed, with its cost from the receipts on the incident and in the reports', async () => {
    const opened = await call(stack, 'POST', '/v1/incidents', {
      siteIds: ['tower-lodi-02'],
      title: 'Traliccio senza corrente',
    });
    assert.equal(opened.status, 202, JSON.stringify(opened.body));
    const id: string = opened.body.id;
    await eventually('notified', async () =>
      (await call(stack, 'GET', `/v1/incidents/${id}`)).body.phase === 'notified' ? true : undefined,
    );
    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    const done = await eventually(
      'billed',
      async () => {
        const r = await call(stack, 'GET', `/v1/incidents/${id}`);
        return r.body.phase === 'billed' ? r.body : undefined;
      },
      60_000,
    );
    assert.deepEqual(done.timeline.map((t: { phase: string }) => t.phase).slice(-2), ['resolved', 'billed']);

    // Two paying subscribers, an outage and a restoration SMS each, one part each, at the simulator's 0.005 USD.
    const sms = done.cost.channels.find((c: { channel: string }) => c.channel === 'sms');
    assert.deepEqual(
      {
        messages: sms.messages,
        units: sms.units,
        amountMicros: sms.amountMicros,
        currency: sms.currency,
        fromReceipts: sms.fromReceipts,
        fromRateTable: sms.fromRateTable,
      },
      { messages: 4, units: 4, amountMicros: 20_000, currency: 'USD', fromReceipts: 4, fromRateTable: 0 },
    );
    const stored = await stack.store.incidents.findOne({ _id: id });
    assert.deepEqual(stored!.cost!.channels.find((c) => c.channel === 'sms')!.amountMicros, 20_000);
    assert.ok(await stack.store.ledger.findOne({ _id: `inc:${id}:sms` }));

    const report = await call(stack, 'GET', '/v1/billing/reports/incidents');
    assert.equal(report.status, 200, JSON.stringify(report.body));
    const row = report.body.rows.find(
      (r: { incidentId: string; currency: string }) => r.incidentId === id && r.currency === 'USD',
    );
    assert.equal(row.amountMicros, 20_000);
    assert.equal(row.title, 'Traliccio senza corrente');
    // Running a month is an admin's (the auth policy's default for a route it does not list).
    const forbidden = await call(
      stack,
      'POST',
      '/v1/billing/months/2024-01/run',
      undefined,
      {},
      { key: await stack.createKey('operator') },
    );
    assert.equal(forbidden.status, 403);
  });
});
