/**
 * Billing reports, from the ledger: does the SMS option pay for itself?
 *
 *   revenue         the option's revenue per month (net, VAT, gross), in the billing currency
 *   costs           notification cost per month, in each provider currency (and converted)
 *   incidents       cost per incident, the most expensive first
 *   per-subscriber  per month: paying subscribers, revenue, cost and margin per paying subscriber
 *
 * Currencies stay explicit: revenue is in the billing currency (EUR), provider costs in the
 * provider's (Plivo bills USD). Where a report sets costs against revenue, costs are converted
 * with BILLING_FX_RATES and the rate used is shown; a cost in a currency with no rate is listed
 * unconverted and left out of the margin, and the report says so. Cost amounts are exact
 * (micros, shown with 6 decimals); revenue is in cents (2 decimals).
 */
import type { Store } from '../store/db';
import { costByIncident, revenueByMonth, type IncidentCostRow, type RevenueRow } from '../store/ledger';
import type { CsvColumn } from './csv';
import { convertMicros, divRoundHalfUp, formatCents, formatMicros, MICROS_PER_CENT } from './money';
import type { BillingSettings } from './settings';

export const REPORTS = ['revenue', 'costs', 'incidents', 'per-subscriber'] as const;
export type ReportName = (typeof REPORTS)[number];

export interface ReportOptions {
  /** Months, YYYY-MM, both included. */
  from?: string;
  to?: string;
  /** incidents: how many (default 20). */
  limit?: number;
}

export interface Report<T = Record<string, unknown>> {
  report: ReportName;
  billingCurrency: string;
  /** Units of the billing currency per unit of each provider currency, as configured. */
  fxRates: Record<string, string>;
  notes: string[];
  rows: T[];
  columns: CsvColumn<T>[];
}

/** Converts provider-currency micros to billing-currency micros, when a rate is configured. */
function converter(settings: BillingSettings) {
  const billing = settings.terms.currency;
  return (micros: number, currency: string): number | undefined => {
    if (currency === billing) return micros;
    const rate = settings.fx[currency];
    return rate === undefined ? undefined : convertMicros(micros, rate);
  };
}

const fxRates = (s: BillingSettings) => Object.fromEntries(Object.entries(s.fx).map(([c, r]) => [c, formatMicros(r)]));
const opt = (v: number | undefined, f: (n: number) => string) => (v === undefined ? undefined : f(v));

export function revenueReport(rows: RevenueRow[], settings: BillingSettings): Report<RevenueRow> {
  return {
    report: 'revenue',
    billingCurrency: settings.terms.currency,
    fxRates: fxRates(settings),
    notes: [
      'One row per month (and currency): the subscription charges in the ledger. VAT is per invoice line, rounded half up to the cent.',
    ],
    rows,
    columns: [
      { header: 'period', value: (r) => r.period },
      { header: 'currency', value: (r) => r.currency },
      { header: 'paying_subscribers', value: (r) => r.subscribers },
      { header: 'net', value: (r) => formatCents(r.netCents) },
      { header: 'vat', value: (r) => formatCents(r.vatCents) },
      { header: 'gross', value: (r) => formatCents(r.grossCents) },
    ],
  };
}

export interface CostMonthRow {
  period: string;
  currency: string;
  incidents: number;
  messages: number;
  units: number;
  costMicros: number;
  costPerIncidentMicros: number;
  /** In the billing currency, when a rate is configured (or the currencies are the same). */
  costInBillingCurrencyMicros?: number;
  pricedFromRateTable: number;
  unpriced: number;
}

