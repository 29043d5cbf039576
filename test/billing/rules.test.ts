/**
 * The billing rules alone: money in integers, VAT rounding, months in Italian time, proration,
 * the opt-out rule, provider costs from receipts and the rate table, CSV quoting, reports.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DateTime } from 'luxon';
import {
  convertMicros,
  divRoundHalfUp,
  formatCents,
  formatMicros,
  microsToCents,
  parseDecimal,
  vatCents,
} from '../../billing/money';
import { isMonth, monthJustEnded, monthOf, monthsBetween, previousMonth } from '../../billing/month';
import { daysTouched, monthBounds, monthHasEnded } from '../../billing/period';
import { chargeDescription, chargeFor, type BillingTerms, type OptionFacts } from '../../billing/charges';
import { CostAccumulator, parseRates, rateFor, type RateTable } from '../../billing/costs';
import { csvText } from '../../billing/csv';
import { invoiceLineColumns } from '../../billing/invoice-lines';
import { costsReport, incidentsReport, perSubscriberReport, revenueReport } from '../../billing/reports';
import { DEFAULT_BILLING } from '../../billing/settings';
import type { SubscriptionEntry } from '../../store/ledger';
import { billingSettingsFromEnv, ConfigError } from '../../config';

/** An instant given in Italian local time. */
const rome = (local: string) => DateTime.fromISO(local, { zone: 'Europe/Rome' }).toJSDate();

const FULL: BillingTerms = { priceCents: 100, vatBasisPoints: 2200, currency: 'EUR', proration: 'full' };
const DAILY: BillingTerms = { ...FULL, proration: 'daily' };
const sub = (smsAlerts: OptionFacts['smsAlerts'], extra: Partial<OptionFacts> = {}): OptionFacts => ({
  _id: 'C-1',
  smsAlerts,
  optedOut: false,
  ...extra,
});

describe('money', () => {
  test('division rounds half up, on integers', () => {
    assert.equal(divRoundHalfUp(15, 10), 2);
    assert.equal(divRoundHalfUp(14, 10), 1);
    assert.equal(divRoundHalfUp(25, 10), 3);
    assert.equal(divRoundHalfUp(-15, 10), -2, 'half away from zero');
    assert.equal(divRoundHalfUp(3000, 31), 97);
  });

  test('VAT in integer cents, per line, rounded half up', () => {
    assert.equal(vatCents(100, 2200), 22, '1.00 at 22% is 0.22');
    assert.equal(vatCents(48, 2200), 11, '0.48 at 22% is 0.1056: 0.11');
    assert.equal(vatCents(25, 2200), 6, '0.25 at 22% is 0.055 exactly: half up, 0.06');
    assert.equal(vatCents(75, 2200), 17, '0.165: 0.17');
    assert.equal(vatCents(2, 2200), 0, '0.0044: 0.00');
    assert.equal(vatCents(3, 2200), 1, '0.0066: 0.01');
    assert.equal(vatCents(100, 550), 6, '5.5%: 0.055 -> 0.06');
    assert.equal(vatCents(100, 0), 0);
    // Per line, not per invoice: three lines of 0.25 carry 0.06 each (0.18), the invoice total 0.75 would carry 0.17.
    assert.equal(3 * vatCents(25, 2200), 18);
  });

  test('decimals parse exactly, without floating point', () => {
    assert.equal(parseDecimal('0.00500', 6), 5000);
    assert.equal(parseDecimal('0.1', 6), 100_000);
    assert.equal(parseDecimal('22', 2), 2200);
    assert.equal(parseDecimal('5.5', 2), 550);
    assert.equal(parseDecimal('0.0000005', 6), 1, 'half up beyond the scale');
    assert.equal(parseDecimal('0.0000004', 6), 0);
    for (const bad of ['', '-1', '1e3', 'abc', '1.2.3', ' ']) assert.equal(parseDecimal(bad, 6), null, bad);
  });

  test('formatting and conversion', () => {
    assert.equal(formatCents(122), '1.22');
    assert.equal(formatCents(5), '0.05');
    assert.equal(formatCents(0), '0.00');
    assert.equal(formatCents(-48), '-0.48');
    assert.equal(formatMicros(5000), '0.005000');
    assert.equal(formatMicros(1_234_567_891), '1234.567891');
    assert.equal(microsToCents(5000), 1, '0.005 is half a cent: rounds up');
    assert.equal(microsToCents(4999), 0);
    assert.equal(convertMicros(1_000_000, 920_000), 920_000, '1 USD at 0.92 is 0.92 EUR');
    assert.equal(convertMicros(5000, 920_000), 4600);
    assert.equal(convertMicros(9_000_000_000_000, 920_000), 8_280_000_000_000, 'no precision lost on large sums');
  });
});

