/**
 * The status channel writing posts in MongoDB (the harness's FerretDB, this file's own database),
 * and the public status page reading them, through a bare Fastify with the plugin alone.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import type { OutboundMessage } from '../../channels/channel';
import {
  buildPost,
  ensureStatusFeedIndexes,
  statusEntry,
  statusFeedCollections,
  StatusFeedChannel,
  type StatusEntry,
  type StatusFeedCollections,
} from '../../channels/status-feed';
import { statusPageRoutes } from '../../api/routes/status-page';
import { isolatedEnv, type IsolatedEnv } from '../support/env';

let env: IsolatedEnv;
let feed: StatusFeedCollections;
let app: FastifyInstance;

before(async () => {
  env = await isolatedEnv(__filename);
  feed = statusFeedCollections(env.store.db);
  await ensureStatusFeedIndexes(feed);
  app = Fastify();
  await app.register(statusPageRoutes, { feed, publicUrl: 'https://avviso.example.net', siteName: 'Rete Lodigiana' });
  await app.ready();
});
after(async () => {
  await app?.close();
  await env?.close();
});
beforeEach(async () => {
  await Promise.all([feed.posts.deleteMany({}), feed.entries.deleteMany({})]);
});

const T0 = new Date('2025-03-10T08:00:00Z');
const minutes = (n: number) => new Date(T0.getTime() + n * 60_000).toISOString();

function msg(
  deliveryId: string,
  language: 'it' | 'en',
  kind: string,
  text: string,
  at: string,
  extra: Record<string, unknown> = {},
  subject?: string,
): OutboundMessage {
  return {
    deliveryId,
    to: '',
    text,
    subject,
    language,
    meta: { incidentId: 'inc_lodi', kind, areas: ['Lodi'], at, ...extra },
  };
}

const outageIt = msg(
  'inc_lodi|outage|status|it',
  'it',
  'outage',
  'Servizio interrotto a Lodi. Stiamo lavorando per ripristinarlo.',
  minutes(0),
  {},
  'Guasto a Lodi',
);
const outageEn = msg(
  'inc_lodi|outage|status|en',
  'en',
  'outage',
  'Service is down in Lodi. We are working on it.',
  minutes(0),
  {},
  'Outage in Lodi',
);
const restoredIt = msg(
  'inc_lodi|restored|status|it',
  'it',
  'restored',
  'Servizio ripristinato a Lodi <finalmente> & grazie.',
  minutes(95),
  { areas: ['Lodi', 'Lodi Vecchio'] },
);

test('the language versions of one update meet in one post; a repeated delivery changes nothing', async () => {
  const channel = new StatusFeedChannel(feed);
  assert.deepEqual(await channel.send([outageIt, outageEn]), [
    { deliveryId: outageIt.deliveryId, outcome: 'accepted', providerMessageId: 'inc_lodi' },
    { deliveryId: outageEn.deliveryId, outcome: 'accepted', providerMessageId: 'inc_lodi' },
  ]);
  const first = await feed.posts.findOne({ _id: 'inc_lodi' });
  assert.ok(first);
  assert.equal(first.state, 'open');
  assert.deepEqual(first.title, { it: 'Guasto a Lodi', en: 'Outage in Lodi' });
  assert.equal(first.updates.length, 1);
  assert.deepEqual(first.updates[0]!.text, { it: outageIt.text, en: outageEn.text });
  assert.equal(first.openedAt.toISOString(), minutes(0));

  // A retried batch, with different wording even: the first recording of a delivery stands.
  await channel.send([{ ...outageIt, text: 'ripetuto' }, outageEn]);
  assert.deepEqual(await feed.posts.findOne({ _id: 'inc_lodi' }), first);
  assert.equal(await feed.entries.countDocuments({ incidentId: 'inc_lodi' }), 2);

  await channel.send([restoredIt]);
  const resolved = await feed.posts.findOne({ _id: 'inc_lodi' });
  assert.equal(resolved!.state, 'resolved');
  assert.equal(resolved!.resolvedAt!.toISOString(), minutes(95));
  assert.deepEqual(resolved!.areas, ['Lodi', 'Lodi Vecchio']);
  assert.deepEqual(
    resolved!.updates.map((u) => u.kind),
    ['outage', 'restored'],
  );
  assert.equal(await feed.posts.countDocuments({}), 1);
});

test('writers racing on one post lose nothing (FerretDB updates are not atomic; inserts are)', async () => {
  const channels = [1, 2, 3].map(() => new StatusFeedChannel(feed, { maxRebuilds: 50 }));
  const updates = Array.from({ length: 9 }, (_, i) =>
    msg(`inc_lodi|update-${i}|status|it`, 'it', 'update', `Aggiornamento ${i}`, minutes(10 + i), {
      updateId: `update-${i}`,
    }),
  );
  await Promise.all(updates.map((m, i) => channels[i % channels.length]!.send([m])));
  const post = await feed.posts.findOne({ _id: 'inc_lodi' });
  assert.deepEqual(
    post!.updates.map((u) => u.id),
    updates.map((_, i) => `update-${i}`),
  );
  assert.equal(post!.entries, 9);
});

test('a message without an incident is invalid for the status feed', async () => {
  const [outcome] = await new StatusFeedChannel(feed).send([{ deliveryId: 'd1', to: '', text: 'x', language: 'it' }]);
  assert.deepEqual(outcome, { deliveryId: 'd1', outcome: 'invalid', error: 'a status post needs meta.incidentId' });
});

test('a late English version of an old update does not reopen a resolved incident', () => {
  const entry = (m: OutboundMessage, recordedAt: number) => statusEntry(m, new Date(recordedAt)) as StatusEntry;
  const post = buildPost('inc_lodi', [entry(outageIt, 1), entry(restoredIt, 2), entry(outageEn, 3)]);
  assert.equal(post.state, 'resolved');
  assert.deepEqual(
    post.updates.map((u) => u.id),
    ['outage', 'restored'],
  );
  assert.equal(post.updates[0]!.text.en, outageEn.text);
});

async function seedPage(): Promise<void> {
  const channel = new StatusFeedChannel(feed);
  const recent = new Date(Date.now() - 2 * 86_400_000).toISOString();
  const old = new Date(Date.now() - 45 * 86_400_000).toISOString();
  const now = new Date().toISOString();
  await channel.send([
    // Resolved two days ago: in "last 30 days".
    msg(
      'a|outage|it',
      'it',
      'outage',
      'Guasto a Crema.',
      recent,
      { incidentId: 'inc_crema', areas: ['Crema'] },
      'Guasto a Crema',
    ),
    msg('a|restored|it', 'it', 'restored', 'Ripristinato a Crema.', recent, {
      incidentId: 'inc_crema',
      areas: ['Crema'],
    }),
    // Resolved 45 days ago: not shown.
    msg('b|outage|it', 'it', 'outage', 'Vecchio guasto.', old, { incidentId: 'inc_old' }, 'Vecchio guasto'),
    msg('b|restored|it', 'it', 'restored', 'Vecchio ripristino.', old, { incidentId: 'inc_old' }),
    // Open now, with a text that must be escaped.
    msg(
      'c|outage|it',
      'it',
      'outage',
      'Servizio interrotto a Lodi <script>alert(1)</script> & dintorni.',
      now,
      { incidentId: 'inc_lodi', areas: ['Lodi'] },
      'Guasto a Lodi',
    ),
    msg(
      'c|outage|en',
      'en',
      'outage',
      'Service down in Lodi.',
      now,
      { incidentId: 'inc_lodi', areas: ['Lodi'] },
      'Outage in Lodi',
    ),
  ]);
}

test('GET /status: current incidents first, then the last 30 days, escaped, Italian by default', async () => {
  await seedPage();
  const res = await app.inject({ method: 'GET', url: '/status' });
  assert.equal(res.statusCode, 200);
  assert.match(res.headers['content-type'] as string, /^text\/html; charset=utf-8/);
  assert.equal(res.headers['cache-control'], 'public, max-age=30');
  const html = res.body;
  assert.match(html, /<html lang="it">/);
  assert.match(html, /Rete Lodigiana: Stato del servizio/);
  assert.ok(html.indexOf('Guasto a Lodi') < html.indexOf('Guasto a Crema'), 'the open incident comes first');
  assert.ok(
    html.indexOf('Disservizi in corso') < html.indexOf('Guasto a Lodi') &&
      html.indexOf('Ultimi 30 giorni') < html.indexOf('Guasto a Crema'),
  );
  assert.doesNotMatch(html, /Vecchio guasto/);
  assert.doesNotMatch(html, /<script>/);
  assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt; &amp; dintorni/);
  assert.doesNotMatch(html, /<script|src=|https?:\/\/(?!avviso)/i, 'self-contained: no scripts, no external assets');

  const en = await app.inject({ method: 'GET', url: '/status?lang=en' });
  assert.match(en.body, /<html lang="en">/);
  assert.match(en.body, /Outage in Lodi/);
  assert.match(en.body, /Service down in Lodi\./);
  // Crema was written in Italian only: it falls back rather than vanishing.
  assert.match(en.body, /Guasto a Crema/);
});

test('GET /status with nothing to report says all is well', async () => {
  const res = await app.inject({ method: 'GET', url: '/status?lang=en' });
  assert.match(res.body, /All services are operating normally\./);
  assert.match(res.body, /No incidents in the last 30 days\./);
});

test('GET /status.json gives the same view for programs', async () => {
  await seedPage();
  const res = await app.inject({ method: 'GET', url: '/status.json' });
  assert.equal(res.statusCode, 200);
  const body = res.json() as {
    language: string;
    current: { id: string; title: string; updates: { kind: string; label: string; text: string }[] }[];
    recent: { id: string; state: string }[];
  };
  assert.equal(body.language, 'it');
  assert.deepEqual(
    body.current.map((p) => p.id),
    ['inc_lodi'],
  );
  assert.equal(body.current[0]!.title, 'Guasto a Lodi');
  assert.equal(body.current[0]!.updates[0]!.label, 'Disservizio');
  assert.deepEqual(
    body.recent.map((p) => [p.id, p.state]),
    [['inc_crema', 'resolved']],
  );
  assert.equal((body.current[0] as Record<string, unknown>).entries, undefined, 'internal fields stay inside');
});

test('Atom and RSS feeds carry one escaped entry per update', async () => {
  await seedPage();
  const atom = await app.inject({ method: 'GET', url: '/status/feed.atom' });
  assert.equal(atom.statusCode, 200);
  assert.match(atom.headers['content-type'] as string, /^application\/atom\+xml/);
  assert.match(atom.body, /<feed xmlns="http:\/\/www.w3.org\/2005\/Atom"/);
  assert.equal((atom.body.match(/<entry>/g) ?? []).length, 3);
  assert.match(atom.body, /<title type="html"><!\[CDATA\[Guasto a Lodi: Disservizio\]\]><\/title>/);
  assert.doesNotMatch(atom.body, /<script>/);
  // Entries are HTML in CDATA: the plain text arrives HTML-escaped.
  assert.match(
    atom.body,
    /<summary type="html"><!\[CDATA\[Servizio interrotto a Lodi &lt;script&gt;alert\(1\)&lt;\/script&gt; &amp; dintorni\.\]\]><\/summary>/,
  );
  assert.match(atom.body, /https:\/\/avviso\.example\.net\/status\?lang=it#inc-inc_lodi/);

  const rss = await app.inject({ method: 'GET', url: '/status/feed.rss?lang=en' });
  assert.equal(rss.statusCode, 200);
  assert.match(rss.headers['content-type'] as string, /^application\/rss\+xml/);
  assert.match(rss.body, /<rss version="2.0"/);
  assert.equal((rss.body.match(/<item>/g) ?? []).length, 3);
  assert.match(rss.body, /Outage in Lodi: Outage/);
  assert.doesNotMatch(rss.body, /<script>/);
});
