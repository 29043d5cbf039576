/** The per-recipient fan-out that voice, e-mail and webhook share. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelError, type OutboundMessage } from '../../channels/channel';
import { parseRetryAfter, sendEach } from '../../channels/per-recipient';

const batch: OutboundMessage[] = [1, 2, 3, 4, 5, 6].map((n) => ({
  deliveryId: `d${n}`,
  to: `x${n}`,
  text: 't',
  language: 'it',
}));

test('Retry-After is read in seconds or as an HTTP date', () => {
  const now = Date.parse('2025-03-10T08:00:00Z');
  assert.equal(parseRetryAfter('120', now), 120_000);
  assert.equal(parseRetryAfter('Mon, 10 Mar 2025 08:00:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('Mon, 10 Mar 2025 07:00:00 GMT', now), 0);
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter(null, now), undefined);
});

test('outcomes come back in batch order, with no more than `concurrency` sends in flight', async () => {
  let inFlight = 0;
  let most = 0;
  const outcomes = await sendEach(batch, { concurrency: 2, stopOnFailure: true }, async (m) => {
    most = Math.max(most, ++inFlight);
    await new Promise((r) => setTimeout(r, m.deliveryId === 'd1' ? 30 : 5));
    inFlight--;
    return m.deliveryId === 'd3'
      ? { kind: 'invalid', error: 'no' }
      : { kind: 'accepted', providerMessageId: `p-${m.deliveryId}` };
  });
  assert.equal(most, 2);
  assert.deepEqual(
    outcomes.map((o) => o.deliveryId),
    ['d1', 'd2', 'd3', 'd4', 'd5', 'd6'],
  );
  assert.deepEqual(outcomes[2], { deliveryId: 'd3', outcome: 'invalid', error: 'no' });
});

test('a failure before anything was accepted fails the batch; an unexpected throw counts as retryable', async () => {
  await assert.rejects(
    sendEach(batch, { concurrency: 1, stopOnFailure: true }, async () => {
      throw new TypeError('fetch failed');
    }),
    (err: ChannelError) => err instanceof ChannelError && err.retryable,
  );
  await assert.rejects(
    sendEach(batch, { concurrency: 3, stopOnFailure: false }, async (m) => ({
      kind: 'failed',
      error: new ChannelError('busy', true, m.deliveryId === 'd2' ? 9000 : 1000),
    })),
    (err: ChannelError) => err.retryAfterMs === 9000,
    'the longest Retry-After wins',
  );
  await assert.rejects(
    sendEach(batch, { concurrency: 3, stopOnFailure: false }, async (m) => ({
      kind: 'failed',
      error: new ChannelError(m.deliveryId, m.deliveryId !== 'd4', 5000),
    })),
    (err: ChannelError) => !err.retryable && err.message === 'd4',
    'a failure that needs a person wins over retryable ones',
  );
});
