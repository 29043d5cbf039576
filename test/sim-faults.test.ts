/**
 * The simulator's faults on demand, limits and counters, exercised through the real
 * `plivo` SDK where the app would use it (so the SDK's own reaction to each fault is what
 * the test sees) and through raw fetch where the wire detail matters (Retry-After).
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as plivo from 'plivo';
import { startSimulator, type RunningSimulator } from '../sim/plivo-simulator';
import { faultsFromEnv } from '../sim/main';
import { mulberry32 } from '../sim/prng';

const AUTH_ID = 'MATESTSIMULATOR00002';
const AUTH_TOKEN = 'test-simulator-token';
const SRC = '+390212345678';
const PHONE_A = '+393331234567';
const PHONE_B = '+393471234567';

// ---------------------------------------------------------------- helpers

interface InboxEntry {
  messageUuid: string;
  text: string;
  status: string;
  errorCode: string;
  acceptedAt: string;
  sentAt?: string;
  responseDropped?: boolean;
}
interface Inbox {
  phones: Record<string, InboxEntry[]>;
  total: number;
}

interface ReceivedCallback {
  at: number;
  headers: IncomingHttpHeaders;
  params: Record<string, string>;
}

async function startReceiver(): Promise<{ url: string; received: ReceivedCallback[]; close(): Promise<void> }> {
  const received: ReceivedCallback[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      received.push({ at: Date.now(), headers: req.headers, params: Object.fromEntries(new URLSearchParams(body)) });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 5_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function clientFor(sim: RunningSimulator): plivo.Client {
  return new plivo.Client(AUTH_ID, AUTH_TOKEN, { url: `${sim.url}/v1/Account/${AUTH_ID}` });
}

const basicAuth = `Basic ${Buffer.from(`${AUTH_ID}:${AUTH_TOKEN}`).toString('base64')}`;

/** A send as a raw HTTP request, to see status and headers the SDK hides. */
function rawSend(sim: RunningSimulator, dst: string, text = 'x'): Promise<Response> {
  return fetch(`${sim.url}/v1/Account/${AUTH_ID}/Message/`, {
    method: 'POST',
    headers: { authorization: basicAuth, 'content-type': 'application/json' },
    body: JSON.stringify({ src: SRC, dst, text }),
  });
}

