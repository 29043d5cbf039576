/** Filters and projections applied in Node to roster members (store/document-match.ts), with the database's meaning. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFilter, compileProjection } from '../../store/document-match';
import { scopeFilter, smsAlertsInForce } from '../../store/audience';
import type { Subscriber } from '../../domain/types';

const AT = new Date('2026-06-15T10:00:00Z');
const sub = (smsAlerts: Subscriber['smsAlerts'], optedOut = false) => ({
  _id: 'C-1',
  phones: ['+393471'],
  smsAlerts,
  optedOut,
});

test('the SMS notice scope judged in Node as smsAlertsInForce judges it, bounds and opt-out included', () => {
  const inScope = compileFilter(scopeFilter('smsNotice', AT))!;
  const cases: Subscriber['smsAlerts'][] = [
    { active: true },
    { active: false },
    { active: true, since: AT },
    { active: true, since: new Date(AT.getTime() + 1) },
    { active: true, until: AT },
    { active: true, until: new Date(AT.getTime() + 1) },
    { active: true, since: new Date('2026-01-01'), until: new Date('2026-12-31') },
  ];
  for (const c of cases) {
    assert.equal(inScope(sub(c)), smsAlertsInForce({ smsAlerts: c }, AT), JSON.stringify(c));
    assert.equal(inScope(sub(c, true)), false, 'opted out');
  }
});

test("equalities match an element of an array, null matches a missing field, operators have the database's meaning", () => {
  assert.equal(compileFilter({ phones: '+393471' })!(sub({ active: true })), true);
  assert.equal(compileFilter({ email: null })!(sub({ active: true })), true);
  assert.equal(compileFilter({ language: 'it' })!(sub({ active: true })), false);
  assert.equal(compileFilter({ $or: [{ _id: 'C-2' }, { optedOut: false }] })!(sub({ active: true })), true);
  assert.equal(compileFilter({ _id: { $in: ['C-2', 'C-3'] } })!(sub({ active: true })), false);
  assert.equal(compileFilter({ smsAlerts: { active: true } })!(sub({ active: true })), true, 'a whole subdocument');
  assert.equal(compileFilter({ phones: { $bogus: 1 } }), null, 'an unknown operator is left to the database');
});

test('inclusion projections of top-level fields only', () => {
  const doc = { _id: 'C-1', phones: ['+393471'], language: 'it', siteId: 's' };
  assert.deepEqual(compileProjection({ phones: 1, siteId: 1 })!(doc), { _id: 'C-1', phones: ['+393471'], siteId: 's' });
  assert.deepEqual(compileProjection({ _id: 0, language: 1 })!(doc), { language: 'it' });
  assert.deepEqual(compileProjection(undefined)!(doc), doc);
  assert.equal(compileProjection({ _id: 0 }), null);
  assert.equal(compileProjection({ 'smsAlerts.active': 1 }), null);
  assert.equal(compileProjection({ name: 0 }), null);
});
