/**
 * The status feed's posts on X and Mastodon, end to end: real Temporal, FerretDB, API and worker,
 * the two networks played by their local stand-ins (sim/social.ts). One post per status change on
 * each network, however often the activity is retried; a bad token is reported, not retried.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDemoDataIfEmpty } from '../../store/demo';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';
import { startMastodonStandIn, startXStandIn, type SocialStandIn } from '../../sim/social';

const X_CREDENTIALS = {
  apiKey: 'xtestapikey0001',
  apiKeySecret: 'xtestapikeysecret0001',
  accessToken: '1234567890-xtestaccesstoken',
  accessTokenSecret: 'xtestaccesstokensecret01',
};
const MASTODON_TOKEN = 'mastodon-test-token-0001';

describe('social posts of the status feed', () => {
  let stack: TestStack;
  let x: SocialStandIn;
  let mastodon: SocialStandIn;

  before(async () => {
    x = await startXStandIn(X_CREDENTIALS);
    mastodon = await startMastodonStandIn({ accessToken: MASTODON_TOKEN });
    stack = await startTestStack(__filename, {
      deliveryPolicy: { deliveryTimeoutMs: 10_000, maxAttempts: 3, sweepEveryMs: 200 },
      channels: {
        social: {
          language: 'it',
          x: { ...X_CREDENTIALS, baseUrl: x.url },
          mastodon: { baseUrl: mastodon.url, accessToken: MASTODON_TOKEN },
        },
      },
    });
    await loadDemoDataIfEmpty(stack.store);
  });
  after(async () => {
    await stack?.stop();
    await x?.close();
    await mastodon?.close();
  });

  type SocialRecord = {
    network: string;
    kind: string;
    state: string;
    attempts: number;
    postId?: string;
    error?: string;
    httpStatus?: number;
  };

  /** Opens an outage on tower-lodi-02, resolves it once notified, and waits until it is billed. */
  async function outageOpenedAndResolved(): Promise<{ id: string; social: () => Promise<SocialRecord[]> }> {
    const opened = await call(stack, 'POST', '/v1/incidents', {
      siteIds: ['tower-lodi-02'],
      title: 'Traliccio senza corrente',
      correlate: false,
    });
    assert.equal(opened.status, 202, JSON.stringify(opened.body));
    const id: string = opened.body.id;
    await eventually(
      'the incident to be notified',
      async () => ((await call(stack, 'GET', `/v1/incidents/${id}`)).body.phase === 'notified' ? true : undefined),
      60_000,
    );
    assert.equal((await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {})).status, 202);
    await eventually(
      'the incident to be billed',
      async () => ((await call(stack, 'GET', `/v1/incidents/${id}`)).body.phase === 'billed' ? true : undefined),
      60_000,
    );
    return { id, social: async () => (await call(stack, 'GET', `/v1/incidents/${id}`)).body.social as SocialRecord[] };
  }

  const postsOf = (s: SocialStandIn, id: string) => s.posts.filter((p) => p.text.includes(`#inc-${id}`));

  test('an outage opened and resolved makes one post per status change on each network, in Italian, with the link', async () => {
    const { id, social } = await outageOpenedAndResolved();
    for (const network of [x, mastodon]) {
      const posts = postsOf(network, id);
      assert.equal(posts.length, 2, 'the outage and the restoration');
      assert.match(posts[0]!.text, /guasto|interrott/i);
      assert.match(posts[1]!.text, /ripristinat/i);
      for (const p of posts) assert.ok(p.text.endsWith(`${stack.apiUrl}/status?lang=it#inc-${id}`), p.text);
    }
    assert.deepEqual(
      mastodon.posts.filter((p) => p.text.includes(id)).map((p) => p.language),
      ['it', 'it'],
    );
    const records = await social();
    assert.deepEqual(records.map((r) => `${r.network}:${r.kind}:${r.state}:${r.attempts}`).sort(), [
      'mastodon:outage:posted:1',
      'mastodon:restored:posted:1',
      'x:outage:posted:1',
      'x:restored:posted:1',
    ]);
    assert.deepEqual(
      records
        .filter((r) => r.network === 'x')
        .map((r) => r.postId)
        .sort(),
      postsOf(x, id)
        .map((p) => p.id)
        .sort(),
      'the tweet ids are recorded',
    );
  });

  test('a network answering 503 twice still ends with exactly one post per change', async () => {
    const xRequests = x.requests.length;
    const mastodonRequests = mastodon.requests.length;
    x.failNext(503, 2);
    mastodon.failNext(503, 2);
    const { id, social } = await outageOpenedAndResolved();
    assert.equal(postsOf(x, id).length, 2);
    assert.equal(postsOf(mastodon, id).length, 2);
    assert.equal(x.requests.slice(xRequests).filter((r) => r.status === 503).length, 2, 'the failures happened');
    assert.equal(mastodon.requests.slice(mastodonRequests).filter((r) => r.status === 503).length, 2);
    const outage = (await social()).filter((r) => r.kind === 'outage');
    assert.deepEqual(outage.map((r) => [r.network, r.state, r.attempts]).sort(), [
      ['mastodon', 'posted', 3],
      ['x', 'posted', 3],
    ]);
    // The SMS did not wait for the networks: the feed (and its posts) is sent after them.
    const sms = Object.values(await stack.inbox())
      .flat()
      .filter((m) => /guasto/i.test(m.text))
      .map((m) => Date.parse(m.acceptedAt));
    const xPost = Date.parse(postsOf(x, id)[0]!.at);
    assert.ok(sms.length > 0 && sms.every((t) => t < xPost), 'the outage SMS went before the retried post');
  });

  test('a refused token (401) is reported on the incident and not retried; the feed and the other network go on', async () => {
    const before = x.requests.length;
    x.failNext(401, 1);
    const { id, social } = await outageOpenedAndResolved();
    // Had the outage post been retried, the stand-in (whose 401 was once) would have taken it.
    assert.deepEqual(
      postsOf(x, id).map((p) => /ripristinat/i.test(p.text)),
      [true],
      'on X only the restoration',
    );
    assert.equal(x.requests.slice(before).length, 2, 'one refused request, one for the restoration');
    assert.equal(postsOf(mastodon, id).length, 2);
    const refused = (await social()).find((r) => r.network === 'x' && r.kind === 'outage');
    assert.equal(refused?.state, 'failed');
    assert.equal(refused?.httpStatus, 401);
    assert.equal(refused?.attempts, 1);
    assert.match(refused?.error ?? '', /X answered 401/);
    const counts = (await call(stack, 'GET', `/v1/incidents/${id}`)).body.deliveries;
    assert.deepEqual(
      counts.status,
      { outage: { delivered: 2 }, restored: { delivered: 2 } },
      'the status feed itself was not held up',
    );
  });

  test('a maintenance posts its notice, its start and its end, once each', async () => {
    const inSeconds = (n: number) => new Date(Date.now() + n * 1000).toISOString();
    const created = await call(stack, 'POST', '/v1/maintenances', {
      siteIds: ['ap-lodi-01-a'],
      startsAt: inSeconds(2),
      endsAt: inSeconds(120),
      title: 'Cambio alimentatore',
    });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const id: string = created.body.id;
    const phase = (p: string) =>
      eventually(
        `maintenance phase ${p}`,
        async () => ((await call(stack, 'GET', `/v1/maintenances/${id}`)).body.phase === p ? true : undefined),
        60_000,
      );
    await phase('in_progress');
    assert.equal((await call(stack, 'POST', `/v1/maintenances/${id}/complete`, {})).status, 202);
    await phase('billed');
    const kinds = await eventually('three posts on each network', async () => {
      const found = [x, mastodon].map((s) => postsOf(s, id).length);
      return found.every((n) => n >= 3) ? found : undefined;
    });
    assert.deepEqual(kinds, [3, 3]);
    for (const network of [x, mastodon]) {
      const texts = postsOf(network, id).map((p) => p.text.split('\n')[0]!);
      assert.match(texts[0]!, /manutenzione/i);
      assert.match(texts[1]!, /iniziat|in corso/i);
      assert.match(texts[2]!, /complet|terminat|conclus/i);
    }
  });
});