async function control(
  sim: RunningSimulator,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${sim.url}/control/${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

async function putFaults(sim: RunningSimulator, faults: unknown): Promise<Record<string, unknown>> {
  const { status, json } = await control(sim, 'PUT', 'faults', faults);
  assert.equal(status, 200, JSON.stringify(json));
  return json;
}

interface Outcomes {
  total: number;
  accepted: number;
  tooManyRequests: number;
  limitRejections: number;
  serverErrors: Record<string, number>;
  clientErrors: Record<string, number>;
  droppedBeforeAccept: number;
  droppedAfterAccept: number;
}
interface Stats {
  requests: { message: Outcomes; call: Outcomes; read: Outcomes };
  messages: {
    accepted: number;
    acceptedWithoutResponse: number;
    expiredInQueue: number;
    stored: number;
    byStatus: Record<string, number>;
  };
  callbacks: { sent: number; failed: number; duplicated: number; reordered: number };
}

async function stats(sim: RunningSimulator): Promise<Stats> {
  return (await control(sim, 'GET', 'stats')).json as unknown as Stats;
}

async function getInbox(sim: RunningSimulator): Promise<Inbox> {
  return (await (await fetch(`${sim.url}/inbox.json`)).json()) as Inbox;
}

const FINAL = new Set(['delivered', 'undelivered', 'failed']);

async function allFinal(sim: RunningSimulator, count: number, timeoutMs = 5_000): Promise<Inbox> {
  return waitFor(
    `${count} messages in a final status`,
    async () => {
      const inbox = await getInbox(sim);
      const entries = Object.values(inbox.phones).flat();
      return entries.length === count && entries.every((m) => FINAL.has(m.status)) ? inbox : undefined;
    },
    timeoutMs,
  );
}

const numbers = (count: number): string[] =>
  Array.from({ length: count }, (_, i) => `+39333${String(i).padStart(7, '0')}`);

/** The SDK rejects network failures with a string (the error's stack), not an Error. */
function droppedConnection(err: unknown): boolean {
  assert.equal(typeof err, 'string', `expected the SDK's string rejection, got ${String(err)}`);
  assert.match(err as string, /socket hang up|ECONNRESET/);
  return true;
}

// ---------------------------------------------------------------- seeded randomness

test('mulberry32 is reproducible and roughly uniform', () => {
  const a = mulberry32(42);
  const b = mulberry32(42);
  const draws = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(
    draws.slice(0, 5),
    Array.from({ length: 5 }, () => b()),
  );
  assert.ok(draws.every((x) => x >= 0 && x < 1));
  const mean = draws.reduce((s, x) => s + x, 0) / draws.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
});

// ---------------------------------------------------------------- through the SDK

describe('faults on demand', () => {
  let sim: RunningSimulator;
  let client: plivo.Client;

  before(async () => {
    sim = await startSimulator({
      authId: AUTH_ID,
      authToken: AUTH_TOKEN,
      host: '127.0.0.1',
      port: 0,
      callbackDelayMs: 5,
    });
    client = clientFor(sim);
  });
  after(async () => {
    await sim.close();
  });
  beforeEach(async () => {
    assert.equal((await fetch(`${sim.url}/inbox`, { method: 'DELETE' })).status, 200);
    assert.equal((await control(sim, 'DELETE', 'faults')).status, 200);
    assert.equal((await control(sim, 'DELETE', 'stats')).status, 200);
  });

  test('control API: GET shows the settings and the seed in use, PUT validates, DELETE clears', async () => {
    const initial = (await control(sim, 'GET', 'faults')).json;
    assert.equal(typeof initial.seed, 'number');
    assert.deepEqual(Object.keys(initial), ['seed']);

    const settings = {
      errorRate: { '500': 0.1, '503': 0.05 },
      rateLimit: { burstEvery: 20, burstLength: 5, retryAfterSeconds: 2 },
      latencyMs: { min: 0, max: 200 },
      dropAfterAcceptRate: 0.1,
      dropBeforeAcceptRate: 0.05,
      undeliveredRate: 0.1,
      callbacks: { delayMs: { min: 0, max: 2000 }, duplicateRate: 0.2, reorder: true },
      callFailRate: 0.1,
      limits: { requestsPer5s: 300, messagesPerSecond: 5 },
      seed: 42,
    };
    assert.deepEqual(await putFaults(sim, settings), settings);
    assert.deepEqual((await control(sim, 'GET', 'faults')).json, settings);
    // A fixed latency may be a plain number; it comes back as a range.
    assert.deepEqual((await putFaults(sim, { latencyMs: 30, seed: 1 })).latencyMs, { min: 30, max: 30 });

    for (const bad of [
      { errorRate: { '500': 1.5 } },
      { errorRate: { '200': 0.1 } },
      { rateLimit: { burstEvery: 2, burstLength: 5 } },
      { dropAfterAcceptRate: 0.7, dropBeforeAcceptRate: 0.7 },
      { latencyMs: { min: 10, max: 5 } },
      { surprise: true },
    ]) {
      const { status, json } = await control(sim, 'PUT', 'faults', bad);
      assert.equal(status, 400, JSON.stringify(bad));
      assert.match(String(json.error), /invalid fault settings/);
    }
    assert.deepEqual(
      (await control(sim, 'GET', 'faults')).json.latencyMs,
      { min: 30, max: 30 },
      'a refused PUT changes nothing',
    );

    const cleared = (await control(sim, 'DELETE', 'faults')).json;
    assert.deepEqual(Object.keys(cleared), ['seed']);
  });

  test('the control API answers loopback clients only', async () => {
    const response = await sim.app.inject({ method: 'GET', url: '/control/faults', remoteAddress: '10.1.2.3' });
    assert.equal(response.statusCode, 403);
    const local = await sim.app.inject({ method: 'GET', url: '/control/stats', remoteAddress: '127.0.0.1' });
    assert.equal(local.statusCode, 200);
  });

  test('5xx: Plivo error body, nothing recorded; the SDK rejects with an Error', async () => {
    await putFaults(sim, { errorRate: { '500': 1 } });
    const raw = await rawSend(sim, PHONE_A);
    assert.equal(raw.status, 500);
    const body = (await raw.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ['api_id', 'error']);
    await assert.rejects(client.messages.create(SRC, PHONE_A, 'x'), (err: unknown) => err instanceof Error);

    await putFaults(sim, { errorRate: { '503': 1 } });
    await assert.rejects(client.messages.create(SRC, PHONE_A, 'x'), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, /status code 503/);
      return true;
    });

    assert.equal((await getInbox(sim)).total, 0);
    const s = await stats(sim);
    assert.deepEqual(s.requests.message.serverErrors, { '500': 2, '503': 1 });
    assert.equal(s.requests.message.accepted, 0);
    assert.equal(s.messages.accepted, 0);
  });

  test('errorRate shares are honoured with a seed', async () => {
    await putFaults(sim, { errorRate: { '500': 0.25, '503': 0.25 }, seed: 7 });
    const statuses: number[] = [];
    for (let i = 0; i < 80; i += 1) statuses.push((await rawSend(sim, PHONE_A)).status);
    const count = (code: number) => statuses.filter((s) => s === code).length;
    assert.ok(count(500) >= 10 && count(500) <= 30, `500 x${count(500)}`);
    assert.ok(count(503) >= 10 && count(503) <= 30, `503 x${count(503)}`);
    assert.equal(count(202), (await getInbox(sim)).total);

    // Same seed, same traffic: same answers.
    await putFaults(sim, { errorRate: { '500': 0.25, '503': 0.25 }, seed: 7 });
    const replay: number[] = [];
    for (let i = 0; i < 80; i += 1) replay.push((await rawSend(sim, PHONE_A)).status);
    assert.deepEqual(replay, statuses);
  });

  test('429 carries Retry-After; the SDK rejects with "status code 429"; nothing recorded', async () => {
    await putFaults(sim, { rateLimit: { rate429: 1, retryAfterSeconds: 2 } });
    const raw = await rawSend(sim, PHONE_A);
    assert.equal(raw.status, 429);
    assert.equal(raw.headers.get('retry-after'), '2');
    assert.equal(typeof ((await raw.json()) as { error?: unknown }).error, 'string');
    await assert.rejects(client.messages.create(SRC, PHONE_A, 'x'), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, /status code 429/);
      return true;
    });
    assert.equal((await getInbox(sim)).total, 0);
    assert.equal((await stats(sim)).requests.message.tooManyRequests, 2);
  });

  test('429 bursts: the last burstLength of every burstEvery send requests', async () => {
    await putFaults(sim, { rateLimit: { burstEvery: 4, burstLength: 2, retryAfterSeconds: 3 } });
    const answers: Array<[number, string | null]> = [];
    for (let i = 0; i < 8; i += 1) {
      const response = await rawSend(sim, PHONE_A);
      await response.arrayBuffer();
      answers.push([response.status, response.headers.get('retry-after')]);
    }
    assert.deepEqual(answers, [
      [202, null],
      [202, null],
      [429, '3'],
      [429, '3'],
      [202, null],
      [202, null],
      [429, '3'],
      [429, '3'],
    ]);
    assert.equal((await getInbox(sim)).total, 4);
  });

  test('dropped before accept: the SDK sees a reset connection and nothing is recorded', async () => {
    await putFaults(sim, { dropBeforeAcceptRate: 1 });
    await assert.rejects(client.messages.create(SRC, PHONE_A, 'perso'), droppedConnection);
    await assert.rejects(rawSend(sim, PHONE_A), /fetch failed/);
    assert.equal((await getInbox(sim)).total, 0);
    const s = await stats(sim);
    assert.equal(s.requests.message.droppedBeforeAccept, 2);
    assert.equal(s.messages.accepted, 0);
  });

  test('dropped after accept (the crash window): the SDK rejects, yet the messages exist and are delivered', async () => {
    const receiver = await startReceiver();
    try {
      await putFaults(sim, { dropAfterAcceptRate: 1 });
      await assert.rejects(
        client.messages.create(SRC, [PHONE_A, PHONE_B], 'Guasto: intervento in corso', {
          url: `${receiver.url}/status`,
        }),
        droppedConnection,
      );
      const inbox = await allFinal(sim, 2);
      for (const phone of [PHONE_A, PHONE_B]) {
        const [message] = inbox.phones[phone];
        assert.equal(message.text, 'Guasto: intervento in corso');
        assert.equal(message.responseDropped, true);
        assert.equal(message.status, 'delivered');
      }
      // Plivo's own message list knows them too: that is how a client reconciles.
      await control(sim, 'DELETE', 'faults');
      const listed = (await client.messages.list({})) as unknown as Array<{ messageUuid: string }>;
      assert.deepEqual(
        listed.map((m) => m.messageUuid).sort(),
        [inbox.phones[PHONE_A][0].messageUuid, inbox.phones[PHONE_B][0].messageUuid].sort(),
      );
      await waitFor('4 callbacks', () => receiver.received.length >= 4);
      const s = await stats(sim);
      assert.equal(s.requests.message.droppedAfterAccept, 1);
      assert.equal(s.requests.message.accepted, 0);
      assert.equal(s.messages.accepted, 2);
      assert.equal(s.messages.acceptedWithoutResponse, 2);
    } finally {
      await receiver.close();
    }
  });

  test('latency delays the answer', async () => {
    await putFaults(sim, { latencyMs: 150 });
    const started = Date.now();
    await client.messages.create(SRC, PHONE_A, 'lento');
    assert.ok(Date.now() - started >= 140, `answered after ${Date.now() - started} ms`);
  });

  test('undelivered share with a seed: close to the rate, same messages on a replay', async () => {
    const destinations = numbers(200);
    const run = async (): Promise<string[]> => {
      await fetch(`${sim.url}/inbox`, { method: 'DELETE' });
      await putFaults(sim, { undeliveredRate: 0.3, undeliveredErrorCode: '30', seed: 42 });
      await client.messages.create(SRC, destinations, 'Manutenzione programmata');
      const inbox = await allFinal(sim, 200);
      return destinations.map((phone) => {
        const [message] = inbox.phones[phone];
        if (message.status === 'undelivered') assert.equal(message.errorCode, '30');
        return message.status;
      });
    };
    const first = await run();
    const undelivered = first.filter((s) => s === 'undelivered').length;
    assert.ok(undelivered >= 40 && undelivered <= 80, `${undelivered} of 200 undelivered`);
    assert.equal(first.filter((s) => s === 'delivered').length, 200 - undelivered);
    assert.deepEqual(await run(), first);
    assert.equal((await stats(sim)).messages.byStatus.undelivered, undelivered);
  });

  test('duplicated callbacks: each sent twice with the same Sequence', async () => {
    const receiver = await startReceiver();
    try {
      await putFaults(sim, { callbacks: { duplicateRate: 1 } });
      const sent = (await client.messages.create(SRC, PHONE_A, 'doppio', { url: `${receiver.url}/status` })) as {
        messageUuid: string[];
      };
      await waitFor('4 callbacks', () => receiver.received.length >= 4);
      await delay(50);
      const seen = receiver.received.map((cb) => [cb.params.MessageUUID, cb.params.Status, cb.params.Sequence]);
      assert.deepEqual(seen, [
        [sent.messageUuid[0], 'sent', '1'],
        [sent.messageUuid[0], 'sent', '1'],
        [sent.messageUuid[0], 'delivered', '2'],
        [sent.messageUuid[0], 'delivered', '2'],
      ]);
      for (const cb of receiver.received) {
        const valid = plivo.validateSignature(
          `${receiver.url}/status`,
          String(cb.headers['x-plivo-signature-v2-nonce']),
          String(cb.headers['x-plivo-signature-v2']),
          AUTH_TOKEN,
        );
        assert.equal(valid, true);
      }
      const s = await stats(sim);
      assert.equal(s.callbacks.sent, 4);
      assert.equal(s.callbacks.duplicated, 2);
    } finally {
      await receiver.close();
    }
  });

  test('reordered callbacks: final status first, Sequence still sorts them', async () => {
    const receiver = await startReceiver();
    try {
      await putFaults(sim, { callbacks: { reorder: 1, delayMs: { min: 60, max: 60 } } });
      const started = Date.now();
      const sent = (await client.messages.create(SRC, [PHONE_A, PHONE_B], 'in disordine', {
        url: `${receiver.url}/status`,
      })) as {
        messageUuid: string[];
      };
      await waitFor('4 callbacks', () => receiver.received.length >= 4);
      assert.ok(receiver.received[0].at - started >= 55, 'the callback delay applies');
      for (const uuid of sent.messageUuid) {
        const mine = receiver.received.filter((cb) => cb.params.MessageUUID === uuid).map((cb) => cb.params);
        assert.deepEqual(
          mine.map((p) => [p.Status, p.Sequence]),
          [
            ['delivered', '2'],
            ['sent', '1'],
          ],
        );
        const sorted = [...mine].sort((a, b) => Number(a.Sequence) - Number(b.Sequence));
        assert.deepEqual(
          sorted.map((p) => p.Status),
          ['sent', 'delivered'],
        );
        assert.equal(mine[1].DeliveryReportTime, '', 'the late `sent` callback describes the message as it was then');
      }
      assert.equal((await stats(sim)).callbacks.reordered, 2);
    } finally {
      await receiver.close();
    }
  });

  test('limits.requestsPer5s: beyond it, 429 with Retry-After on any API request', async () => {
    await putFaults(sim, { limits: { requestsPer5s: 3 } });
    for (let i = 0; i < 3; i += 1) await client.messages.create(SRC, PHONE_A, `n${i}`);
    const refused = await rawSend(sim, PHONE_A);
    assert.equal(refused.status, 429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 5, `Retry-After ${retryAfter}`);
    await assert.rejects(client.messages.list({}), /status code 429/);
    assert.equal((await getInbox(sim)).total, 3);
    const s = await stats(sim);
    assert.equal(s.requests.message.limitRejections, 1);
    assert.equal(s.requests.read.limitRejections, 1);
  });

  test('limits.messagesPerSecond: the excess waits queued and is sent at that pace', async () => {
    await putFaults(sim, { limits: { messagesPerSecond: 20 } });
    const destinations = numbers(10);
    const response = (await client.messages.create(SRC, destinations, 'a passo')) as { messageUuid: string[] };
    assert.equal(response.messageUuid.length, 10, 'everything is accepted at once');
    await delay(150);
    const midway = Object.values((await getInbox(sim)).phones).flat();
    assert.ok(
      midway.some((m) => m.status === 'queued'),
      'some still queued',
    );
    assert.ok(
      midway.some((m) => m.status !== 'queued'),
      'some already sent',
    );
    const inbox = await allFinal(sim, 10);
    const sentTimes = destinations
      .map((phone) => Date.parse(inbox.phones[phone][0].sentAt ?? ''))
      .sort((a, b) => a - b);
    assert.ok(sentTimes[9] - sentTimes[0] >= 400, `10 messages at 20/s spread over ${sentTimes[9] - sentTimes[0]} ms`);
    assert.ok(Object.values(inbox.phones).every(([m]) => m.status === 'delivered'));
  });

  test('a message queued past the expiry ends failed with error 420', async () => {
    await putFaults(sim, { limits: { messagesPerSecond: 2, queueExpirySeconds: 1 } });
    const destinations = numbers(4);
    await client.messages.create(SRC, destinations, 'troppa coda');
    const inbox = await allFinal(sim, 4, 4_000);
    const outcomes = destinations.map((phone) => [inbox.phones[phone][0].status, inbox.phones[phone][0].errorCode]);
    assert.deepEqual(outcomes, [
      ['delivered', ''],
      ['delivered', ''],
      ['failed', '420'],
      ['failed', '420'],
    ]);
    assert.equal((await stats(sim)).messages.expiredInQueue, 2);
  });

  test('inbox.json: per phone, in acceptance order, with uuid, text, status and acceptedAt', async () => {
    await putFaults(sim, { dropAfterAcceptRate: 0.5, seed: 3 });
    const texts = ['Guasto in corso', 'Aggiornamento', 'Servizio ripristinato', 'Grazie', 'Fine'];
    for (const text of texts) await client.messages.create(SRC, PHONE_A, text).catch(() => undefined);
    const inbox = await allFinal(sim, texts.length);
    const list = inbox.phones[PHONE_A];
    assert.deepEqual(
      list.map((m) => m.text),
      texts,
    );
    for (const m of list) {
      assert.match(m.messageUuid, /^[0-9a-f-]{36}$/);
      assert.equal(m.status, 'delivered');
      assert.ok(!Number.isNaN(Date.parse(m.acceptedAt)));
    }
    const dropped = list.filter((m) => m.responseDropped).length;
    assert.equal(dropped, (await stats(sim)).requests.message.droppedAfterAccept);
    assert.ok(dropped > 0 && dropped < texts.length, `seed 3 drops some: ${dropped}`);
  });
});

