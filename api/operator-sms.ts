/**
 * What the routes that send operators' own words by SMS share (an update with `sms: true`, an
 * announcement): the target's schema, the dry run's answer, and turning a bad text or target into
 * a 4xx that names the field.
 */
import type { AppDeps } from './app';
import { ApiError } from './errors';
import type { Incident } from '../domain/types';
import type { RuleSet } from '../rules';
import type { BillingSettings } from '../billing/settings';
import type { RateTable } from '../billing/costs';
import { billingSettingsFromEnv } from '../config';
import { rulesResolver } from '../store/rule-versions';
import { TargetError } from '../store/operator-audience';
import { OperatorTextError } from '../services/operator-messages';

const name = { type: 'string', minLength: 1, maxLength: 100 } as const;

/** The part of the audience a message is for; none: all of it. */
export const targetProperties = {
  areas: {
    type: 'array',
    minItems: 1,
    maxItems: 100,
    uniqueItems: true,
    items: name,
    description: 'Only the paying subscribers in these areas (towns)',
  },
  siteIds: {
    type: 'array',
    minItems: 1,
    maxItems: 500,
    uniqueItems: true,
    items: name,
    description: 'Only the paying subscribers of these sites and of the sites they feed',
  },
} as const;

export const previewSchema = {
  type: 'object',
  description: 'A dry run: what sending would take; nothing was sent or stored',
  properties: {
    dryRun: { type: 'boolean' },
    text: { type: 'string', description: 'The words as they would be sent (after transliteration)' },
    encoding: { type: 'string', enum: ['GSM', 'UCS-2'] },
    parts: { type: 'integer', description: 'SMS parts per message' },
    characters: { type: 'integer', description: "Length in the encoding's unit (GSM-7 septets, UCS-2 code units)" },
    transliterated: {
      type: 'array',
      items: { type: 'string' },
      description: 'Characters replaced by GSM-7 look-alikes',
    },
    recipients: { type: 'integer', description: 'Paying numbers it would go to, one message each' },
    units: { type: 'integer', description: 'SMS parts in all: parts x recipients' },
    areas: { type: 'array', items: { type: 'string' } },
    cost: {
      type: 'object',
      description: 'At the billing rate table (BILLING_SMS_RATE) per part',
      properties: {
        currency: { type: 'string' },
        amountMicros: { type: 'integer' },
        amount: { type: 'string' },
        unpriced: { type: 'integer', description: 'Recipients no rate applies to' },
      },
    },
  },
} as const;

/** A text the policy refuses: 400 naming the field. */
export function checkedOrThrow<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof OperatorTextError) throw new ApiError(400, 'invalid_text', err.message, { field: err.field });
    throw err;
  }
}

/** A target outside the incident: 422 naming the field. */
export function toTargetError(err: unknown): never {
  if (err instanceof TargetError)
    throw new ApiError(422, 'unknown_target', `body.${err.field}: ${err.message}.`, {
      field: `body.${err.field}`,
      unknown: err.unknown,
    });
  throw err;
}

export function operatorMessageDeps(deps: AppDeps) {
  const resolve = deps.rules ? rulesResolver(deps.store, deps.rules) : undefined;
  let billing = (deps as AppDeps & { billing?: BillingSettings }).billing;
  return {
    /** The incident and the rules it pinned (their SMS policy checks the words), or a 404. */
    async incident(id: string): Promise<{ doc: Incident; rules: RuleSet | undefined }> {
      const doc = await deps.store.incidents.findOne({ _id: id });
      if (!doc) throw new ApiError(404, 'incident_not_found', `No incident ${id}.`);
      return { doc, rules: resolve ? await resolve(doc.rulesVersion) : undefined };
    },
    /** The rules a new incident would pin. */
    currentRules: (): RuleSet | undefined => deps.rules?.current(),
    rates: (): RateTable => (billing ??= billingSettingsFromEnv()).rates,
  };
}
