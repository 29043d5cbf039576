/**
 * `avviso check-config` prints the configuration for an operator to read (and paste into a
 * ticket): no secret may appear in it, whichever part of the configuration holds it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../config';
import { shownConfig } from '../../cli/check-config';

const secrets = {
  PLIVO_AUTH_TOKEN: 'plivo-token-SECRET1',
  SMTP_HOST: 'smtp.example.net',
  SMTP_USER: 'avviso',
  SMTP_PASS: 'smtp-password-SECRET2',
  WEBHOOK_SECRET: 'webhook-secret-SECRET3',
  AVVISO_CONSOLE_SECRET: 'console-secret-SECRET4-long-enough-0123456789',
  X_API_KEY: 'x-api-key-SECRET5',
  X_API_KEY_SECRET: 'x-api-key-secret-SECRET6',
  X_ACCESS_TOKEN: '123456789-SECRET7token',
  X_ACCESS_TOKEN_SECRET: 'x-token-secret-SECRET8',
  MASTODON_URL: 'https://mastodon.example',
  MASTODON_ACCESS_TOKEN: 'mastodon-token-SECRET9',
};

test('no secret is printed: tokens, passwords, secrets, keys, and the password in the MongoDB URI', () => {
  const config = loadConfig({
    TEMPORAL_ADDRESS: '127.0.0.1:7233',
    MONGODB_URI: 'mongodb://avviso:mongo-password-SECRET10@db1:27017/isp?replicaSet=rs0',
    PLIVO_AUTH_ID: 'MAXXXXXXXXXXXXXXXXXX',
    AVVISO_PUBLIC_URL: 'https://avviso.example.net/',
    ...secrets,
  });
  const printed = JSON.stringify(shownConfig(config));
  for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert.doesNotMatch(printed, new RegExp(`SECRET${n}\\b`), `secret ${n} printed`);
  assert.match(printed, /mongodb:\/\/avviso:\*\*\*@db1:27017\/isp/, 'the URI is shown, its password hidden');
  assert.match(printed, /smtp\.example\.net/, 'what is not secret is shown');
});
