/**
 * One root cause, one message (issue 19): whatever the order and timing in which alerts and API
 * calls for sites of one network tree arrive (one Alertmanager notification holding a relay and a
 * tower it feeds, either way round; ten parallel requests; the API; the API and a webhook at
 * once), they end in one incident, and every paying subscriber of the tree receives exactly one
 * outage and one restoration SMS. Real stack: API, worker, FerretDB, the Plivo simulator.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadDemoDataIfEmpty } from '../../store/demo';
import type { Incident } from '../../domain/types';
import { eventually, sharedServers } from '../support/env';
import { call, startTestStack, TEST_RULES, type InboxMessage, type TestStack } from '../support/stack';
import { parseIntegrations } from '../../ingest/integrations';
import * as p from './payloads';

const INTEGRATIONS = parseIntegrations(
  'integrations:\n  - { name: noc, source: alertmanager, token: am-token-123, site: { label: device } }\n',
  'test-integrations.yaml',
  {},
);

/** The Lodi tree: tower-lodi-01 feeds ap-lodi-01-a and tower-lodi-02, which feeds ap-lodi-02-a. */
const PARENT = 'tower-lodi-01';
const CHILD = 'tower-lodi-02';
const TREE = ['tower-lodi-01', 'ap-lodi-01-a', 'tower-lodi-02', 'ap-lodi-02-a'];
/** Its paying subscribers (C-1001, C-1002, C-1004, C-1005, C-1007; C-1006 opted out, C-1003 does not pay). */
const PAYING = ['+393471000001', '+393471000002', '+393471000004', '+393471000005', '+393471000007'];