describe('months in Italian time', () => {
  test('the month just ended, from the schedule time (02:00 on the 1st, Europe/Rome)', () => {
    assert.equal(monthJustEnded(new Date('2026-11-01T01:00:00Z')), '2026-10', '02:00 CET on 1 November');
    assert.equal(monthJustEnded(new Date('2026-04-01T00:00:00Z')), '2026-03', '02:00 CEST on 1 April');
    assert.equal(monthJustEnded(new Date('2027-01-01T01:00:00Z')), '2026-12', 'across the year');
    // 23:30 UTC on 31 October is already 1 November in Italy.
    assert.equal(monthOf(new Date('2026-10-31T23:30:00Z')), '2026-11');
    assert.equal(monthOf(new Date('2026-10-31T22:59:59Z')), '2026-10');
  });

  test('month arithmetic and validation', () => {
    assert.equal(previousMonth('2026-01'), '2025-12');
    assert.deepEqual(monthsBetween('2026-11', '2027-02'), ['2026-11', '2026-12', '2027-01', '2027-02']);
    assert.ok(isMonth('2026-10'));
    for (const bad of ['2026-13', '2026-1', '26-10', '2026-00', '2026-10-01']) assert.ok(!isMonth(bad), bad);
  });

  test('bounds are local midnights, DST included; days are calendar days', () => {
    const march = monthBounds('2026-03');
    assert.equal(march.start.toISOString(), '2026-02-28T23:00:00.000Z');
    assert.equal(march.end.toISOString(), '2026-03-31T22:00:00.000Z', 'CEST from 29 March');
    assert.equal(march.days, 31);
    assert.equal(daysTouched(march.start, march.end), 31, 'the 23-hour day counts as a day');
    const october = monthBounds('2026-10');
    assert.equal(october.end.toISOString(), '2026-10-31T23:00:00.000Z');
    assert.equal(daysTouched(october.start, october.end), 31, 'the 25-hour day counts as one day');
    assert.equal(monthBounds('2028-02').days, 29);
    assert.equal(monthBounds('2026-02').lastDay, '2026-02-28');
    assert.ok(monthHasEnded('2026-10', new Date('2026-10-31T23:00:00Z')));
    assert.ok(!monthHasEnded('2026-10', new Date('2026-10-31T22:59:59Z')));
  });
});

