/** The code a staff escalation carries, the replies that acknowledge it, and what of an escalation cannot be sent. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acknowledgementCode, acknowledgementReply } from '../../domain/acknowledgement';
import { escalationProblems } from '../../activities/escalation-targets';

test('each incident has a six-digit code of its own, the same every time', () => {
  const code = acknowledgementCode('inc_0123456789abcdef');
  assert.match(code, /^\d{6}$/);
  assert.equal(acknowledgementCode('inc_0123456789abcdef'), code);
  const codes = new Set(
    Array.from({ length: 200 }, (_, i) => acknowledgementCode(`inc_${i.toString(16).padStart(16, '0')}`)),
  );
  assert.ok(codes.size >= 199, 'codes of different incidents differ');
});

test('a reply acknowledges with the code, whatever the case and punctuation; anything else does not', () => {
  for (const reply of ['OK 123456', 'ok 123456', ' Preso: 123456. ', 'ACK#123456', '123456'])
    assert.equal(acknowledgementReply(reply), '123456', reply);
  for (const reply of ['STOP', 'ok 12345', 'ok 1234567', 'stato 123456', 'OK'])
    assert.equal(acknowledgementReply(reply), undefined, reply);
});

test('an escalation round says what cannot go: nobody to reach, a call with no voice, a channel not configured', () => {
  assert.match(escalationProblems([], new Set(['sms']), true)[0]!.problem, /nobody to escalate to/);
  assert.match(
    escalationProblems([{ channel: 'voice' }], new Set(['sms']), true)[0]!.problem,
    /voice is not configured.*by SMS/,
  );
  assert.match(escalationProblems([{ channel: 'voice' }], new Set([]), true)[0]!.problem, /cannot be made/);
  assert.match(
    escalationProblems([{ channel: 'email' }], new Set(['sms']), true)[0]!.problem,
    /not configured on the worker: email/,
  );
  assert.deepEqual(escalationProblems([{ channel: 'sms' }, { channel: 'voice' }], new Set(['sms', 'voice']), true), []);
});
