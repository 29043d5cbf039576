/** An operator's own words are checked like a template: transliterated where the policy says, refused when too long. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkOperatorText } from '../../rules/operator-text';

describe('operator text', () => {
  test('typographic characters become GSM-7 look-alikes when the policy transliterates, keeping one part', () => {
    const r = checkOperatorText('  È in arrivo un temporale: l’assistenza è attiva — grazie  ', {
      maxParts: 1,
      transliterate: true,
    });
    assert.ok(r.ok);
    assert.equal(r.checked.text, "E' in arrivo un temporale: l'assistenza è attiva - grazie");
    assert.deepEqual(r.checked.transliterated, ['È', '’', '—']);
    assert.equal(r.checked.encoding, 'GSM');
    assert.equal(r.checked.parts, 1);
  });

  test('without transliteration the same words go as UCS-2, and the refusal says which characters force it', () => {
    const text = 'l’assistenza '.repeat(6); // 78 UCS-2 characters: two parts
    const r = checkOperatorText(text, { maxParts: 1, transliterate: false });
    assert.equal(r.ok, false);
    assert.match(
      !r.ok ? r.problem : '',
      /takes 2 SMS parts .* at most 1 \(defaults\.sms\.maxParts\); "’" forces UCS-2/,
    );
    const allowed = checkOperatorText(text, { maxParts: 2, transliterate: false });
    assert.ok(allowed.ok && allowed.checked.encoding === 'UCS-2' && allowed.checked.parts === 2);
  });

  test('parts are counted as carriers count them: 160 GSM-7 characters fit one, 161 take two', () => {
    assert.ok(checkOperatorText('a'.repeat(160), { maxParts: 1, transliterate: false }).ok);
    const two = checkOperatorText('a'.repeat(161), { maxParts: 2, transliterate: false });
    assert.ok(two.ok && two.checked.parts === 2);
    assert.equal(checkOperatorText('a'.repeat(161), { maxParts: 1, transliterate: false }).ok, false);
  });

  test('an empty text and one longer than Plivo takes are refused', () => {
    assert.match(
      (checkOperatorText('   ', { maxParts: 1, transliterate: true }) as { problem: string }).problem,
      /empty/,
    );
    assert.match(
      (checkOperatorText('a'.repeat(1601), { maxParts: 10, transliterate: true }) as { problem: string }).problem,
      /GSM-7 maximum is 1600/,
    );
  });
});
