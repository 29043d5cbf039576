/**
 * The social accounts from the environment: off unless configured, each on only with all its
 * variables, a partial set refused naming what is missing, and the repository's placeholders
 * refused outside development.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../config';
import { configuredChannels } from '../../worker/delivery-deps';
import type { Store } from '../../store/db';
import { FeedWithSocialChannel } from '../../channels/social/fan-out';
import { StatusFeedChannel } from '../../channels/status-feed';

const base = {
  TEMPORAL_ADDRESS: '127.0.0.1:7233',
  MONGODB_URI: 'mongodb://db1:27017/isp',
  PLIVO_AUTH_ID: 'MAXXXXXXXXXXXXXXXXXX',
  PLIVO_AUTH_TOKEN: 'a-secret-token',
  AVVISO_PUBLIC_URL: 'https://avviso.example.net/',
};
const xVars = {
  X_API_KEY: 'abcdefghij0123',
  X_API_KEY_SECRET: 'secret-of-the-app-0123',
  X_ACCESS_TOKEN: '123456789-accesstokenvalue',
  X_ACCESS_TOKEN_SECRET: 'secret-of-the-token-0123',
};
/** The channels' collections are only named, never reached, while wiring. */
const store = { db: undefined } as unknown as Store;

function problems(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  return [];
}

test('off by default: no variables, no social posts, the status channel is the feed alone', () => {
  const config = loadConfig(base);
  assert.equal(config.social, undefined);
  assert.ok(configuredChannels(config, store).status instanceof StatusFeedChannel);
});

test('X with its four variables, Mastodon with its two: posts in Italian linking to the public status page', () => {
  const config = loadConfig({
    ...base,
    ...xVars,
    MASTODON_URL: 'https://mastodon.uno/',
    MASTODON_ACCESS_TOKEN: 'a-mastodon-token-0123',
  });
  assert.deepEqual(config.social, {
    language: 'it',
    statusPageUrl: 'https://avviso.example.net/status',
    x: {
      apiKey: xVars.X_API_KEY,
      apiKeySecret: xVars.X_API_KEY_SECRET,
      accessToken: xVars.X_ACCESS_TOKEN,
      accessTokenSecret: xVars.X_ACCESS_TOKEN_SECRET,
      baseUrl: 'https://api.x.com',
    },
    mastodon: { baseUrl: 'https://mastodon.uno', accessToken: 'a-mastodon-token-0123', maxCharacters: 500 },
  });
  assert.ok(configuredChannels(config, store).status instanceof FeedWithSocialChannel);
  assert.equal(
    loadConfig({
      ...base,
      MASTODON_URL: 'https://mastodon.uno',
      MASTODON_ACCESS_TOKEN: 'a-mastodon-token-0123',
      SOCIAL_LANGUAGE: 'en',
    }).social?.language,
    'en',
  );
});

test('a partial account is refused, naming what is missing; a bad value names its variable', () => {
  const { X_ACCESS_TOKEN_SECRET: _, ...threeOfFour } = xVars;
  assert.deepEqual(problems({ ...base, ...threeOfFour }), [
    'X_ACCESS_TOKEN_SECRET is not set: X posts need all of X_API_KEY, X_API_KEY_SECRET, X_ACCESS_TOKEN, X_ACCESS_TOKEN_SECRET (or none, to keep them off)',
  ]);
  assert.match(
    problems({ ...base, MASTODON_ACCESS_TOKEN: 'a-mastodon-token-0123' }).join('\n'),
    /^MASTODON_URL is not set: Mastodon posts need all of MASTODON_URL, MASTODON_ACCESS_TOKEN/,
  );
  assert.match(
    problems({ ...base, ...xVars, X_ACCESS_TOKEN: 'no-user-id' }).join('\n'),
    /^X_ACCESS_TOKEN is "\*\*\*": must be the access token of the account that posts/,
  );
  assert.match(
    problems({ ...base, MASTODON_URL: 'mastodon.uno', MASTODON_ACCESS_TOKEN: 'a-mastodon-token-0123' }).join('\n'),
    /^MASTODON_URL is "mastodon.uno": must be an http\(s\) URL/,
  );
});

test('production refuses the placeholders of deploy/avviso.env.example; development accepts them', () => {
  const placeholders = {
    ...xVars,
    X_ACCESS_TOKEN_SECRET: 'change-me-x-access-token-secret',
    MASTODON_URL: 'https://mastodon.uno',
    MASTODON_ACCESS_TOKEN: 'change-me-mastodon-token',
  };
  const found = problems({ ...base, ...placeholders });
  assert.equal(found.length, 2);
  assert.match(found[0]!, /^X_ACCESS_TOKEN_SECRET is the placeholder of deploy\/avviso.env.example/);
  assert.match(found[1]!, /^MASTODON_ACCESS_TOKEN is the placeholder/);
  assert.ok(loadConfig({ ...base, ...placeholders, AVVISO_MODE: 'development' }).social?.x);
});
