/** Billing configuration, as read by config/index.ts from the BILLING_* variables. */
import type { BillingTerms } from './charges';
import type { RateTable } from './costs';

export interface BillingSettings {
  /** Price, VAT, currency and proration of the monthly option (for months not billed yet). */
  terms: BillingTerms;
  /** Provider prices for messages whose receipt has no amount. */
  rates: RateTable;
  /**
   * Conversion of provider currencies into the billing currency, for the reports that put costs
   * next to revenue: micros of the billing currency per unit of the key's currency. Empty: costs
   * are reported in their own currency only.
   */
  fx: Record<string, number>;
}

export const DEFAULT_BILLING: BillingSettings = {
  terms: { priceCents: 100, vatBasisPoints: 2200, currency: 'EUR', proration: 'full' },
  // Plivo's SMS and calls; e-mail (our relay), webhooks and the public status feed cost nothing per message.
  rates: {
    currency: 'USD',
    rates: [
      { channel: 'sms', micros: 50_000 },
      { channel: 'voice', micros: 20_000 },
      { channel: 'email', micros: 0 },
      { channel: 'webhook', micros: 0 },
      { channel: 'status', micros: 0 },
    ],
  },
  fx: {},
};
