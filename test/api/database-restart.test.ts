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
import { statusFeedCollections } from '../../channels/status-feed';

let ferret: ManagedProcess;
let store: Store;
let app: FastifyInstance;
let temporalClose: () => Promise<void>;
let key: string;
let startFerret: () => Promise<ManagedProcess>;
let ownUri: string;

before(async () => {
  const servers = sharedServers();
  const port = await restartablePort();
  startFerret = () =>
    startFerretDb({ port, dir: path.join(servers.tmpDir, `ferretdb-restart-${port}`), output: 'ignore' });
  ferret = await startFerret();
  ownUri = `mongodb://127.0.0.1:${port}/`;
  store = await connectStore(ownUri, 'restart');
  const temporal = await connectTemporal({
    address: servers.temporalAddress,
    namespace: 'default',
    taskQueue: 'database-restart',
  });
  temporalClose = () => temporal.connection.close();
  app = await buildApp({
    store,
    temporal,
    taskQueue: 'database-restart',
    publicUrl: 'http://127.0.0.1:1',
    plivoAuthToken: 'token',
    applyReceiptsEveryMs: 0,
  });
  key = (await createApiKey(store, { name: 'restart', role: 'operator', createdBy: 'test' })).key;
});
after(async () => {
  await app?.close();
  await store?.close();
  await temporalClose?.();
  await ferret?.stop();
});

const listIncidents = () =>
  app.inject({ method: 'GET', url: '/v1/incidents', headers: { authorization: `Bearer ${key}` } });

test(
  'while the database is down: 503 with Retry-After, saying what is unavailable; once it is back: served again by the same process',
  { timeout: 120_000 },
  async () => {
    assert.equal((await listIncidents()).statusCode, 200);

    await ferret.stop();
    const down = await listIncidents();
    assert.equal(down.statusCode, 503, down.body);
    assert.equal(down.headers['retry-after'], '5');
    assert.equal(down.json().error.code, 'unavailable');
    assert.match(down.json().error.message, /database/);

    ferret = await startFerret();
    const back = await eventually(
      'the API serves again',
      async () => {
        const r = await listIncidents();
        return r.statusCode === 200 ? r : undefined;
      },
      60_000,
    );
    assert.deepEqual(back.json().items, []);
    // Not a lucky moment: it keeps serving.
    for (let i = 0; i < 5; i++) assert.equal((await listIncidents()).statusCode, 200);
  },
);

test(
  'a client that stays without a server while a fresh connection works is replaced, and the store keeps serving through the new one',
  { timeout: 60_000 },
  async () => {
    const servers = sharedServers();
    const warnings: string[] = [];
    const own = await connectStore(servers.mongoUri, `t_wedge_${process.pid}`, {
      replaceWedgedAfterMs: 1000,
      log: (_level, msg) => warnings.push(msg),
    });
    try {
      await own.cursors.insertOne({ _id: 'before' });
      const feed = statusFeedCollections(own);
      const wedged = own.client;
      // What the driver reports when it has lost the server; here FerretDB is in fact fine, as it
      // was when the drill's API stayed stuck.
      wedged.emit('serverDescriptionChanged', { newDescription: { type: 'Unknown' } } as never);
      await eventually('the client replaced', async () => (own.client !== wedged ? true : undefined), 20_000);
      assert.match(
        warnings.join('\n'),
        /database client replaced: it had seen no database for \d+ s while a new connection worked/,
      );
      assert.deepEqual(
        await own.cursors.find({ _id: 'before' }).toArray(),
        [{ _id: 'before' }],
        'what was written before is read through the new client',
      );
      await feed.posts.countDocuments({});
      await assert.rejects(wedged.db('x').collection('y').findOne({}), 'the old client is closed');
    } finally {
      await own.db.dropDatabase().catch(() => undefined);
      await own.close();
    }
  },
);

test('a database that is really down is not "fixed" by replacing the client', { timeout: 60_000 }, async () => {
  const warnings: string[] = [];
  const own = await connectStore(ownUri, 'restart_down', {
    replaceWedgedAfterMs: 1000,
    log: (_level, msg) => warnings.push(msg),
  });
  try {
    await ferret.stop();
    const before = own.client;
    await own.cursors.findOne({}).catch(() => undefined); // the client finds the server gone
    await new Promise((r) => setTimeout(r, 6000));
    assert.equal(own.client, before);
    assert.deepEqual(warnings, []);
  } finally {
    ferret = await startFerret();
    await own.close();
  }
});
