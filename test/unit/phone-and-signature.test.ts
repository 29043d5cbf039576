import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateSignature } from 'plivo';
import { maskPhone, toE164 } from '../../domain/phone';
import { isValidPlivoSignatureV2, plivoSignatureV2 } from '../../api/plivo/signature';

test('phone numbers are masked for logs, keeping the country code and the last three digits', () => {
  assert.equal(maskPhone('+393471234567'), '+39*******567');
  assert.equal(maskPhone('+14155550123'), '+14******123');
  assert.doesNotMatch(maskPhone('+393471234567'), /1234/);
});

test('numbers are normalized to E.164, Italian by default, and invalid ones say why', () => {
  assert.equal(toE164('347 123 4567'), '+393471234567');
  assert.equal(toE164('+39 347 1234567'), '+393471234567');
  assert.throws(() => toE164('12'), /"12" is not/);
  assert.throws(() => toE164('hello'), /"hello" is not a phone number/);
});

test('our V2 signature matches the Plivo SDK and rejects tampering', () => {
  const url = 'https://avviso.example.net/v1/plivo/status';
  const sig = plivoSignatureV2(url, '12345', 'token-abc');
  assert.equal(validateSignature(url, '12345', sig, 'token-abc'), true);
  assert.equal(isValidPlivoSignatureV2(url, '12345', sig, 'token-abc'), true);
  assert.equal(
    isValidPlivoSignatureV2(url + '?x=1', '12345', sig, 'token-abc'),
    true,
    'the query string is not signed',
  );
  assert.equal(isValidPlivoSignatureV2(url, '12346', sig, 'token-abc'), false);
  assert.equal(isValidPlivoSignatureV2(url, '12345', sig, 'other-token'), false);
  assert.equal(isValidPlivoSignatureV2(url, undefined, sig, 'token-abc'), false);
});
