import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig, mongoFromEnv } from '../../config';

const good = {
  TEMPORAL_ADDRESS: '127.0.0.1:7233',
  MONGODB_URI: 'mongodb://db1:27017/isp',
  PLIVO_AUTH_ID: 'MAXXXXXXXXXXXXXXXXXX',
  PLIVO_AUTH_TOKEN: 'a-secret-token',
};

test('API limits have defaults; AVVISO_ADMIN_KEY is optional', () => {
  const c = loadConfig(good);
  assert.deepEqual(c.api, { rateLimitPerMinute: 600, bodyLimitBytes: 1024 * 1024 });
  assert.equal(c.adminKey, undefined);
  const set = loadConfig({
    ...good,
    API_RATE_LIMIT_PER_MINUTE: '120',
    API_BODY_LIMIT_BYTES: '65536',
    AVVISO_ADMIN_KEY: 'avk_dev_0123456789abcdef0123456789',
  });
  assert.deepEqual(set.api, { rateLimitPerMinute: 120, bodyLimitBytes: 65536 });
  assert.equal(set.adminKey, 'avk_dev_0123456789abcdef0123456789');
});

test('a malformed AVVISO_ADMIN_KEY is named with its format, and never echoed', () => {
  try {
    loadConfig({
      ...good,
      AVVISO_ADMIN_KEY: 'avk_dev_tooshort-secret',
      API_RATE_LIMIT_PER_MINUTE: '0',
      API_BODY_LIMIT_BYTES: 'lots',
    });
    assert.fail('should have thrown');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /AVVISO_ADMIN_KEY is "\*\*\*": must be avk_<id>_<secret>/);
    assert.doesNotMatch(err.message, /tooshort-secret/);
    assert.match(err.message, /API_RATE_LIMIT_PER_MINUTE is "0": must be at least 1/);
    assert.match(err.message, /API_BODY_LIMIT_BYTES is "lots"/);
  }
});

test('mongoFromEnv: MongoDB alone, for `avviso keys`', () => {
  assert.deepEqual(mongoFromEnv({ MONGODB_URI: 'mongodb://h:27017/isp' }), { uri: 'mongodb://h:27017/isp', db: 'isp' });
  assert.deepEqual(mongoFromEnv({ MONGODB_URI: 'mongodb://h:27017/', MONGODB_DB: 'other' }), {
    uri: 'mongodb://h:27017/',
    db: 'other',
  });
  assert.throws(() => mongoFromEnv({}), /MONGODB_URI is not set/);
  assert.throws(() => mongoFromEnv({ MONGODB_URI: 'postgres://x' }), /must start with mongodb:\/\//);
});
