/**
 * What an incident's messages cost the ISP at the provider. Pure: the activity streams delivery
 * records through a CostAccumulator, which keeps only a few numbers per channel and currency.
 *
 * A record counts as a message when it reached the provider (accepted, sent, delivered,
 * undelivered), or when it carries an amount from a receipt. Its amount is the receipt's amount
 * when there is one; otherwise the configured rate table's price for its channel (and the longest
 * matching country prefix of its number) times its units (SMS parts; 1 when no receipt said). A
 * message no rate applies to counts, with no amount, as `unpriced`. Records that never reached
 * the provider (planned, refused as invalid, failed without an amount) cost nothing. An expired
 * record (gave up on its channel) is priced from the rate table unless its last attempt failed
 * before the carrier.
 *
 * Known gap: a record keeps the receipt of its latest attempt only, so earlier attempts of a
 * retried message are not seen here.
 */
import type { DeliveryChannel, DeliveryState } from '../domain/types';
import { parseDecimal } from './money';

export const CHANNELS: DeliveryChannel[] = ['sms', 'voice', 'email', 'webhook', 'status'];

export interface Rate {
  channel: DeliveryChannel;
  /** E.164 prefix such as +39; none: the channel's default. */
  prefix?: string;
  /** Micros of the rate table's currency per unit (per SMS part, per call, per message). */
  micros: number;
}

export interface RateTable {
  currency: string;
  rates: Rate[];
}

/**
 * Reads `sms=0.0500,voice=0.0200,sms:+1=0.0080`: channel, optional country prefix after a colon,
 * and a price per unit in the rate table's currency. Returns the problem in words when it is wrong.
 */
export function parseRates(text: string): Rate[] | string {
  const rates: Rate[] = [];
  for (const raw of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([a-z]+)(?::(\+\d{1,6}))?\s*=\s*([0-9.]+)$/.exec(raw);
    if (!m)
      return `${JSON.stringify(raw)} is not channel=price or channel:+prefix=price (e.g. sms=0.0500,sms:+1=0.0080)`;
    const channel = m[1] as DeliveryChannel;
    if (!CHANNELS.includes(channel)) return `${JSON.stringify(m[1])} is not a channel (${CHANNELS.join(', ')})`;
    const micros = parseDecimal(m[3]!, 6);
    if (micros === null) return `${JSON.stringify(m[3])} is not a price: write a decimal such as 0.0500`;
    if (rates.some((r) => r.channel === channel && r.prefix === m[2])) return `${raw} is given twice`;
    rates.push({ channel, ...(m[2] ? { prefix: m[2] } : {}), micros });
  }
  return rates;
}

/** The rate for a channel and recipient: the longest matching prefix, else the channel's default. */
export function rateFor(table: RateTable, channel: DeliveryChannel, to: string | undefined): number | undefined {
  let best: Rate | undefined;
  for (const r of table.rates) {
    if (r.channel !== channel) continue;
    if (r.prefix && !(to ?? '').startsWith(r.prefix)) continue;
    if (!best || (r.prefix?.length ?? 0) > (best.prefix?.length ?? 0)) best = r;
  }
  return best?.micros;
}

/** The fields of a delivery record that decide its cost. */
export interface CostFacts {
  channel: DeliveryChannel;
  state: DeliveryState;
  to?: string;
  units?: number;
  cost?: string;
  currency?: string;
  invalidRecipient?: boolean;
  history?: { state: DeliveryState }[];
}

export interface ChannelCost {
  channel: DeliveryChannel;
  currency: string;
  messages: number;
  /** SMS parts on sms; calls on voice; messages on the other channels. */
  units: number;
  amountMicros: number;
  /** How many messages were priced from a receipt, from the rate table, or not at all. */
  fromReceipts: number;
  fromRateTable: number;
  unpriced: number;
}

const REACHED: DeliveryState[] = ['accepted', 'sent', 'delivered', 'undelivered'];

export class CostAccumulator {
  private readonly rows = new Map<string, ChannelCost>();

  constructor(private readonly table: RateTable) {}

  add(d: CostFacts): void {
    const receiptMicros = d.cost !== undefined ? parseDecimal(d.cost, 6) : null;
    const units = d.units && d.units > 0 ? d.units : 1;
    if (receiptMicros !== null && (REACHED.includes(d.state) || receiptMicros > 0)) {
      this.row(d.channel, d.currency ?? this.table.currency, (r) => {
        r.amountMicros += receiptMicros;
        r.fromReceipts++;
        r.units += units;
      });
      return;
    }
    if (!REACHED.includes(d.state) && !this.expiredAfterReachingProvider(d)) return;
    const rate = rateFor(this.table, d.channel, d.to);
    this.row(d.channel, this.table.currency, (r) => {
      r.units += units;
      if (rate === undefined) r.unpriced++;
      else {
        r.amountMicros += rate * units;
        r.fromRateTable++;
      }
    });
  }

  private expiredAfterReachingProvider(d: CostFacts): boolean {
    if (d.state !== 'expired' || d.invalidRecipient) return false;
    const before = d.history && d.history.length >= 2 ? d.history[d.history.length - 2]!.state : undefined;
    return before === undefined || REACHED.includes(before);
  }

  private row(channel: DeliveryChannel, currency: string, update: (r: ChannelCost) => void): void {
    const key = `${channel}|${currency}`;
    let r = this.rows.get(key);
    if (!r) {
      r = { channel, currency, messages: 0, units: 0, amountMicros: 0, fromReceipts: 0, fromRateTable: 0, unpriced: 0 };
      this.rows.set(key, r);
    }
    r.messages++;
    update(r);
  }

  /** Per channel and currency, in channel order then currency order. */
  result(): ChannelCost[] {
    return [...this.rows.values()].sort(
      (a, b) => CHANNELS.indexOf(a.channel) - CHANNELS.indexOf(b.channel) || a.currency.localeCompare(b.currency),
    );
  }
}