describe('proration', () => {
  test('full: the whole price for any month the option was active in', () => {
    assert.deepEqual(pick(chargeFor(sub({ active: true, since: new Date('2026-01-01') }), '2026-10', FULL)), {
      net: 100,
      vat: 22,
      gross: 122,
      days: 31,
    });
    assert.deepEqual(
      pick(chargeFor(sub({ active: true, since: rome('2026-10-31T23:00:00') }), '2026-10', FULL)),
      { net: 100, vat: 22, gross: 122, days: 1 },
      'one hour of October is October',
    );
    assert.deepEqual(
      pick(chargeFor(sub({ active: true }), '2026-10', FULL)),
      { net: 100, vat: 22, gross: 122, days: 31 },
      'no since: active before any month',
    );
  });

  test('daily: price x days active / days in the month, half up; a day counts when active at any moment of it', () => {
    // From 17 October (10:00) to the end: 15 of 31 days: 1.00 x 15/31 = 0.4839 -> 0.48; VAT 0.1056 -> 0.11.
    assert.deepEqual(pick(chargeFor(sub({ active: true, since: rome('2026-10-17T10:00:00') }), '2026-10', DAILY)), {
      net: 48,
      vat: 11,
      gross: 59,
      days: 15,
    });
    // Until 11 October 00:00 (exclusive): 1-10 October, 10 days: 0.3226 -> 0.32; VAT 0.0704 -> 0.07.
    assert.deepEqual(
      pick(
        chargeFor(
          sub({ active: false, since: new Date('2026-01-01'), until: rome('2026-10-11T00:00:00') }),
          '2026-10',
          DAILY,
        ),
      ),
      { net: 32, vat: 7, gross: 39, days: 10 },
    );
    assert.deepEqual(pick(chargeFor(sub({ active: true, since: new Date('2020-01-01') }), '2026-10', DAILY)), {
      net: 100,
      vat: 22,
      gross: 122,
      days: 31,
    });
    // A remainder of exactly one half rounds up: 0.45 for one day of November's 30 is 1.5 cents -> 2.
    assert.equal(
      chargeFor(sub({ active: true, since: rome('2026-11-30T12:00:00') }), '2026-11', { ...DAILY, priceCents: 45 })!
        .netCents,
      2,
    );
    // The DST months: all of March is 31 days however the clock moves.
    assert.equal(chargeFor(sub({ active: true, since: rome('2026-03-29T12:00:00') }), '2026-03', DAILY)!.daysActive, 3);
  });

  test('not charged: before the option began, after it ended, when it never began or ended at an unknown time', () => {
    assert.equal(
      chargeFor(sub({ active: true, since: rome('2026-11-01T00:00:00') }), '2026-10', FULL),
      null,
      'begins when October has ended',
    );
    assert.equal(
      chargeFor(
        sub({ active: false, since: new Date('2026-01-01'), until: rome('2026-10-01T00:00:00') }),
        '2026-10',
        FULL,
      ),
      null,
      'ended as October began',
    );
    assert.equal(chargeFor(sub({ active: false }), '2026-10', FULL), null);
    assert.equal(
      chargeFor(sub({ active: false, since: new Date('2026-01-01') }), '2026-10', FULL),
      null,
      'inactive, no end date: never guessed',
    );
    assert.equal(chargeFor({ _id: 'C-2' }, '2026-10', FULL), null);
    assert.equal(
      chargeFor(sub({ active: true }), '2026-10', { ...FULL, priceCents: 0 }),
      null,
      'a free month has no line',
    );
  });

  test('an SMS opt-out in mid-month: charged for that month in full, not from the next', () => {
    const optedOut = sub(
      { active: true, since: new Date('2026-01-01') },
      { optedOut: true, optedOutAt: rome('2026-10-15T09:30:00') },
    );
    assert.deepEqual(pick(chargeFor(optedOut, '2026-10', FULL)), { net: 100, vat: 22, gross: 122, days: 31 });
    assert.deepEqual(
      pick(chargeFor(optedOut, '2026-10', DAILY)),
      { net: 100, vat: 22, gross: 122, days: 31 },
      'daily too: charging stops from the next period',
    );
    assert.equal(chargeFor(optedOut, '2026-11', FULL), null);
    assert.equal(chargeFor(optedOut, '2026-11', DAILY), null);
    // On the last evening of the month (local time), still that month.
    const lastEvening = sub({ active: true }, { optedOut: true, optedOutAt: new Date('2026-10-31T22:30:00Z') });
    assert.ok(chargeFor(lastEvening, '2026-10', FULL));
    assert.equal(chargeFor(lastEvening, '2026-11', FULL), null);
    // An opt-out of unknown date is never charged; a STOP then START (optedOut false again) is charged.
    assert.equal(chargeFor(sub({ active: true }, { optedOut: true }), '2026-10', FULL), null);
    assert.ok(chargeFor(sub({ active: true }, { optedOut: false }), '2026-10', FULL));
    // An end date before the opt-out's month end wins.
    assert.equal(
      chargeFor(
        sub(
          { active: false, until: rome('2026-10-05T00:00:00') },
          { optedOut: true, optedOutAt: rome('2026-10-20T00:00:00') },
        ),
        '2026-10',
        DAILY,
      )!.daysActive,
      4,
    );
  });

  test('the invoice text', () => {
    assert.equal(
      chargeDescription({ month: '2026-10', daysActive: 31, daysInMonth: 31 }, 'full'),
      'Opzione Avvisi SMS, ottobre 2026',
    );
    assert.equal(
      chargeDescription({ month: '2026-02', daysActive: 15, daysInMonth: 28 }, 'daily'),
      'Opzione Avvisi SMS, febbraio 2026 (15/28 giorni)',
    );
  });
});

