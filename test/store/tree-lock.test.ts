/**
 * The per-tree lock that serializes correlation decisions (store/tree-lock.ts), on real FerretDB:
 * one holder at a time in this process (the lock lingers after a release and is handed on without
 * a write), a holder in another process (its document) keeps this one waiting, a released lock's
 * document is gone soon after, and one left by a dead process expires.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { withTreeLocks } from '../../store/tree-lock';
import { withCoveragePlanning } from '../../store/coverage';
import { loadDemoDataIfEmpty } from '../../store/demo';
import { eventually, isolatedEnv, type IsolatedEnv } from '../support/env';

describe('tree locks', () => {
  let env: IsolatedEnv;
  before(async () => {
    env = await isolatedEnv(__filename);
  });
  after(async () => env?.close());
  const locks = () => env.store.db.collection<{ _id: string; owner: string; expiresAt: Date }>('tree_locks');

  test('one holder at a time; back-to-back holders in this process take it over without writing', async () => {
    let inside = 0;
    let most = 0;
    const order: number[] = [];
    const owners = new Set<string>();
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        withTreeLocks(env.store, ['tower-a'], async () => {
          inside++;
          most = Math.max(most, inside);
          owners.add((await locks().findOne({ _id: 'tree:tower-a' }))!.owner);
          await new Promise((r) => setTimeout(r, 5));
          order.push(i);
          inside--;
        }),
      ),
    );
    assert.equal(most, 1, 'never two holders at once');
    assert.equal(order.length, 12);
    assert.ok(
      owners.size < 12,
      `the lock was handed on in this process, not written once per holder (${owners.size} writes for 12 holders)`,
    );
    await eventually(
      'the lock released once nobody wants it',
      async () => ((await locks().countDocuments({ _id: 'tree:tower-a' })) === 0 ? true : undefined),
      5_000,
    );
  });

  test('a lock held by another process keeps this one waiting until it is released', async () => {
    await locks().insertOne({
      _id: 'tree:tower-b',
      owner: 'another-process',
      expiresAt: new Date(Date.now() + 30_000),
    });
    let ran = false;
    const waiting = withTreeLocks(env.store, ['tower-b'], async () => {
      ran = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(ran, false, 'waits while the other holds it');
    await locks().deleteOne({ _id: 'tree:tower-b', owner: 'another-process' });
    await waiting;
    assert.equal(ran, true);
  });

  test('a lock left by a process that died is taken over once its lease has expired', async () => {
    await locks().insertOne({ _id: 'tree:tower-d', owner: 'dead-process', expiresAt: new Date(Date.now() - 1_000) });
    let ran = false;
    await withTreeLocks(env.store, ['tower-d'], async () => {
      ran = true;
    });
    assert.equal(ran, true, 'an expired lock is taken over');
  });

  test('outage plannings over one tree run one at a time; over another tree, side by side', async () => {
    await loadDemoDataIfEmpty(env.store);
    const inside = new Map<string, number>();
    const overlaps: string[] = [];
    const plan = (label: string, site: string) =>
      withCoveragePlanning(env.store, [site], async () => {
        for (const [other, n] of inside) if (n > 0) overlaps.push(`${label} with ${other}`);
        inside.set(label, (inside.get(label) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 300));
        inside.set(label, inside.get(label)! - 1);
      });
    // ap-lodi-02-a hangs from tower-lodi-02, which hangs from tower-lodi-01: one tree. Crema is another.
    await Promise.all([plan('lodi relay', 'tower-lodi-01'), plan('lodi access point', 'ap-lodi-02-a')]);
    assert.deepEqual(overlaps, [], 'two plannings over one tree never at once');
    await Promise.all([plan('lodi', 'tower-lodi-02'), plan('crema', 'tower-crema-01')]);
    assert.equal(overlaps.length, 1, `plannings over two trees at once: ${JSON.stringify(overlaps)}`);
    assert.equal(await locks().countDocuments({ _id: /^tree:/ }), 0, 'the correlation locks are not the planning ones');
  });

  test('a holder that runs past its lease keeps the lock (renewed); a dead one loses it once the lease lapses', async () => {
    const order: string[] = [];
    let released = false;
    const long = withTreeLocks(
      env.store,
      ['tower-e'],
      async () => {
        order.push('long in');
        await new Promise((r) => setTimeout(r, 1500)); // more than twice its lease
        order.push('long out');
        released = true;
      },
      { kind: 'plan', leaseMs: 600 },
    );
    await new Promise((r) => setTimeout(r, 50));
    await withTreeLocks(env.store, ['tower-e'], async () => void order.push(released ? 'next in' : 'next too early'), {
      kind: 'plan',
      leaseMs: 600,
      waitMs: 5000,
    });
    await long;
    assert.deepEqual(order, ['long in', 'long out', 'next in'], 'the renewed lease kept the next one out');

    await locks().insertOne({ _id: 'plan:tower-f', owner: 'killed-worker', expiresAt: new Date(Date.now() + 500) });
    const t0 = Date.now();
    await withTreeLocks(env.store, ['tower-f'], async () => undefined, { kind: 'plan', waitMs: 5000 });
    assert.ok(Date.now() - t0 >= 400, "waited for the dead holder's lease to lapse, no longer");
  });
});
