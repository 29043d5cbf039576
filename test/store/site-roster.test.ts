/**
 * The per-site roster (store/site-roster.ts) behind the audience read (store/site-subscribers.ts):
 * after an import it answers exactly what the plain query answers (whole subscribers, Dates as
 * Dates, contract order, filters, projections, resumption); every write through the store's
 * functions (API create, update, move, delete, STOP/START, erasure) is seen by the next read; a
 * write that lands while a roster is being rebuilt leaves that roster stale, never wrong.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { Collection, Document } from 'mongodb';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import { runImport } from '../../import';
import { subscribersOfSites } from '../../store/site-subscribers';
import { scopeFilter } from '../../store/audience';
import {
  createSubscriber,
  deleteSubscriber,
  setOptedOut,
  subscriberFields,
  updateSubscriber,
} from '../../store/subscribers';
import { eraseSubscriber } from '../../store/privacy';
import { countSiteSubscribers, subscribersChanged } from '../../store/site-roster';
import type { Store } from '../../store/db';
import type { Subscriber } from '../../domain/types';

const AT = new Date('2026-06-15T10:00:00Z');
const SITES = ['ap-big', 'ap-small', 'ap-other'];
const SITES_CSV = [
  'site_id,name,area,kind,lat,lon,uplink',
  'bh-1,Backhaul,Lodi,tower,45.31,9.50,',
  'ap-big,Big,Lodi,access_point,45.31,9.50,bh-1',
  'ap-small,Small,Crema,access_point,45.36,9.68,bh-1',
  'ap-other,Other,Codogno,access_point,45.16,9.70,bh-1',
].join('\n');

/** 2,600 subscribers: ap-big has 2,200 (three roster documents), the rest split between two sites. */
function subscribersCsv(): string {
  const lines = [
    'contract_id,name,phones,email,language,site_id,segment,sms_alerts,sms_alerts_since,sms_alerts_until,opted_out,quiet_hours',
  ];
  for (let i = 0; i < 2600; i++) {
    const site = i % 13 < 2 ? SITES[1 + (i % 2)] : 'ap-big';
    lines.push(
      [
        `R-${String((i * 7919) % 10007).padStart(5, '0')}`, // not in file order
        `Cliente ${i}`,
        `347${String(2000000 + i)}`,
        i % 4 === 0 ? `c${i}@example.it` : '',
        i % 5 === 0 ? 'en' : 'it',
        site,
        i % 3 === 0 ? 'business' : 'residential',
        i % 2 === 0 ? 'yes' : 'no',
        i % 6 === 0 && i % 10 !== 0 ? '2026-07-01' : '2025-01-01',
        i % 10 === 0 ? '2026-06-01' : '',
        i % 17 === 0 ? 'yes' : '',
        i % 20 === 0 ? '22:00-07:00' : '',
      ].join(','),
    );
  }
  return lines.join('\n');
}

const from = (text: string) => Readable.from([Buffer.from(text)]);

/** The plain query's answer: every subscriber of the sites matching `filter`, in contract order. */
const plain = (store: Store, filter: Document = {}, projection?: Document) =>
  store.subscribers
    .find({ siteId: { $in: SITES }, ...filter }, projection ? { projection } : {})
    .sort({ _id: 1 })
    .toArray();

async function read(store: Store, opts: Parameters<typeof subscribersOfSites>[2] = {}): Promise<Document[]> {
  const out: Document[] = [];
  for await (const s of subscribersOfSites<Subscriber>(store, SITES, opts)) out.push(s);
  return out;
}

const rosterDocs = (store: Store) =>
  store.db.collection<{ siteId: string; gen: number; members: string[] }>('site_rosters');

