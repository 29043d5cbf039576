/**
 * The rules language: what operations staff write (rules/README.md) and what the rest of
 * Avviso asks of it. Pure: no Temporal, MongoDB or Fastify here.
 *
 *   const holder = await RulesHolder.open({ path: config.rulesPath, watch: true, logger });
 *   const rules = holder.current();               // for a new incident; pin rules.version on it
 *   const later = holder.get(incident.rulesVersion) ?? await loadRuleSetFromFiles(storedFiles);
 *   const decisions = await rules.decide(incidentFacts, subscriberCursor, { at });
 *   const text = rules.render({ set: plan.templateSet, kind: 'outage' }, decision.language, vars);
 */
export {
  RuleSet,
  loadRuleSet,
  loadRuleSetFromFiles,
  checkRules,
  resolveRulesEntry,
  DEFAULT_RULES_PATH,
  ENTRY_FILE_NAME,
} from './ruleset';
export type { RuleSetFile, TemplateRef, DecideOptions, CheckReport } from './ruleset';
export { RulesHolder } from './reloader';
export type { RulesHolderOptions, ReloadOutcome, RulesLogger } from './reloader';
export { RuleErrors, formatProblem } from './errors';
export { placeholderContacts, PLACEHOLDER_PHONES } from './placeholders';
export type { RuleProblem, SourcePosition } from './errors';
export { Decider } from './evaluate';
export type { Explanation, RuleTrace, ConditionTrace } from './explain';
export type { Simulation, SimulationRow, SimulatedText } from './simulate';
export { messageVariables, TEMPLATE_VARIABLES, TEMPLATE_FILTERS } from './templates';
export type { MessageVariables, RenderedMessage } from './templates';
export { firstNoticeTime, holdUntil } from './schedule';
export {
  closingHold,
  insideWindow,
  kindsAtOnce,
  nightDue,
  nightOutcome,
  NIGHT_KINDS,
  type NightKind,
  type NightOutcome,
} from './night';
export { segmentSms, transliterateToGsm, isGsm7 } from './sms';
export { formatDuration, parseDuration } from './time';
export * from './types';
export { syntheticSubscribers } from './synthetic';
export type { PopulationOptions } from './synthetic';