describe('correlation: one root cause, one incident, one message each', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(__filename, {
      deliveryPolicy: { deliveryTimeoutMs: 10_000, maxAttempts: 3, sweepEveryMs: 200 },
      integrations: INTEGRATIONS,
    });
    await loadDemoDataIfEmpty(stack.store);
  });
  after(async () => stack?.stop());

  let n = 0;
  const alert = (device: string, status: 'firing' | 'resolved' = 'firing', fingerprint?: string) => ({
    device,
    status,
    fingerprint: fingerprint ?? `${device}-${n}`,
  });
  async function webhook(...alerts: p.AmAlert[]) {
    const res = await fetch(`${stack.apiUrl}/v1/ingest/alertmanager/noc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer am-token-123' },
      body: JSON.stringify(p.alertmanager(...alerts)),
    });
    assert.ok(res.status === 202 || res.status === 200, `webhook answered ${res.status}`);
    return (await res.json()) as { results: { action: string; incidentId?: string }[] };
  }
  const openApi = async (siteIds: string[], extra: Record<string, unknown> = {}) => {
    const r = await call(stack, 'POST', '/v1/incidents', { siteIds, ...extra });
    assert.ok(r.status === 200 || r.status === 202, JSON.stringify(r.body));
    return r.body as { id: string; outcome: string };
  };
  const delta = (now: Record<string, InboxMessage[]>, then: Record<string, InboxMessage[]>, phone: string) =>
    (now[phone]?.length ?? 0) - (then[phone]?.length ?? 0);

  /**
   * Runs one scenario: `trigger` sends the alerts or calls, `resolve` ends them. Checks that one
   * incident carries on (any other merged into it), that every paying subscriber of the tree gets
   * the outage notice once, and after the resolution the restoration once, and nothing more.
   */
  async function scenario(trigger: () => Promise<void>, resolve: (survivor: string) => Promise<void>) {
    n++;
    const since = new Date();
    const before = await stack.inbox();
    await trigger();
    await eventually('every alert decided', async () =>
      (await stack.store.alertEvents.countDocuments({
        $or: [{ result: { $exists: false } }, { 'result.action': 'accepted' }],
      })) === 0
        ? true
        : undefined,
    );
    const opened: Incident[] = await stack.store.incidents.find({ openedAt: { $gte: since } }).toArray();
    const survivors = opened.filter((i) => !i.mergedInto);
    assert.equal(
      survivors.length,
      1,
      `one incident carries on: ${JSON.stringify(opened.map((i) => ({ id: i._id, sites: i.siteIds, mergedInto: i.mergedInto })))}`,
    );
    const survivor = survivors[0]!._id;
    for (const i of opened) if (i.mergedInto) assert.equal(i.mergedInto, survivor);

    await eventually('the outage notices', async () => {
      const inbox = await stack.inbox();
      return PAYING.every((phone) => delta(inbox, before, phone) >= 1) ? true : undefined;
    });
    await resolve(survivor);
    await eventually(
      'every incident of the scenario billed',
      async () =>
        (await stack.store.incidents.countDocuments({ openedAt: { $gte: since }, phase: { $ne: 'billed' } })) === 0
          ? true
          : undefined,
      60_000,
    );
    await eventually('the restoration notices', async () => {
      const inbox = await stack.inbox();
      return PAYING.every((phone) => delta(inbox, before, phone) >= 2) ? true : undefined;
    });
    await new Promise((r) => setTimeout(r, 1000)); // anything late would arrive now
    const inbox = await stack.inbox();
    for (const phone of PAYING)
      assert.equal(
        delta(inbox, before, phone),
        2,
        `${phone}: one outage and one restoration notice, got ${JSON.stringify(inbox[phone]?.slice(before[phone]?.length ?? 0).map((m) => m.text))}`,
      );
    const ids = opened.map((i) => i._id);
    for (const phone of PAYING) {
      const kinds = (
        await stack.store.deliveries
          .find({
            incidentId: { $in: ids },
            channel: 'sms',
            to: phone,
            state: { $in: ['accepted', 'sent', 'delivered'] },
          })
          .toArray()
      )
        .map((d) => d.kind)
        .sort();
      assert.deepEqual(kinds, ['outage', 'restored'], `${phone}'s messages`);
    }
    assert.equal(
      await stack.store.incidents.countDocuments({
        siteIds: { $in: TREE },
        phase: { $in: ['detected', 'notifying', 'notified', 'escalated'] },
      }),
      0,
    );
  }

  test('one Alertmanager notification holding the relay and a tower it feeds: one incident', async () => {
    await scenario(
      async () => {
        const r = await webhook(alert(PARENT), alert(CHILD));
        assert.deepEqual(
          r.results.map((x) => x.action),
          ['opened', 'joined'],
        );
        assert.equal(r.results[0]!.incidentId, r.results[1]!.incidentId);
      },
      async () => void (await webhook(alert(PARENT, 'resolved'), alert(CHILD, 'resolved'))),
    );
  });

  test("the same notification the other way round: the relay absorbs the tower's incident", async () => {
    await scenario(
      async () => {
        const r = await webhook(alert(CHILD), alert(PARENT));
        assert.deepEqual(
          r.results.map((x) => x.action),
          ['opened', 'absorbed'],
        );
        assert.equal(
          r.results[0]!.incidentId,
          r.results[1]!.incidentId,
          "the tower's incident carries on, widened to the relay",
        );
      },
      async () => void (await webhook(alert(CHILD, 'resolved'), alert(PARENT, 'resolved'))),
    );
  });

  test('ten parallel requests for sites of one tree: one incident', async () => {
    const sites = Array.from({ length: 10 }, (_, i) => TREE[(i * 3) % TREE.length]!);
    await scenario(
      async () => void (await Promise.all(sites.map((site, i) => webhook(alert(site, 'firing', `par-${n}-${i}`))))),
      async () => void (await Promise.all(sites.map((site, i) => webhook(alert(site, 'resolved', `par-${n}-${i}`))))),
    );
  });

  test('POST /v1/incidents correlates: ten parallel calls, and a repeated call without a key joins', async () => {
    const sites = Array.from({ length: 10 }, (_, i) => TREE[(i * 3 + 1) % TREE.length]!);
    await scenario(
      async () => {
        const outcomes = await Promise.all(sites.map((site) => openApi([site])));
        assert.equal(outcomes.filter((o) => o.outcome === 'opened').length >= 1, true);
        const again = await openApi([CHILD]);
        assert.equal(again.outcome, 'joined', 'a repeated call without a key joins the open incident');
      },
      async (survivor) => void (await call(stack, 'POST', `/v1/incidents/${survivor}/resolve`, {})),
    );
  });

  test('an incident merged while its own scope still grows: each subscriber is told by one of the two', async () => {
    // Two incidents side by side, then a tower that widens the second and, at once, the relay above both: the
    // older survives and plans the relay's tree while the merged one is still planning the tower it absorbed.
    const towerSide = 'ap-lodi-02-a';
    await scenario(
      async () => {
        const first = await openApi(['ap-lodi-01-a']);
        const second = await openApi([towerSide]);
        assert.deepEqual([first.outcome, second.outcome], ['opened', 'opened']);
        await eventually('both first plannings done', async () =>
          (await stack.store.incidents.countDocuments({
            _id: { $in: [first.id, second.id] },
            phase: { $nin: ['detected'] },
          })) === 2
            ? true
            : undefined,
        );
        const widened = await openApi([CHILD]);
        const above = await openApi([PARENT]);
        assert.deepEqual(
          [widened.outcome, widened.id, above.outcome, above.id],
          ['absorbed', second.id, 'absorbed', first.id],
        );
      },
      async (survivor) => void (await call(stack, 'POST', `/v1/incidents/${survivor}/resolve`, {})),
    );
  });

  test('"correlate": false opens an incident of its own; a key already used answers its incident', async () => {
    const first = await openApi(['tower-crema-01'], { key: `crema-${n}` });
    assert.equal(first.outcome, 'opened');
    assert.equal((await openApi(['tower-crema-01'], { key: `crema-${n}` })).outcome, 'already_open');
    assert.deepEqual(await openApi(['ap-crema-01-a']).then((r) => [r.outcome, r.id]), ['joined', first.id]);
    const own = await openApi(['tower-crema-01'], { correlate: false });
    assert.equal(own.outcome, 'opened');
    assert.notEqual(own.id, first.id);
    for (const id of [first.id, own.id]) await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    await eventually(
      'both billed',
      async () =>
        (await stack.store.incidents.countDocuments({ _id: { $in: [first.id, own.id] }, phase: 'billed' })) === 2
          ? true
          : undefined,
      60_000,
    );
  });

  test('the API and a webhook at once, both ways round: one incident', async () => {
    await scenario(
      async () => void (await Promise.all([openApi([PARENT]), webhook(alert(CHILD))])),
      async (survivor) => {
        await webhook(alert(CHILD, 'resolved'));
        await call(stack, 'POST', `/v1/incidents/${survivor}/resolve`, {});
      },
    );
    await scenario(
      async () => void (await Promise.all([webhook(alert(PARENT)), openApi(['ap-lodi-02-a'])])),
      async (survivor) => {
        await webhook(alert(PARENT, 'resolved'));
        await call(stack, 'POST', `/v1/incidents/${survivor}/resolve`, {});
      },
    );
  });
});