export function costsReport(incidents: IncidentCostRow[], settings: BillingSettings): Report<CostMonthRow> {
  const toBilling = converter(settings);
  const byMonth = new Map<string, CostMonthRow>();
  for (const i of incidents) {
    const key = `${i.period}|${i.currency}`;
    const r = byMonth.get(key) ?? {
      period: i.period,
      currency: i.currency,
      incidents: 0,
      messages: 0,
      units: 0,
      costMicros: 0,
      costPerIncidentMicros: 0,
      pricedFromRateTable: 0,
      unpriced: 0,
    };
    r.incidents++;
    r.messages += i.messages;
    r.units += i.units;
    r.costMicros += i.amountMicros;
    r.pricedFromRateTable += i.fromRateTable;
    r.unpriced += i.unpriced;
    byMonth.set(key, r);
  }
  const rows = [...byMonth.values()].sort(
    (a, b) => a.period.localeCompare(b.period) || a.currency.localeCompare(b.currency),
  );
  for (const r of rows) {
    r.costPerIncidentMicros = divRoundHalfUp(r.costMicros, r.incidents);
    const converted = toBilling(r.costMicros, r.currency);
    if (converted !== undefined) r.costInBillingCurrencyMicros = converted;
  }
  const billing = settings.terms.currency;
  return {
    report: 'costs',
    billingCurrency: billing,
    fxRates: fxRates(settings),
    notes: [
      'One row per month and provider currency: the incidents billed, their messages, units (SMS parts on SMS) and what they cost at the provider.',
      'Amounts come from delivery receipts; messages whose receipt had no amount are priced from the BILLING_SMS_RATE table (priced_from_rate_table), or not at all (unpriced).',
      `cost_in_${billing.toLowerCase()} converts with BILLING_FX_RATES; empty when no rate is configured for the currency.`,
    ],
    rows,
    columns: [
      { header: 'period', value: (r) => r.period },
      { header: 'currency', value: (r) => r.currency },
      { header: 'incidents', value: (r) => r.incidents },
      { header: 'messages', value: (r) => r.messages },
      { header: 'units', value: (r) => r.units },
      { header: 'cost', value: (r) => formatMicros(r.costMicros) },
      { header: 'cost_per_incident', value: (r) => formatMicros(r.costPerIncidentMicros) },
      { header: `cost_in_${billing.toLowerCase()}`, value: (r) => opt(r.costInBillingCurrencyMicros, formatMicros) },
      { header: 'priced_from_rate_table', value: (r) => r.pricedFromRateTable },
      { header: 'unpriced', value: (r) => r.unpriced },
    ],
  };
}

export interface IncidentReportRow extends IncidentCostRow {
  title?: string;
  openedAt?: Date;
  costInBillingCurrencyMicros?: number;
}

export function incidentsReport(
  incidents: IncidentCostRow[],
  details: Map<string, { title?: string; openedAt?: Date }>,
  settings: BillingSettings,
  limit: number,
): Report<IncidentReportRow> {
  const toBilling = converter(settings);
  const rows: IncidentReportRow[] = incidents.map((i) => {
    const converted = toBilling(i.amountMicros, i.currency);
    return {
      ...i,
      ...details.get(i.incidentId),
      ...(converted !== undefined ? { costInBillingCurrencyMicros: converted } : {}),
    };
  });
  // Most expensive first: in the billing currency where it converts, else in the cost's own.
  rows.sort(
    (a, b) =>
      (b.costInBillingCurrencyMicros ?? b.amountMicros) - (a.costInBillingCurrencyMicros ?? a.amountMicros) ||
      a.incidentId.localeCompare(b.incidentId),
  );
  const billing = settings.terms.currency;
  return {
    report: 'incidents',
    billingCurrency: billing,
    fxRates: fxRates(settings),
    notes: [
      `The ${limit} incidents that cost most, most expensive first (one row per incident and provider currency).`,
    ],
    rows: rows.slice(0, limit),
    columns: [
      { header: 'incident_id', value: (r) => r.incidentId },
      { header: 'period', value: (r) => r.period },
      { header: 'opened_at', value: (r) => r.openedAt?.toISOString() },
      { header: 'title', value: (r) => r.title },
      { header: 'currency', value: (r) => r.currency },
      { header: 'messages', value: (r) => r.messages },
      { header: 'units', value: (r) => r.units },
      { header: 'cost', value: (r) => formatMicros(r.amountMicros) },
      { header: `cost_in_${billing.toLowerCase()}`, value: (r) => opt(r.costInBillingCurrencyMicros, formatMicros) },
      { header: 'priced_from_rate_table', value: (r) => r.fromRateTable },
      { header: 'unpriced', value: (r) => r.unpriced },
    ],
  };
}

export interface PerSubscriberRow {
  period: string;
  currency: string;
  payingSubscribers: number;
  revenueNetCents: number;
  /** Costs converted to the billing currency (micros); costs in currencies without a rate are not in it. */
  costMicros: number;
  revenuePerSubscriberMicros?: number;
  costPerSubscriberMicros?: number;
  marginPerSubscriberMicros?: number;
  marginMicros: number;
  /** Costs that could not be converted, per currency (micros). */
  unconverted: Record<string, number>;
}

