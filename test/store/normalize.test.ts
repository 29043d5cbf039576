/**
 * How values from billing exports and API bodies become stored values: phone numbers in every
 * usual spelling, dates in Italian time, flags in Italian and English, loose header names, and
 * the content digest that tells unchanged records apart. Pure: no database.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { contentHash, FieldError, mobileNumber, mobileNumbers, quietHours } from '../../store/normalize';
import { flag, instant, decimal } from '../../import/values';
import { columnResolver, headerKey } from '../../import/columns';
import { smsAlertsInForce } from '../../store/audience';

const problem = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    if (err instanceof FieldError) return err.message;
    throw err;
  }
  return 'accepted';
};

describe('normalizing values', () => {
  test('mobile numbers in the spellings exports use become E.164; landlines and broken numbers say why, masked', () => {
    for (const raw of [
      '3471000008',
      '347 100 0008',
      '347/1000008',
      '+39 347 100 0008',
      '0039 347 1000008',
      '393471000008',
      '(+39) 347-100-0008',
    ]) {
      assert.equal(mobileNumber(raw, 'phones'), '+393471000008', raw);
    }
    assert.equal(mobileNumber('+33 6 12 34 56 78', 'phones'), '+33612345678');
    assert.equal(
      problem(() => mobileNumber('0371 123456', 'phones')),
      'phones: 03*****456 is a fixed line number; SMS needs a mobile number',
    );
    assert.equal(
      problem(() => mobileNumber('12', 'phones')),
      'phones: *** is too short',
    );
    assert.match(
      problem(() => mobileNumber('not a number', 'phones')),
      /is not a phone number/,
    );
    assert.deepEqual(mobileNumbers('347 100 0001; +39 347 100 0001 | 328 123 4567', 'phones'), [
      '+393471000001',
      '+393281234567',
    ]);
    assert.match(
      problem(() => mobileNumbers('', 'phones')),
      /needs at least one mobile number/,
    );
    assert.match(
      problem(() => mobileNumbers(['3471000001', '0371 123456'], 'phones')),
      /^phones \(number 2\): /,
    );
  });

  test('dates: ISO or Italian, Italian time; a bare "until" date includes the whole day', () => {
    assert.deepEqual(instant('2026-03-01', 'since'), new Date('2026-02-28T23:00:00Z'));
    assert.deepEqual(instant('01/03/2026', 'since'), new Date('2026-02-28T23:00:00Z'));
    assert.deepEqual(
      instant('01/07/2026', 'until', true),
      new Date('2026-07-01T22:00:00Z'),
      'summer time: the 2nd at midnight in Rome',
    );
    assert.deepEqual(instant('2026-03-01T08:00:00Z', 'since'), new Date('2026-03-01T08:00:00Z'));
    assert.deepEqual(instant('01/03/2026 08:30', 'since'), new Date('2026-03-01T07:30:00Z'));
    assert.deepEqual(
      instant('2026-03-01', 'since'),
      instant('2026-03-01', 'since'),
      'the remembered answer is the same',
    );
    assert.equal(instant('', 'since'), undefined);
    assert.match(
      problem(() => instant('31/02/2026', 'since')),
      /"31\/02\/2026" is not a date/,
    );
  });

  test('flags, decimals and quiet hours', () => {
    for (const yes of ['yes', 'Sì', 'si', 'TRUE', '1', 'x', true, 1])
      assert.equal(flag(yes, 'sms_alerts'), true, String(yes));
    for (const no of ['no', 'N', 'false', '0', false, 0]) assert.equal(flag(no, 'sms_alerts'), false, String(no));
    assert.equal(flag('', 'sms_alerts'), undefined);
    assert.match(
      problem(() => flag('forse', 'sms_alerts')),
      /"forse" is not yes or no/,
    );
    assert.equal(decimal('45,3141', 'lat'), 45.3141);
    assert.equal(quietHours(' 22:00 - 7:00 ', 'quiet_hours'), '22:00-07:00');
    assert.match(
      problem(() => quietHours('22-7', 'quiet_hours')),
      /quiet_hours: "22" is not a time of day/,
    );
  });

  test('header names are matched loosely, with Italian aliases', () => {
    const resolve = columnResolver('subscribers');
    assert.equal(headerKey('\uFEFFContract ID'), 'contract_id');
    assert.equal(headerKey('contractId'), 'contract_id');
    for (const [header, column] of [
      ['Contract-ID', 'contract_id'],
      ['Contratto', 'contract_id'],
      ['Cellulare', 'phones'],
      ['Lingua', 'language'],
      ['Opzione SMS', 'sms_alerts'],
      ['siteId', 'site_id'],
      ['Codice fiscale', undefined],
    ] as const) {
      assert.equal(resolve(header), column, header);
    }
    assert.equal(columnResolver('sites')('Alimentato da'), 'uplink');
  });

  test('the content digest ignores key order and undefined fields, and sees every change', () => {
    const a = { name: 'Maria', phones: ['+393471000001'], since: new Date('2026-01-01T00:00:00Z'), email: undefined };
    assert.equal(
      contentHash(a),
      contentHash({ since: new Date('2026-01-01T00:00:00Z'), phones: ['+393471000001'], name: 'Maria' }),
    );
    assert.notEqual(contentHash(a), contentHash({ ...a, phones: ['+393471000002'] }));
    assert.notEqual(contentHash(a), contentHash({ ...a, since: new Date('2026-01-02T00:00:00Z') }));
  });

  test('the paid option is in force from `since` (included) to `until` (excluded)', () => {
    const s = {
      smsAlerts: { active: true, since: new Date('2026-01-01T00:00:00Z'), until: new Date('2026-02-01T00:00:00Z') },
    };
    assert.equal(smsAlertsInForce(s, new Date('2025-12-31T23:59:59Z')), false);
    assert.equal(smsAlertsInForce(s, new Date('2026-01-01T00:00:00Z')), true);
    assert.equal(smsAlertsInForce(s, new Date('2026-02-01T00:00:00Z')), false);
    assert.equal(smsAlertsInForce({ smsAlerts: { active: false } }, new Date()), false);
    assert.equal(smsAlertsInForce({ smsAlerts: { active: true } }, new Date()), true);
  });
});
