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
    stack = await startTestStack(__filename, { deliveryPolicy: { deliveryTimeoutMs: 10_000, maxAttempts: 3, sweepEveryMs: 200 } });
    await loadDemoDataIfEmpty(stack.store);
  });
  after(async () => stack?.stop());

  async function sms(from: string, text: string, sign = true, messageUuid = randomUUID()) {
    const url = `${stack.apiUrl}/v1/plivo/inbound`;
    const nonce = String(Math.floor(Math.random() * 1e12));
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (sign) Object.assign(headers, { 'x-plivo-signature-v2': plivoSignatureV2(url, nonce, SIM_AUTH_TOKEN), 'x-plivo-signature-v2-nonce': nonce });
    const body = new URLSearchParams({ From: from.replace('+', ''), To: '390000000000', Text: text, Type: 'sms', MessageUUID: messageUuid });
    const res = await fetch(url, { method: 'POST', headers, body });
    return { status: res.status, body: (await res.json()) as { action?: string; duplicate?: boolean; error?: { code: string } } };
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
    await eventually('notified', async () => ((await call(stack, 'GET', `/v1/incidents/${opened.body.id}`)).body.phase === 'notified' ? true : undefined));
    const inbox = await stack.inbox();
    assert.ok(!inbox[maria]!.some((m) => /guasto/.test(m.text)), 'an opted-out number gets no outage SMS');
    assert.ok(inbox['+393471000002']!.some((m) => /guasto/.test(m.text)), 'her neighbour still does');

    const status = await sms(maria, 'stato');
    assert.equal(status.body.action, 'info');
    assert.match((await eventually('the status reply', async () => ((await lastReply(maria)) !== undefined && /Guasto in corso/.test((await lastReply(maria))!) ? lastReply(maria) : undefined)))!, /Guasto in corso: Lodi/);

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
    assert.equal((await stack.store.subscribers.findOne({ _id: 'C-1005' }))!.optedOut, false, 'the repeated STOP did not undo the later START');
  });
});