function pick(c: ReturnType<typeof chargeFor>) {
  return c && { net: c.netCents, vat: c.vatCents, gross: c.grossCents, days: c.daysActive };
}

describe('provider costs', () => {
  const table: RateTable = {
    currency: 'USD',
    rates: parseRates('sms=0.0500,sms:+1=0.0080,voice=0.0200') as RateTable['rates'],
  };

  test('the rate table: per channel, longest country prefix first; mistakes are named', () => {
    assert.equal(rateFor(table, 'sms', '+393471234567'), 50_000);
    assert.equal(rateFor(table, 'sms', '+15551234567'), 8000);
    assert.equal(rateFor(table, 'voice', '+393471234567'), 20_000);
    assert.equal(rateFor(table, 'email', 'a@b.it'), undefined);
    assert.match(parseRates('fax=1') as string, /not a channel/);
    assert.match(parseRates('sms=abc') as string, /not channel=price/);
    assert.match(parseRates('sms=0.05,sms=0.06') as string, /twice/);
  });

  test('receipts first, the rate table when a receipt has no amount; failed and unsent cost nothing', () => {
    const acc = new CostAccumulator(table);
    acc.add({ channel: 'sms', state: 'delivered', to: '+39347', units: 1, cost: '0.00500', currency: 'USD' });
    acc.add({ channel: 'sms', state: 'undelivered', to: '+39347', units: 2, cost: '0.01000', currency: 'USD' });
    acc.add({ channel: 'sms', state: 'sent', to: '+39347', units: 3 });
    acc.add({ channel: 'sms', state: 'accepted', to: '+1555' });
    acc.add({ channel: 'sms', state: 'failed', to: '+39347' });
    acc.add({
      channel: 'sms',
      state: 'failed',
      to: '+39347',
      invalidRecipient: true,
      history: [{ state: 'planned' }, { state: 'failed' }],
    });
    acc.add({ channel: 'sms', state: 'planned', to: '+39347' });
    acc.add({
      channel: 'sms',
      state: 'expired',
      to: '+39347',
      history: [{ state: 'planned' }, { state: 'undelivered' }, { state: 'expired' }],
    });
    acc.add({
      channel: 'sms',
      state: 'expired',
      to: '+39347',
      history: [{ state: 'planned' }, { state: 'failed' }, { state: 'expired' }],
    });
    acc.add({ channel: 'sms', state: 'expired', to: '+39347', invalidRecipient: true });
    acc.add({ channel: 'voice', state: 'delivered', to: '+39347' });
    acc.add({ channel: 'email', state: 'delivered', to: 'a@b.it' });
    assert.deepEqual(acc.result(), [
      {
        channel: 'sms',
        currency: 'USD',
        messages: 5,
        units: 8,
        amountMicros: 5000 + 10_000 + 150_000 + 8000 + 50_000,
        fromReceipts: 2,
        fromRateTable: 3,
        unpriced: 0,
      },
      {
        channel: 'voice',
        currency: 'USD',
        messages: 1,
        units: 1,
        amountMicros: 20_000,
        fromReceipts: 0,
        fromRateTable: 1,
        unpriced: 0,
      },
      {
        channel: 'email',
        currency: 'USD',
        messages: 1,
        units: 1,
        amountMicros: 0,
        fromReceipts: 0,
        fromRateTable: 0,
        unpriced: 1,
      },
    ]);
  });

  test('a receipt in another currency stays in that currency', () => {
    const acc = new CostAccumulator(table);
    acc.add({ channel: 'sms', state: 'delivered', units: 1, cost: '0.04', currency: 'EUR' });
    acc.add({ channel: 'sms', state: 'delivered', units: 1, cost: '0.05', currency: 'USD' });
    assert.deepEqual(
      acc.result().map((r) => [r.currency, r.amountMicros]),
      [
        ['EUR', 40_000],
        ['USD', 50_000],
      ],
    );
  });
});

