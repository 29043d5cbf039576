/**
 * The crash window, on purpose: Plivo accepts a bulk request and the connection drops before its
 * answer (the messages are on their way, but we never learnt their ids). The next attempt must ask
 * Plivo's message list what it accepted and resend nothing: every number gets exactly one message,
 * and the records carry the ids that reconciliation found.
 *
 * And the same window right after an earlier message to the same numbers (the outage notice, then
 * at once the restoration, whose request is lost): what Plivo lists for those numbers includes the
 * outage notices, which must not be taken for the lost restoration.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Delivery } from '../../domain/types';
import { createDeliveryActivities, type SendBatchResult } from '../../activities/delivery';
import { buildDeliveryDeps } from '../../worker/delivery-deps';
import { RulesHolder } from '../../rules';
import { rulesResolver } from '../../store/rule-versions';
import { planAll } from '../../store/deliveries';
import { recipientsOf, reserveNextBatch } from '../../store/send-requests';
import { createLogger } from '../../domain/log';
import { eventually } from '../support/env';
import { call, SIM_AUTH_ID, SIM_AUTH_TOKEN, startTestStack, TEST_RULES, type TestStack } from '../support/stack';
import { phoneOf, setFaults, simInbox, simRequests, simStats, site, subscriber } from './sim-record';

const PER_SITE = 40;
const BATCH = 20;

describe('the crash window: accepted, then the connection dropped', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(__filename, {
      deliveryPolicy: { deliveryTimeoutMs: 15_000, maxAttempts: 3, sweepEveryMs: 300, batchSize: BATCH },
    });
    await stack.store.sites.insertMany([
      site('tower-crash', 'Borgo Caduto'),
      site('tower-blip', 'Borgo Lampo'),
      site('tower-empty', 'Borgo Vuoto'),
    ]);
    await stack.store.subscribers.insertMany([
      ...Array.from({ length: PER_SITE }, (_, i) =>
        subscriber(`C-${String(i).padStart(3, '0')}`, phoneOf(4_000_000, i), 'tower-crash'),
      ),
      ...Array.from({ length: PER_SITE }, (_, i) =>
        subscriber(`L-${String(i).padStart(3, '0')}`, phoneOf(4_100_000, i), 'tower-blip'),
      ),
    ]);
  });
  after(async () => stack?.stop());

  test('the lost answer is reconciled with the message list: one message per number, and the records carry the ids found', async () => {
    // The first send request is answered; the second is recorded, then its connection dropped.
    await setFaults(stack, { script: { message: ['ok', 'dropAfterAccept'] } });
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-crash'] })).body.id as string;
    await eventually(
      'every outage notice delivered',
      async () => {
        const n = await stack.store.deliveries.countDocuments({ incidentId: id, channel: 'sms', state: 'delivered' });
        return n === PER_SITE ? true : undefined;
      },
      45_000,
    );

    const sends = (await simRequests(stack, 'message')).filter((r) => r.method === 'POST');
    const dropped = sends.filter((r) => r.dropped === 'after');
    assert.equal(dropped.length, 1, 'one request was accepted and then dropped');
    const lost = new Set(dropped[0]!.destinations);
    assert.equal(lost.size, BATCH);

    const inbox = await simInbox(stack);
    for (let i = 0; i < PER_SITE; i++) {
      const phone = phoneOf(4_000_000, i);
      const got = inbox.phones[phone] ?? [];
      assert.equal(got.length, 1, `${phone}: exactly one message, got ${got.length}`);
      assert.equal(
        got[0]!.responseDropped === true,
        lost.has(phone),
        `${phone}: flagged as sent in the crash window exactly when its request was dropped`,
      );
    }
    // No later request named a number whose message went out in the dropped one.
    const after = sends.filter((r) => r.seq > dropped[0]!.seq);
    assert.ok(
      after.every((r) => !r.destinations!.some((to) => lost.has(to))),
      'nothing was sent twice',
    );
    // The reconciliation read Plivo's message list after the drop.
    const reads = (await simRequests(stack, 'read')).filter(
      (r) => r.route.endsWith('/Message/') && r.seq > dropped[0]!.seq,
    );
    assert.ok(reads.length > 0, 'the message list was asked');

    const records = await stack.store.deliveries.find({ incidentId: id, channel: 'sms' }).toArray();
    for (const d of records) {
      const message = inbox.phones[d.to]![0]!;
      assert.equal(
        d.providerMessageId,
        message.messageUuid,
        `${d.to}: the record carries the id of the message Plivo has`,
      );
      assert.equal(d.attempts, 1, `${d.to}: one attempt`);
      const notes = d.history.map((h) => h.note ?? h.state);
      if (lost.has(d.to))
        assert.ok(
          notes.includes('found at the provider after a lost answer'),
          `${d.to}: history says it was found by reconciliation: ${notes.join(' > ')}`,
        );
      else assert.ok(notes.includes('accepted by the provider'), `${d.to}: ${notes.join(' > ')}`);
    }
    const stats = await simStats(stack);
    assert.equal(stats.messages.accepted, PER_SITE, 'the simulator accepted exactly one message per number');
    assert.equal(stats.messages.acceptedWithoutResponse, BATCH);
  });

  test('a lost restoration right after the outage notice is not mistaken for it', async () => {
    await setFaults(stack, {});
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-blip'] })).body.id as string;
    await eventually(
      'every outage notice with Plivo',
      async () => {
        const n = await stack.store.deliveries.countDocuments({
          incidentId: id,
          kind: 'outage',
          channel: 'sms',
          state: { $in: ['accepted', 'sent', 'delivered'] },
        });
        return n === PER_SITE ? true : undefined;
      },
      30_000,
    );
    // At once, the site is back; the first restoration request is lost on the way (nothing
    // recorded) and the next attempt must find that Plivo has nothing for it since.
    await setFaults(stack, { script: { message: ['dropBeforeAccept'] } });
    const resolved = await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    assert.ok(resolved.status < 300, JSON.stringify(resolved.body));
    await eventually(
      'every restoration notice delivered',
      async () => {
        const n = await stack.store.deliveries.countDocuments({
          incidentId: id,
          kind: 'restored',
          channel: 'sms',
          state: 'delivered',
        });
        return n === PER_SITE ? true : undefined;
      },
      45_000,
    ).catch(async (err) => {
      const r = await stack.store.deliveries.find({ incidentId: id, kind: 'restored' }).limit(2).toArray();
      throw new Error(
        `${(err as Error).message}\n${JSON.stringify(
          r.map((d) => ({ state: d.state, history: d.history })),
          null,
          1,
        )}`,
      );
    });

    const inbox = await simInbox(stack);
    const records = await stack.store.deliveries.find({ incidentId: id, channel: 'sms' }).toArray();
    const byPhone = new Map<string, Delivery[]>();
    for (const d of records) byPhone.set(d.to, [...(byPhone.get(d.to) ?? []), d]);
    for (let i = 0; i < PER_SITE; i++) {
      const phone = phoneOf(4_100_000, i);
      const got = inbox.phones[phone] ?? [];
      const outage = got.filter((m) => /Avviso guasto/.test(m.text));
      const restored = got.filter((m) => /ripristinato/.test(m.text));
      assert.equal(outage.length, 1, `${phone}: one outage notice`);
      assert.equal(restored.length, 1, `${phone}: one restoration notice, got ${restored.length}`);
      const rec = byPhone.get(phone)!.find((d) => d.kind === 'restored')!;
      assert.equal(
        rec.providerMessageId,
        restored[0]!.messageUuid,
        `${phone}: the restoration record carries the restoration's id, not the outage notice's`,
      );
    }
  });

  test('reconciliation does not take an earlier message to the same number for the lost one', async () => {
    // An incident whose workflow is over (nobody on its site), so that this test alone sends its
    // records, through the activities the worker runs, a moment apart: first a message that is
    // delivered, then one to the same number whose request is lost before Plivo recorded it.
    await setFaults(stack, {});
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-empty'] })).body.id as string;
    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    await eventually(
      'the empty incident billed',
      async () => ((await call(stack, 'GET', `/v1/incidents/${id}`)).body.phase === 'billed' ? true : undefined),
      30_000,
    );

    const rules = await RulesHolder.open({ path: TEST_RULES });
    const acts = createDeliveryActivities(
      buildDeliveryDeps({
        store: stack.store,
        logger: createLogger('crash-window-test', process.env.LOG_LEVEL ?? 'warn'),
        rules: rulesResolver(stack.store, rules),
        publicUrl: stack.apiUrl,
        plivo: {
          authId: SIM_AUTH_ID,
          authToken: SIM_AUTH_TOKEN,
          baseUrl: stack.simUrl,
          sender: 'Avviso',
          requestsPer5s: 0,
          messagesPerSecond: 0,
          queueSeconds: 600,
        },
      }),
    );
    const run = (kind: 'outage' | 'restored'): Promise<SendBatchResult> =>
      new MockActivityEnvironment().run(acts.sendNextBatch, { incidentId: id, kind, channel: 'sms' as const });
    const phone = phoneOf(4_200_000, 1);
    const plan = (kind: 'outage' | 'restored') =>
      planAll(
        stack.store,
        [
          {
            incidentId: id,
            kind,
            subscriberId: 'Z-001',
            channel: 'sms',
            to: phone,
            language: 'it',
            area: 'Borgo Vuoto',
          },
        ],
        new Date(),
      );

    await plan('outage');
    assert.equal((await run('outage')).accepted, 1);
    const outage = await eventually(
      'the first message delivered',
      async () => {
        const d = await stack.store.deliveries.findOne({ incidentId: id, kind: 'outage', to: phone });
        return d?.state === 'delivered' ? d : undefined;
      },
      10_000,
    );

    await plan('restored');
    await setFaults(stack, { script: { message: ['dropBeforeAccept'] } });
    await assert.rejects(run('restored'), /network error/, 'the lost request fails the attempt');
    const left = (await stack.store.deliveries.findOne({ incidentId: id, kind: 'restored', to: phone }))!;
    const open = await stack.store.sendRequests.find({ incidentId: id, kind: 'restored', open: true }).toArray();
    assert.ok(
      left.state === 'planned' && open.some((q) => recipientsOf(q).some((p) => p.id === left._id)),
      'left taken by its open request: the request may have been accepted',
    );
    assert.equal(
      (await reserveNextBatch(stack.store, { incidentId: id, kind: 'restored', channel: 'sms' }, 10, new Date()))
        .records.length,
      0,
      'no other sender may take it meanwhile',
    );
    const retry = await run('restored');
    assert.equal(retry.reconciled, 1);
    assert.equal(retry.accepted, 1, 'not found at Plivo, so sent again');

    const got = (await simInbox(stack)).phones[phone] ?? [];
    assert.deepEqual(
      got.map((m) => (/ripristinato/.test(m.text) ? 'restored' : /guasto/.test(m.text) ? 'outage' : m.text)),
      ['outage', 'restored'],
      'the number got the outage notice, then the restoration',
    );
    const restored = await eventually(
      'the restoration delivered',
      async () => {
        const d = await stack.store.deliveries.findOne({ incidentId: id, kind: 'restored', to: phone });
        return d?.state === 'delivered' ? d : undefined;
      },
      10_000,
    );
    assert.notEqual(
      restored.providerMessageId,
      outage.providerMessageId,
      "the restoration record does not carry the outage notice's id",
    );
    assert.equal(restored.providerMessageId, got[1]!.messageUuid);
    assert.ok(
      restored.history.some((h) => h.note === 'not found at the provider after a lost answer'),
      restored.history.map((h) => h.note ?? h.state).join(' > '),
    );
  });
});