export function perSubscriberReport(
  revenue: RevenueRow[],
  incidents: IncidentCostRow[],
  settings: BillingSettings,
): Report<PerSubscriberRow> {
  const billing = settings.terms.currency;
  const toBilling = converter(settings);
  const byMonth = new Map<string, PerSubscriberRow>();
  const row = (period: string) => {
    let r = byMonth.get(period);
    if (!r)
      byMonth.set(
        period,
        (r = {
          period,
          currency: billing,
          payingSubscribers: 0,
          revenueNetCents: 0,
          costMicros: 0,
          marginMicros: 0,
          unconverted: {},
        }),
      );
    return r;
  };
  for (const v of revenue.filter((x) => x.currency === billing)) {
    const r = row(v.period);
    r.payingSubscribers += v.subscribers;
    r.revenueNetCents += v.netCents;
  }
  for (const i of incidents) {
    const r = row(i.period);
    const converted = toBilling(i.amountMicros, i.currency);
    if (converted === undefined) r.unconverted[i.currency] = (r.unconverted[i.currency] ?? 0) + i.amountMicros;
    else r.costMicros += converted;
  }
  const rows = [...byMonth.values()].sort((a, b) => a.period.localeCompare(b.period));
  for (const r of rows) {
    const revenueMicros = r.revenueNetCents * MICROS_PER_CENT;
    r.marginMicros = revenueMicros - r.costMicros;
    if (r.payingSubscribers > 0) {
      r.revenuePerSubscriberMicros = divRoundHalfUp(revenueMicros, r.payingSubscribers);
      r.costPerSubscriberMicros = divRoundHalfUp(r.costMicros, r.payingSubscribers);
      r.marginPerSubscriberMicros = divRoundHalfUp(r.marginMicros, r.payingSubscribers);
    }
  }
  const missing = [...new Set(rows.flatMap((r) => Object.keys(r.unconverted)))];
  return {
    report: 'per-subscriber',
    billingCurrency: billing,
    fxRates: fxRates(settings),
    notes: [
      `Per month, in ${billing}: paying subscribers (those charged), net revenue, notification cost converted with BILLING_FX_RATES, and both per paying subscriber. Revenue is net of VAT.`,
      ...(missing.length
        ? [
            `No rate in BILLING_FX_RATES for ${missing.join(', ')}: those costs are listed under unconverted_costs and left out of cost and margin.`,
          ]
        : []),
    ],
    rows,
    columns: [
      { header: 'period', value: (r) => r.period },
      { header: 'currency', value: (r) => r.currency },
      { header: 'paying_subscribers', value: (r) => r.payingSubscribers },
      { header: 'revenue_net', value: (r) => formatCents(r.revenueNetCents) },
      { header: 'cost', value: (r) => formatMicros(r.costMicros) },
      { header: 'margin', value: (r) => formatMicros(r.marginMicros) },
      { header: 'revenue_per_subscriber', value: (r) => opt(r.revenuePerSubscriberMicros, formatMicros) },
      { header: 'cost_per_subscriber', value: (r) => opt(r.costPerSubscriberMicros, formatMicros) },
      { header: 'margin_per_subscriber', value: (r) => opt(r.marginPerSubscriberMicros, formatMicros) },
      {
        header: 'unconverted_costs',
        value: (r) =>
          Object.entries(r.unconverted)
            .map(([c, m]) => `${c} ${formatMicros(m)}`)
            .join('; '),
      },
    ],
  };
}

/** Reads the ledger and builds a report. */
export async function loadReport(
  store: Store,
  name: ReportName,
  settings: BillingSettings,
  o: ReportOptions = {},
): Promise<Report<object>> {
  switch (name) {
    case 'revenue':
      return revenueReport(await revenueByMonth(store, o.from, o.to), settings) as Report<object>;
    case 'costs':
      return costsReport(await costByIncident(store, o.from, o.to), settings) as Report<object>;
    case 'incidents': {
      const limit = o.limit ?? 20;
      const costs = await costByIncident(store, o.from, o.to);
      const report = incidentsReport(costs, new Map(), settings, limit);
      const ids = [...new Set(report.rows.map((r) => r.incidentId))];
      const found = await store.incidents
        .find({ _id: { $in: ids } }, { projection: { _id: 1, title: 1, openedAt: 1 } })
        .toArray();
      return incidentsReport(
        costs,
        new Map(found.map((i) => [i._id, { title: i.title, openedAt: i.openedAt }])),
        settings,
        limit,
      ) as Report<object>;
    }
    case 'per-subscriber':
      return perSubscriberReport(
        await revenueByMonth(store, o.from, o.to),
        await costByIncident(store, o.from, o.to),
        settings,
      ) as Report<object>;
  }
}

/** The report as JSON: its rows as they are (integer amounts: cents, micros), plus what they mean. */
export function reportJson(r: Report<object>): Omit<Report<object>, 'columns'> {
  const { columns: _columns, ...rest } = r;
  return rest;
}
