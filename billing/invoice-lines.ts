/**
 * The invoice-lines export: one line per subscriber and month, for the ISP's invoicing system to
 * import (CSV, see billing/csv.ts). Amounts are decimals with a point and two digits ("1.22"),
 * in the line's currency; `line_id` is the ledger key, unique and stable across exports, so an
 * importer can skip lines it already has.
 *
 * quantity is 1 and unit_price equals net_amount (the month's price after proration); list_price
 * is the monthly price. VAT is per line, rounded half up to the cent (gross = net + VAT).
 */
import type { Store } from '../store/db';
import { subscriptionEntries, type SubscriptionEntry } from '../store/ledger';
import { csvStream, type CsvColumn } from './csv';
import { formatCents } from './money';
import { monthBounds } from './period';
import { DateTime } from 'luxon';
import { BILLING_TIME_ZONE } from './month';
import type { Readable } from 'node:stream';

const localDay = (d: Date) => DateTime.fromJSDate(d, { zone: BILLING_TIME_ZONE }).toISODate()!;
/** The last day the option was active: the day of the instant just before the interval's end. */
const lastLocalDay = (d: Date) => localDay(new Date(d.getTime() - 1));

export function invoiceLineColumns(month: string): CsvColumn<SubscriptionEntry>[] {
  const b = monthBounds(month);
  return [
    { header: 'line_id', value: (e) => e._id },
    { header: 'contract_id', value: (e) => e.subscriberId },
    { header: 'period', value: (e) => e.period },
    { header: 'period_start', value: () => b.firstDay },
    { header: 'period_end', value: () => b.lastDay },
    { header: 'description', value: (e) => e.description },
    { header: 'quantity', value: () => '1' },
    { header: 'unit_price', value: (e) => formatCents(e.amountCents) },
    { header: 'net_amount', value: (e) => formatCents(e.amountCents) },
    { header: 'vat_rate', value: (e) => formatCents(e.vatBasisPoints) },
    { header: 'vat_amount', value: (e) => formatCents(e.vatCents) },
    { header: 'gross_amount', value: (e) => formatCents(e.grossCents) },
    { header: 'currency', value: (e) => e.currency },
    { header: 'list_price', value: (e) => formatCents(e.unitPriceCents) },
    { header: 'proration', value: (e) => e.proration },
    { header: 'days_active', value: (e) => e.daysActive },
    { header: 'days_in_period', value: (e) => e.daysInMonth },
    { header: 'active_from', value: (e) => localDay(e.activeFrom) },
    { header: 'active_to', value: (e) => lastLocalDay(e.activeTo) },
  ];
}

/** A month's invoice lines as CSV, streamed from the ledger in line id order. */
export function invoiceLinesCsv(store: Store, month: string): Readable {
  return csvStream(invoiceLineColumns(month), subscriptionEntries(store, month));
}
