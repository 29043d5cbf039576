/**
 * The database restarted under a running API (a FerretDB upgrade, a crash): while it is down the
 * API answers 503 with Retry-After, so monitoring tools and Plivo send again and nothing is lost,
 * and when it is back the same process serves again by itself, without a restart. This test
 * brings its own FerretDB, since it stops it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { restartablePort, type ManagedProcess } from '../../dev/process';
import { startFerretDb } from '../../dev/services';
import { buildApp } from '../../api/app';
import { connectStore, type Store } from '../../store/db';
import { connectTemporal } from '../../temporal/client';
import { createApiKey } from '../../store/api-keys';
import { eventually, sharedServers } from '../support/env';

let ferret: ManagedProcess;
let store: Store;
let app: FastifyInstance;
let temporalClose: () => Promise<void>;
let key: string;
let startFerret: () => Promise<ManagedProcess>;

before(async () => {
  const servers = sharedServers();
  const port = await restartablePort();
  startFerret = () => startFerretDb({ port, dir: path.join(servers.tmpDir, `ferretdb-restart-${port}`), output: 'ignore' });
  ferret = await startFerret();
  store = await connectStore(`mongodb://127.0.0.1:${port}/`, 'restart');
  const temporal = await connectTemporal({ address: servers.temporalAddress, namespace: 'default', taskQueue: 'database-restart' });
  temporalClose = () => temporal.connection.close();
  app = await buildApp({ store, temporal, taskQueue: 'database-restart', publicUrl: 'http://127.0.0.1:1', plivoAuthToken: 'token', applyReceiptsEveryMs: 0 });
  key = (await createApiKey(store, { name: 'restart', role: 'operator', createdBy: 'test' })).key;
});
after(async () => {
  await app?.close();
  await store?.close();
  await temporalClose?.();
  await ferret?.stop();
});

const listIncidents = () => app.inject({ method: 'GET', url: '/v1/incidents', headers: { authorization: `Bearer ${key}` } });

test('while the database is down: 503 with Retry-After, saying what is unavailable; once it is back: served again by the same process', { timeout: 120_000 }, async () => {
  assert.equal((await listIncidents()).statusCode, 200);

  await ferret.stop();
  const down = await listIncidents();
  assert.equal(down.statusCode, 503, down.body);
  assert.equal(down.headers['retry-after'], '5');
  assert.equal(down.json().error.code, 'unavailable');
  assert.match(down.json().error.message, /database/);

  ferret = await startFerret();
  const back = await eventually('the API serves again', async () => {
    const r = await listIncidents();
    return r.statusCode === 200 ? r : undefined;
  }, 60_000);
  assert.deepEqual(back.json().items, []);
  // Not a lucky moment: it keeps serving.
  for (let i = 0; i < 5; i++) assert.equal((await listIncidents()).statusCode, 200);
});
