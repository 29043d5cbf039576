/**
 * What a test file gets from the harness (./run.ts): the shared Temporal and FerretDB, and an
 * isolated database and task queue of its own, so test files can run side by side.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { connectStore, type Store } from '../../store/db';
import { connectTemporal } from '../../temporal/client';

export interface SharedServers {
  temporalAddress: string;
  mongoUri: string;
  workflowBundlePath: string;
  tmpDir: string;
}

export function sharedServers(): SharedServers {
  const { AVVISO_TEST_TEMPORAL_ADDRESS, AVVISO_TEST_MONGODB_URI, AVVISO_TEST_WORKFLOW_BUNDLE, AVVISO_TEST_TMP } =
    process.env;
  if (!AVVISO_TEST_TEMPORAL_ADDRESS || !AVVISO_TEST_MONGODB_URI || !AVVISO_TEST_WORKFLOW_BUNDLE || !AVVISO_TEST_TMP) {
    throw new Error(
      'This test needs the servers the harness starts: run it with `npm test`, or `node bin/avviso.js test test/<file>.test.ts`.',
    );
  }
  return {
    temporalAddress: AVVISO_TEST_TEMPORAL_ADDRESS,
    mongoUri: AVVISO_TEST_MONGODB_URI,
    workflowBundlePath: AVVISO_TEST_WORKFLOW_BUNDLE,
    tmpDir: AVVISO_TEST_TMP,
  };
}

export interface IsolatedEnv {
  servers: SharedServers;
  /** Unique to this test file: its database and task queue are named after it. */
  name: string;
  dbName: string;
  taskQueue: string;
  store: Store;
  temporal: Client;
  close(): Promise<void>;
}

export async function isolatedEnv(testFile: string): Promise<IsolatedEnv> {
  const servers = sharedServers();
  const base = path
    .basename(testFile)
    .replace(/\.test\.ts$/, '')
    .replace(/[^a-z0-9]/gi, '_')
    .slice(0, 30);
  const name = `${base}_${randomBytes(3).toString('hex')}`;
  const store = await connectStore(servers.mongoUri, `t_${name}`);
  const temporal = await connectTemporal({ address: servers.temporalAddress, namespace: 'default', taskQueue: name });
  return {
    servers,
    name,
    dbName: `t_${name}`,
    taskQueue: name,
    store,
    temporal,
    async close() {
      await store.db.dropDatabase().catch(() => undefined);
      await store.close();
      await temporal.connection.close();
    },
  };
}

/** Polls until `check` returns a value other than undefined, or fails after `timeoutMs` with `what`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
