/**
 * The social channels against their stand-ins (sim/social.ts), the posts recorded in the harness's
 * FerretDB: what a retried send does after a lost answer, a refused token, a network that stays
 * down, a rate limit; and the fan-out from the status feed (one post per change, in one language).
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelError, type OutboundMessage } from '../../channels/channel';
import { createChannels } from '../../channels';
import { socialCollections, type SocialCollections } from '../../channels/social/posts';
import { SocialChannel } from '../../channels/social/social-channel';
import { XClient, type XSettings } from '../../channels/social/x';
import { MastodonClient } from '../../channels/social/mastodon';
import { FeedWithSocialChannel } from '../../channels/social/fan-out';
import { statusFeedCollections } from '../../channels/status-feed';
import { startMastodonStandIn, startXStandIn, type SocialStandIn } from '../../sim/social';
import { isolatedEnv, type IsolatedEnv } from '../support/env';

const X_CREDENTIALS = {
  apiKey: 'xtestapikey0002',
  apiKeySecret: 'xtestapikeysecret0002',
  accessToken: '987654321-xtestaccesstoken',
  accessTokenSecret: 'xtestaccesstokensecret02',
};
const MASTODON_TOKEN = 'mastodon-test-token-0002';

let env: IsolatedEnv;
let x: SocialStandIn;
let mastodon: SocialStandIn;
let posts: SocialCollections;

before(async () => {
  env = await isolatedEnv(__filename);
  posts = socialCollections(env.store.db);
  x = await startXStandIn(X_CREDENTIALS);
  mastodon = await startMastodonStandIn({ accessToken: MASTODON_TOKEN });
});
after(async () => {
  await x?.close();
  await mastodon?.close();
  await env?.close();
});
beforeEach(async () => {
  await Promise.all([posts.posts.deleteMany({}), posts.attempts.deleteMany({})]);
  await statusFeedCollections(env.store.db).entries.deleteMany({});
  for (const s of [x, mastodon]) {
    s.posts.length = 0;
    s.requests.length = 0;
    s.clearFaults();
  }
});

const xSettings = (over: Partial<XSettings> = {}): XSettings => ({ ...X_CREDENTIALS, baseUrl: x.url, ...over });
const xChannel = (over: Partial<XSettings> = {}, maxAttempts = 8) =>
  new SocialChannel(new XClient(xSettings(over)), posts, { maxAttempts });
const mastodonChannel = () =>
  new SocialChannel(new MastodonClient({ baseUrl: mastodon.url, accessToken: MASTODON_TOKEN }), posts);

function change(id: string, text = 'Servizio interrotto a Lodi. Stiamo lavorando per ripristinarlo.'): OutboundMessage {
  return {
    deliveryId: `inc_lodi|${id}`,
    to: '',
    text,
    language: 'it',
    meta: { incidentId: 'inc_lodi', kind: id, link: `https://avviso.example.net/status?lang=it#inc-inc_lodi` },
  };
}

test('an answer lost after the post was made: the retry makes no second post on either network', async () => {
  x.loseNextAnswers(1);
  mastodon.loseNextAnswers(1);
  for (const channel of [xChannel(), mastodonChannel()]) {
    await assert.rejects(channel.send([change('outage')]), (e: ChannelError) => e.retryable && e.status === 503);
    const [outcome] = await channel.send([change('outage')]);
    assert.equal(outcome!.outcome, 'accepted');
  }
  assert.equal(x.posts.length, 1);
  assert.equal(mastodon.posts.length, 1);
  assert.equal(mastodon.posts[0]!.idempotencyKey, 'mastodon|inc_lodi|outage', 'the key names the post');
  const records = await posts.posts.find({}).sort({ _id: 1 }).toArray();
  assert.deepEqual(
    records.map((r) => [r._id, r.state, r.attempts]),
    [
      ['mastodon|inc_lodi|outage', 'posted', 2],
      ['x|inc_lodi|outage', 'posted', 2],
    ],
  );
  assert.equal(records[0]!.postId, mastodon.posts[0]!.id, "Mastodon gives back the first request's status");
  assert.equal(records[1]!.postId, undefined, 'X refused the repeat as a duplicate: posted, id unknown');

  // Once posted, sending the change again asks nobody.
  const requests = x.requests.length + mastodon.requests.length;
  await xChannel().send([change('outage')]);
  await mastodonChannel().send([change('outage')]);
  assert.equal(x.requests.length + mastodon.requests.length, requests);
});

test('X refusing a text it already has on a first request is a failure, not a post', async () => {
  await xChannel().send([change('update#1', 'Ancora in corso.')]);
  const [outcome] = await xChannel().send([{ ...change('update#2', 'Ancora in corso.') }]);
  assert.equal(outcome!.outcome, 'invalid');
  assert.match(
    (outcome as { error: string }).error,
    /403: You are not allowed to create a Tweet with duplicate content/,
  );
});

test('a wrong token: 401 once, recorded as failed, and never asked again', async () => {
  const channel = xChannel({ accessTokenSecret: 'not-the-right-secret' });
  const [outcome] = await channel.send([change('outage')]);
  assert.equal(outcome!.outcome, 'invalid');
  assert.deepEqual(
    x.requests.map((r) => r.status),
    [401],
    'the stand-in checked the signature',
  );
  await channel.send([change('outage')]);
  assert.equal(x.requests.length, 1, 'not retried');
  const record = await posts.posts.findOne({ _id: 'x|inc_lodi|outage' });
  assert.equal(record!.state, 'failed');
  assert.equal(record!.httpStatus, 401);

  const [m] = await new SocialChannel(
    new MastodonClient({ baseUrl: mastodon.url, accessToken: 'wrong-token-0000' }),
    posts,
  ).send([change('outage')]);
  assert.match((m as { error: string }).error, /Mastodon answered 401: The access token is invalid/);
});

test('a network that stays down is given up after maxAttempts; a 429 carries when to come back', async () => {
  x.failNext(503, 3);
  const channel = xChannel({}, 3);
  await assert.rejects(channel.send([change('outage')]));
  await assert.rejects(channel.send([change('outage')]));
  const [outcome] = await channel.send([change('outage')]);
  assert.equal(outcome!.outcome, 'invalid');
  assert.match((outcome as { error: string }).error, /503.*gave up after 3 attempts/);
  assert.equal(x.requests.length, 3);

  const reset = Math.floor(Date.now() / 1000) + 20;
  mastodon.failNext(429, 1, { 'x-ratelimit-reset': new Date(reset * 1000).toISOString() });
  x.failNext(429, 1, { 'x-rate-limit-reset': String(reset) });
  for (const ch of [xChannel(), mastodonChannel()]) {
    await assert.rejects(
      ch.send([change('restored')]),
      (e: ChannelError) => e.retryable && e.status === 429 && e.retryAfterMs! > 10_000 && e.retryAfterMs! <= 20_000,
    );
  }
  // X's daily limit: waiting for it would hold the feed's records for hours.
  x.failNext(429, 1, { 'x-rate-limit-reset': String(Math.floor(Date.now() / 1000) + 3600) });
  const [limited] = await xChannel().send([change('update#1')]);
  assert.equal(limited!.outcome, 'invalid');
  assert.match((limited as { error: string }).error, /X answered 429.*asked to wait 60 min: not waited for/);
});

test('from the status feed: one post per status change, in the posting language only; the feed is written even when a network is down', async () => {
  const channels = createChannels(
    {
      social: {
        language: 'it',
        statusPageUrl: 'https://avviso.example.net/status',
        x: xSettings(),
        mastodon: { baseUrl: mastodon.url, accessToken: MASTODON_TOKEN },
      },
    },
    { statusFeed: statusFeedCollections(env.store.db), socialPosts: posts },
  );
  const feed = channels.get('status')!;
  assert.ok(feed instanceof FeedWithSocialChannel);
  const message = (language: 'it' | 'en', kind: string, text: string): OutboundMessage => ({
    deliveryId: `inc_crema|${kind}|public-${language}|status:public`,
    to: 'public',
    text,
    language,
    meta: { incidentId: 'inc_crema', kind, areas: ['Crema'] },
  });
  await feed.send([message('it', 'outage', 'Guasto a Crema.'), message('en', 'outage', 'Outage in Crema.')]);
  await feed.send([message('en', 'restored', 'Restored in Crema.')]);
  assert.deepEqual(
    x.posts.map((p) => p.text),
    ['Guasto a Crema.\nhttps://avviso.example.net/status?lang=it#inc-inc_crema'],
  );
  assert.equal(mastodon.posts.length, 1);

  x.failNext(503, 1);
  await assert.rejects(
    feed.send([message('it', 'restored', 'Ripristinato a Crema.')]),
    (e: ChannelError) => e.retryable,
  );
  assert.equal(
    await statusFeedCollections(env.store.db).entries.countDocuments({
      incidentId: 'inc_crema',
      kind: 'restored',
      language: 'it',
    }),
    1,
    'the feed entry was written',
  );
  assert.equal(mastodon.posts.length, 2, 'the other network was not held up');
  await feed.send([message('it', 'restored', 'Ripristinato a Crema.')]);
  assert.equal(x.posts.length, 2);
  assert.equal(mastodon.posts.length, 2);
});

test('off by default: without an account the status channel is the feed alone', () => {
  const channels = createChannels(
    { social: { language: 'it', statusPageUrl: 'https://avviso.example.net/status' } },
    { statusFeed: statusFeedCollections(env.store.db), socialPosts: posts },
  );
  assert.equal(channels.get('status')!.constructor.name, 'StatusFeedChannel');
  assert.equal(
    createChannels({}, { statusFeed: statusFeedCollections(env.store.db), socialPosts: posts }).get('status')!
      .constructor.name,
    'StatusFeedChannel',
  );
});

test('two senders of one change at once make one request; a sender that died mid-request is taken over', async () => {
  const results = await Promise.all(
    [xChannel(), xChannel(), mastodonChannel(), mastodonChannel()].map((c) =>
      c.send([change('outage')]).catch((e: ChannelError) => e),
    ),
  );
  for (const r of results)
    assert.ok(
      Array.isArray(r) ? r[0]!.outcome === 'accepted' : r.retryable && /another sender/.test(r.message),
      String(r),
    );
  assert.equal(x.requests.length, 1);
  assert.equal(mastodon.requests.length, 1);

  // A record left mid-request longer ago than a request can take: its sender is gone.
  const now = Date.now();
  await posts.posts.insertOne({
    _id: 'x|inc_lodi|restored',
    network: 'x',
    incidentId: 'inc_lodi',
    change: 'inc_lodi|restored',
    kind: 'restored',
    text: 'Ripristinato.\nhttps://avviso.example.net/status?lang=it#inc-inc_lodi',
    state: 'pending',
    attempts: 1,
    sendingSince: new Date(now - 60_000),
    createdAt: new Date(now - 60_000),
    updatedAt: new Date(now - 60_000),
  });
  const [outcome] = await xChannel().send([change('restored')]);
  assert.equal(outcome!.outcome, 'accepted');
  assert.deepEqual(
    x.posts.map((p) => p.text.split('\n')[0]),
    ['Servizio interrotto a Lodi. Stiamo lavorando per ripristinarlo.', 'Ripristinato.'],
  );
  assert.equal((await posts.posts.findOne({ _id: 'x|inc_lodi|restored' }))!.attempts, 2);
});
