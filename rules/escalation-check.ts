/**
 * Escalations the rules ask for that this environment cannot send as written: a call with no
 * voice channel (it goes by SMS instead, or not at all), an e-mail with no SMTP relay, a contact
 * with no address for the step's channel; and escalations in areas where no stored staff contact
 * (`/v1/contacts`) is, or none is on call. Warnings for `avviso rules check`, at the step.
 */
import type { Contact } from '../domain/types';
import type { Condition } from './conditions';
import type { RuleProblem } from './errors';
import { checkRules, loadRuleSet, resolveRulesEntry, type CheckReport, type RuleSet } from './ruleset';
import { overlayReader } from './source';

export function unsendableEscalations(
  rules: Pick<RuleSet, 'escalationSteps' | 'contacts'>,
  channels: { voice: boolean; email: boolean },
): RuleProblem[] {
  const problems: RuleProblem[] = [];
  for (const { rule, step } of rules.escalationSteps) {
    const contact = rules.contacts.get(step.contact);
    const to = `rule "${rule}" escalates to ${step.contact} by ${step.channel}`;
    const warn = (message: string) => problems.push({ ...step.at, severity: 'warning', message });
    if (step.channel === 'voice' && !channels.voice) {
      warn(
        contact?.phone
          ? `${to}, but voice is not configured (PLIVO_VOICE_CALLER_ID): the call goes as an SMS to ${step.contact}'s number instead`
          : `${to}, but voice is not configured (PLIVO_VOICE_CALLER_ID) and ${step.contact} has no phone: this escalation cannot be sent`,
      );
    } else if (step.channel === 'email' && !channels.email) {
      warn(`${to}, but e-mail is not configured (SMTP_HOST): this escalation cannot be sent`);
    }
  }
  return problems;
}

/**
 * `checkRules` for the deployment at hand: the rules' own errors and warnings, then the
 * escalations this deployment's channels cannot send as written. `text`, when given, is the
 * entry file's text in place of the one on disk. The CLI, the API and the console say the same.
 */
export async function checkRulesHere(
  rulesPath: string,
  text: string | undefined,
  channels: { voice: boolean; email: boolean },
  storedContacts?: readonly StoredContact[],
): Promise<CheckReport> {
  const report = await checkRules(rulesPath, text !== undefined ? { text } : {});
  if (!report.ok) return report;
  const reader = text !== undefined ? overlayReader({ [await resolveRulesEntry(rulesPath)]: text }) : undefined;
  const rules = await loadRuleSet(rulesPath, reader);
  return {
    ...report,
    warnings: [
      ...report.warnings,
      ...unsendableEscalations(rules, channels),
      ...(storedContacts ? escalationsWithNobodyOnCall(rules, storedContacts) : []),
    ],
  };
}

/** What of a stored contact the check reads. */
export type StoredContact = Pick<Contact, '_id' | 'kind' | 'onCall' | 'areas' | 'members'>;

/**
 * The areas a rule's conditions confine it to (`incident.areas: { contains: Lodi }`, or `containsAny`),
 * or undefined when it may escalate an incident anywhere. Conditions it cannot read narrow nothing.
 */
export function areasOfRule(chain: readonly Condition[]): string[] | undefined {
  let areas: string[] | undefined;
  for (const c of chain) {
    const own = areasOf(c);
    if (own) areas = areas ? areas.filter((a) => own.includes(a)) : own;
  }
  return areas;
}

function areasOf(c: Condition): string[] | undefined {
  if (c.type === 'fact') {
    if (c.fact.id !== 'incident.areas') return undefined;
    if (c.operator === 'contains' && typeof c.value === 'string') return [c.value];
    if (c.operator === 'someFact:in' && Array.isArray(c.value)) return c.value.filter((v) => typeof v === 'string');
    return undefined;
  }
  if (c.type === 'all') return areasOfRule(c.items);
  if (c.type === 'any') {
    const each = c.items.map(areasOf);
    return each.every((a) => a !== undefined) ? [...new Set(each.flat() as string[])] : undefined;
  }
  return undefined; // `not`: confines to no area we can name
}

/**
 * Every escalation also reaches the stored contacts on call for the incident's areas
 * (activities/escalation-targets.ts). Where the rules escalate in an area no stored contact
 * covers, or none of those covering it is on call now, the escalation reaches the rules' own
 * contact only: said at the rule's first escalation step. A deployment that stores no contact at
 * all uses the rules' contacts alone, and is not warned.
 */
export function escalationsWithNobodyOnCall(
  rules: Pick<RuleSet, 'escalatingRules'>,
  contacts: readonly StoredContact[],
): RuleProblem[] {
  if (contacts.length === 0) return [];
  const reachable = (c: StoredContact) => c.kind !== 'team' || (c.members?.length ?? 0) > 0;
  const problems: RuleProblem[] = [];
  for (const { rule, chain, steps } of rules.escalatingRules) {
    const only = [...new Set(steps.map((s) => s.contact))].join(', ');
    for (const area of areasOfRule(chain) ?? [undefined]) {
      const where = area === undefined ? 'anywhere' : `in ${area}`;
      const covering = contacts.filter(
        (c) => reachable(c) && (area === undefined || !c.areas || c.areas.includes(area)),
      );
      const warn = (why: string) =>
        problems.push({
          ...steps[0]!.at,
          severity: 'warning',
          message: `rule "${rule}" escalates ${where} to the stored contacts on call there too, but ${why}: only ${only} is reached`,
        });
      if (covering.length === 0) warn(`no stored contact (/v1/contacts) covers ${area ?? 'any area'}`);
      else if (!covering.some((c) => c.onCall))
        warn(
          `none of the stored contacts covering ${area ?? 'it'} (${covering.map((c) => c._id).join(', ')}) is on call`,
        );
    }
  }
  return problems;
}
