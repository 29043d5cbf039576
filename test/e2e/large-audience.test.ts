/**
 * An incident with a large audience: sent in batches, per-recipient state in MongoDB, and the
 * workflow continuing as new when its history grows, without anyone told twice or left out.
 * The history limit is lowered here so that a few thousand recipients make it continue several
 * times; in production it is 5,000 events (see the note on event counts in docs/performance.md).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Site, Subscriber } from '../../domain/types';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';
import { writeTestRules } from '../support/scenario';

const SUBSCRIBERS = Number(process.env.AVVISO_TEST_AUDIENCE ?? 600);
// One batch per sendDue activity (a budget of 1 ms), so that the history grows with the audience
// as it would for 100,000 recipients, and a low history limit: the workflow must continue as new.
const policy = {
  deliveryTimeoutMs: 20_000,
  maxAttempts: 3,
  sweepEveryMs: 300,
  batchSize: 50,
  sendBudgetMs: 1,
  historyLimit: 40,
};

describe('a large audience', () => {
  let stack: TestStack;
  const site: Site = { _id: 'tower-big-01', name: 'Big tower', area: 'Pavia', kind: 'tower', uplink: null };
  const phone = (i: number) => `+39348${String(i).padStart(7, '0')}`;

  before(async () => {
    // A grace delay of 10 s (longer than planning takes on a loaded machine): the notices are not due while they are planned, so the workflow's rounds
    // send them (notices due at once go out during planning: test/e2e/send-while-planning.test.ts).
    const rulesPath = writeTestRules(
      'large-audience',
      `  sms: { maxParts: 2 }
  wait: 10s
  restoration: true
rules:
  - name: paid-sms
    when:
      subscriber.paidSms: true
      subscriber.onAffectedSite: true
    notify: sms
`,
    );
    stack = await startTestStack(__filename, { deliveryPolicy: policy, rulesPath });
    await stack.store.sites.insertOne(site);
    const subscribers: Subscriber[] = Array.from({ length: SUBSCRIBERS }, (_, i) => ({
      _id: `BIG-${i}`,
      name: `Cliente ${i}`,
      phones: [phone(i)],
      language: i % 10 === 0 ? 'en' : 'it',
      siteId: site._id,
      segment: 'residential',
      smsAlerts: { active: true, since: new Date('2026-01-01T00:00:00Z') },
      optedOut: false,
    }));
    for (let i = 0; i < subscribers.length; i += 1000)
      await stack.store.subscribers.insertMany(subscribers.slice(i, i + 1000));
  });
  after(async () => stack?.stop());

  test(`${SUBSCRIBERS} subscribers: batches, continue-as-new, exactly one outage and one restoration each`, async () => {
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: [site._id] })).body.id;
    await eventually(
      'every outage notice delivered',
      async () => {
        const d = (await call(stack, 'GET', `/v1/incidents/${id}`)).body.deliveries;
        return d.sms?.outage?.delivered === SUBSCRIBERS ? true : undefined;
      },
      240_000,
    );
    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    const done = await eventually(
      'billed',
      async () => {
        const r = (await call(stack, 'GET', `/v1/incidents/${id}`)).body;
        return r.phase === 'billed' ? r : undefined;
      },
      240_000,
    );
    assert.deepEqual(done.deliveries.sms, { outage: { delivered: SUBSCRIBERS }, restored: { delivered: SUBSCRIBERS } });

    // The simulator's own record: one outage, then one restoration, per phone.
    const inbox = await stack.inbox();
    const wrong: string[] = [];
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const got = (inbox[phone(i)] ?? []).map((m) =>
        /^(Avviso guasto|Outage)/.test(m.text)
          ? 'outage'
          : /(ripristinato|restored in)/.test(m.text)
            ? 'restored'
            : m.text,
      );
      if (got.join(',') !== 'outage,restored') wrong.push(`${phone(i)}: ${got.join(',')}`);
    }
    assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} phones did not get exactly outage then restoration`);

    // It continued as new, and no run's history grew much beyond the limit.
    const runs: number[] = [];
    for await (const run of stack.temporal.workflow.list({ query: `WorkflowId = "incident:${id}"` }))
      runs.push(run.historyLength ?? 0);
    assert.ok(runs.length >= 3, `the workflow continued as new (${runs.length} runs: ${runs.join(', ')} events)`);
    assert.ok(Math.max(...runs) < policy.historyLimit + 40, `each run stays small: ${runs.join(', ')} events`);
  });
});
