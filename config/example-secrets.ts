/**
 * The secrets the repository ships as examples: anyone who has read the repository knows them, so a
 * production process refuses them at start, naming the variable to set. `avviso dev` and the tests
 * set AVVISO_MODE=development, which accepts them.
 *
 * What counts: the Plivo simulator's credentials of `avviso dev` (dev/stack.ts, sim/main.ts), the
 * integration tokens of rules/integrations.yaml (`dev-token-<tool>`), and every placeholder of
 * deploy/avviso.env.example, which all contain "change-me" so that no real secret can be mistaken
 * for one.
 */

/** The Plivo simulator's credentials that `avviso dev` uses. */
export const DEV_SIMULATOR_AUTH_ID = 'MADEVSIMULATOR0000000';
export const DEV_SIMULATOR_AUTH_TOKEN = 'dev-simulator-token';

/** The environment variables that hold secrets (or, for MONGODB_URI, may carry a password). */
export const SECRET_VARIABLES = [
  'PLIVO_AUTH_ID',
  'PLIVO_AUTH_TOKEN',
  'MONGODB_URI',
  'SMTP_PASS',
  'WEBHOOK_SECRET',
  'AVVISO_ADMIN_KEY',
  'X_API_KEY',
  'X_API_KEY_SECRET',
  'X_ACCESS_TOKEN',
  'X_ACCESS_TOKEN_SECRET',
  'MASTODON_ACCESS_TOKEN',
] as const;

const PLACEHOLDER = /change-?me/i;
const EXAMPLE_INTEGRATION_TOKEN = /^dev-token-/;

/** Why `value` is a shipped example rather than a secret, or undefined when it is not one. */
export function exampleSecret(value: string): string | undefined {
  if (PLACEHOLDER.test(value)) return 'the placeholder of deploy/avviso.env.example';
  if (EXAMPLE_INTEGRATION_TOKEN.test(value))
    return 'an example token of rules/integrations.yaml, public in the repository';
  if (value === DEV_SIMULATOR_AUTH_ID || value === DEV_SIMULATOR_AUTH_TOKEN)
    return "the Plivo simulator's credentials of `avviso dev`, public in the repository";
  return undefined;
}

const WHAT_TO_SET: Record<(typeof SECRET_VARIABLES)[number], string> = {
  PLIVO_AUTH_ID: 'set it to your Plivo Auth ID, from the Plivo console',
  PLIVO_AUTH_TOKEN: 'set it to your Plivo Auth Token, from the Plivo console',
  MONGODB_URI: "set it to your MongoDB's address, with the database user's real password",
  SMTP_PASS: "set it to the SMTP relay's password",
  WEBHOOK_SECRET: 'set it to a random secret of your own, e.g. `openssl rand -hex 32`, shared with the receivers',
  AVVISO_ADMIN_KEY: 'unset it (only `avviso dev` uses it) or make a key with `avviso keys create`',
  X_API_KEY:
    "set it to your X app's API key (developer portal, Keys and tokens), or unset the X_* variables to post nothing on X",
  X_API_KEY_SECRET: "set it to your X app's API key secret, or unset the X_* variables",
  X_ACCESS_TOKEN: "set it to the posting account's access token (developer portal), or unset the X_* variables",
  X_ACCESS_TOKEN_SECRET: "set it to the posting account's access token secret, or unset the X_* variables",
  MASTODON_ACCESS_TOKEN:
    "set it to your Mastodon application's access token (scope write:statuses), or unset MASTODON_URL and MASTODON_ACCESS_TOKEN",
};

/**
 * One line per secret variable of `env` that holds a shipped example, naming the variable and what
 * to set it to; empty when there is none.
 */
export function exampleSecretProblems(env: Record<string, string | undefined>): string[] {
  const problems: string[] = [];
  for (const name of SECRET_VARIABLES) {
    const value = env[name];
    const why = value ? exampleSecret(value) : undefined;
    if (why)
      problems.push(
        `${name} is ${why}: ${WHAT_TO_SET[name]} (AVVISO_MODE=development accepts it, for a development stack only)`,
      );
  }
  return problems;
}