describe('per-site roster', () => {
  let env: IsolatedEnv;

  before(async () => {
    env = await isolatedEnv(__filename);
    await runImport(env.store, 'sites', from(SITES_CSV), { format: 'csv', now: AT });
    const r = await runImport(env.store, 'subscribers', from(subscribersCsv()), { format: 'csv', now: AT });
    assert.equal(r.created, 2600);
  });
  after(async () => env?.close());

  test('after an import, the sites are read from their rosters, the same answer as the plain query', async () => {
    const store = env.store;
    const docs = await rosterDocs(store).find({}).toArray();
    assert.deepEqual(
      docs.map((d) => `${d.siteId}:${d.members.length}`).sort(),
      ['ap-big:1000', 'ap-big:1000', 'ap-big:200', 'ap-other:200', 'ap-small:200'].sort(),
      'the import left a roster of every site it wrote, in documents of up to 1,000',
    );
    const expected = await plain(store);
    const got = await read(store);
    assert.equal(got.length, 2600);
    assert.deepEqual(got, expected, 'whole subscribers, Dates as Dates, in contract order');
    assert.ok(got.some((s) => s.smsAlerts.since instanceof Date && s.createdAt instanceof Date));

    // The SMS notice scope, a projection, a resumed read: each as the database answers it.
    const smsNotice = scopeFilter('smsNotice', AT);
    assert.deepEqual(await read(store, { filter: smsNotice }), await plain(store, smsNotice));
    const projection = { _id: 1, phones: 1, language: 1, siteId: 1 };
    assert.deepEqual(await read(store, { filter: smsNotice, projection }), await plain(store, smsNotice, projection));
    const middle = expected[1300]!._id;
    assert.deepEqual(
      await read(store, { after: middle, filter: { language: 'en' } }),
      expected.filter((s) => s._id > middle && s.language === 'en'),
    );
    const unordered = await read(store, { ordered: false, projection: { siteId: 1 } });
    assert.deepEqual(
      unordered.map((s) => s._id).sort(),
      expected.map((s) => s._id),
    );
  });

  test('what is read is the roster: a write beside the store functions shows only once it is announced', async () => {
    const store = env.store;
    const victim = (await plain(store, { siteId: 'ap-small' }))[0]!;
    await store.subscribers.updateOne({ _id: victim._id }, { $set: { name: 'Written beside the store' } });
    const unannounced = (await read(store)).find((s) => s._id === victim._id)!;
    assert.equal(unannounced.name, victim.name, 'the roster was read, not the subscriber documents');
    await subscribersChanged(store, ['ap-small']);
    assert.equal((await read(store)).find((s) => s._id === victim._id)!.name, 'Written beside the store');
    assert.deepEqual(await read(store), await plain(store));
  });

  test('a writer that died between its write and its bump: its mark keeps the roster unread, and once lapsed is bumped', async () => {
    const store = env.store;
    const marks = store.db.collection<{ _id: string; siteId: string; expiresAt: Date }>('site_writes');
    const victim = (await plain(store, { siteId: 'ap-other' }))[0]!;
    // What a store writer does before it writes (writingSubscribers), then the write, then nothing: it died.
    await marks.insertOne({
      _id: 'ap-other|dead-writer',
      siteId: 'ap-other',
      expiresAt: new Date(Date.now() + 60_000),
    });
    await store.subscribers.updateOne({ _id: victim._id }, { $set: { name: 'Written by a writer that died' } });
    assert.equal(
      (await read(store)).find((s) => s._id === victim._id)!.name,
      'Written by a writer that died',
      'a site being written is scanned, not read from its roster',
    );
    // Its lease lapses: the next read makes the bump it never made, and the roster rebuilt then is current.
    await marks.updateOne({ _id: 'ap-other|dead-writer' }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
    assert.deepEqual(await read(store), await plain(store));
    assert.equal(await marks.countDocuments({ siteId: 'ap-other' }), 0, 'the lapsed mark is removed');
    assert.equal(
      (await read(store)).find((s) => s._id === victim._id)!.name,
      'Written by a writer that died',
      'and the roster read now holds the write',
    );
    assert.equal(
      (await rosterDocs(store).findOne({ siteId: 'ap-other' }))!.members.some((m) => m.includes('a writer that died')),
      true,
      'the rebuilt roster holds it',
    );
  });

  test("the audience count is the rosters' length: it follows every write, announced, and a site being written is counted from its documents", async () => {
    const store = env.store;
    const count = () => countSiteSubscribers(store, SITES);
    const plainCount = () => store.subscribers.countDocuments({ siteId: { $in: SITES } });
    await read(store); // the rosters are current
    assert.equal(await count(), await plainCount());
    await createSubscriber(
      store,
      'R-COUNT',
      subscriberFields({ name: 'Conta', phones: ['3479999990'], siteId: 'ap-small', smsAlerts: { active: true } }),
      AT,
    );
    assert.equal(await count(), await plainCount(), 'a subscriber created through the store');
    await deleteSubscriber(store, 'R-COUNT');
    assert.equal(await count(), await plainCount(), 'and deleted');

    // Written beside the store: the count is the roster's until the write is announced.
    await read(store); // the rosters are current again
    const before = await count();
    const stray = { ...(await plain(store, { siteId: 'ap-small' }))[0]!, _id: 'R-STRAY' } as Subscriber;
    await store.subscribers.insertOne(stray);
    assert.equal(await count(), before, 'the rosters were counted, not the documents');
    // A writer's mark on the site: its documents are counted.
    const marks = store.db.collection<{ _id: string; siteId: string; expiresAt: Date }>('site_writes');
    await marks.insertOne({
      _id: 'ap-small|counting-writer',
      siteId: 'ap-small',
      expiresAt: new Date(Date.now() + 60_000),
    });
    assert.equal(await count(), before + 1, 'a site being written is counted from its documents');
    await store.subscribers.deleteOne({ _id: 'R-STRAY' });
    await marks.deleteOne({ _id: 'ap-small|counting-writer' });
    await subscribersChanged(store, ['ap-small']);
    assert.equal(await count(), await plainCount());
  });

  test('every write through the store is seen by the next read: create, update, move, delete, STOP, START', async () => {
    const store = env.store;
    await read(store); // the rosters are current before each write below
    const field = (input: Parameters<typeof subscriberFields>[0]) => subscriberFields(input);
    const created = await createSubscriber(
      store,
      'R-NEW',
      field({ name: 'Nuovo', phones: ['3479999999'], siteId: 'ap-small', smsAlerts: { active: true } }),
      AT,
    );
    assert.deepEqual(
      (await read(store)).find((s) => s._id === 'R-NEW'),
      created,
    );

    const [a, b, c] = await plain(store, { siteId: 'ap-big' });
    await read(store);
    await updateSubscriber(store, a!._id, { language: a!.language === 'it' ? 'en' : 'it' }, AT);
    assert.deepEqual(await read(store), await plain(store), 'an update');

    await updateSubscriber(store, b!._id, { siteId: 'ap-other' }, AT);
    const moved = await read(store);
    assert.equal(moved.filter((s) => s._id === b!._id).length, 1, 'a subscriber who moved is read once');
    assert.deepEqual(moved, await plain(store), 'a move: the site it left and the one it joined');

    await deleteSubscriber(store, c!._id);
    assert.deepEqual(await read(store), await plain(store), 'a delete');

    await setOptedOut(store, ['R-NEW'], true, AT);
    assert.equal((await read(store)).find((s) => s._id === 'R-NEW')!.optedOut, true, 'STOP');
    await setOptedOut(store, ['R-NEW'], false, AT);
    assert.equal((await read(store)).find((s) => s._id === 'R-NEW')!.optedOut, false, 'START');
    assert.deepEqual(await read(store), await plain(store));
  });

  test('an erased subscriber is gone from the read and from the roster documents themselves', async () => {
    const store = env.store;
    const gone = (await plain(store, { siteId: 'ap-big' }))[5]!;
    await read(store);
    await eraseSubscriber(store, gone._id);
    assert.equal(
      (await read(store)).find((s) => s._id === gone._id),
      undefined,
    );
    const stored = await rosterDocs(store).find({ siteId: 'ap-big' }).toArray();
    assert.ok(stored.length > 0);
    assert.ok(!stored.some((d) => d.members.some((m) => m.includes(gone._id) || m.includes(gone.phones[0]!))));
  });

  test('a write that lands while a roster is rebuilt leaves it stale, not wrong', async () => {
    const store = env.store;
    const target = (await plain(store, { siteId: 'ap-other' }))[0]!;
    await subscribersChanged(store, ['ap-other']); // the next read rebuilds ap-other's roster
    // The rebuild's scan of ap-other, and right after it (before the roster is written) an update
    // through the API's function: the scan has not seen it.
    const racing = racingStore(store, async () => {
      await updateSubscriber(store, target._id, { name: 'Changed during the rebuild' }, AT);
    });
    const during = (await read(racing)).find((s) => s._id === target._id)!;
    assert.equal(during.name, target.name, 'the read that raced the write answers as of before it');
    const next = await read(store);
    assert.equal(next.find((s) => s._id === target._id)!.name, 'Changed during the rebuild');
    assert.deepEqual(next, await plain(store));
  });
});

/**
 * The store, except that the first time a site's subscribers are scanned, `write` runs as soon as
 * the scan has its answer: a real write between a rebuild's scan and its roster's write.
 */
function racingStore(store: Store, write: () => Promise<void>): Store {
  let done = false;
  const subscribers = new Proxy(store.subscribers, {
    get(target, prop, receiver) {
      if (prop !== 'find') return Reflect.get(target, prop, receiver);
      return (...args: Parameters<Collection<Subscriber>['find']>) => {
        const cursor = target.find(...args);
        const toArray = cursor.toArray.bind(cursor);
        cursor.toArray = async () => {
          const found = await toArray();
          if (!done) {
            done = true;
            await write();
          }
          return found;
        };
        return cursor;
      };
    },
  });
  return new Proxy(store, { get: (t, p, r) => (p === 'subscribers' ? subscribers : Reflect.get(t, p, r)) });
}

describe('per-site roster, an import over many sites', () => {
  let env: IsolatedEnv;
  before(async () => (env = await isolatedEnv(__filename)));
  after(async () => env?.close());

  test('the rosters rebuilt in one pass over the subscribers answer as the plain query does, site by site', async () => {
    const store = env.store;
    const sites = Array.from({ length: 40 }, (_, i) => `ap-${String(i).padStart(2, '0')}`);
    const sitesCsv = ['site_id,name,area,kind,lat,lon,uplink', 'bh-1,Backhaul,Lodi,tower,45.31,9.50,']
      .concat(sites.map((s) => `${s},${s},Lodi,access_point,45.31,9.50,bh-1`))
      .join('\n');
    const subscribersCsv = ['contract_id,name,phones,site_id,sms_alerts,sms_alerts_since']
      .concat(
        Array.from(
          { length: 400 },
          (_, i) =>
            `M-${String((i * 37) % 401).padStart(3, '0')},Cliente ${i},347${3000000 + i},${sites[i % 40]},yes,2026-01-01`,
        ),
      )
      .join('\n');
    await runImport(store, 'sites', from(sitesCsv), { format: 'csv', now: AT });
    await runImport(store, 'subscribers', from(subscribersCsv), { format: 'csv', now: AT });
    const docs = await rosterDocs(store).find({}).toArray();
    assert.equal(docs.length, 40, 'one roster document per site');
    const gens = await store.db.collection<{ _id: string; gen: number }>('site_generations').find({}).toArray();
    const genOf = new Map(gens.map((g) => [g._id, g.gen]));
    assert.ok(
      docs.every((d) => d.gen === genOf.get(d.siteId) && d.members.length === 10),
      'each current, 10 members',
    );
    const got: Document[] = [];
    for await (const s of subscribersOfSites<Subscriber>(store, sites)) got.push(s);
    assert.deepEqual(got, await store.subscribers.find({}).sort({ _id: 1 }).toArray());
  });
});
