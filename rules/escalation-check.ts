/**
 * Escalations the rules ask for that this environment cannot send as written: a call with no
 * voice channel (it goes by SMS instead, or not at all), an e-mail with no SMTP relay, a contact
 * with no address for the step's channel. Warnings for `avviso rules check`, at the step.
 */
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
): Promise<CheckReport> {
  const report = await checkRules(rulesPath, text !== undefined ? { text } : {});
  if (!report.ok) return report;
  const reader = text !== undefined ? overlayReader({ [await resolveRulesEntry(rulesPath)]: text }) : undefined;
  return {
    ...report,
    warnings: [...report.warnings, ...unsendableEscalations(await loadRuleSet(rulesPath, reader), channels)],
  };
}
