/**
 * The crash window for calls: Plivo takes a Make-a-Call request and the connection drops before
 * its answer (the phone is about to ring, but we never learnt the request UUID). The next attempt
 * must ask Plivo's call listings (queued, live, records of ended calls) what it took and call
 * nobody twice: every number gets exactly one call per record, and the records carry the ids
 * that reconciliation found.
 *
 * The simulator takes 700 ms a step of a call here, as a real call takes seconds: the retry comes
 * while the dropped call is still queued or ringing, before its hangup could settle the record.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Delivery } from '../../domain/types';
import { createDeliveryActivities, type SendBatchResult } from '../../activities/delivery';
import { buildDeliveryDeps } from '../../worker/delivery-deps';
import { PlivoVoiceChannel } from '../../channels/voice-plivo';
import { RulesHolder } from '../../rules';
import { rulesResolver } from '../../store/rule-versions';
import { planAll } from '../../store/deliveries';
import { createLogger } from '../../domain/log';
import { freePort } from '../../dev/process';
import { eventually } from '../support/env';
import { call, SIM_AUTH_ID, SIM_AUTH_TOKEN, startTestStack, TEST_RULES, type TestStack } from '../support/stack';
import { phoneOf, setFaults, simInbox, simRequests, site, subscriber } from './sim-record';

const CALLER_ID = '+390212345678';
const PER_SITE = 8;
const history = (d: Delivery | null | undefined) => (d?.history ?? []).map((h) => h.note ?? h.state);

describe('the crash window for calls: accepted, then the connection dropped', () => {
  let stack: TestStack;
  const phones = Array.from({ length: PER_SITE }, (_, i) => phoneOf(5_000_000, i));
  before(async () => {
    stack = await startTestStack(__filename, {
      // One SMS attempt: every SMS is reported undelivered, so each subscriber falls back to a call at once.
      deliveryPolicy: { deliveryTimeoutMs: 30_000, maxAttempts: 1, sweepEveryMs: 300 },
      channels: { voiceCallerId: CALLER_ID },
      simulator: {
        callbackDelayMs: 700,
        faults: { numbers: Object.fromEntries(phones.map((p) => [p, { sms: 'undelivered' }])) },
      },
    });
    await stack.store.sites.insertMany([site('tower-ring', 'Borgo Squillo'), site('tower-quiet', 'Borgo Muto')]);
    await stack.store.subscribers.insertMany(phones.map((p, i) => subscriber(`V-${i}`, p, 'tower-ring')));
  });
  after(async () => stack?.stop());

  test('a call whose answer was lost is found at Plivo and not made again: one call per number', async () => {
    // The second call request is taken, then its connection dropped; the others are answered.
    await setFaults(stack, {
      numbers: Object.fromEntries(phones.map((p) => [p, { sms: 'undelivered' }])),
      script: { call: ['ok', 'dropAfterAccept'] },
    });
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-ring'] })).body.id as string;
    const voice = await eventually(
      'every call answered',
      async () => {
        const list = await stack.store.deliveries.find({ incidentId: id, channel: 'voice' }).toArray();
        return list.length === PER_SITE && list.every((d) => d.state === 'delivered') ? list : undefined;
      },
      60_000,
    ).catch(async (err) => {
      const all = await stack.store.deliveries.find({ incidentId: id, channel: { $ne: 'status' } }).toArray();
      throw new Error(`${(err as Error).message}\n${all.map((d) => `${d._id}: ${history(d).join(' > ')}`).join('\n')}`);
    });

    const sends = (await simRequests(stack, 'call')).filter((r) => r.method === 'POST');
    const dropped = sends.filter((r) => r.dropped === 'after');
    assert.equal(dropped.length, 1, 'one call request was taken, then its connection dropped');
    const lost = dropped[0]!.destinations![0]!;
    assert.ok(
      sends.filter((r) => r.seq > dropped[0]!.seq).every((r) => !r.destinations!.includes(lost)),
      'no later request called that number',
    );
    const reads = (await simRequests(stack, 'read')).filter(
      (r) => r.route.includes('/Call/') && r.seq > dropped[0]!.seq,
    );
    assert.ok(reads.length > 0, "Plivo's call listings were asked");

    const inbox = await simInbox(stack);
    for (const phone of phones)
      assert.equal(
        (inbox.calls[phone] ?? []).length,
        1,
        `${phone}: exactly one call, got ${(inbox.calls[phone] ?? []).length}`,
      );
    for (const d of voice) {
      const [placed] = inbox.calls[d.to]!;
      assert.equal(
        d.providerMessageId,
        placed!.requestUuid,
        `${d.to}: the record carries the request UUID of the call Plivo made`,
      );
      if (d.to === lost)
        assert.ok(
          history(d).includes('found at the provider after a lost answer'),
          `${d.to}: ${history(d).join(' > ')}`,
        );
      else assert.ok(history(d).includes('accepted by the provider'), `${d.to}: ${history(d).join(' > ')}`);
    }
  });

  test("a call that ended without its hangup reaching us is found in Plivo's records, and an earlier call to the number is not taken for it", async () => {
    // An incident whose workflow is over (nobody on its site), so that this test alone sends its
    // records, through the activities the worker runs. Their calls point at an address where
    // nothing listens: no hangup comes back, the records stay as the send left them.
    await setFaults(stack, {});
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-quiet'] })).body.id as string;
    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    await eventually(
      'the empty incident billed',
      async () => ((await call(stack, 'GET', `/v1/incidents/${id}`)).body.phase === 'billed' ? true : undefined),
      30_000,
    );

    const rules = await RulesHolder.open({ path: TEST_RULES });
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const acts = createDeliveryActivities(
      buildDeliveryDeps({
        store: stack.store,
        logger: createLogger('voice-crash-window-test', process.env.LOG_LEVEL ?? 'warn'),
        rules: rulesResolver(stack.store, rules),
        publicUrl: nowhere,
        otherChannels: {
          voice: new PlivoVoiceChannel({
            authId: SIM_AUTH_ID,
            authToken: SIM_AUTH_TOKEN,
            baseUrl: stack.simUrl,
            callerId: CALLER_ID,
            publicUrl: nowhere,
          }),
        },
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
      new MockActivityEnvironment().run(acts.sendNextBatch, { incidentId: id, kind, channel: 'voice' as const });
    const phone = phoneOf(5_100_000, 1);
    const plan = (kind: 'outage' | 'restored') =>
      planAll(
        stack.store,
        [
          {
            incidentId: id,
            kind,
            subscriberId: 'Q-001',
            channel: 'voice',
            to: phone,
            language: 'it',
            area: 'Borgo Muto',
          },
        ],
        new Date(),
      );
    const callsToPhone = async () => (await simInbox(stack)).calls[phone] ?? [];

    await plan('outage');
    assert.equal((await run('outage')).accepted, 1);
    const outage = (await stack.store.deliveries.findOne({ incidentId: id, kind: 'outage', to: phone }))!;
    await eventually(
      'the first call ended',
      async () => ((await callsToPhone())[0]?.status === 'completed' ? true : undefined),
      15_000,
    );

    await plan('restored');
    await setFaults(stack, { script: { call: ['dropAfterAccept'] } });
    await assert.rejects(run('restored'), /Plivo Call API unreachable/, 'the dropped answer fails the attempt');
    assert.equal(
      (await stack.store.deliveries.findOne({ incidentId: id, kind: 'restored', to: phone }))?.state,
      'sending',
      'left reserved: the call may have been taken',
    );
    await eventually(
      'the second call ended',
      async () => ((await callsToPhone())[1]?.status === 'completed' ? true : undefined),
      15_000,
    );

    const retry = await run('restored');
    assert.equal(retry.reconciled, 1);
    assert.equal(retry.accepted, 0, 'found at Plivo, so not called again');
    const placed = await callsToPhone();
    assert.equal(placed.length, 2, 'two records, two calls');
    const restored = (await stack.store.deliveries.findOne({ incidentId: id, kind: 'restored', to: phone }))!;
    assert.equal(restored.state, 'accepted');
    assert.equal(restored.providerMessageId, placed[1]!.requestUuid, "the restoration's record carries its own call");
    assert.notEqual(restored.providerMessageId, outage.providerMessageId, 'not the earlier call to the same number');
    assert.ok(history(restored).includes('found at the provider after a lost answer'), history(restored).join(' > '));
  });
});
