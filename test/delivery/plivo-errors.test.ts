/**
 * Every way the plivo SDK rejects, classified: what is retried, after how long, and what may
 * have been accepted although no answer came back. The forms are the SDK's own (platform.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyPlivoError, mayHaveBeenAccepted } from '../../channels/plivo-errors';

class InvalidRequestError extends Error {}
class ServerError extends Error {}

test('429 is retried, honouring Retry-After when the interceptor captured it', () => {
  const e = classifyPlivoError(new Error('AxiosError: Request failed with status code 429 [retry-after=7]'));
  assert.equal(e.retryable, true);
  assert.equal(e.status, 429);
  assert.equal(e.retryAfterMs, 7000);
  assert.equal(mayHaveBeenAccepted(e), false, 'a 429 means nothing was accepted');
  assert.equal(
    classifyPlivoError(new Error('Request failed with status code 429')).retryAfterMs,
    5000,
    'without Retry-After, wait one Plivo window',
  );
});

test('502 and 503 (plain Errors) and 500 (ServerError) are retried', () => {
  for (const err of [
    new Error('Request failed with status code 502'),
    new Error('Request failed with status code 503'),
    new ServerError('{"error":"internal"}'),
  ]) {
    const e = classifyPlivoError(err);
    assert.equal(e.retryable, true, String(err));
    assert.ok(e.status! >= 500);
  }
});

test('a permanent 4xx is not retried', () => {
  const e = classifyPlivoError(new InvalidRequestError('{"api_id":"x","error":"src parameter not valid"}'));
  assert.equal(e.retryable, false);
  assert.equal(e.status, 400);
  const withStatus = Object.assign(new Error('not found'), { status: 404 });
  assert.equal(classifyPlivoError(withStatus).retryable, false);
});

test('bad credentials are retried slowly, with a message that says what to fix', () => {
  const e = classifyPlivoError(Object.assign(new Error('unauthorized'), { status: 401 }));
  assert.equal(e.retryable, true);
  assert.equal(e.retryAfterMs, 60_000);
  assert.match(e.message, /PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN/);
});

test('network errors, which the SDK rejects as a stack string, are retried and may have been accepted', () => {
  for (const s of [
    'Error: socket hang up\n    at connResetException',
    'Error: read ECONNRESET\n    at TCP.onStreamRead',
    'AxiosError: timeout of 30000ms exceeded\n at x',
  ]) {
    const e = classifyPlivoError(s);
    assert.equal(e.retryable, true, s);
    assert.equal(mayHaveBeenAccepted(e), true, `${s}: the request may have reached Plivo`);
  }
});
