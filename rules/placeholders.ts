/**
 * The shipped contacts' placeholder numbers (rules/default/contacts.yaml): an escalation to one
 * would text a stranger, so `avviso rules check` and the processes at start refuse rules that keep
 * one, outside a development stack (AVVISO_MODE=development).
 */
import type { RuleProblem } from './errors';
import type { RuleSet } from './ruleset';

export const PLACEHOLDER_PHONES: readonly string[] = ['+390577000000'];

/** One error per contact whose phone is a shipped placeholder, at the contact in its file. */
export function placeholderContacts(rules: RuleSet): RuleProblem[] {
  const problems: RuleProblem[] = [];
  for (const [name, contact] of rules.contacts) {
    if (!contact.phone || !PLACEHOLDER_PHONES.includes(contact.phone.replace(/[\s-]/g, ''))) continue;
    problems.push({
      ...contact.at,
      severity: 'error',
      message: `contact "${name}" has the shipped placeholder phone ${contact.phone}: put the real number of who is on call (AVVISO_MODE=development accepts it, for a development stack only)`,
    });
  }
  return problems;
}
