/**
 * Nothing lost: a webhook answers once its alert is stored, and the decision follows in the same
 * process. Alerts a process stored but did not decide (it stopped in between) are found by the
 * sweep of undecided alerts, at start and every minute, and decided then: those stored with the
 * `undecided` marker through its index, and those stored before the marker existed by the first
 * sweep of a process. Real FerretDB and Temporal; no worker (deciding needs none).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createIntake } from '../../ingest/intake';
import { parseIntegrations } from '../../ingest/integrations';
import { NORMALIZERS } from '../../ingest/normalizers';
import { createAlertProcessor } from '../../ingest/process';
import { insertAlertEvent } from '../../ingest/store';
import { createIncidentService } from '../../services/incidents';
import { loadDemoDataIfEmpty } from '../../store/demo';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import * as p from './payloads';

const INTEGRATIONS = parseIntegrations(
  'integrations:\n  - { name: noc, source: alertmanager, token: am-token-123, site: { label: device } }\n',
  'test-integrations.yaml',
  {},
);
const NOC = INTEGRATIONS.find('alertmanager', 'noc')!;

describe('alerts stored but not decided', () => {
  let env: IsolatedEnv;
  before(async () => {
    env = await isolatedEnv(__filename);
    await loadDemoDataIfEmpty(env.store);
  });
  after(async () => env?.close());

  function intake() {
    const incidents = createIncidentService({ store: env.store, temporal: env.temporal, taskQueue: env.taskQueue });
    // The answer waits for the decision however slow the machine: these tests read it.
    return createIntake({
      store: env.store,
      processor: createAlertProcessor({ store: env.store, incidents, settleSeconds: 0 }),
      decisionWaitMs: 60_000,
    });
  }

  /** An alert as a process that stopped before deciding it left it, received `agoMs` ago. */
  function storedAlert(device: string, fingerprint: string, agoMs: number) {
    const receivedAt = new Date(Date.now() - agoMs);
    const [event] = NORMALIZERS.alertmanager(p.alertmanager({ device, fingerprint }), {
      integration: 'noc',
      timeZone: 'UTC',
      receivedAt,
      headers: {},
    });
    return {
      _id: event!.eventId,
      ...event!,
      raw: { body: '{}', contentType: 'application/json', headers: {} },
      siteIds: [device],
    };
  }

  test('are decided by the sweep: marked ones through the index, older unmarked ones by the first sweep', async () => {
    const marked = storedAlert('tower-lodi-01', 'sweep-1', 120_000);
    assert.deepEqual(await insertAlertEvent(env.store, marked), { first: true });
    // Stored before the marker existed: no `undecided`, no result.
    const legacy = storedAlert('ap-lodi-01-a', 'sweep-2', 90_000);
    await env.store.alertEvents.insertOne(legacy);
    // Stored a moment ago: its own request is still deciding it, the sweep leaves it.
    const fresh = storedAlert('tower-crema-01', 'sweep-3', 0);
    await insertAlertEvent(env.store, fresh);
    assert.equal((await env.store.alertEvents.findOne({ _id: marked._id }))?.undecided, true);

    const first = intake();
    assert.equal(await first.resume((s, n) => INTEGRATIONS.find(s, n)), 2);
    const opened = await env.store.alertEvents.findOne({ _id: marked._id });
    assert.equal(opened?.result?.action, 'opened');
    assert.equal(opened?.undecided, undefined, 'the marker goes with the decision');
    const joined = await env.store.alertEvents.findOne({ _id: legacy._id });
    assert.equal(joined?.result?.action, 'joined', 'decided in order of arrival: the AP joins its tower');
    assert.equal(joined?.result?.incidentId, opened?.result?.incidentId);
    assert.equal((await env.store.alertEvents.findOne({ _id: fresh._id }))?.result, undefined);
    assert.ok(
      await env.store.incidents.findOne({ _id: opened!.result!.incidentId! }),
      'the incident is stored, its workflow started (no worker needed)',
    );

    // The next sweeps read the marker only: a marked alert left later is found, nothing is decided twice.
    const later = storedAlert('tower-lodi-02', 'sweep-4', 60_000);
    await insertAlertEvent(env.store, later);
    assert.equal(await first.resume((s, n) => INTEGRATIONS.find(s, n)), 1);
    assert.equal((await env.store.alertEvents.findOne({ _id: later._id }))?.result?.action, 'joined');
    assert.equal(await first.resume((s, n) => INTEGRATIONS.find(s, n)), 0);
  });

  test('a repeat of a decided alert is answered with its first result, also by another process', async () => {
    const payload = p.alertmanager({ device: 'ap-crema-01-a', fingerprint: 'sweep-5' });
    const delivery = {
      integration: NOC,
      payload,
      raw: { body: JSON.stringify(payload), contentType: 'application/json', headers: {} },
      headers: {},
      receivedAt: new Date(),
    };
    const one = intake();
    const answer = await one.accept(delivery);
    assert.equal(answer.status, 202);
    const decided = answer.body.results[0]!;
    assert.ok(decided.action === 'opened' || decided.action === 'joined', decided.action);
    for (const other of [one, intake()]) {
      const again = await other.accept({ ...delivery, receivedAt: new Date() });
      assert.equal(again.status, 200);
      assert.deepEqual(again.body.results, [{ ...decided, duplicate: true }]);
    }
    assert.equal(await env.store.alertEvents.countDocuments({ _id: decided.eventId }), 1);
  });
});
