/**
 * The text of a social post: the public feed's text, phone numbers hidden, cut to the network's
 * limit at a word boundary, then a link to the incident on the public status page. Pure.
 *
 * Both networks count a link as 23 characters whatever its length (X wraps it in t.co, Mastodon
 * counts every URL as 23). X weighs each character: Latin script, punctuation and the like count
 * 1, everything else (CJK, emoji) 2 (twitter-text's v3 configuration); Mastodon counts characters.
 */
import { replacePhoneNumbers } from '../../domain/phone';
import type { Language } from '../../domain/types';

export interface TextLimit {
  /** The most a post may weigh: 280 on X, 500 on Mastodon (an instance may allow more). */
  max: number;
  /** The weight of one character (one code point). */
  weigh: (codePoint: number) => number;
}

/** What every link weighs on both networks. */
export const LINK_WEIGHT = 23;

/** twitter-text v3: these ranges weigh 1, every other code point 2. */
const X_LIGHT_RANGES: [number, number][] = [
  [0, 4351],
  [8192, 8205],
  [8208, 8223],
  [8242, 8247],
];

export const X_LIMIT: TextLimit = {
  max: 280,
  weigh: (cp) => (X_LIGHT_RANGES.some(([lo, hi]) => cp >= lo && cp <= hi) ? 1 : 2),
};
export const MASTODON_LIMIT: TextLimit = { max: 500, weigh: () => 1 };

const ELLIPSIS = '…';
const HIDDEN: Record<Language, string> = { it: '[numero nascosto]', en: '[number hidden]' };

/** The weight of plain text (no links in it are counted as links: the feed's texts carry none). */
export function weightOf(text: string, limit: TextLimit): number {
  let w = 0;
  for (const ch of text) w += limit.weigh(ch.codePointAt(0)!);
  return w;
}

/**
 * `text`, then the link on its own line, within `limit`. A text too long is cut after the last
 * whole word that fits, and ends with "…"; a single word longer than the room is cut inside.
 */
export function socialText(text: string, link: string, limit: TextLimit, language: Language): string {
  const body = replacePhoneNumbers(text.replace(/\s+/g, ' ').trim(), HIDDEN[language]);
  const room = limit.max - LINK_WEIGHT - 1; // the newline before the link
  return `${fit(body, room, limit)}\n${link}`;
}

function fit(body: string, room: number, limit: TextLimit): string {
  if (weightOf(body, limit) <= room) return body;
  const budget = room - weightOf(ELLIPSIS, limit);
  const chars = [...body];
  let weight = 0;
  let end = 0;
  while (end < chars.length && weight + limit.weigh(chars[end]!.codePointAt(0)!) <= budget)
    weight += limit.weigh(chars[end++]!.codePointAt(0)!);
  const cut = chars.slice(0, end).join('');
  // Back to the last space when the cut fell inside a word, unless that throws away most of the room.
  const space = chars[end] === ' ' ? cut.length : cut.lastIndexOf(' ');
  const words = space > cut.length / 2 ? cut.slice(0, space) : cut;
  return words.replace(/[\s,;:.–—-]+$/, '') + ELLIPSIS;
}
