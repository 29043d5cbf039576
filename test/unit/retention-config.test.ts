import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig, retentionSettingsFromEnv } from '../../config';
import { DEFAULT_RETENTION, monthsBefore, retentionCutoffs } from '../../retention/settings';

const good = {
  TEMPORAL_ADDRESS: '127.0.0.1:7233',
  MONGODB_URI: 'mongodb://db1:27017/isp',
  PLIVO_AUTH_ID: 'MAXXXXXXXXXXXXXXXXXX',
  PLIVO_AUTH_TOKEN: 'a-secret-token',
};

test('retention defaults: 13 months of records, 24 of audit log, 10 years of ledger; each settable, 0 keeps forever', () => {
  assert.deepEqual(loadConfig(good).retention, DEFAULT_RETENTION);
  assert.deepEqual(DEFAULT_RETENTION, { recordsMonths: 13, auditMonths: 24, ledgerYears: 10 });
  assert.deepEqual(
    retentionSettingsFromEnv({ RETENTION_MONTHS: '6', RETENTION_AUDIT_MONTHS: '0', RETENTION_LEDGER_YEARS: '12' }),
    { recordsMonths: 6, auditMonths: 0, ledgerYears: 12 },
  );
});

test('a bad retention value is named, with what it must be', () => {
  try {
    loadConfig({ ...good, RETENTION_MONTHS: 'a year', RETENTION_AUDIT_MONTHS: '-1', RETENTION_LEDGER_YEARS: '5' });
    assert.fail('should have thrown');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /RETENTION_MONTHS is "a year": must be a number of months/);
    assert.match(err.message, /RETENTION_AUDIT_MONTHS is "-1": must be 0 \(keep forever\) or at least 1/);
    assert.match(
      err.message,
      /RETENTION_LEDGER_YEARS is "5": must be 0 \(keep forever\) or at least 10: .*Italian law/,
    );
  }
  assert.throws(() => retentionSettingsFromEnv({ RETENTION_LEDGER_YEARS: '9' }), /RETENTION_LEDGER_YEARS is "9"/);
});

test("cut-offs: calendar months back (clamped to the month's end), ledger by Italian month; 0 sets none", () => {
  assert.equal(monthsBefore(new Date('2026-03-31T10:00:00Z'), 1).toISOString(), '2026-02-28T10:00:00.000Z');
  assert.equal(monthsBefore(new Date('2026-12-04T06:00:00Z'), 13).toISOString(), '2025-11-04T06:00:00.000Z');
  const now = new Date('2026-12-04T06:00:00Z');
  assert.deepEqual(retentionCutoffs(DEFAULT_RETENTION, now), {
    records: '2025-11-04T06:00:00.000Z',
    audit: '2024-12-04T06:00:00.000Z',
    ledgerBefore: '2016-12',
  });
  assert.deepEqual(retentionCutoffs({ recordsMonths: 0, auditMonths: 0, ledgerYears: 0 }, now), {});
});
