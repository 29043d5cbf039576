/**
 * The billing ledger: what the ISP charged (the monthly SMS option) and what notifying cost (each
 * incident's messages), one document per entry, append-only. Each entry's `_id` is its key
 * (`sub:<contract>:<YYYY-MM>`, `inc:<incidentId>:<channel>`), and entries are only ever inserted,
 * never updated: an entry that exists is left as it is, so re-running anything never bills twice
 * (a unique `_id` insert is the one write FerretDB makes atomic under concurrency). A correction
 * would be a new entry with its own key, never an edit.
 *
 * Amounts are integers with their currency: cents everywhere; cost entries also keep micros
 * (millionths), since a provider's price per SMS part is a fraction of a cent.
 */
import type { MongoBulkWriteError } from 'mongodb';
import type { Store } from './db';
import type { BillingTerms, Proration } from '../billing/charges';
import type { DeliveryChannel } from '../domain/types';

interface LedgerBase {
  /** The entry's key: inserting the same key again adds nothing. */
  _id: string;
  /** The month (YYYY-MM, Italian time) the entry belongs to. */
  period: string;
  currency: string;
  /** Charges: the net amount (before VAT). Costs: the amount rounded half up to the cent. */
  amountCents: number;
  createdAt: Date;
  /** What wrote it: the billing run's workflow, or the incident's. */
  source: string;
}

export interface SubscriptionEntry extends LedgerBase {
  type: 'subscription';
  subscriberId: string;
  unitPriceCents: number;
  vatBasisPoints: number;
  vatCents: number;
  grossCents: number;
  proration: Proration;
  daysActive: number;
  daysInMonth: number;
  activeFrom: Date;
  activeTo: Date;
  description: string;
}

export interface IncidentCostEntry extends LedgerBase {
  type: 'incident_cost';
  incidentId: string;
  channel: DeliveryChannel;
  messages: number;
  /** SMS parts on sms; calls on voice; messages on the other channels. */
  units: number;
  /** The exact amount, in millionths of the currency. */
  amountMicros: number;
  fromReceipts: number;
  fromRateTable: number;
  unpriced: number;
}

export type LedgerEntry = SubscriptionEntry | IncidentCostEntry;

/** A month's billing run: the terms it was first billed on (every re-run reuses them) and its outcome. */
export interface BillingRunDoc {
  _id: string; // YYYY-MM
  terms: BillingTerms;
  createdAt: Date;
  lastStartedAt?: Date;
  completedAt?: Date;
  summary?: MonthSummary;
}

export interface MonthSummary {
  month: string;
  currency: string;
  lines: number;
  netCents: number;
  vatCents: number;
  grossCents: number;
}

export function subscriptionKey(subscriberId: string, month: string): string {
  return `sub:${subscriberId}:${month}`;
}

/** One entry per incident and channel; a second currency on the same channel (unusual) gets its own. */
export function incidentCostKey(incidentId: string, channel: DeliveryChannel, currency?: string): string {
  return `inc:${incidentId}:${channel}${currency ? `:${currency}` : ''}`;
}

/**
 * Sums per group: one `$group` per sum, run together and merged by group key. FerretDB 1.24
 * computes only the first accumulator of a `$group` and returns 0 for the others (checked here:
 * `{ n: { $sum: 1 }, s: { $sum: '$a' } }` gave s = 0), so a `$group` never carries two.
 */
async function groupSums<K, S extends string>(
  store: Store,
  match: Record<string, unknown>,
  id: unknown,
  sums: Record<S, 1 | `$${string}`>,
): Promise<({ _id: K } & Record<S, number>)[]> {
  const names = Object.keys(sums) as S[];
  const results = await Promise.all(
    names.map((name) =>
      store.ledger
        .aggregate<{ _id: K; v: number }>([{ $match: match }, { $group: { _id: id, v: { $sum: sums[name] } } }])
        .toArray(),
    ),
  );
  const merged = new Map<string, { _id: K } & Record<S, number>>();
  results.forEach((rows, i) => {
    for (const r of rows) {
      const key = JSON.stringify(r._id);
      const row =
        merged.get(key) ??
        ({ _id: r._id, ...Object.fromEntries(names.map((n) => [n, 0])) } as { _id: K } & Record<S, number>);
      (row as Record<string, unknown>)[names[i]!] = r.v;
      merged.set(key, row);
    }
  });
  return [...merged.values()];
}

/**
 * Inserts the entries whose keys are new and leaves the others: returns how many were added.
 * Two runs at once are safe too: for each key, one insert wins.
 */
export async function appendToLedger(
  store: Store,
  entries: LedgerEntry[],
): Promise<{ added: number; existing: number }> {
  if (entries.length === 0) return { added: 0, existing: 0 };
  try {
    await store.ledger.insertMany(entries, { ordered: false });
    return { added: entries.length, existing: 0 };
  } catch (err) {
    const bulk = err as MongoBulkWriteError;
    const writeErrors = bulk.writeErrors
      ? Array.isArray(bulk.writeErrors)
        ? bulk.writeErrors
        : [bulk.writeErrors]
      : [];
    if (writeErrors.length === 0 || writeErrors.some((e) => e.code !== 11000)) throw err;
    return { added: entries.length - writeErrors.length, existing: writeErrors.length };
  }
}

