import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../config';

const good = {
  TEMPORAL_ADDRESS: '127.0.0.1:7233',
  MONGODB_URI: 'mongodb://db1:27017,db2:27017/isp?replicaSet=rs0',
  PLIVO_AUTH_ID: 'MAXXXXXXXXXXXXXXXXXX',
  PLIVO_AUTH_TOKEN: 'a-secret-token',
};

test('a complete environment gives a configuration with defaults filled in', () => {
  const c = loadConfig(good);
  assert.equal(c.temporal.namespace, 'default');
  assert.equal(c.mongo.db, 'isp', 'the database comes from the URI path');
  assert.equal(c.plivo.baseUrl, 'https://api.plivo.com');
  assert.equal(c.http.port, 3000);
  assert.equal(c.http.publicUrl, 'http://127.0.0.1:3000');
});

test('every bad or missing value is named at once, with what to do', () => {
  try {
    loadConfig({
      TEMPORAL_ADDRESS: 'localhost',
      PORT: 'eighty',
      PLIVO_BASE_URL: 'ftp://x',
      PLIVO_AUTH_TOKEN: 'supersecret!',
    });
    assert.fail('should have thrown');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const text = err.message;
    assert.match(text, /TEMPORAL_ADDRESS is "localhost": must be host:port/);
    assert.match(text, /MONGODB_URI is not set \(set it to your MongoDB.*npm run dev`\)/);
    assert.match(text, /PLIVO_AUTH_ID is not set/);
    assert.match(text, /PORT is "eighty"/);
    assert.match(text, /PLIVO_BASE_URL is "ftp:\/\/x": must be an http\(s\) URL/);
    assert.doesNotMatch(text, /supersecret/, 'secrets never appear in errors');
    assert.equal(err.problems.length, 5);
  }
});

test('empty variables count as unset', () => {
  const c = loadConfig({ ...good, PORT: '', PLIVO_SENDER: '' });
  assert.equal(c.http.port, 3000);
  assert.equal(c.plivo.sender, 'Avviso');
});
