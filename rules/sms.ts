/**
 * SMS segmentation as carriers (and Plivo's billing) do it: a text is GSM-7 when every
 * character is in the GSM 03.38 basic set or its extension table, otherwise the whole
 * text goes out as UCS-2. Every part is billed, so the rules, the senders and the
 * simulator must all count the same way: this module is the one place that does.
 *
 * Transliteration replaces the characters that word processors slip into a text (curly
 * quotes, dashes, ellipses, non-breaking spaces, accented capitals outside GSM-7) with
 * GSM-7 look-alikes, so that one typographic apostrophe does not halve a message's length.
 */

export type SmsEncoding = 'GSM' | 'UCS-2';

export interface SmsSegmentation {
  encoding: SmsEncoding;
  units: number;
  /** Length in the encoding's own unit: septets for GSM, UTF-16 code units for UCS-2. */
  length: number;
}

const GSM_BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
/** Extension characters travel as ESC + char, so each one costs two septets. */
const GSM_EXTENSION = '^{}\\[~]|€\f';

const GSM_BASIC_SET = new Set(GSM_BASIC);
const GSM_EXTENSION_SET = new Set(GSM_EXTENSION);

const GSM_SINGLE = 160;
const GSM_PART = 153;
const UCS2_SINGLE = 70;
const UCS2_PART = 67;

/** Plivo's documented ceilings: longer texts are refused rather than cut. */
export const MAX_GSM_CHARS = 1600;
export const MAX_UCS2_CHARS = 737;

export function isGsm7Char(ch: string): boolean {
  return GSM_BASIC_SET.has(ch) || GSM_EXTENSION_SET.has(ch);
}

export function isGsm7(text: string): boolean {
  for (const ch of text) {
    if (!isGsm7Char(ch)) return false;
  }
  return true;
}

/** The distinct characters that force a text to UCS-2, in order of appearance. */
export function nonGsmCharacters(text: string): string[] {
  const found = new Set<string>();
  for (const ch of text) if (!isGsm7Char(ch)) found.add(ch);
  return [...found];
}

/** Cost of each character in the encoding's unit, iterating by code point. */
function characterCosts(text: string, encoding: SmsEncoding): number[] {
  const costs: number[] = [];
  for (const ch of text) {
    if (encoding === 'GSM') costs.push(GSM_EXTENSION_SET.has(ch) ? 2 : 1);
    else costs.push(ch.length); // astral characters are a surrogate pair: two UCS-2 units
  }
  return costs;
}

/**
 * Packs characters greedily into parts without splitting an escape sequence or a
 * surrogate pair across two parts, which is why the count can exceed ceil(length / part).
 */
function countParts(costs: number[], partSize: number): number {
  let parts = 1;
  let used = 0;
  for (const cost of costs) {
    if (used + cost > partSize) {
      parts += 1;
      used = 0;
    }
    used += cost;
  }
  return parts;
}

export function segmentSms(text: string): SmsSegmentation {
  const encoding: SmsEncoding = isGsm7(text) ? 'GSM' : 'UCS-2';
  const costs = characterCosts(text, encoding);
  const length = costs.reduce((sum, c) => sum + c, 0);
  const single = encoding === 'GSM' ? GSM_SINGLE : UCS2_SINGLE;
  const part = encoding === 'GSM' ? GSM_PART : UCS2_PART;
  const units = length <= single ? 1 : countParts(costs, part);
  return { encoding, units, length };
}

/** Returns why a text is too long for one send, or undefined when it fits. */
export function textTooLong(text: string): string | undefined {
  if (isGsm7(text)) {
    const chars = [...text].length;
    return chars > MAX_GSM_CHARS ? `text is ${chars} characters; the GSM-7 maximum is ${MAX_GSM_CHARS}` : undefined;
  }
  return text.length > MAX_UCS2_CHARS
    ? `text is ${text.length} characters; the Unicode (UCS-2) maximum is ${MAX_UCS2_CHARS}`
    : undefined;
}

/**
 * GSM-7 stand-ins for characters that would otherwise force UCS-2. Italian capitals with a
 * grave accent (È, À, ...) are not in GSM-7; the usual way to write them on a phone keyboard
 * is the letter followed by an apostrophe, which is what Italian readers expect.
 */
const TRANSLITERATIONS: Record<string, string> = {
  '\u2018': "'",
  '\u2019': "'",
  '\u201A': "'",
  '\u201B': "'",
  '\u2032': "'",
  '\u00B4': "'",
  '`': "'",
  '\u201C': '"',
  '\u201D': '"',
  '\u201E': '"',
  '\u201F': '"',
  '\u2033': '"',
  '\u00AB': '"',
  '\u00BB': '"',
  '\u2013': '-',
  '\u2014': '-',
  '\u2012': '-',
  '\u2015': '-',
  '\u2212': '-',
  '\u2010': '-',
  '\u2011': '-',
  '\u2026': '...',
  '\u2022': '-',
  '\u00B7': '.',
  '\u00A0': ' ',
  '\u2007': ' ',
  '\u2009': ' ',
  '\u202F': ' ',
  '\u200B': '',
  '\uFEFF': '',
  '\t': ' ',
  È: "E'",
  À: "A'",
  Ì: "I'",
  Ò: "O'",
  Ù: "U'",
  Á: 'A',
  Í: 'I',
  Ó: 'O',
  Ú: 'U',
  Ê: 'E',
  Ë: 'E',
  á: 'a',
  í: 'i',
  ó: 'o',
  ú: 'u',
  â: 'a',
  ê: 'e',
  î: 'i',
  ô: 'o',
  û: 'u',
  ë: 'e',
  ï: 'i',
  ç: 'c',
  ã: 'a',
  õ: 'o',
  '\u00B0': 'o',
  '\u2122': 'TM',
  '\u00A9': '(c)',
  '\u00AE': '(R)',
};

export interface Transliteration {
  text: string;
  /** The characters that were replaced, each once, in order of appearance. */
  replaced: string[];
}

/** Replaces the characters it knows; others (emoji, Cyrillic...) are kept and still force UCS-2. */
export function transliterateToGsm(text: string): Transliteration {
  let out = '';
  const replaced = new Set<string>();
  for (const ch of text) {
    if (isGsm7Char(ch)) {
      out += ch;
      continue;
    }
    const substitute = TRANSLITERATIONS[ch];
    if (substitute === undefined) {
      out += ch;
    } else {
      out += substitute;
      replaced.add(ch);
    }
  }
  return { text: out, replaced: [...replaced] };
}

export function canTransliterate(ch: string): boolean {
  return TRANSLITERATIONS[ch] !== undefined;
}
