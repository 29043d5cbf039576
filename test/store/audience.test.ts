/**
 * Audience resolution against FerretDB: a backhaul tower down takes every site it feeds down
 * with it, at every level; subscribers come in contract order, a page at a time; the paid SMS
 * option is judged at a fixed moment; and asking twice gives the same answer.
 *
 *   bh-north (backhaul, Lodi)
 *     ├─ tw-a (Lodi) ── ap-a1, ap-a2
 *     └─ tw-b (Casale) ── tw-c (Codogno) ── ap-c1
 *   bh-south (Crema) ── ap-s1          (unrelated)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import { audienceFilter, depthBelow, resolveAudience, scopeFilter, smsAlertsInForce } from '../../store/audience';
import { subscriberBatchesOfSites, subscribersOfSites } from '../../store/site-subscribers';
import { operatorRecipients } from '../../store/operator-audience';
import type { Site, Subscriber } from '../../domain/types';

const site = (id: string, area: string, uplink: string | null): Site => ({
  _id: id,
  name: id,
  area,
  kind: id.startsWith('ap') ? 'access_point' : 'tower',
  uplink,
});
const SITES = [
  site('bh-north', 'Lodi', null),
  site('tw-a', 'Lodi', 'bh-north'),
  site('ap-a1', 'Lodi', 'tw-a'),
  site('ap-a2', 'Lodi', 'tw-a'),
  site('tw-b', 'Casale', 'bh-north'),
  site('tw-c', 'Codogno', 'tw-b'),
  site('ap-c1', 'Codogno', 'tw-c'),
  site('bh-south', 'Crema', null),
  site('ap-s1', 'Crema', 'bh-south'),
];

const AT = new Date('2026-06-15T10:00:00Z');
const NORTH = ['ap-a1', 'ap-a2', 'tw-b', 'tw-c', 'ap-c1', 'bh-north'];

/** 60 subscribers under bh-north in every combination that matters, 10 under bh-south. */
function subscribers(): Subscriber[] {
  const out: Subscriber[] = [];
  for (let i = 0; i < 70; i++) {
    const north = i < 60;
    const variant = i % 6;
    out.push({
      _id: `K-${String(i).padStart(3, '0')}`,
      name: `Cliente ${i}`,
      phones:
        i % 10 === 0
          ? [`+39347300${String(i).padStart(4, '0')}`, `+39328300${String(i).padStart(4, '0')}`]
          : [`+39347300${String(i).padStart(4, '0')}`],
      ...(i % 4 === 0 ? { email: `c${i}@example.it` } : {}),
      language: i % 5 === 0 ? 'en' : 'it',
      siteId: north ? NORTH[i % NORTH.length]! : 'ap-s1',
      segment: i % 3 === 0 ? 'business' : 'residential',
      smsAlerts:
        variant === 0
          ? { active: true }
          : variant === 1
            ? { active: true, since: new Date('2026-01-01T00:00:00Z') }
            : variant === 2
              ? { active: true, until: new Date('2026-06-01T00:00:00Z') } // expired before AT
              : variant === 3
                ? { active: true, since: new Date('2026-07-01T00:00:00Z') } // not yet started
                : variant === 4
                  ? { active: false }
                  : { active: true, since: new Date('2026-06-15T10:00:00Z'), until: new Date('2026-06-15T10:00:01Z') }, // starts exactly at AT
      optedOut: i % 7 === 0,
    });
  }
  return out;
}

