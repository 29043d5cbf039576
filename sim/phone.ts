import { isValidPhoneNumber, parsePhoneNumberFromString } from 'libphonenumber-js';

/** Plivo wants bare international numbers: digits with an optional leading +, no spaces. */
const DESTINATION_SHAPE = /^\+?\d{8,15}$/;

/** Returns the E.164 form (with +) of a destination Plivo would accept, or undefined. */
export function normalizeDestination(raw: string): string | undefined {
  const trimmed = raw.trim();
  if (!DESTINATION_SHAPE.test(trimmed)) return undefined;
  const e164 = trimmed.startsWith('+') ? trimmed : `+${trimmed}`;
  return isValidPhoneNumber(e164) ? e164 : undefined;
}

/**
 * Lenient form used for the inbox filter: a `+` in a query string often arrives as a
 * space, and people type numbers with or without it.
 */
export function normalizeLookup(raw: string): string {
  const digits = raw.replace(/\D/g, '');
  return `+${digits}`;
}

/** Plivo's API and callbacks carry numbers without the leading +. */
export function plivoNumber(value: string): string {
  return /^\+\d+$/.test(value) ? value.slice(1) : value;
}

/**
 * Keeps the country code and the last three digits (`+39*******123`): enough to tell
 * numbers apart in a log without writing a subscriber's number down.
 */
export function maskPhone(phone: string): string {
  const digits = phone.replace(/\D/g, '');
  if (digits.length < 7) return '***';
  const countryCode = parsePhoneNumberFromString(`+${digits}`)?.countryCallingCode ?? digits.slice(0, 2);
  return `+${countryCode}${'*'.repeat(digits.length - countryCode.length - 3)}${digits.slice(-3)}`;
}

/** Masks anything that looks like a phone number inside a URL or free text. */
export function maskNumbersIn(text: string): string {
  // The look-arounds leave UUIDs and other identifiers that merely contain digits alone.
  return text.replace(/(?<![\w-])(?:%2B|\+)?\d{7,}(?![\w-])/gi, (match) => maskPhone(match.replace(/^%2B/i, '+')));
}

/**
 * Splits `a<b<c`, removes duplicates (comparing valid numbers in E.164 form, so `39...`
 * and `+39...` are one) and separates the numbers Plivo would refuse.
 */
export function splitDestinations(dst: string): { valid: string[]; invalid: string[]; unique: number } {
  const valid = new Set<string>();
  const invalid = new Set<string>();
  for (const part of dst.split('<')) {
    const raw = part.trim();
    if (raw === '') continue;
    const e164 = normalizeDestination(raw);
    if (e164) valid.add(e164);
    else invalid.add(raw);
  }
  return { valid: [...valid], invalid: [...invalid], unique: valid.size + invalid.size };
}
