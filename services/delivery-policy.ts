/**
 * The delivery policy an incident or maintenance starts with: what the rules in force say
 * (`defaults.delivery`: receipt timeout, attempts, fallback order) over what the process was
 * configured with, and the workflow's defaults under both. Fixed at the start and carried in the
 * workflow's input, so later rule changes apply to new incidents only, as for every other rule.
 */
import type { RuleSet } from '../rules';
import { DEFAULT_DELIVERY_POLICY, type DeliveryPolicy } from '../workflows/incident-api';

export function deliveryPolicyFor(
  rules: RuleSet | undefined,
  configured: DeliveryPolicy | undefined,
): DeliveryPolicy | undefined {
  const d = rules?.settings.delivery;
  if (!d || (d.receiptTimeoutSeconds === null && d.attempts === null && d.fallback === null)) return configured;
  return {
    ...(configured ?? DEFAULT_DELIVERY_POLICY),
    ...(d.receiptTimeoutSeconds !== null ? { deliveryTimeoutMs: d.receiptTimeoutSeconds * 1000 } : {}),
    ...(d.attempts !== null ? { maxAttempts: d.attempts } : {}),
    ...(d.fallback !== null ? { fallback: [...d.fallback] } : {}),
  };
}
