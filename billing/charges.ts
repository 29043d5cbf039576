/**
 * What one subscriber owes for the SMS option in one month. Pure: the rules are tested alone.
 *
 * When the option counts as active (all instants in Italian time):
 *   - it starts at `smsAlerts.since` (no `since`: it has been active since before any month billed);
 *   - it ends at `smsAlerts.until` when set; an option with `active: false` and no `until` ended at
 *     an unknown time, or never began, and is not charged at all (we never guess a charge);
 *   - an SMS opt-out (STOP, which sets `optedOut` and `optedOutAt`) ends it at the first instant of
 *     the month after `optedOutAt`: the month in which a subscriber opts out is still charged (as
 *     if active to its end, whatever the proration), the months after it are not; `optedOut`
 *     without `optedOutAt` (an opt-out of unknown date) is not charged at all.
 * The option is charged for a month when that interval overlaps the month:
 *   - proration `full`: the whole price for any month it was active in, however briefly;
 *   - proration `daily`: price x days active / days in the month, rounded half up to the cent,
 *     where a day counts when the option was active at any moment of it.
 * VAT is computed per line (one subscriber, one month), rounded half up to the cent: see vatCents.
 */
import { divRoundHalfUp, vatCents } from './money';
import { daysTouched, monthBounds, startOfNextMonth, type MonthBounds } from './period';

export type Proration = 'full' | 'daily';

/** The terms a month is billed on: fixed when the month is first billed, reused by every re-run. */
export interface BillingTerms {
  priceCents: number;
  /** VAT rate in basis points: 22% is 2200. */
  vatBasisPoints: number;
  currency: string;
  proration: Proration;
}

/** The fields of a subscriber that decide the charge. */
export interface OptionFacts {
  _id: string;
  smsAlerts?: { active: boolean; since?: Date | string; until?: Date | string };
  optedOut?: boolean;
  optedOutAt?: Date | string;
}

export interface MonthCharge {
  month: string;
  /** The part of the month the option was active in: [from, to). */
  from: Date;
  to: Date;
  daysActive: number;
  daysInMonth: number;
  netCents: number;
  vatCents: number;
  grossCents: number;
}

function asDate(v: Date | string | undefined): Date | undefined {
  if (v === undefined || v === null) return undefined;
  const d = v instanceof Date ? v : new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** The part of the month in which the option counts as active, or null when none. */
export function activeInterval(s: OptionFacts, bounds: MonthBounds): { from: Date; to: Date } | null {
  const alerts = s.smsAlerts;
  if (!alerts) return null;
  const since = asDate(alerts.since);
  let until = asDate(alerts.until);
  if (!alerts.active && !until) return null;
  if (s.optedOut) {
    const at = asDate(s.optedOutAt);
    if (!at) return null;
    const stop = startOfNextMonth(at);
    if (!until || stop < until) until = stop;
  }
  const from = since && since > bounds.start ? since : bounds.start;
  const to = until && until < bounds.end ? until : bounds.end;
  return to > from ? { from, to } : null;
}

export function chargeFor(s: OptionFacts, month: string | MonthBounds, terms: BillingTerms): MonthCharge | null {
  const bounds = typeof month === 'string' ? monthBounds(month) : month;
  const active = activeInterval(s, bounds);
  if (!active) return null;
  const daysActive = daysTouched(active.from, active.to);
  const netCents =
    terms.proration === 'full' ? terms.priceCents : divRoundHalfUp(terms.priceCents * daysActive, bounds.days);
  if (netCents <= 0) return null;
  const vat = vatCents(netCents, terms.vatBasisPoints);
  return {
    month: bounds.month,
    ...active,
    daysActive,
    daysInMonth: bounds.days,
    netCents,
    vatCents: vat,
    grossCents: netCents + vat,
  };
}

const MESI = [
  'gennaio',
  'febbraio',
  'marzo',
  'aprile',
  'maggio',
  'giugno',
  'luglio',
  'agosto',
  'settembre',
  'ottobre',
  'novembre',
  'dicembre',
];

/** The invoice line's text, in Italian (the ISP's invoices are): "Opzione Avvisi SMS, ottobre 2026 (15/31 giorni)". */
export function chargeDescription(
  c: Pick<MonthCharge, 'month' | 'daysActive' | 'daysInMonth'>,
  proration: Proration,
): string {
  const [year, month] = c.month.split('-');
  const base = `Opzione Avvisi SMS, ${MESI[Number(month) - 1]} ${year}`;
  return proration === 'daily' ? `${base} (${c.daysActive}/${c.daysInMonth} giorni)` : base;
}
