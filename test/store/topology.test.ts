/**
 * The network stays a forest: loops and unknown uplinks are refused, whether they come from an
 * import file alone, from a file together with the sites already stored, or from one change.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { refusedSites } from '../../store/topology';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import { runImport } from '../../import';
import { createSite, deleteSite, siteFields, updateSite } from '../../store/sites';
import { RecordError } from '../../store/errors';
import { downstreamSites } from '../../store/network';

const uplinks = (pairs: [string, string | null][]) => new Map(pairs);

describe('forest check (pure)', () => {
  test('a self-loop, a loop within the proposal, an unknown uplink', () => {
    const refused = refusedSites(uplinks([['root', null]]), [
      { id: 'self', uplink: 'self', line: 2 },
      { id: 'a', uplink: 'b', line: 3 },
      { id: 'b', uplink: 'c', line: 4 },
      { id: 'c', uplink: 'a', line: 5 },
      { id: 'orphan', uplink: 'nowhere', line: 6 },
      { id: 'fine', uplink: 'root', line: 7 },
    ]);
    assert.deepEqual([...refused.keys()].sort(), ['a', 'b', 'c', 'orphan', 'self']);
    assert.match(refused.get('self')!, /loop: self → self/);
    assert.match(refused.get('a')!, /would make a loop: a → b → c → a/);
    assert.match(refused.get('orphan')!, /"nowhere" is not a known site/);
  });

  test('a loop through stored sites: moving a tower under its own descendant is refused', () => {
    const stored = uplinks([
      ['bh', null],
      ['t1', 'bh'],
      ['t2', 't1'],
      ['ap', 't2'],
    ]);
    const refused = refusedSites(stored, [{ id: 't1', uplink: 'ap' }]);
    assert.match(refused.get('t1')!, /loop: t1 → ap → t2 → t1/);
  });

  test('rows that hang from a refused new site are refused too; a refused stored site keeps its old uplink', () => {
    const stored = uplinks([
      ['bh', null],
      ['t1', 'bh'],
    ]);
    const refused = refusedSites(stored, [
      { id: 'x', uplink: 'y', line: 2 },
      { id: 'y', uplink: 'x', line: 3 },
      { id: 'child-of-x', uplink: 'x', line: 4 },
      { id: 'grandchild', uplink: 'child-of-x', line: 5 },
      // t1 is stored: refusing its change leaves it under bh, so a new site under it is fine.
      { id: 't1', uplink: 'missing', line: 6 },
      { id: 't1-ap', uplink: 't1', line: 7 },
    ]);
    assert.match(refused.get('child-of-x')!, /"x" was refused \(line 2\)/);
    assert.match(refused.get('grandchild')!, /"child-of-x" was refused \(line 4\)/);
    assert.match(refused.get('t1')!, /"missing" is not a known site/);
    assert.equal(refused.has('t1-ap'), false);
    assert.equal(refused.size, 5);
  });

  test('re-parenting both ends of a link in one go, and a deep chain, are fine', () => {
    const stored = uplinks([
      ['a', null],
      ['b', 'a'],
    ]);
    assert.equal(
      refusedSites(stored, [
        { id: 'b', uplink: null },
        { id: 'a', uplink: 'b' },
      ]).size,
      0,
    );
    const chain = Array.from({ length: 2000 }, (_, i) => ({ id: `n${i}`, uplink: i === 0 ? null : `n${i - 1}` }));
    assert.equal(refusedSites(new Map(), chain.reverse()).size, 0);
  });
});

describe('forest check (stored)', () => {
  let env: IsolatedEnv;
  const importSites = (csv: string) =>
    runImport(env.store, 'sites', Readable.from([Buffer.from(csv)]), { format: 'csv' });

  before(async () => {
    env = await isolatedEnv(__filename);
    const r = await importSites(
      'site_id,name,area,uplink\nbh,Backhaul,Lodi,\nt1,Torre 1,Lodi,bh\nt2,Torre 2,Lodi,t1\nap2,AP 2,Lodi,t2\n',
    );
    assert.equal(r.created, 4);
  });
  after(async () => env?.close());

  test('an import that would close a loop with stored sites is refused, and the stored network is unchanged', async () => {
    const r = await importSites('site_id,name,area,uplink\nt1,Torre 1,Lodi,ap2\nnew-ap,AP nuovo,Lodi,t1\n');
    assert.equal(r.rejected, 1);
    assert.deepEqual(
      r.rejections.map((x) => [x.line, x.id]),
      [[2, 't1']],
    );
    assert.match(r.rejections[0]!.reason, /loop: t1 → ap2 → t2 → t1/);
    assert.equal((await env.store.sites.findOne({ _id: 't1' }))?.uplink, 'bh');
    assert.equal(r.created, 1, 'new-ap hangs from the stored t1, which stays');
    assert.deepEqual(
      (await downstreamSites(env.store, ['bh'])).map((s) => s._id),
      ['ap2', 'bh', 'new-ap', 't1', 't2'],
    );
  });

  test('an import that swaps a parent and its child is written without ever making a loop', async () => {
    const r = await importSites('site_id,name,area,uplink\nt1,Torre 1,Lodi,t2\nt2,Torre 2,Lodi,bh\n');
    assert.equal(r.updated, 2, JSON.stringify(r.rejections));
    assert.equal((await env.store.sites.findOne({ _id: 't2' }))?.uplink, 'bh');
    assert.equal((await env.store.sites.findOne({ _id: 't1' }))?.uplink, 't2');
  });

  test('one change through the store: a loop or an unknown uplink is refused with a reason; deleting a site in use is refused', async () => {
    const now = new Date();
    await assert.rejects(
      updateSite(env.store, 'bh', { uplink: 'ap2' }, now),
      (err: RecordError) => err.code === 'site_cycle' && /loop/.test(err.message),
    );
    await assert.rejects(
      createSite(env.store, 'x', siteFields({ name: 'X', area: 'Lodi', uplink: 'nope' }), now),
      (err: RecordError) => err.code === 'unknown_uplink',
    );
    await assert.rejects(
      deleteSite(env.store, 't2'),
      (err: RecordError) => err.code === 'site_in_use' && /feeds/.test(err.message),
    );
    const moved = await updateSite(env.store, 'ap2', { uplink: 'bh' }, now);
    assert.equal(moved.uplink, 'bh');
  });

  test('the downstream walk ends even on a loop written behind our back', async () => {
    await env.store.sites.insertMany([
      { _id: 'loop-a', name: 'A', area: 'X', uplink: 'loop-b' },
      { _id: 'loop-b', name: 'B', area: 'X', uplink: 'loop-a' },
    ]);
    assert.deepEqual(
      (await downstreamSites(env.store, ['loop-a'])).map((s) => s._id),
      ['loop-a', 'loop-b'],
    );
  });
});
