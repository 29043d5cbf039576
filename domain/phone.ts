import { parsePhoneNumberWithError, ParseError } from 'libphonenumber-js';

/** Keeps the country code and the last three digits: enough to tell numbers apart in a log. */
export function maskPhone(phone: string): string {
  const digits = phone.replace(/[^\d+]/g, '');
  if (digits.length <= 5) return '***';
  const cc = digits.startsWith('+39') ? '+39' : digits.slice(0, digits.startsWith('+') ? 3 : 2);
  return cc + '*'.repeat(Math.max(3, digits.length - cc.length - 3)) + digits.slice(-3);
}

/**
 * Normalizes a number to E.164. Numbers without a country prefix are read as Italian,
 * the ISP's home country. Throws an Error whose message says why a number is not valid.
 */
export function toE164(raw: string, defaultCountry: 'IT' = 'IT'): string {
  try {
    const parsed = parsePhoneNumberWithError(raw, defaultCountry);
    if (!parsed.isValid())
      throw new Error(`"${raw}" is not a valid phone number for ${parsed.country ?? 'its country'}`);
    return parsed.number;
  } catch (err) {
    if (err instanceof ParseError) throw new Error(`"${raw}" is not a phone number (${err.message})`);
    throw err;
  }
}

/** Replaces every phone number written into a free text (`+39 0371 123456`, `0039…`): public texts carry none. */
export function replacePhoneNumbers(text: string, replacement: string): string {
  return text.replace(/(\+|00)\d[\d .-]{6,}\d/g, replacement);
}
