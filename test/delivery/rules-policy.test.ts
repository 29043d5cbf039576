/**
 * The delivery watchdog follows the rules: `defaults.delivery` sets how long a receipt may take,
 * how many sends a channel gets and where a message falls back to, over what the process was
 * configured with. Here the configuration would wait 10 minutes and try 5 times, and the worker's
 * own order would never go from a call to an SMS; the rules say 2 s, 2 attempts, then SMS.
 *
 * The notice is a call, and the simulator takes 4 s a step of a call (ringing, answer, speech):
 * no hangup, the call's receipt, comes within the rules' 2 s, so the call is retried, then given
 * up on, then replaced by an SMS.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Delivery } from '../../domain/types';
import { maintenanceWorkflowId } from '../../temporal/client';
import type { DeliveryPolicy } from '../../workflows/incident-api';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';
import { writeTestRules } from '../support/scenario';
import { simInbox, site, subscriber } from './sim-record';

const CALLER_ID = '+390212345678';
const PHONE = '+393471230001';
const CONFIGURED = { deliveryTimeoutMs: 600_000, maxAttempts: 5, sweepEveryMs: 300 };

function rulesFile(): string {
  return writeTestRules(
    'policy',
    `  sms: { maxParts: 2 }
  wait: 0
  delivery:
    receiptTimeout: 2s
    attempts: 2
    fallback: [sms]
rules:
  - name: paid-voice
    when:
      subscriber.paidSms: true
      subscriber.onAffectedSite: true
    notify: voice
`,
  );
}

const notes = (d: Delivery | undefined) => (d?.history ?? []).map((h) => `${h.state}${h.note ? ` (${h.note})` : ''}`);

describe('the delivery policy comes from the rules', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(__filename, {
      deliveryPolicy: CONFIGURED,
      rulesPath: rulesFile(),
      channels: { voiceCallerId: CALLER_ID },
      simulator: { callbackDelayMs: 4000 },
    });
    await stack.store.sites.insertMany([site('tower-policy', 'Borgo Regola'), site('tower-plan', 'Borgo Piano')]);
    await stack.store.subscribers.insertMany([subscriber('P-1', PHONE, 'tower-policy', { email: 'pia@example.it' })]);
  });
  after(async () => stack?.stop());

  test("a call without a receipt is retried after the rules' timeout, then falls back to the channel the rules name", async () => {
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-policy'] })).body.id as string;
    const { voice, sms } = await eventually(
      'the SMS that replaced the call delivered',
      async () => {
        const list = await stack.store.deliveries.find({ incidentId: id, subscriberId: 'P-1' }).toArray();
        const byChannel = Object.fromEntries(list.map((d) => [d.channel, d])) as Partial<Record<string, Delivery>>;
        return byChannel.sms?.state === 'delivered' ? { voice: byChannel.voice!, sms: byChannel.sms } : undefined;
      },
      45_000,
    ).catch(async (err) => {
      const all = await stack.store.deliveries.find({ incidentId: id, channel: { $ne: 'status' } }).toArray();
      throw new Error(`${(err as Error).message}\n${all.map((d) => `${d._id}: ${notes(d).join(' > ')}`).join('\n')}`);
    });

    // The call: sent, no receipt within the rules' 2 s, sent again, given up on after the rules' 2 attempts.
    assert.equal(voice.state, 'expired');
    assert.equal(voice.attempts, 2, notes(voice).join(' > '));
    const retry = voice.history.find(
      (h) => h.state === 'planned' && /^retry: no delivery receipt within 2 s/.test(h.note ?? ''),
    );
    assert.ok(retry, `retried for want of a receipt within the rules' 2 s: ${notes(voice).join(' > ')}`);
    const firstAccepted = voice.history.find((h) => h.state === 'accepted')!;
    const waited = retry.at.getTime() - firstAccepted.at.getTime();
    assert.ok(
      waited >= 2000 && waited < 30_000,
      `retried ${waited} ms after the call was accepted: the rules' 2 s, not the configured 10 min`,
    );
    assert.match(
      voice.history.at(-1)!.note ?? '',
      /gave up on voice after 2 attempt\(s\): no delivery receipt within 2 s/,
    );

    // Then the channel the rules name: an SMS (the worker's own order goes from a call to e-mail only).
    assert.equal(sms.fallbackOf, voice._id);
    assert.equal(sms.to, PHONE);
    assert.equal(sms.history[0]!.note, 'fallback');
    assert.equal(await stack.store.deliveries.countDocuments({ incidentId: id, channel: 'email' }), 0, 'no e-mail');

    const inbox = await simInbox(stack);
    assert.equal((inbox.calls[PHONE] ?? []).length, 2, 'two calls: the rules allow 2 attempts');
    assert.equal((inbox.phones[PHONE] ?? []).length, 1, 'then one SMS');
    assert.match(inbox.phones[PHONE]![0]!.text, /Borgo Regola/);
  });

  test("a maintenance starts with the rules' policy over the configured one", async () => {
    const startsAt = new Date(Date.now() + 3 * 86_400_000).toISOString();
    const endsAt = new Date(Date.now() + 3 * 86_400_000 + 3_600_000).toISOString();
    const created = await call(stack, 'POST', '/v1/maintenances', {
      siteIds: ['tower-plan'],
      startsAt,
      endsAt,
      title: 'Lavori',
    });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const history = await stack.temporal.workflow
      .getHandle(maintenanceWorkflowId(created.body.id as string))
      .fetchHistory();
    const payload = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
    const input = JSON.parse(Buffer.from(payload.data!).toString('utf8')) as { delivery?: DeliveryPolicy };
    assert.deepEqual(input.delivery, { ...CONFIGURED, deliveryTimeoutMs: 2000, maxAttempts: 2, fallback: ['sms'] });
    await call(stack, 'POST', `/v1/maintenances/${created.body.id as string}/cancel`, {});
  });
});