// ---------------------------------------------------------------- configuration at start

describe('faults at start', () => {
  test('SimulatorOptions.faults is in force from the first request', async () => {
    const sim = await startSimulator({
      authId: AUTH_ID,
      authToken: AUTH_TOKEN,
      host: '127.0.0.1',
      port: 0,
      callbackDelayMs: 5,
      faults: { errorRate: { '502': 1 }, seed: 9 },
    });
    try {
      await assert.rejects(clientFor(sim).messages.create(SRC, PHONE_A, 'x'), /status code 502/);
      assert.deepEqual((await control(sim, 'GET', 'faults')).json, { errorRate: { '502': 1 }, seed: 9 });
    } finally {
      await sim.close();
    }
  });

  test('invalid start settings are refused', async () => {
    await assert.rejects(
      startSimulator({
        authId: AUTH_ID,
        authToken: AUTH_TOKEN,
        host: '127.0.0.1',
        port: 0,
        faults: { undeliveredRate: 2 },
      }),
      /invalid fault settings/,
    );
  });

  test('SIM_FAULTS is parsed and validated', () => {
    assert.equal(faultsFromEnv(undefined), undefined);
    assert.equal(faultsFromEnv(' '), undefined);
    assert.deepEqual(faultsFromEnv('{"errorRate":{"500":0.1},"seed":1}'), { errorRate: { '500': 0.1 }, seed: 1 });
    assert.throws(() => faultsFromEnv('{oops'), /SIM_FAULTS is not valid JSON/);
    assert.throws(() => faultsFromEnv('{"errorRate":{"500":3}}'), /SIM_FAULTS: invalid fault settings/);
  });
});

