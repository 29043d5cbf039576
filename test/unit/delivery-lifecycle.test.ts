/** The delivery lifecycle's rules (delivery/): receipts only move forward, the watchdog's decisions, the fallback's target. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { holdIntermediate, laterWord, latestWords, receiptMoves } from '../../delivery/lifecycle';
import { decideLost, providerAttempts } from '../../delivery/watchdog';
import { fallbackTarget } from '../../delivery/fallback';
import type { Delivery, DeliveryState, DeliveryStep } from '../../domain/types';

test('a receipt moves a message forward only: late, repeated or out-of-order words change nothing', () => {
  assert.ok(receiptMoves('accepted', 'delivered'));
  assert.ok(receiptMoves('sent', 'undelivered'));
  assert.ok(receiptMoves('undelivered', 'delivered'), "a carrier's late success counts");
  assert.ok(!receiptMoves('delivered', 'sent'), 'a late "sent" after "delivered"');
  assert.ok(!receiptMoves('delivered', 'undelivered'));
  assert.ok(!receiptMoves('planned', 'delivered'), 'no receipt for a message not sent');
  assert.ok(!receiptMoves('expired', 'delivered'));
  assert.ok(laterWord(undefined, 'sent') && laterWord('sent', 'delivered') && laterWord('sent', 'sent'));
  assert.ok(!laterWord('delivered', 'sent'));
});

const at = new Date('2026-12-04T10:00:00Z');
const steps = (...states: DeliveryState[]): DeliveryStep[] => states.map((state) => ({ at, state }));
const record = (id: string, state: DeliveryState, history: DeliveryStep[], extra: Partial<Delivery> = {}) =>
  ({
    _id: id,
    incidentId: 'inc',
    kind: 'outage',
    subscriberId: 'S',
    channel: 'sms',
    to: '+393470000001',
    language: 'it',
    state,
    attempts: 1,
    history,
    createdAt: at,
    updatedAt: at,
    ...extra,
  }) as Delivery;

test('intermediate words wait for the final one; final words, old words and the parts of a long message do not', () => {
  const now = new Date('2026-12-04T10:00:30Z');
  const at = (s: number) => new Date(now.getTime() - s * 1000);
  const r = (messageUuid: string, status: string, sequence: number, age: number, parentMessageUuid?: string) => ({
    messageUuid,
    status,
    sequence,
    receivedAt: at(age),
    ...(parentMessageUuid ? { parentMessageUuid } : {}),
  });
  const young = r('m1', 'sent', 1, 2);
  const settledLater = [r('m2', 'sent', 1, 3), r('m2', 'delivered', 2, 1)];
  const old = r('m3', 'sent', 1, 40);
  const outOfOrder = [r('m4', 'delivered', 2, 2), r('m4', 'sent', 1, 1)];
  const part = r('m5-2', 'sent', 1, 2, 'm5');
  const { apply, hold } = holdIntermediate([young, ...settledLater, old, ...outOfOrder, part], now, 30_000);
  assert.deepEqual(hold, [young, part]);
  assert.deepEqual(apply, [...settledLater, old, ...outOfOrder]);
  assert.equal(latestWords(outOfOrder).get('m4')!.status, 'delivered', 'Sequence orders them');
});

test('attempts that reached the provider are counted; a send handed back untried costs nothing', () => {
  assert.equal(providerAttempts(record('a', 'undelivered', steps('planned', 'sending', 'accepted', 'undelivered'))), 1);
  assert.equal(
    providerAttempts(
      record(
        'b',
        'planned',
        steps('planned', 'sending', 'planned', 'sending', 'accepted', 'undelivered', 'planned', 'sending', 'accepted'),
      ),
    ),
    2,
  );
});

test('the watchdog retries until the attempts are spent, gives up on an invalid number at once, and groups its writes', () => {
  const policy = { deliveryTimeoutMs: 600_000, maxAttempts: 2 };
  const once = steps('planned', 'sending', 'accepted', 'undelivered');
  const twice = steps('planned', 'sending', 'accepted', 'undelivered', 'planned', 'sending', 'accepted', 'undelivered');
  const moves = decideLost(
    [
      record('r1', 'undelivered', once),
      record('r2', 'undelivered', once),
      record('x', 'undelivered', twice),
      record('bad', 'failed', once, { invalidRecipient: true, error: 'invalid number' }),
      record('late', 'accepted', steps('planned', 'sending', 'accepted')),
    ],
    policy,
  );
  const by = (id: string) => moves.find((m) => m.records.some((r) => r._id === id))!;
  assert.equal(by('r1'), by('r2'), 'one write for the same move');
  assert.equal(by('r1').to, 'planned');
  assert.equal(by('x').to, 'expired');
  assert.equal(by('x').note, 'gave up on sms after 2 attempt(s): undelivered');
  assert.equal(by('bad').to, 'expired');
  assert.equal(by('late').note, 'retry: no delivery receipt within 600 s');
});

test('a fallback goes to the next channel that can reach the subscriber, never by SMS after STOP', () => {
  const sms = { channel: 'sms' as const, to: '+393470000001', invalidRecipient: false };
  const subscriber = { phones: ['+393470000001'], optedOut: false, email: 'a@example.it' };
  const all = () => true;
  assert.deepEqual(fallbackTarget(sms, subscriber, ['sms', 'voice', 'email'], all), {
    channel: 'voice',
    to: '+393470000001',
  });
  assert.deepEqual(
    fallbackTarget(sms, subscriber, ['sms', 'voice', 'email'], (c) => c !== 'voice'),
    { channel: 'email', to: 'a@example.it' },
  );
  assert.deepEqual(
    fallbackTarget({ ...sms, invalidRecipient: true }, subscriber, ['sms', 'voice', 'email'], all),
    { channel: 'email', to: 'a@example.it' },
    'no call to a number the provider called invalid',
  );
  assert.equal(
    fallbackTarget(
      { channel: 'voice', to: '+393470000001' },
      { ...subscriber, optedOut: true, email: undefined },
      ['voice', 'sms'],
      all,
    ),
    null,
  );
});