/** The test rules with a group window (`defaults.groupWait`), in a folder of their own. */
function rulesWithGroupWait(wait: string): string {
  const dir = path.join(sharedServers().tmpDir, `rules-group-wait-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const text = readFileSync(path.join(TEST_RULES, 'avviso.yaml'), 'utf8')
    .replaceAll('../default/', `${path.join(TEST_RULES, '..', 'default')}/`)
    .replace('defaults:\n', `defaults:\n  groupWait: ${wait}\n`);
  writeFileSync(path.join(dir, 'avviso.yaml'), text);
  return dir;
}

describe('the group window', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(__filename, {
      deliveryPolicy: { deliveryTimeoutMs: 10_000, maxAttempts: 3, sweepEveryMs: 200 },
      integrations: INTEGRATIONS,
      rulesPath: rulesWithGroupWait('4s'),
    });
    await loadDemoDataIfEmpty(stack.store);
  });
  after(async () => stack?.stop());

  async function webhook(...alerts: p.AmAlert[]) {
    const res = await fetch(`${stack.apiUrl}/v1/ingest/alertmanager/noc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer am-token-123' },
      body: JSON.stringify(p.alertmanager(...alerts)),
    });
    return (await res.json()) as { results: { action: string; incidentId?: string }[] };
  }

  test('holds a burst: a tower, then the relay above it 1.5 s later, make one round of notices after the window', async () => {
    const opened = Date.now();
    const child = await webhook({ device: CHILD, fingerprint: 'gw-child' });
    assert.equal(child.results[0]!.action, 'opened');
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await stack.inbox(), {}, 'nothing sent within the window');
    const parent = await webhook({ device: PARENT, fingerprint: 'gw-parent' });
    assert.equal(parent.results[0]!.action, 'absorbed');
    const id = child.results[0]!.incidentId!;

    const inbox = await eventually('the outage notices', async () => {
      const now = await stack.inbox();
      return PAYING.every((phone) => now[phone]?.length) ? now : undefined;
    });
    const first = Math.min(...PAYING.map((phone) => Date.parse(inbox[phone]![0]!.acceptedAt)));
    assert.ok(first - opened >= 3_500, `the first notice waited for the window (${first - opened} ms)`);
    for (const phone of PAYING) assert.equal(inbox[phone]!.length, 1, `${phone} told once`);
    assert.equal(
      await stack.store.deliveries.countDocuments({ incidentId: { $ne: id }, channel: 'sms' }),
      0,
      'all from the one incident',
    );

    await webhook(
      { device: CHILD, fingerprint: 'gw-child', status: 'resolved' },
      { device: PARENT, fingerprint: 'gw-parent', status: 'resolved' },
    );
    await eventually(
      'billed',
      async () => ((await stack.store.incidents.findOne({ _id: id }))?.phase === 'billed' ? true : undefined),
      60_000,
    );
  });
});
