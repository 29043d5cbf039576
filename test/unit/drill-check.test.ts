/**
 * The drill's referee (drill/check.ts): from what each phone received, lost, duplicated and
 * out-of-order notices are told apart, and a resend after an undelivered message is no duplicate.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judge, judgePhone, type RecordedMessage } from '../../drill/check';
import { noticeKind } from '../../drill/run';

let clock = Date.parse('2026-12-02T10:00:00Z');
const msg = (kind: 'outage' | 'restored' | 'combined', status = 'delivered'): RecordedMessage => ({
  text: {
    outage: 'Avviso guasto: internet interrotto a Lodi dalle 10:00.',
    restored: 'Servizio internet ripristinato a Lodi alle 11:00.',
    combined:
      'Avviso: a Lodi internet è stato interrotto dalle 10:00 alle 10:05 (5 min). Ora il servizio è ripristinato.',
  }[kind],
  status,
  acceptedAt: new Date((clock += 1000)).toISOString(),
});

test('one delivered outage then one delivered restoration is right; so is one combined notice', () => {
  assert.deepEqual(judgePhone([msg('outage'), msg('restored')], noticeKind), {
    lost: false,
    duplicated: false,
    outOfOrder: false,
    resends: 0,
    other: 0,
    why: [],
  });
  assert.equal(judgePhone([msg('combined')], noticeKind).lost, false);
});

test('a resend after an undelivered or failed message is counted as a resend, not a duplicate', () => {
  const r = judgePhone(
    [
      msg('outage', 'undelivered'),
      msg('outage', 'failed'),
      msg('outage'),
      msg('restored', 'undelivered'),
      msg('restored'),
    ],
    noticeKind,
  );
  assert.equal(r.duplicated, false);
  assert.equal(r.resends, 3);
});

test('duplicates: two delivered, a resend of a message that had not failed, a combined one besides the pair', () => {
  assert.equal(judgePhone([msg('outage'), msg('outage'), msg('restored')], noticeKind).duplicated, true);
  assert.equal(judgePhone([msg('outage', 'sent'), msg('outage'), msg('restored')], noticeKind).duplicated, true);
  assert.equal(judgePhone([msg('outage'), msg('combined'), msg('restored')], noticeKind).duplicated, true);
});

test('lost: no delivered outage, or no delivered restoration', () => {
  assert.equal(judgePhone([msg('outage')], noticeKind).lost, true);
  assert.equal(judgePhone([msg('outage', 'undelivered'), msg('restored')], noticeKind).lost, true);
  assert.equal(judgePhone([], noticeKind).lost, true);
});

test('out of order: a restoration accepted before the outage notice', () => {
  const restored = msg('restored');
  const outage = msg('outage');
  assert.equal(judgePhone([restored, outage], noticeKind).outOfOrder, true);
});

test('the whole audience: counts per problem, masked examples, strays to numbers outside it', () => {
  const a = '+393470000001';
  const b = '+393470000002';
  const v = judge(
    [a, b],
    { [a]: [msg('outage'), msg('restored')], [b]: [msg('outage')], '+393479999999': [msg('outage')] },
    noticeKind,
  );
  assert.deepEqual(
    { lost: v.lost, duplicated: v.duplicated, outOfOrder: v.outOfOrder, strays: v.strays },
    { lost: 1, duplicated: 0, outOfOrder: 0, strays: 1 },
  );
  assert.equal(v.examples.length, 1);
  assert.ok(!v.examples[0]!.includes(b), 'the example masks the number');
});
