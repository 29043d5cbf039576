/**
 * SMS segmentation as carriers (and Plivo's billing) do it: a text is GSM-7 when every
 * character is in the GSM 03.38 basic set or its extension table, otherwise the whole
 * text goes out as UCS-2. Every part is billed, so the simulator must count the same way.
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

export function isGsm7(text: string): boolean {
  for (const ch of text) {
    if (!GSM_BASIC_SET.has(ch) && !GSM_EXTENSION_SET.has(ch)) return false;
  }
  return true;
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
