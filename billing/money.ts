/**
 * Money in integers, never in floating point. Revenue is kept in cents (the smallest unit of the
 * billing currency); provider costs, which Plivo states to 5 decimals (0.00500 USD a part), in
 * micros (millionths of their currency), so that no sub-cent amount is lost before it is summed.
 *
 * Rounding, wherever a division leaves a remainder: half up (half away from zero), on integers.
 */

export const MICROS_PER_UNIT = 1_000_000;
export const MICROS_PER_CENT = 10_000;

/** n / d rounded half away from zero; d > 0. Exact for |n| below 2^53. */
export function divRoundHalfUp(n: number, d: number): number {
  if (!Number.isSafeInteger(n) || !Number.isSafeInteger(d) || d <= 0)
    throw new RangeError(`divRoundHalfUp(${n}, ${d}): integers only, d > 0`);
  const q = Math.floor(Math.abs(n) / d);
  const r = Math.abs(n) - q * d;
  const rounded = 2 * r >= d ? q + 1 : q;
  return n < 0 ? -rounded : rounded;
}

function bigDivRoundHalfUp(n: bigint, d: bigint): bigint {
  const neg = n < 0n;
  const a = neg ? -n : n;
  const q = a / d;
  const rounded = 2n * (a % d) >= d ? q + 1n : q;
  return neg ? -rounded : rounded;
}

/**
 * VAT on a net amount, in cents, rounded half up. The rate is in basis points (22% = 2200), so a
 * rate such as 5.5% is exact too. Example: 48 cents at 22% = 10.56, so 11 cents.
 */
export function vatCents(netCents: number, vatBasisPoints: number): number {
  return divRoundHalfUp(netCents * vatBasisPoints, 10_000);
}

/** Micros to cents, rounded half up (0.005 USD, 5,000 micros, is 1 cent). */
export function microsToCents(micros: number): number {
  return divRoundHalfUp(micros, MICROS_PER_CENT);
}

/**
 * Converts micros of one currency to micros of another at `rateMicros` (units of the target per
 * unit of the source, times 10^6), rounded half up. BigInt inside: the product exceeds 2^53.
 */
export function convertMicros(micros: number, rateMicros: number): number {
  return Number(bigDivRoundHalfUp(BigInt(micros) * BigInt(rateMicros), BigInt(MICROS_PER_UNIT)));
}

/**
 * A non-negative decimal string ("0.00500", "1", "22.5") as an integer count of 10^-scale units,
 * rounded half up beyond `scale` digits; null when it is not such a decimal.
 */
export function parseDecimal(text: string, scale: number): number | null {
  const m = /^\s*(\d{1,12})(?:\.(\d*))?\s*$/.exec(text);
  if (!m) return null;
  const whole = m[1]!;
  const fraction = m[2] ?? '';
  const kept = (fraction + '0'.repeat(scale)).slice(0, scale);
  let value = Number(whole) * 10 ** scale + Number(kept || '0');
  if (fraction.length > scale && Number(fraction[scale]) >= 5) value += 1;
  return Number.isSafeInteger(value) ? value : null;
}

/** A decimal string of `micros` (millionths) with `decimals` digits (at most 6), e.g. 5000 -> "0.005000". */
export function formatMicros(micros: number, decimals = 6): string {
  const scaled = decimals === 6 ? micros : divRoundHalfUp(micros, 10 ** (6 - decimals));
  return formatScaled(scaled, decimals);
}

/** Cents as a decimal string with two digits: 122 -> "1.22", 5 -> "0.05". */
export function formatCents(cents: number): string {
  return formatScaled(cents, 2);
}

function formatScaled(value: number, decimals: number): string {
  const sign = value < 0 ? '-' : '';
  const digits = String(Math.abs(value)).padStart(decimals + 1, '0');
  return decimals === 0 ? sign + digits : `${sign}${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`;
}
