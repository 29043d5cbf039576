/**
 * What the API does with an operator's own words before they are sent: checks them against the
 * policy of the incident's rules (rules/operator-text.ts), finds the part of the audience they are
 * for (store/operator-audience.ts), and, for a dry run, says what sending them would take: SMS
 * parts per message, recipients, and the cost at the billing rate table's price per part
 * (BILLING_SMS_RATE, by number prefix), the price billing uses for a message whose receipt has no amount.
 */
import type { Store } from '../store/db';
import type { Incident } from '../domain/types';
import type { RuleSet } from '../rules';
import { checkOperatorText, type CheckedText, type SmsPolicy } from '../rules/operator-text';
import { operatorRecipients, targetSites, type MessageTarget } from '../store/operator-audience';
import { rateFor, type RateTable } from '../billing/costs';
import { formatMicros } from '../billing/money';

/** The words are not fit to send; `field` names the request field they came from. */
export class OperatorTextError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** Without rules loaded: one GSM-7 SMS, nothing transliterated (the compiled rules' own defaults). */
const DEFAULT_POLICY: SmsPolicy = { maxParts: 1, transliterate: false };

export function smsPolicyOf(rules: RuleSet | undefined): SmsPolicy {
  return rules
    ? { maxParts: rules.settings.sms.maxParts, transliterate: rules.settings.sms.transliterate }
    : DEFAULT_POLICY;
}

/** The words as they will be sent, or an OperatorTextError naming `field`. */
export function checkedText(raw: string, policy: SmsPolicy, field: string): CheckedText {
  const r = checkOperatorText(raw, policy);
  if (!r.ok) throw new OperatorTextError(field, `${field} ${r.problem}`);
  return r.checked;
}

export interface MessagePreview {
  dryRun: true;
  text: string;
  encoding: CheckedText['encoding'];
  /** SMS parts per message. */
  parts: number;
  characters: number;
  transliterated: string[];
  /** Paying numbers it would go to (one message each). */
  recipients: number;
  /** SMS parts in all (parts x recipients): what the provider bills. */
  units: number;
  areas: string[];
  cost: { currency: string; amountMicros: number; amount: string; unpriced: number };
}

/** What sending `checked` to `target` of the incident would take, as of `at`; nothing is stored. */
export async function previewMessage(
  store: Store,
  incident: Pick<Incident, 'siteIds' | 'affectedSiteIds'>,
  target: MessageTarget,
  checked: CheckedText,
  rates: RateTable,
  at = new Date(),
): Promise<MessagePreview> {
  const sites = await targetSites(store, incident, target);
  let recipients = 0;
  let amountMicros = 0;
  let unpriced = 0;
  for await (const r of operatorRecipients(store, sites, at)) {
    recipients++;
    const rate = rateFor(rates, 'sms', r.phone);
    if (rate === undefined) unpriced++;
    else amountMicros += rate * checked.parts;
  }
  return {
    dryRun: true,
    text: checked.text,
    encoding: checked.encoding,
    parts: checked.parts,
    characters: checked.length,
    transliterated: checked.transliterated,
    recipients,
    units: recipients * checked.parts,
    areas: [...new Set(sites.map((s) => s.area))].sort(),
    cost: { currency: rates.currency, amountMicros, amount: formatMicros(amountMicros), unpriced },
  };
}
