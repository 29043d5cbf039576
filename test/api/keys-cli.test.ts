/**
 * `avviso keys` as an operator runs it: a real process, with MONGODB_URI only (no Temporal, no
 * Plivo settings), against this file's own database.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from '../../dev/services';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import { verifyApiKey } from '../../store/api-keys';

let env: IsolatedEnv;
before(async () => {
  env = await isolatedEnv(__filename);
});
after(async () => env?.close());

function avviso(args: string[], extraEnv: Record<string, string | undefined> = {}) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(TEMPORAL_|MONGODB_|PLIVO_|AVVISO_)/.test(k)),
  );
  const r = spawnSync(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'avviso.js'), 'keys', ...args], {
    env: { ...clean, MONGODB_URI: `${env.servers.mongoUri.replace(/\/$/, '')}/${env.dbName}`, ...extraEnv },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('create prints the key once; list shows it without the secret; revoke stops it', async () => {
  const made = avviso(['create', '--name', 'noc-scripts', '--role', 'operator']);
  assert.equal(made.code, 0, made.err);
  const key = /Key \(shown this once; only its hash is stored\): (avk_\S+)/.exec(made.out)?.[1];
  assert.ok(key, made.out);
  const id = key.split('_')[1]!;
  assert.match(made.out, new RegExp(`Created operator key ${id} \\(noc-scripts\\)`));
  const check = await verifyApiKey(env.store, key);
  assert.ok(check.ok && check.key.role === 'operator');

  const ingest = avviso(['create', '--name', 'am', '--role', 'ingest', '--integration', 'alertmanager/noc', '--json']);
  assert.equal(ingest.code, 0, ingest.err);
  assert.equal(JSON.parse(ingest.out).integration, 'alertmanager/noc');

  const list = avviso(['list']);
  assert.equal(list.code, 0, list.err);
  assert.match(list.out, /^ID\s+NAME\s+ROLE\s+INTEGRATION/);
  assert.match(list.out, new RegExp(`${id}\\s+noc-scripts\\s+operator`));
  assert.ok(!list.out.includes(key.split('_').slice(2).join('_')), 'no secret in the list');

  const revoked = avviso(['revoke', id]);
  assert.equal(revoked.code, 0, revoked.err);
  assert.match(revoked.out, new RegExp(`Revoked key ${id} \\(noc-scripts\\)`));
  assert.equal((await verifyApiKey(env.store, key)).ok, false);
  assert.doesNotMatch(avviso(['list']).out, new RegExp(id));
  assert.match(avviso(['list', '--all']).out, new RegExp(`${id}.*\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}$`, 'm'));
});

test('mistakes are named, with what to do', () => {
  const noRole = avviso(['create', '--name', 'x']);
  assert.equal(noRole.code, 2);
  assert.match(noRole.err, /--name and --role are required/);
  const badRole = avviso(['create', '--name', 'x', '--role', 'root']);
  assert.equal(badRole.code, 2);
  assert.match(badRole.err, /role must be one of admin, operator, viewer, ingest/);
  const noIntegration = avviso(['create', '--name', 'x', '--role', 'ingest']);
  assert.equal(noIntegration.code, 2);
  assert.match(noIntegration.err, /<source>\/<name>/);
  const unknown = avviso(['revoke', 'nosuchkey']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.err, /no key nosuchkey/);
  const noMongo = avviso(['list'], { MONGODB_URI: undefined });
  assert.equal(noMongo.code, 2);
  assert.match(noMongo.err, /MONGODB_URI is not set/);
});