/**
 * Opens a month's run, or finds the one opened before: its terms are those of the first run,
 * so that a re-run charges what the first run did even if the configuration changed since.
 */
export async function openBillingRun(
  store: Store,
  month: string,
  terms: BillingTerms,
  now: Date,
): Promise<BillingRunDoc> {
  try {
    await store.billingRuns.insertOne({ _id: month, terms, createdAt: now, lastStartedAt: now });
  } catch (err) {
    if ((err as { code?: number }).code !== 11000) throw err;
    await store.billingRuns.updateOne({ _id: month }, { $set: { lastStartedAt: now } });
  }
  return (await store.billingRuns.findOne({ _id: month }))!;
}

export async function closeBillingRun(store: Store, summary: MonthSummary, now: Date): Promise<void> {
  await store.billingRuns.updateOne({ _id: summary.month }, { $set: { completedAt: now, summary } });
}

/**
 * A month's charges, summed from the ledger (one row per currency: one, since a month's terms are
 * fixed). Streamed with a small projection and summed here: on FerretDB that is one pass, four
 * times faster than the four `$group`s it would take (see groupSums); about 4 s per 20,000 lines.
 */
export async function monthTotals(store: Store, month: string): Promise<MonthSummary[]> {
  const sums = new Map<string, MonthSummary>();
  const cursor = store.ledger
    .find(
      { type: 'subscription', period: month },
      { projection: { _id: 0, currency: 1, amountCents: 1, vatCents: 1, grossCents: 1 } },
    )
    .batchSize(5000);
  for await (const e of cursor as unknown as AsyncIterable<
    Pick<SubscriptionEntry, 'currency' | 'amountCents' | 'vatCents' | 'grossCents'>
  >) {
    const t = sums.get(e.currency) ?? {
      month,
      currency: e.currency,
      lines: 0,
      netCents: 0,
      vatCents: 0,
      grossCents: 0,
    };
    t.lines++;
    t.netCents += e.amountCents;
    t.vatCents += e.vatCents;
    t.grossCents += e.grossCents;
    sums.set(e.currency, t);
  }
  return [...sums.values()].sort((a, b) => a.currency.localeCompare(b.currency));
}

/** A month's charges in key order, streamed. */
export function subscriptionEntries(store: Store, month: string) {
  return store.ledger
    .find({ type: 'subscription', period: month })
    .sort({ _id: 1 }) as unknown as AsyncIterable<SubscriptionEntry>;
}

export async function incidentCostEntries(store: Store, incidentId: string): Promise<IncidentCostEntry[]> {
  return (await store.ledger
    .find({ type: 'incident_cost', incidentId })
    .sort({ _id: 1 })
    .toArray()) as IncidentCostEntry[];
}

/** Month filter for reports: both ends included, either may be open. */
function periodRange(from?: string, to?: string): Record<string, string> | undefined {
  if (!from && !to) return undefined;
  return { ...(from ? { $gte: from } : {}), ...(to ? { $lte: to } : {}) };
}

export interface RevenueRow {
  period: string;
  currency: string;
  subscribers: number;
  netCents: number;
  vatCents: number;
  grossCents: number;
}

/**
 * The charges per month: each billed month's totals as its last completed run summed them from
 * the ledger (a run always ends by summing), or summed now for a month whose run has not completed.
 */
export async function revenueByMonth(store: Store, from?: string, to?: string): Promise<RevenueRow[]> {
  const range = periodRange(from, to);
  const runs = await store.billingRuns
    .find(range ? { _id: range } : {})
    .sort({ _id: 1 })
    .toArray();
  const rows: RevenueRow[] = [];
  for (const run of runs) {
    const totals = run.completedAt && run.summary ? [run.summary] : await monthTotals(store, run._id);
    for (const t of totals)
      if (t.lines > 0)
        rows.push({
          period: t.month,
          currency: t.currency,
          subscribers: t.lines,
          netCents: t.netCents,
          vatCents: t.vatCents,
          grossCents: t.grossCents,
        });
  }
  return rows;
}

/** Cost entries summed per incident (and month and currency): the basis of every cost report. */
export interface IncidentCostRow {
  incidentId: string;
  period: string;
  currency: string;
  messages: number;
  units: number;
  amountMicros: number;
  fromRateTable: number;
  unpriced: number;
}

export async function costByIncident(store: Store, from?: string, to?: string): Promise<IncidentCostRow[]> {
  const range = periodRange(from, to);
  const rows = await groupSums<
    { incidentId: string; period: string; currency: string },
    'messages' | 'units' | 'micros' | 'rate' | 'unpriced'
  >(
    store,
    { type: 'incident_cost', ...(range ? { period: range } : {}) },
    { incidentId: '$incidentId', period: '$period', currency: '$currency' },
    { messages: '$messages', units: '$units', micros: '$amountMicros', rate: '$fromRateTable', unpriced: '$unpriced' },
  );
  return rows.map((r) => ({
    ...r._id,
    messages: r.messages,
    units: r.units,
    amountMicros: r.micros,
    fromRateTable: r.rate,
    unpriced: r.unpriced,
  }));
}