describe('configuration', () => {
  test('defaults: 1.00 EUR, 22%, full months', () => {
    assert.deepEqual(billingSettingsFromEnv({}), DEFAULT_BILLING);
  });

  test('every variable, and one message per wrong one', () => {
    const s = billingSettingsFromEnv({
      BILLING_PRICE_CENTS: '150',
      BILLING_VAT_PERCENT: '5.5',
      BILLING_CURRENCY: 'CHF',
      BILLING_PRORATION: 'daily',
      BILLING_SMS_RATE: 'sms=0.07,sms:+41=0.09',
      BILLING_RATE_CURRENCY: 'EUR',
      BILLING_FX_RATES: 'EUR=0.94,USD=0.88',
    });
    assert.deepEqual(s.terms, { priceCents: 150, vatBasisPoints: 550, currency: 'CHF', proration: 'daily' });
    assert.deepEqual(s.rates, {
      currency: 'EUR',
      rates: [
        { channel: 'sms', micros: 70_000 },
        { channel: 'sms', prefix: '+41', micros: 90_000 },
      ],
    });
    assert.deepEqual(s.fx, { EUR: 940_000, USD: 880_000 });
    assert.throws(
      () =>
        billingSettingsFromEnv({
          BILLING_PRICE_CENTS: '1.5',
          BILLING_VAT_PERCENT: '122',
          BILLING_PRORATION: 'weekly',
          BILLING_SMS_RATE: 'fax=1',
          BILLING_FX_RATES: 'dollars',
        }),
      (err: ConfigError) => {
        assert.equal(err.problems.length, 5);
        assert.match(
          err.problems.join('\n'),
          /BILLING_PRICE_CENTS.*whole number[\s\S]*BILLING_VAT_PERCENT.*at most 100[\s\S]*BILLING_PRORATION[\s\S]*BILLING_SMS_RATE.*not a channel[\s\S]*BILLING_FX_RATES/,
        );
        return true;
      },
    );
  });
});

describe('CSV', () => {
  test('RFC 4180: CRLF, quoted commas, quotes and line breaks, a header row', async () => {
    const text = await csvText(
      [
        { header: 'a', value: (r: string[]) => r[0] },
        { header: 'b', value: (r: string[]) => r[1] },
      ],
      [
        ['x,y', 'he said "hi"'],
        ['two\nlines', ' edge'],
        ['plain', undefined as unknown as string],
      ],
    );
    assert.equal(text, 'a,b\r\n"x,y","he said ""hi"""\r\n"two\nlines"," edge"\r\nplain,\r\n');
  });

  test('invoice lines: amounts with a point and two digits, the ledger key as line id', async () => {
    const entry: SubscriptionEntry = {
      _id: 'sub:C-1,"x":2026-10',
      type: 'subscription',
      period: '2026-10',
      subscriberId: 'C-1,"x"',
      currency: 'EUR',
      amountCents: 48,
      unitPriceCents: 100,
      vatBasisPoints: 2200,
      vatCents: 11,
      grossCents: 59,
      proration: 'daily',
      daysActive: 15,
      daysInMonth: 31,
      activeFrom: new Date('2026-10-17T08:00:00Z'),
      activeTo: new Date('2026-10-31T23:00:00Z'),
      description: 'Opzione Avvisi SMS, ottobre 2026 (15/31 giorni)',
      createdAt: new Date(),
      source: 'test',
    };
    const [header, line] = (await csvText(invoiceLineColumns('2026-10'), [entry])).split('\r\n');
    assert.equal(
      header,
      'line_id,contract_id,period,period_start,period_end,description,quantity,unit_price,net_amount,vat_rate,vat_amount,gross_amount,currency,list_price,proration,days_active,days_in_period,active_from,active_to',
    );
    assert.equal(
      line,
      '"sub:C-1,""x"":2026-10","C-1,""x""",2026-10,2026-10-01,2026-10-31,"Opzione Avvisi SMS, ottobre 2026 (15/31 giorni)",1,0.48,0.48,22.00,0.11,0.59,EUR,1.00,daily,15,31,2026-10-17,2026-10-31',
    );
  });
});

