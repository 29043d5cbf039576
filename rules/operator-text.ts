/**
 * An operator's own words, checked the way `rules check` checks a template: transliterated to
 * GSM-7 where the policy says so (`defaults.sms.transliterate`), then measured, and refused when
 * they take more SMS parts than the policy allows (`defaults.sms.maxParts`) or more than Plivo
 * takes in one send. Pure: the API's dry run and the planning of the messages count the same way.
 */
import { nonGsmCharacters, segmentSms, textTooLong, transliterateToGsm, type SmsEncoding } from './sms';

export interface SmsPolicy {
  maxParts: number;
  transliterate: boolean;
}

export interface CheckedText {
  /** The words as they will be sent (transliterated when the policy says so). */
  text: string;
  encoding: SmsEncoding;
  parts: number;
  /** Length in the encoding's unit (GSM-7 septets, UCS-2 code units). */
  length: number;
  /** Characters replaced by GSM-7 look-alikes. */
  transliterated: string[];
}

export type TextCheck = { ok: true; checked: CheckedText } | { ok: false; problem: string };

export function checkOperatorText(raw: string, policy: SmsPolicy): TextCheck {
  const trimmed = raw.trim();
  if (trimmed === '') return { ok: false, problem: 'is empty; write the words to send' };
  const { text, replaced } = policy.transliterate
    ? transliterateToGsm(trimmed)
    : { text: trimmed, replaced: [] as string[] };
  const tooLong = textTooLong(text);
  if (tooLong) return { ok: false, problem: `is too long: ${tooLong}` };
  const sms = segmentSms(text);
  if (sms.units > policy.maxParts) {
    const forcing = sms.encoding === 'UCS-2' ? nonGsmCharacters(text) : [];
    const why = forcing.length
      ? `; ${forcing.map((c) => JSON.stringify(c)).join(' ')} force${forcing.length === 1 ? 's' : ''} UCS-2 (70 characters a part, not 160)`
      : '';
    return {
      ok: false,
      problem: `takes ${sms.units} SMS parts (${sms.length} ${sms.encoding === 'GSM' ? 'GSM-7' : 'UCS-2'} characters) and the policy allows at most ${policy.maxParts} (defaults.sms.maxParts)${why}`,
    };
  }
  return {
    ok: true,
    checked: { text, encoding: sms.encoding, parts: sms.units, length: sms.length, transliterated: replaced },
  };
}