// ---------------------------------------------------------------- persistence

describe('crash-window messages on disk', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plivo-sim-faults-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a message accepted in the crash window survives a restart, still flagged', async () => {
    const dataFile = join(dir, 'crash.ndjson');
    const options = {
      authId: AUTH_ID,
      authToken: AUTH_TOKEN,
      host: '127.0.0.1',
      port: 0,
      callbackDelayMs: 5,
      dataFile,
    };
    const first = await startSimulator({ ...options, faults: { dropAfterAcceptRate: 1 } });
    await assert.rejects(clientFor(first).messages.create(SRC, PHONE_A, 'nel buco'), droppedConnection);
    await first.close();
    const second = await startSimulator(options);
    try {
      const [message] = (await getInbox(second)).phones[PHONE_A];
      assert.equal(message.text, 'nel buco');
      assert.equal(message.responseDropped, true);
    } finally {
      await second.close();
    }
  });

  test('SIGKILL right after a 202 loses nothing the client was told about', async () => {
    const dataFile = join(dir, 'killed.ndjson');
    const start = async (): Promise<{ url: string; kill(): Promise<void> }> => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, '..', 'sim', 'main.ts')], {
        env: {
          ...process.env,
          SIM_HOST: '127.0.0.1',
          SIM_PORT: '0',
          PLIVO_AUTH_ID: AUTH_ID,
          PLIVO_AUTH_TOKEN: AUTH_TOKEN,
          SIM_DATA_FILE: dataFile,
          SIM_FAULTS: '',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      const url = await waitFor(
        'the simulator to listen',
        () => /Plivo simulator on (http:\/\/[\d.:]+)/.exec(output)?.[1],
        15_000,
      );
      return {
        url,
        kill: () =>
          new Promise<void>((resolve) => {
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      };
    };
    const first = await start();
    const client = new plivo.Client(AUTH_ID, AUTH_TOKEN, { url: `${first.url}/v1/Account/${AUTH_ID}` });
    const sent = (await client.messages.create(SRC, [PHONE_A, PHONE_B], 'prima del kill')) as { messageUuid: string[] };
    await first.kill();

    const second = await start();
    try {
      const inbox = (await (await fetch(`${second.url}/inbox.json`)).json()) as Inbox;
      const uuids = Object.values(inbox.phones)
        .flat()
        .map((m) => m.messageUuid);
      assert.deepEqual(uuids.sort(), [...sent.messageUuid].sort());
    } finally {
      await second.kill();
    }
  });
});
