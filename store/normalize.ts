/**
 * How a value from outside (an import row, an API body) becomes a stored value, shared by the
 * importer and the API so that both accept and refuse the same things for the same reasons.
 * Each function returns the normalized value, or throws a `FieldError` naming the field and
 * saying what is wrong. Reasons never hold a whole phone number: they end up in reports and logs.
 */
import { createHash } from 'node:crypto';
import { parsePhoneNumberFromString, validatePhoneNumberLength } from 'libphonenumber-js/max';
import { maskPhone } from '../domain/phone';
import type { Language, Segment } from '../domain/types';
import { parseTimeWindow } from '../rules/time';

/** A value that cannot be stored: `field` names it as the caller knows it (a column, a body path). */
export class FieldError extends Error {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field}: ${problem}`);
    this.name = 'FieldError';
  }
}

/** Numbers SMS can reach. Italian numbers are mobile or fixed; some countries do not tell. */
const TEXTABLE = new Set(['MOBILE', 'FIXED_LINE_OR_MOBILE']);

const LENGTH_PROBLEMS: Record<string, string> = {
  NOT_A_NUMBER: 'is not a phone number',
  INVALID_COUNTRY: 'has no valid country prefix',
  TOO_SHORT: 'is too short',
  TOO_LONG: 'is too long',
  INVALID_LENGTH: 'has an impossible length',
};

/**
 * One mobile number in E.164. Numbers without a prefix are read as Italian. Refused: anything
 * that is not a valid number, and valid numbers that cannot take an SMS (landlines, voicemail).
 */
export function mobileNumber(raw: string, field: string): string {
  // `(+39) 347 ...` is a common way to write the prefix, which the parser does not take.
  const text = raw.trim().replace(/^\((\+?\d{1,4})\)\s*/, '$1 ');
  const shown = maskPhone(text);
  const lengthProblem = validatePhoneNumberLength(text, 'IT');
  if (lengthProblem)
    throw new FieldError(field, `${shown} ${LENGTH_PROBLEMS[lengthProblem] ?? 'is not a valid phone number'}`);
  const parsed = parsePhoneNumberFromString(text, 'IT');
  if (!parsed || !parsed.isValid())
    throw new FieldError(
      field,
      `${shown} is not a valid phone number${parsed?.country ? ` for ${parsed.country}` : ''}`,
    );
  const type = parsed.getType();
  if (!type || !TEXTABLE.has(type))
    throw new FieldError(
      field,
      `${shown} is ${type ? `a ${type.toLowerCase().replace(/_/g, ' ')} number` : 'not a mobile number'}; SMS needs a mobile number`,
    );
  return parsed.number;
}

/**
 * One or more mobile numbers, normalized and without repeats, in the order given. A single
 * string may hold several numbers separated by `;`, `,` or `|` (how billing exports list them).
 */
export function mobileNumbers(raw: unknown, field: string): string[] {
  const items = Array.isArray(raw)
    ? raw
    : typeof raw === 'string'
      ? raw.split(/[;,|]/)
      : raw === undefined || raw === null
        ? []
        : [raw];
  const texts = items
    .map((v, i) => {
      if (typeof v !== 'string' && typeof v !== 'number')
        throw new FieldError(field, `item ${i + 1} is not a phone number`);
      return String(v).trim();
    })
    .filter((t) => t !== '');
  if (texts.length === 0) throw new FieldError(field, 'needs at least one mobile number');
  const phones: string[] = [];
  texts.forEach((t, i) => {
    const e164 = mobileNumber(t, texts.length > 1 ? `${field} (number ${i + 1})` : field);
    if (!phones.includes(e164)) phones.push(e164);
  });
  return phones;
}

const EMAIL = /^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+\.[^\s@<>(),;:"]{2,}$/;

export function emailAddress(raw: string, field: string): string {
  const text = raw.trim();
  if (text.length > 254 || !EMAIL.test(text)) throw new FieldError(field, 'is not an e-mail address');
  // The domain is case-insensitive; the local part is left as given.
  const at = text.lastIndexOf('@');
  return text.slice(0, at + 1) + text.slice(at + 1).toLowerCase();
}

/** `it`, `en`, and what exports write for them (IT, it-IT, italiano, English...). */
export function language(raw: string, field: string): Language {
  const code = raw.trim().toLowerCase().slice(0, 2);
  if (code === 'it' || code === 'en') return code;
  throw new FieldError(field, `"${raw.trim()}" is not a language we write in (it or en)`);
}

const SEGMENTS: Record<string, Segment> = {
  residential: 'residential',
  business: 'business',
  privato: 'residential',
  azienda: 'business',
  consumer: 'residential',
};

export function segment(raw: string, field: string): Segment {
  const s = SEGMENTS[raw.trim().toLowerCase()];
  if (!s) throw new FieldError(field, `"${raw.trim()}" is not residential or business`);
  return s;
}

/** Quiet hours as the rules read them (`HH:MM-HH:MM`), checked by the rules' own parser. */
export function quietHours(raw: string, field: string): string {
  const parsed = parseTimeWindow(raw.trim().replace(/\s+/g, ''));
  if (typeof parsed === 'string') throw new FieldError(field, parsed);
  return `${parsed.start}-${parsed.end}`;
}

/** Ids of sites, subscribers and contacts: what billing systems use, without surprises in URLs. */
const ID = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$/;

export function recordId(raw: string, field: string): string {
  const text = raw.trim();
  if (!ID.test(text))
    throw new FieldError(
      field,
      text === ''
        ? 'is required'
        : `"${text.slice(0, 40)}" is not an id: use up to 100 letters, digits and . _ : / -, starting with a letter or digit`,
    );
  return text;
}

export function requiredText(raw: string | undefined, field: string, max = 200): string {
  const text = (raw ?? '').trim().replace(/\s+/g, ' ');
  if (text === '') throw new FieldError(field, 'is required');
  if (text.length > max) throw new FieldError(field, `is longer than ${max} characters`);
  return text;
}

export function coordinates(lat: number, lon: number, field: string): { lat: number; lon: number } {
  if (!Number.isFinite(lat) || lat < -90 || lat > 90)
    throw new FieldError(`${field}.lat`, `${lat} is not a latitude (-90 to 90)`);
  if (!Number.isFinite(lon) || lon < -180 || lon > 180)
    throw new FieldError(`${field}.lon`, `${lon} is not a longitude (-180 to 180)`);
  return { lat, lon };
}

/**
 * A digest of a record's content, independent of key order, that tells an unchanged record
 * from a changed one. Dates count by their instant.
 */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('base64url').slice(0, 22);
}

function canonicalJson(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}
