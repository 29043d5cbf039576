/**
 * Seeded randomness for fault injection, so a drill run with `seed` set replays the same
 * decisions. Each kind of decision draws from its own stream (derived from the seed and a
 * name), so turning on duplicate callbacks does not change which messages end undelivered.
 */
import { randomInt } from 'node:crypto';

import { mulberry32, type Random } from '../domain/prng';

export { mulberry32, type Random };

/** FNV-1a, to turn a stream name into a 32-bit salt. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function randomSeed(): number {
  return randomInt(0, 2 ** 31);
}

export class RandomStreams {
  private readonly streams = new Map<string, Random>();

  constructor(readonly seed: number) {}

  stream(name: string): Random {
    let stream = this.streams.get(name);
    if (!stream) {
      stream = mulberry32((this.seed ^ hash32(name)) >>> 0);
      this.streams.set(name, stream);
    }
    return stream;
  }

  /** True with probability `rate` (0 never draws, so an unset fault costs no randomness). */
  chance(name: string, rate: number | undefined): boolean {
    if (!rate || rate <= 0) return false;
    return this.stream(name)() < rate;
  }

  /** Integer uniformly in [min, max]. */
  between(name: string, range: { min: number; max: number } | undefined): number {
    if (!range || range.max <= 0) return 0;
    const { min, max } = range;
    if (max <= min) return min;
    return min + Math.floor(this.stream(name)() * (max - min + 1));
  }
}
