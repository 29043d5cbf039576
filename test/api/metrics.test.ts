/**
 * /metrics on the test stack after an incident and a webhook, and the delivery-event scanner
 * behind the latency histogram and the provider-error counter, on records written by hand.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDemoDataIfEmpty } from '../../store/demo';
import { call, startTestStack, type TestStack } from '../support/stack';
import { eventually } from '../support/env';
import { DeliveryEventScanner, incidentsByPhase, messagesByChannelAndState } from '../../store/metrics';
import type { Delivery, DeliveryStep } from '../../domain/types';

describe('metrics', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(__filename, {
      deliveryPolicy: { deliveryTimeoutMs: 10_000, maxAttempts: 3, sweepEveryMs: 200 },
    });
    await loadDemoDataIfEmpty(stack.store);
  });
  after(async () => stack?.stop());

  async function scrape(key: string | null): Promise<{ status: number; text: string; type: string }> {
    const res = await fetch(`${stack.apiUrl}/metrics`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
    return { status: res.status, text: await res.text(), type: res.headers.get('content-type') ?? '' };
  }

  test('GET /metrics: requests, webhooks, incidents by phase and messages by channel and state, for a viewer key', async () => {
    const opened = await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-crema-01'] });
    assert.equal(opened.status, 202);
    await eventually('the outage SMS delivered', async () =>
      (await stack.store.deliveries.countDocuments({
        incidentId: opened.body.id,
        channel: 'sms',
        state: 'delivered',
      })) === 2
        ? true
        : undefined,
    );
    const hook = await fetch(`${stack.apiUrl}/v1/ingest/alertmanager/noc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer dev-token-alertmanager' },
      body: JSON.stringify({
        version: '4',
        status: 'firing',
        receiver: 'avviso',
        alerts: [
          {
            status: 'firing',
            labels: { alertname: 'Probe', device: 'tower-nowhere', severity: 'warning' },
            annotations: {},
            startsAt: '2026-05-04T13:02:11Z',
            endsAt: '0001-01-01T00:00:00Z',
            fingerprint: 'ffffeeeeddddcccc',
          },
        ],
      }),
    });
    await hook.arrayBuffer();
    const bad = await fetch(`${stack.apiUrl}/v1/ingest/alertmanager/noc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer wrong' },
      body: '{}',
    });
    assert.equal(bad.status, 401);

    assert.equal((await scrape(null)).status, 401, 'metrics need a key');
    const viewer = await stack.createKey('viewer', { name: 'prometheus' });
    const m = await scrape(viewer);
    assert.equal(m.status, 200);
    assert.match(m.type, /^text\/plain; version=0\.0\.4/);
    const t = m.text;
    assert.match(t, /^avviso_http_requests_total\{method="POST",route="\/v1\/incidents",status="202"\} 1$/m);
    assert.match(t, /^avviso_http_request_duration_seconds_count\{method="POST",route="\/v1\/incidents"\} 1$/m);
    assert.match(
      t,
      new RegExp(
        `^avviso_webhook_requests_total\\{source="alertmanager",result="${hook.status === 200 ? 'repeat' : 'accepted'}"\\} 1$`,
        'm',
      ),
    );
    assert.match(t, /^avviso_webhook_requests_total\{source="alertmanager",result="bad_token"\} 1$/m);
    assert.match(t, /^avviso_webhook_alerts_total\{source="alertmanager",action="[a-z_]+"\} 1$/m);
    assert.match(t, /^avviso_incidents\{kind="outage",phase="(notified|notifying)"\} 1$/m);
    assert.match(t, /^avviso_messages\{channel="sms",state="delivered"\} 2$/m);
    for (const name of [
      'avviso_delivery_latency_seconds',
      'avviso_provider_errors_total',
      'process_cpu_seconds_total',
      'nodejs_eventloop_lag_seconds',
    ])
      assert.match(t, new RegExp(`^# TYPE ${name} `, 'm'));
    assert.doesNotMatch(t, /\+39\d|avk_/, 'no phone number or key in the metrics');
  });

  test('counts read from MongoDB', async () => {
    const phases = await incidentsByPhase(stack.store);
    assert.ok(phases.some((r) => r.labels.kind === 'outage' && r.count >= 1));
    const states = await messagesByChannelAndState(stack.store);
    assert.ok(states.some((r) => r.labels.channel === 'sms' && r.labels.state === 'delivered' && r.count >= 2));
  });

  test('the scanner reports each delivery and each provider error once, whichever scrape sees it', async () => {
    const t0 = new Date();
    const at = (s: number) => new Date(t0.getTime() + s * 1000);
    const step = (s: number, state: DeliveryStep['state'], note?: string): DeliveryStep => ({
      at: at(s),
      state,
      ...(note ? { note } : {}),
    });
    const record = (id: string, channel: Delivery['channel'], history: DeliveryStep[]): Delivery => ({
      _id: `scan|${id}`,
      incidentId: 'inc_scan',
      kind: 'outage',
      subscriberId: id,
      channel,
      to: '+390000000000',
      language: 'it',
      state: history[history.length - 1]!.state,
      attempts: 1,
      history,
      createdAt: history[0]!.at,
      updatedAt: history[history.length - 1]!.at,
    });
    // Scanner from t0, nothing left to settle: only what these records hold counts.
    const scanner = new DeliveryEventScanner(stack.store, t0, { settleMs: 0, pageSize: 2 });
    const before = await stack.store.deliveries.find({ updatedAt: { $gte: t0 } }).toArray();
    assert.equal(before.length, 0);
    await stack.store.deliveries.insertMany([
      record('a', 'sms', [step(1, 'planned'), step(2, 'sending'), step(3, 'accepted'), step(13, 'delivered')]),
      record('b', 'sms', [
        step(1, 'planned'),
        step(2, 'sending'),
        step(3, 'planned', 'Plivo 503'),
        step(4, 'sending'),
        step(5, 'accepted'),
        step(6, 'undelivered', 'receipt: undelivered, error 30'),
      ]),
      record('c', 'voice', [step(1, 'planned'), step(2, 'sending'), step(3, 'failed', 'invalid number')]),
    ]);
    const first = await scanner.scan(at(20));
    assert.deepEqual(
      first.filter((e) => e.type === 'delivered'),
      [{ type: 'delivered', channel: 'sms', latencySeconds: 10 }],
    );
    assert.deepEqual(
      first
        .filter((e) => e.type === 'provider_error')
        .map((e) => e.type === 'provider_error' && `${e.channel}:${e.stage}`)
        .sort(),
      ['sms:delivery', 'sms:send', 'voice:send'],
    );

    // Scanning again finds nothing new; a record that changes again reports only its new step.
    assert.deepEqual(await scanner.scan(at(25)), []);
    await stack.store.deliveries.updateOne(
      { _id: 'scan|b' },
      { $set: { state: 'delivered', updatedAt: at(30) }, $push: { history: step(30, 'delivered') } },
    );
    assert.deepEqual(await scanner.scan(at(40)), [{ type: 'delivered', channel: 'sms', latencySeconds: 25 }]);
    await stack.store.deliveries.deleteMany({ incidentId: 'inc_scan' });
  });
});
