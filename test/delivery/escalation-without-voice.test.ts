/**
 * Staff are never left unwarned: when the rules phone the NOC and this worker has no voice channel
 * (no PLIVO_VOICE_CALLER_ID), the call goes as an SMS to the same number, and the call's record
 * says why it was not made; so does the incident (`escalationProblems`).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../support/env';
import { call, type TestStack } from '../support/stack';
import { startDemoStack, writeTestRules } from '../support/scenario';

const NOC_PHONE = '+390577000000'; // noc-oncall in rules/default/contacts.yaml

function rulesPhoningTheNoc(): string {
  return writeTestRules(
    'noc-voice',
    `  sms: { maxParts: 2 }
  wait: 0
  restoration: true
  updates: { every: off, onEtaChange: false }
rules:
  - name: noc-by-phone
    when:
      incident.kind: outage
    escalate:
      - after: 1h
        contact: noc-oncall
        channel: voice
        template: staff
    continue: true
  - name: paid-sms
    when:
      subscriber.paidSms: true
      subscriber.onAffectedSite: true
    notify: sms
`,
  );
}

describe('an escalation call with no voice channel', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startDemoStack(__filename, rulesPhoningTheNoc());
  });
  after(async () => stack?.stop());

  test('goes to the NOC by SMS, and the call record says why it was not made', async () => {
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['ap-lodi-01-a'] })).body.id as string;
    await eventually('notified', async () =>
      (await call(stack, 'GET', `/v1/incidents/${id}`)).body.phase === 'notified' ? true : undefined,
    );
    assert.equal(
      (await call(stack, 'POST', `/v1/incidents/${id}/escalate`, { reason: 'customers calling' })).status,
      202,
    );
    const sms = await eventually('the NOC texted', async () =>
      (await stack.inbox())[NOC_PHONE]?.length ? (await stack.inbox())[NOC_PHONE] : undefined,
    );
    assert.equal(sms.length, 1);
    assert.match(sms[0]!.text, /Avviso NOC/);
    const voice = await stack.store.deliveries.findOne({ incidentId: id, kind: 'escalation', channel: 'voice' });
    assert.equal(voice?.state, 'expired');
    assert.match(voice!.history.at(-1)!.note!, /voice is not configured/);
    const text = await stack.store.deliveries.findOne({ incidentId: id, kind: 'escalation', channel: 'sms' });
    assert.equal(text?.fallbackOf, voice!._id);
    const shown = (await call(stack, 'GET', `/v1/incidents/${id}`)).body;
    assert.match(
      shown.escalationProblems?.[0]?.problem ?? '',
      /voice is not configured.*by SMS/,
      'the incident says the call went as an SMS',
    );
    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
  });
});
