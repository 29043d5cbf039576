/** TLS to Temporal from TEMPORAL_TLS*: files read at start, every mistake named with its variable. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../config';

const good = {
  TEMPORAL_ADDRESS: 'my-ns.tmprl.cloud:7233',
  MONGODB_URI: 'mongodb://db1:27017/isp',
  PLIVO_AUTH_ID: 'MAXXXXXXXXXXXXXXXXXX',
  PLIVO_AUTH_TOKEN: 'a-secret-token',
};

test('without TEMPORAL_TLS* the connection is plain; TEMPORAL_TLS=true alone uses the system roots', () => {
  assert.equal(loadConfig(good).temporal.tls, undefined);
  assert.deepEqual(loadConfig({ ...good, TEMPORAL_TLS: 'true' }).temporal.tls, {});
});

test('mutual TLS: the CA, the client certificate and its key are read from their files', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'avviso-tls-'));
  for (const f of ['ca.pem', 'client.pem', 'client.key']) writeFileSync(path.join(dir, f), `-----${f}-----\n`);
  const tls = loadConfig({
    ...good,
    TEMPORAL_TLS_CA_FILE: path.join(dir, 'ca.pem'),
    TEMPORAL_TLS_CERT_FILE: path.join(dir, 'client.pem'),
    TEMPORAL_TLS_KEY_FILE: path.join(dir, 'client.key'),
    TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
  }).temporal.tls;
  assert.equal(tls?.serverRootCACertificate?.toString(), '-----ca.pem-----\n');
  assert.equal(tls?.clientCertPair?.crt.toString(), '-----client.pem-----\n');
  assert.equal(tls?.clientCertPair?.key.toString(), '-----client.key-----\n');
  assert.equal(tls?.serverNameOverride, 'temporal.internal');
});

test('a missing file, a certificate without its key, and TLS both off and configured are named', () => {
  try {
    loadConfig({ ...good, TEMPORAL_TLS: 'false', TEMPORAL_TLS_CERT_FILE: '/nonexistent/client.pem' });
    assert.fail('should have thrown');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const text = err.problems.join('\n');
    assert.match(text, /^TEMPORAL_TLS_CERT_FILE is "\/nonexistent\/client\.pem": cannot read it \(ENOENT\)$/m);
    assert.match(text, /^TEMPORAL_TLS_KEY_FILE is not set: mutual TLS needs both/m);
    assert.match(text, /^TEMPORAL_TLS is "false" but TLS files or a server name are set/m);
  }
});
