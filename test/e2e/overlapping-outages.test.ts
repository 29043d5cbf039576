/**
 * One message per person, per event, across incidents: two outages over the same site (a relay
 * tower and the access point it feeds, opened apart) tell its subscribers once that it is down and
 * once that it is back, whichever ends first, and also when both end at the same moment.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDemoDataIfEmpty } from '../../store/demo';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';

const SHARED = '+393471000005'; // C-1005, paying, on ap-lodi-02-a (below tower-lodi-02)
const PARENT_ONLY = '+393471000007'; // C-1007, paying, on tower-lodi-02

describe('overlapping outages', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(__filename, {
      deliveryPolicy: { deliveryTimeoutMs: 10_000, maxAttempts: 3, sweepEveryMs: 200 },
    });
    await loadDemoDataIfEmpty(stack.store);
  });
  after(async () => stack?.stop());

  const phase = async (id: string) => (await call(stack, 'GET', `/v1/incidents/${id}`)).body.phase as string;
  async function start(siteId: string): Promise<string> {
    const r = await call(stack, 'POST', '/v1/incidents', {
      siteIds: [siteId],
      key: `overlap-${siteId}-${Date.now()}`,
      correlate: false,
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return r.body.id as string;
  }
  const notified = (id: string) =>
    eventually(`${id} notified`, async () => ((await phase(id)) === 'notified' ? true : undefined));
  async function open(siteId: string): Promise<string> {
    const id = await start(siteId);
    await notified(id);
    return id;
  }
  async function resolve(id: string): Promise<void> {
    const r = await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    assert.ok(r.status < 300, JSON.stringify(r.body));
  }
  const ended = (id: string) =>
    eventually(
      `${id} resolved`,
      async () => (['resolved', 'billed'].includes(await phase(id)) ? true : undefined),
      30_000,
    );
  const inboxOf = async (phone: string) => ((await stack.inbox())[phone] ?? []).map((m) => m.text);

  /** Opens the relay's outage, then the access point's; ends them as `end` says; checks both inboxes. */
  async function scenario(end: (relay: string, ap: string) => Promise<void>) {
    const before = { shared: (await inboxOf(SHARED)).length, parentOnly: (await inboxOf(PARENT_ONLY)).length };
    const relay = await open('tower-lodi-02');
    const ap = await open('ap-lodi-02-a');
    const covered = await stack.store.deliveries.findOne({ incidentId: ap, kind: 'outage', to: SHARED });
    assert.equal(covered?.coveredBy, relay, 'the access point outage does not text a number the relay outage told');
    assert.match(covered!.history.at(-1)!.note!, new RegExp(`covered by ${relay}`));
    await end(relay, ap);
    await toldOnce(before, relay, ap);
  }

  /** Once both have ended: the shared subscriber and the relay's own were told once that it was down, once that it is back. */
  async function toldOnce(before: { shared: number; parentOnly: number }, relay: string, ap: string) {
    await Promise.all([ended(relay), ended(ap)]);
    for (const [phone, from] of [
      [SHARED, before.shared],
      [PARENT_ONLY, before.parentOnly],
    ] as const) {
      await eventually(`${phone} told of the restoration`, async () =>
        (await inboxOf(phone)).slice(from).some((t) => /ripristinato/.test(t)) ? true : undefined,
      );
    }
    // Whatever else might come would come within a sweep or two.
    await new Promise((r) => setTimeout(r, 1500));
    for (const [phone, from] of [
      [SHARED, before.shared],
      [PARENT_ONLY, before.parentOnly],
    ] as const) {
      const got = (await inboxOf(phone)).slice(from);
      assert.equal(
        got.filter((t) => /^Avviso guasto/.test(t)).length,
        1,
        `${phone}: one outage SMS, got ${JSON.stringify(got)}`,
      );
      assert.equal(
        got.filter((t) => /ripristinato/.test(t)).length,
        1,
        `${phone}: one restoration SMS, got ${JSON.stringify(got)}`,
      );
    }
  }

  test('the covered outage ends first: the restoration waits for the relay', async () => {
    await scenario(async (relay, ap) => {
      await resolve(ap);
      await ended(ap);
      await new Promise((r) => setTimeout(r, 1000));
      assert.ok(
        !(await inboxOf(SHARED)).at(-1)!.includes('ripristinato'),
        'not told "back" while the relay is still down',
      );
      await resolve(relay);
    });
  });

  test('the relay ends first: the access point outage, still open, sends the restoration when it ends', async () => {
    await scenario(async (relay, ap) => {
      await resolve(relay);
      await ended(relay);
      await new Promise((r) => setTimeout(r, 1000));
      assert.ok(
        !(await inboxOf(SHARED)).at(-1)!.includes('ripristinato'),
        'not told "back" while the access point is still down',
      );
      await resolve(ap);
    });
  });

  test('opened at the same moment: each subscriber is told by one of the two, once', async () => {
    const before = { shared: (await inboxOf(SHARED)).length, parentOnly: (await inboxOf(PARENT_ONLY)).length };
    // Both plan at once: each would find the other's records not written yet, and both would text the shared number.
    const [relay, ap] = await Promise.all([start('tower-lodi-02'), start('ap-lodi-02-a')]);
    await Promise.all([notified(relay), notified(ap)]);
    const records = await stack.store.deliveries
      .find({ incidentId: { $in: [relay, ap] }, kind: 'outage', to: SHARED })
      .toArray();
    assert.equal(records.length, 2, 'each outage has a record for the shared number');
    const teller = records.find((d) => !d.coveredBy);
    assert.ok(teller, 'one of the two tells the shared number');
    assert.deepEqual(
      records.filter((d) => d !== teller).map((d) => d.coveredBy),
      [teller.incidentId],
      'the other leaves it to that one',
    );
    await Promise.all([resolve(relay), resolve(ap)]);
    await toldOnce(before, relay, ap);
  });

  test('the relay was a false alarm, the access point is still down: no "false alarm" to its subscriber', async () => {
    const before = { shared: (await inboxOf(SHARED)).length, parentOnly: (await inboxOf(PARENT_ONLY)).length };
    const relay = await open('tower-lodi-02');
    const ap = await open('ap-lodi-02-a');
    const cancelled = await call(stack, 'POST', `/v1/incidents/${relay}/cancel`, { reason: 'sensor fault' });
    assert.ok(cancelled.status < 300, JSON.stringify(cancelled.body));
    await ended(relay);
    await eventually('the relay-only subscriber told it was a false alarm', async () =>
      (await inboxOf(PARENT_ONLY)).slice(before.parentOnly).some((t) => /Falso allarme/.test(t)) ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(
      (await inboxOf(SHARED)).slice(before.shared).map((t) => t.split(':')[0]),
      ['Avviso guasto'],
      'the access point is still down for them: told nothing more yet',
    );
    await resolve(ap);
    await ended(ap);
    await eventually('the shared subscriber told the service is back', async () =>
      (await inboxOf(SHARED)).slice(before.shared).some((t) => /ripristinato/.test(t)) ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 1000));
    const got = (await inboxOf(SHARED)).slice(before.shared);
    assert.equal(got.length, 2, `one outage and one restoration SMS, got ${JSON.stringify(got)}`);
  });

  test('both end at the same moment: one restoration', async () => {
    await scenario(async (relay, ap) => {
      await Promise.all([resolve(relay), resolve(ap)]);
    });
  });
});
