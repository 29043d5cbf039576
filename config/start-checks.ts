/**
 * What `avviso api` and `avviso worker` check at start, before any connection, besides the
 * environment (./index.ts): the integrations file and the rules' contacts. Outside development
 * (AVVISO_MODE) the repository's examples are refused here with a ConfigError, as a bad variable is.
 */
import { formatProblem, placeholderContacts, type RuleSet } from '../rules';
import {
  IntegrationConfigError,
  loadIntegrations,
  DEFAULT_INTEGRATIONS_FILE,
  type IntegrationSet,
} from '../ingest/integrations';
import { ConfigError, type Config } from './index';

/** The monitoring integrations of AVVISO_INTEGRATIONS (in development, the example set when it is unset). */
export async function integrationsAtStart(config: Config, env: NodeJS.ProcessEnv): Promise<IntegrationSet> {
  const development = config.mode === 'development';
  if (!config.integrationsPath && !development) {
    throw new ConfigError([
      'AVVISO_INTEGRATIONS is not set: the example set rules/integrations.yaml holds tokens public in the repository (dev-token-*); set AVVISO_INTEGRATIONS to your own file, whose integrations take their tokens from the environment with token_env (deploy/integrations.example.yaml)',
    ]);
  }
  try {
    return await loadIntegrations(config.integrationsPath ?? DEFAULT_INTEGRATIONS_FILE, env, { development });
  } catch (err) {
    if (err instanceof IntegrationConfigError)
      throw new ConfigError(err.problems.map((p) => `AVVISO_INTEGRATIONS: ${p}`));
    throw err;
  }
}

/** Refuses rules that would escalate to a shipped placeholder number, outside development. */
export function refusePlaceholderContacts(config: Config, rules: RuleSet): void {
  if (config.mode === 'development') return;
  const problems = placeholderContacts(rules);
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `AVVISO_RULES: ${formatProblem(p)}`));
}
