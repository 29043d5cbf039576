/**
 * The webhook channel against a real local HTTP server that records what it receives and answers
 * what each test tells it to, per path.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ChannelError, type OutboundMessage } from '../../channels/channel';
import { PartialSendError } from '../../channels/per-recipient';
import { maskUrl, WebhookChannel } from '../../channels/webhook';
import { freePort } from '../../dev/process';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
}

type Answer = { status: number; headers?: Record<string, string>; delayMs?: number };

const received: Received[] = [];
const answers = new Map<string, Answer>();
let server: Server;
let base: string;

before(async () => {
  server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (raw += chunk));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, raw });
      const a = answers.get(req.url ?? '') ?? { status: 200 };
      setTimeout(() => res.writeHead(a.status, a.headers).end('ok'), a.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  received.length = 0;
  answers.clear();
});

function message(path: string, n = 1): OutboundMessage {
  return {
    deliveryId: `inc_1|outage|webhook|${n}`,
    to: `${base}${path}`,
    text: 'Avviso guasto: servizio interrotto a Lodi.',
    language: 'it',
    meta: { incidentId: 'inc_1', kind: 'outage', areas: ['Lodi'] },
  };
}

test('posts the text for chat tools and the facts for programs, signed over the raw body', async () => {
  const channel = new WebhookChannel({ secret: 'shh-secret' });
  const outcomes = await channel.send([message('/slack/T000/B000/XXXX')]);
  assert.deepEqual(outcomes, [{ deliveryId: 'inc_1|outage|webhook|1', outcome: 'accepted' }]);
  assert.equal(received.length, 1);
  const r = received[0]!;
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.headers['x-avviso-delivery'], 'inc_1|outage|webhook|1');
  assert.deepEqual(JSON.parse(r.raw), {
    text: 'Avviso guasto: servizio interrotto a Lodi.',
    deliveryId: 'inc_1|outage|webhook|1',
    incidentId: 'inc_1',
    kind: 'outage',
    language: 'it',
    meta: { incidentId: 'inc_1', kind: 'outage', areas: ['Lodi'] },
  });
  const expected = `sha256=${createHmac('sha256', 'shh-secret').update(r.raw).digest('hex')}`;
  assert.equal(r.headers['x-avviso-signature'], expected);
});

test('without a secret there is no signature header', async () => {
  await new WebhookChannel().send([message('/hook')]);
  assert.equal(received[0]!.headers['x-avviso-signature'], undefined);
});

test('404 and 410 mean the hook is gone; other refusals are invalid too; each hook is judged alone', async () => {
  answers.set('/gone', { status: 410 });
  answers.set('/missing', { status: 404 });
  answers.set('/forbidden', { status: 403 });
  answers.set('/moved', { status: 301, headers: { location: '/elsewhere' } });
  const outcomes = await new WebhookChannel().send([
    message('/gone', 1),
    message('/missing', 2),
    message('/ok', 3),
    message('/forbidden', 4),
    message('/moved', 5),
    { ...message('', 6), to: 'ftp://example.net/x' },
  ]);
  assert.deepEqual(
    outcomes.map((o) => o.outcome),
    ['invalid', 'invalid', 'accepted', 'invalid', 'invalid', 'invalid'],
  );
  assert.match((outcomes[0] as { error: string }).error, /gone \(410\)/);
  assert.match((outcomes[4] as { error: string }).error, /redirects \(301\)/);
  assert.ok(!received.some((r) => r.path === '/elsewhere'), 'redirects are not followed');
  for (const o of outcomes)
    if (o.outcome === 'invalid')
      assert.doesNotMatch(
        o.error,
        /\/gone|\/missing|\/forbidden/,
        'the URL path (which may hold a secret) is not in errors',
      );
});

test('429 and 5xx are retryable, with the Retry-After the receiver gave', async () => {
  answers.set('/busy', { status: 429, headers: { 'retry-after': '7' } });
  await assert.rejects(new WebhookChannel().send([message('/busy')]), (err: unknown) => {
    assert.ok(err instanceof ChannelError && !(err instanceof PartialSendError));
    assert.equal(err.retryable, true);
    assert.equal(err.retryAfterMs, 7000);
    assert.equal(err.status, 429);
    return true;
  });
  answers.set('/down', { status: 503 });
  await assert.rejects(
    new WebhookChannel().send([message('/down')]),
    (err: ChannelError) => err.retryable && err.status === 503,
  );
});

test('a batch where some hooks took the message and others failed says which to send again', async () => {
  answers.set('/down', { status: 502 });
  await assert.rejects(
    new WebhookChannel().send([message('/ok', 1), message('/down', 2), message('/gone-too', 3)]),
    (err: unknown) => {
      assert.ok(err instanceof PartialSendError);
      assert.equal(err.retryable, true);
      assert.deepEqual(
        err.outcomes.map((o) => [o.deliveryId, o.outcome]),
        [
          ['inc_1|outage|webhook|1', 'accepted'],
          ['inc_1|outage|webhook|3', 'accepted'],
        ],
      );
      assert.deepEqual(err.unsent, ['inc_1|outage|webhook|2']);
      return true;
    },
  );
  assert.equal(received.length, 3, 'a failing receiver does not stop the others');
});

test('an unreachable or slow receiver is a retryable failure', async () => {
  const closedPort = await freePort();
  await assert.rejects(
    new WebhookChannel().send([{ ...message(''), to: `http://127.0.0.1:${closedPort}/hook` }]),
    (err: ChannelError) => {
      assert.equal(err.retryable, true);
      assert.match(err.message, /unreachable: ECONNREFUSED/);
      return true;
    },
  );
  answers.set('/slow', { status: 200, delayMs: 500 });
  await assert.rejects(
    new WebhookChannel({ timeoutMs: 100 }).send([message('/slow')]),
    (err: ChannelError) => err.retryable && /no answer in time/.test(err.message),
  );
});

test('webhook URLs are masked to their origin', () => {
  assert.equal(maskUrl('https://hooks.slack.com/services/T000/B000/secret'), 'https://hooks.slack.com/…');
});