describe('reports', () => {
  const settings = { ...DEFAULT_BILLING, fx: { USD: 920_000 } };
  const revenue = [
    { period: '2026-10', currency: 'EUR', subscribers: 3, netCents: 300, vatCents: 66, grossCents: 366 },
  ];
  const incidents = [
    {
      incidentId: 'inc_a',
      period: '2026-10',
      currency: 'USD',
      messages: 4,
      units: 4,
      amountMicros: 20_000,
      fromRateTable: 0,
      unpriced: 0,
    },
    {
      incidentId: 'inc_b',
      period: '2026-10',
      currency: 'USD',
      messages: 10,
      units: 12,
      amountMicros: 600_000,
      fromRateTable: 2,
      unpriced: 0,
    },
  ];

  test('revenue per month', async () => {
    const r = revenueReport(revenue, settings);
    assert.equal(
      await csvText(r.columns, r.rows),
      'period,currency,paying_subscribers,net,vat,gross\r\n2026-10,EUR,3,3.00,0.66,3.66\r\n',
    );
  });

  test('cost per month, converted with the configured rate', () => {
    const r = costsReport(incidents, settings);
    assert.deepEqual(r.rows, [
      {
        period: '2026-10',
        currency: 'USD',
        incidents: 2,
        messages: 14,
        units: 16,
        costMicros: 620_000,
        costPerIncidentMicros: 310_000,
        costInBillingCurrencyMicros: 570_400,
        pricedFromRateTable: 2,
        unpriced: 0,
      },
    ]);
  });

  test('the incidents that cost most, first', () => {
    const r = incidentsReport(incidents, new Map([['inc_b', { title: 'Lodi giù' }]]), settings, 1);
    assert.deepEqual(
      r.rows.map((x) => [x.incidentId, x.title, x.costInBillingCurrencyMicros]),
      [['inc_b', 'Lodi giù', 552_000]],
    );
  });

  test('per paying subscriber: revenue, cost and margin in EUR; without a rate, costs are set apart and the report says so', async () => {
    const r = perSubscriberReport(revenue, incidents, settings);
    assert.deepEqual(r.rows[0], {
      period: '2026-10',
      currency: 'EUR',
      payingSubscribers: 3,
      revenueNetCents: 300,
      costMicros: 570_400,
      marginMicros: 2_429_600,
      revenuePerSubscriberMicros: 1_000_000,
      costPerSubscriberMicros: 190_133,
      marginPerSubscriberMicros: 809_867,
      unconverted: {},
    });
    const noRate = perSubscriberReport(revenue, incidents, DEFAULT_BILLING);
    assert.equal(noRate.rows[0]!.costMicros, 0);
    assert.deepEqual(noRate.rows[0]!.unconverted, { USD: 620_000 });
    assert.match(noRate.notes.join(' '), /No rate in BILLING_FX_RATES for USD/);
    assert.match(await csvText(noRate.columns, noRate.rows), /USD 0\.620000/);
  });
});
