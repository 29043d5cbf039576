/**
 * Subscribers answer by SMS: STOP, ARRESTA or STOP ALL end the alerts for their number, START or
 * ATTIVA bring them back, INFO or STATO tell them about their area; replies are in their language.
 * Requests are signed as Plivo signs them; unsigned ones are refused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { plivoSignatureV2 } from '../../api/plivo/signature';
import { interpretKeyword } from '../../domain/inbound';
import { loadDemoDataIfEmpty } from '../../store/demo';
import { plannedRecord } from '../../store/deliveries';
import { subscribersChanged } from '../../store/site-roster';
import { eventually } from '../support/env';
import { call, SIM_AUTH_TOKEN, startTestStack, type TestStack } from '../support/stack';

test('keywords are read whatever their case, spacing and punctuation', () => {
  assert.equal(interpretKeyword('stop'), 'stop');
  assert.equal(interpretKeyword(' Arresta. '), 'stop');
  assert.equal(interpretKeyword('STOP ALL'), 'stop');
  assert.equal(interpretKeyword('attiva'), 'start');
  assert.equal(interpretKeyword('Stato?'), 'info');
  assert.equal(interpretKeyword('ciao'), 'help');
});

describe('inbound SMS', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(__filename, {
      deliveryPolicy: { deliveryTimeoutMs: 10_000, maxAttempts: 3, sweepEveryMs: 200 },
    });
    await loadDemoDataIfEmpty(stack.store);
  });
  after(async () => stack?.stop());

  async function sms(from: string, text: string, sign = true, messageUuid = randomUUID()) {
    const url = `${stack.apiUrl}/v1/plivo/inbound`;
    const nonce = String(Math.floor(Math.random() * 1e12));
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (sign)
      Object.assign(headers, {
        'x-plivo-signature-v2': plivoSignatureV2(url, nonce, SIM_AUTH_TOKEN),
        'x-plivo-signature-v2-nonce': nonce,
      });
    const body = new URLSearchParams({
      From: from.replace('+', ''),
      To: '390000000000',
      Text: text,
      Type: 'sms',
      MessageUUID: messageUuid,
    });
    const res = await fetch(url, { method: 'POST', headers, body });
    return {
      status: res.status,
      body: (await res.json()) as { action?: string; duplicate?: boolean; error?: { code: string } },
    };
  }
  const lastReply = async (phone: string) => {
    const inbox = await stack.inbox();
    return inbox[phone]?.at(-1)?.text;
  };

  test('STOP in Italian opts out and confirms in Italian; the next outage skips that number; ATTIVA brings it back', async () => {
    const maria = '+393471000001'; // C-1001, Italian, paying, on ap-lodi-01-a
    const r = await sms(maria, 'ARRESTA');
    assert.equal(r.status, 200);
    assert.equal(r.body.action, 'stop');
    assert.equal((await stack.store.subscribers.findOne({ _id: 'C-1001' }))!.optedOut, true);
    assert.match((await eventually('the reply', () => lastReply(maria)))!, /Avvisi SMS disattivati/);

    const opened = await call(stack, 'POST', '/v1/incidents', { siteIds: ['ap-lodi-01-a'] });
    await eventually('notified', async () =>
      (await call(stack, 'GET', `/v1/incidents/${opened.body.id}`)).body.phase === 'notified' ? true : undefined,
    );
    const inbox = await stack.inbox();
    assert.ok(!inbox[maria]!.some((m) => /guasto/.test(m.text)), 'an opted-out number gets no outage SMS');
    assert.ok(
      inbox['+393471000002']!.some((m) => /guasto/.test(m.text)),
      'her neighbour still does',
    );

    const status = await sms(maria, 'stato');
    assert.equal(status.body.action, 'info');
    assert.match(
      (await eventually('the status reply', async () =>
        (await lastReply(maria)) !== undefined && /Guasto in corso/.test((await lastReply(maria))!)
          ? lastReply(maria)
          : undefined,
      ))!,
      /Guasto in corso: Lodi/,
    );

    assert.equal((await sms(maria, 'Attiva')).body.action, 'start');
    assert.equal((await stack.store.subscribers.findOne({ _id: 'C-1001' }))!.optedOut, false);
    await call(stack, 'POST', `/v1/incidents/${opened.body.id}/resolve`, {});
  });

  test('an English-speaking subscriber gets English replies; STOP ALL works', async () => {
    const john = '+393471000004';
    assert.equal((await sms(john, 'STOP ALL')).body.action, 'stop');
    assert.match((await eventually('the reply', () => lastReply(john)))!, /SMS alerts turned off/);
    await sms(john, 'START');
    assert.equal((await stack.store.subscribers.findOne({ _id: 'C-1004' }))!.optedOut, false);
  });

  test('unsigned inbound SMS are refused and change nothing; repeats are handled once', async () => {
    const r = await sms('+393471000005', 'STOP', false);
    assert.equal(r.status, 403);
    assert.equal((await stack.store.subscribers.findOne({ _id: 'C-1005' }))!.optedOut, false);
    assert.equal(await stack.store.inbound.countDocuments({ from: '+393471000005' }), 0);

    const uuid = randomUUID();
    assert.equal((await sms('+393471000005', 'STOP', true, uuid)).body.duplicate, undefined);
    await sms('+393471000005', 'START', true, randomUUID());
    const again = await sms('+393471000005', 'STOP', true, uuid);
    assert.equal(again.body.duplicate, true, 'Plivo delivering the same message twice');
    assert.equal(
      (await stack.store.subscribers.findOne({ _id: 'C-1005' }))!.optedOut,
      false,
      'the repeated STOP did not undo the later START',
    );
  });

  test('STOP during an incident: what is still planned to the number is given up, and the confirmation is its last SMS', async () => {
    const giuseppe = '+393471000002'; // C-1002, paying, on ap-lodi-01-a
    const opened = await call(stack, 'POST', '/v1/incidents', { siteIds: ['ap-lodi-01-a'] });
    await eventually('notified', async () =>
      (await call(stack, 'GET', `/v1/incidents/${opened.body.id}`)).body.phase === 'notified' ? true : undefined,
    );
    assert.ok(
      (await stack.inbox())[giuseppe]!.some((m) => /guasto/i.test(m.text)),
      'he was told of the outage',
    );
    // A message still waiting for him (an update held by quiet hours, say), in another incident.
    const waiting = plannedRecord(
      {
        incidentId: 'inc_waiting',
        kind: 'update',
        subscriberId: 'C-1002',
        channel: 'sms',
        to: giuseppe,
        language: 'it',
        notBefore: new Date(Date.now() + 3600_000),
      },
      new Date(),
    );
    await stack.store.deliveries.insertOne(waiting);

    assert.equal((await sms(giuseppe, 'STOP')).body.action, 'stop');
    const confirmation = await eventually('the confirmation', async () =>
      (await lastReply(giuseppe)) && /disattivati/.test((await lastReply(giuseppe))!) ? lastReply(giuseppe) : undefined,
    );
    const dropped = await stack.store.deliveries.findOne({ _id: waiting._id });
    assert.equal(dropped!.state, 'expired');
    assert.match(dropped!.history.at(-1)!.note!, /opted out \(STOP\)/);

    await call(stack, 'POST', `/v1/incidents/${opened.body.id}/resolve`, {});
    await eventually(
      'resolved',
      async () =>
        ['resolved', 'billed'].includes((await call(stack, 'GET', `/v1/incidents/${opened.body.id}`)).body.phase)
          ? true
          : undefined,
      30_000,
    );
    await eventually('the neighbour told of the restoration', async () =>
      (await stack.inbox())['+393471000001']?.some((m) => /ripristinato/.test(m.text)) ? true : undefined,
    );
    assert.equal(
      await stack.store.deliveries.countDocuments({
        incidentId: opened.body.id,
        to: giuseppe,
        kind: { $in: ['restored', 'outage-restored'] },
      }),
      0,
      'no restoration is planned to a number that opted out',
    );
    assert.equal(await lastReply(giuseppe), confirmation, 'the STOP confirmation stays his last SMS');

    // START brings the service back, not the old notices.
    await sms(giuseppe, 'ATTIVA');
    assert.equal((await stack.store.deliveries.findOne({ _id: waiting._id }))!.state, 'expired');
  });

  test('a number on two contracts is told once per event, not once per contract', async () => {
    const shared = '+393471000005'; // C-1005, paying, on ap-lodi-02-a; now also the phone of a shop next door
    await stack.store.subscribers.insertOne({
      _id: 'C-1005-SHOP',
      name: 'Colombo Ferramenta',
      phones: [shared],
      language: 'it',
      siteId: 'ap-lodi-02-a',
      segment: 'business',
      smsAlerts: { active: true, since: new Date('2026-01-01T00:00:00Z') },
      optedOut: false,
    });
    // Written beside the store's functions: the site's roster is told (store/site-roster.ts).
    await subscribersChanged(stack.store, ['ap-lodi-02-a']);
    const before = ((await stack.inbox())[shared] ?? []).length;
    const opened = await call(stack, 'POST', '/v1/incidents', { siteIds: ['ap-lodi-02-a'] });
    await eventually('notified', async () =>
      (await call(stack, 'GET', `/v1/incidents/${opened.body.id}`)).body.phase === 'notified' ? true : undefined,
    );
    await call(stack, 'POST', `/v1/incidents/${opened.body.id}/resolve`, {});
    await eventually(
      'the restoration',
      async () =>
        ((await stack.inbox())[shared] ?? []).slice(before).some((m) => /ripristinato/.test(m.text)) ? true : undefined,
      30_000,
    );
    await new Promise((r) => setTimeout(r, 1000));
    const got = ((await stack.inbox())[shared] ?? []).slice(before);
    assert.equal(
      got.filter((m) => /^Avviso guasto/.test(m.text)).length,
      1,
      `one outage SMS: ${JSON.stringify(got.map((m) => m.text))}`,
    );
    assert.equal(got.filter((m) => /ripristinato/.test(m.text)).length, 1, 'one restoration SMS');
  });

  test('STATO: all normal once nothing covers the site, and a scheduled maintenance with its window', async () => {
    const paola = '+393471000101'; // C-2001, on ap-crema-01-a
    await sms(paola, 'STATO');
    assert.match((await eventually('the reply', () => lastReply(paola)))!, /Nessun guasto né manutenzione/);
    const startsAt = new Date(Date.now() + 3 * 24 * 3600_000);
    const m = await call(stack, 'POST', '/v1/maintenances', {
      siteIds: ['tower-crema-01'],
      startsAt: startsAt.toISOString(),
      endsAt: new Date(startsAt.getTime() + 2 * 3600_000).toISOString(),
      title: 'Sostituzione antenna',
    });
    assert.ok(m.status < 300, JSON.stringify(m.body));
    await sms(paola, 'info');
    assert.match(
      (await eventually('the maintenance reply', async () =>
        /programmata/.test((await lastReply(paola)) ?? '') ? lastReply(paola) : undefined,
      ))!,
      /^Nessun guasto in corso\. Manutenzione programmata: Crema, dalle .+ alle .+\.$/,
    );
    await call(stack, 'POST', `/v1/maintenances/${m.body.id}/cancel`, { reason: 'test over' });
  });
});