describe('audience resolution', () => {
  let env: IsolatedEnv;
  const all = subscribers();
  const expectedIds = (siteIds: string[], scope: 'all' | 'smsNotice') =>
    all
      .filter((s) => siteIds.includes(s.siteId) && (scope === 'all' || (!s.optedOut && smsAlertsInForce(s, AT))))
      .map((s) => s._id)
      .sort();

  before(async () => {
    env = await isolatedEnv(__filename);
    await env.store.sites.insertMany(SITES);
    // Inserted out of order, so that contract order has to come from the query.
    await env.store.subscribers.insertMany([...all].reverse());
  });
  after(async () => env?.close());

  test('a backhaul tower down takes every site below it down, at every level, and nothing else', async () => {
    const a = await resolveAudience(env.store, ['bh-north'], { at: AT });
    assert.deepEqual(a.siteIds, ['ap-a1', 'ap-a2', 'ap-c1', 'bh-north', 'tw-a', 'tw-b', 'tw-c']);
    assert.deepEqual(a.areas, ['Casale', 'Codogno', 'Lodi']);
    const depth = depthBelow(a.sites, ['bh-north']);
    assert.deepEqual(Object.fromEntries(depth), {
      'bh-north': 0,
      'tw-a': 1,
      'ap-a1': 2,
      'ap-a2': 2,
      'tw-b': 1,
      'tw-c': 2,
      'ap-c1': 3,
    });

    const b = await resolveAudience(env.store, ['tw-b'], { at: AT });
    assert.deepEqual(b.siteIds, ['ap-c1', 'tw-b', 'tw-c']);
    const leaf = await resolveAudience(env.store, ['ap-a1'], { at: AT });
    assert.deepEqual(leaf.siteIds, ['ap-a1']);
  });

  test('subscribers come in contract order, in pages no larger than asked, each exactly once, over more than one page', async () => {
    const a = await resolveAudience(env.store, ['bh-north'], { at: AT, pageSize: 7 });
    const pages: string[][] = [];
    for await (const page of a.pages()) pages.push(page.map((s) => s._id));
    assert.ok(pages.length > 5, `${pages.length} pages`);
    assert.ok(pages.every((p) => p.length <= 7));
    assert.ok(
      pages.slice(0, -1).every((p) => p.length === 7),
      'only the last page is short',
    );
    const flat = pages.flat();
    assert.deepEqual(flat, [...flat].sort(), 'contract order');
    assert.equal(new Set(flat).size, flat.length, 'nobody twice');
    assert.deepEqual(flat, expectedIds(NORTH.concat('tw-a'), 'all'));
    assert.equal(flat.length, 60);
  });

  test('the SMS notice audience: paid option in force at the given moment, not opted out', async () => {
    const a = await resolveAudience(env.store, ['bh-north'], { at: AT, pageSize: 5 });
    const ids: string[] = [];
    for await (const page of a.pages('smsNotice')) ids.push(...page.map((s) => s._id));
    assert.deepEqual(ids, expectedIds(NORTH, 'smsNotice'));
    assert.ok(ids.length > 0);
    const viaCursor = (await a.cursor('smsNotice').toArray()).map((s) => s._id);
    assert.deepEqual(viaCursor, ids, 'the cursor and the pages agree');
    // Later, the options that had not started yet are in force, the one-second one has ended.
    const later = await resolveAudience(env.store, ['bh-north'], { at: new Date('2026-07-02T00:00:00Z') });
    const laterIds = (await later.cursor('smsNotice').toArray()).map((s) => s._id);
    assert.notDeepEqual(laterIds, ids);
    assert.ok(
      laterIds.includes('K-003') || laterIds.includes('K-009'),
      'an option that starts in July is in force in July',
    );
  });

  test('counts by alert option, language, segment and channel add up', async () => {
    const a = await resolveAudience(env.store, ['bh-north'], { at: AT });
    const c = await a.counts();
    const served = all.filter((s) => s.siteId !== 'ap-s1');
    const notOut = served.filter((s) => !s.optedOut);
    const notice = notOut.filter((s) => smsAlertsInForce(s, AT));
    assert.equal(c.subscribers, 60);
    assert.deepEqual(c.byAlertOption, {
      paid: served.filter((s) => smsAlertsInForce(s, AT)).length,
      unpaid: served.filter((s) => !smsAlertsInForce(s, AT)).length,
    });
    assert.deepEqual(c.byLanguage, {
      it: served.filter((s) => s.language === 'it').length,
      en: served.filter((s) => s.language === 'en').length,
    });
    assert.deepEqual(c.bySegment, {
      residential: served.filter((s) => s.segment === 'residential').length,
      business: served.filter((s) => s.segment === 'business').length,
    });
    assert.deepEqual(c.byChannel, { sms: notOut.length, email: notOut.filter((s) => s.email).length });
    assert.equal(c.optedOut, served.length - notOut.length);
    assert.deepEqual(c.smsNotice, {
      subscribers: notice.length,
      phones: notice.reduce((n, s) => n + s.phones.length, 0),
    });
    assert.equal(c.smsNotice.subscribers, expectedIds(NORTH, 'smsNotice').length);
  });

  test('the same question twice gives the same answer, whatever the page size', async () => {
    const ask = async (pageSize: number) => {
      const a = await resolveAudience(env.store, ['tw-b', 'bh-north', 'tw-b'], { at: AT, pageSize });
      const ids: string[] = [];
      for await (const page of a.pages('smsNotice')) ids.push(...page.map((s) => s._id));
      return { sites: a.siteIds, ids, counts: await a.counts(), requested: a.requestedSiteIds };
    };
    const first = await ask(4);
    const second = await ask(4);
    const third = await ask(1000);
    assert.deepEqual(second, first);
    assert.deepEqual(third, first);
    assert.deepEqual(first.requested, ['bh-north', 'tw-b']);
  });

  test('unknown site ids are reported, and reach nobody', async () => {
    const a = await resolveAudience(env.store, ['tw-nowhere', 'ap-s1'], { at: AT });
    assert.deepEqual(a.unknownSiteIds, ['tw-nowhere']);
    assert.deepEqual(a.siteIds, ['ap-s1']);
    assert.equal((await a.counts()).subscribers, 10);
    const none = await resolveAudience(env.store, ['tw-nowhere'], { at: AT });
    assert.equal((await none.cursor().toArray()).length, 0);
  });

  test('a consumer that stops early leaves no cursor open', async () => {
    const a = await resolveAudience(env.store, ['bh-north'], { at: AT, pageSize: 3 });
    for await (const page of a.pages()) {
      assert.equal(page.length, 3);
      break;
    }
    // If the cursor had leaked, FerretDB would keep it; a fresh resolution still works.
    assert.equal((await (await resolveAudience(env.store, ['bh-north'], { at: AT })).counts()).subscribers, 60);
  });
  test('the subscribers of a set of sites, read per site, are those of one plain query, in the same order, from any point', async () => {
    const sites = NORTH.concat('tw-a', 'bh-south', 'ap-s1');
    const plain = (await env.store.subscribers.find(audienceFilter(sites, 'smsNotice', AT)).toArray())
      .map((s) => s._id)
      .sort();
    assert.ok(plain.length > 5, `${plain.length} subscribers`);
    const read = async (opts: Parameters<typeof subscribersOfSites>[2]) => {
      const ids: string[] = [];
      for await (const s of subscribersOfSites(env.store, sites, opts)) ids.push(s._id);
      return ids;
    };
    const filter = scopeFilter('smsNotice', AT);
    assert.deepEqual(await read({ filter, batchSize: 2 }), plain);
    assert.deepEqual(await read({ filter, after: plain[2]! }), plain.slice(3), 'resumed after a contract id');
    assert.deepEqual((await read({ filter, ordered: false })).sort(), plain, 'unordered: the same subscribers');
    assert.equal((await read({})).length, 70, 'every subscriber of both backhauls');
    for (const ordered of [true, false]) {
      const batches: string[][] = [];
      for await (const b of subscriberBatchesOfSites(env.store, sites, { filter, batchSize: 4, ordered }))
        batches.push(b.map((s) => s._id));
      assert.ok(
        batches.length > 2 && batches.every((b) => b.length > 0 && b.length <= 4),
        `batches of ${batches.map((b) => b.length)}`,
      );
      const flat = batches.flat();
      assert.deepEqual(ordered ? flat : flat.sort(), plain, `batches, ${ordered ? 'in order' : 'without order'}`);
    }
  });
  test('read without order, a reader that stops while the next site is read ahead leaves nothing broken; one that reads on gets everyone once', async () => {
    const sites = NORTH.concat('tw-a', 'bh-south', 'ap-s1');
    for (const batchSize of [1, 2, 1000]) {
      for await (const s of subscribersOfSites(env.store, sites, { ordered: false, batchSize })) {
        assert.ok(s._id);
        break;
      }
    }
    const ids: string[] = [];
    for await (const s of subscribersOfSites(env.store, sites, { ordered: false, batchSize: 3 })) ids.push(s._id);
    assert.deepEqual([...ids].sort(), all.map((s) => s._id).sort(), 'every subscriber of both backhauls, once');
  });

  test("an operator's message reaches each paying number once, in contract order, as one plain query orders them", async () => {
    const sites = SITES.filter((s) => NORTH.includes(s._id) || s._id === 'tw-a');
    const got: string[] = [];
    for await (const r of operatorRecipients(env.store, sites, AT))
      got.push(`${r.subscriberId} ${r.phone} ${r.language} ${r.area}`);
    // What one `$in` query sorted by the server gives (the read before it went per site).
    const areaOf = new Map(sites.map((s) => [s._id, s.area]));
    const optedOutPhones = new Set(all.filter((s) => s.optedOut).flatMap((s) => s.phones));
    const plain = await env.store.subscribers
      .find(audienceFilter([...areaOf.keys()], 'smsNotice', AT))
      .sort({ _id: 1 })
      .toArray();
    const told = new Set<string>();
    const expected = plain.flatMap((s) =>
      s.phones
        .filter((p) => !optedOutPhones.has(p) && !told.has(p) && told.add(p))
        .map((p) => `${s._id} ${p} ${s.language} ${areaOf.get(s.siteId)}`),
    );
    assert.ok(expected.length > 5, `${expected.length} recipients`);
    assert.deepEqual(got, expected);
  });
});
