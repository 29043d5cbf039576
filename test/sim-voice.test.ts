/**
 * Inbound SMS injection and the Voice Call API of the simulator. The SDK's voice calls
 * ignore the `url` option (hard-coded hosts), so calls go through raw fetch as a voice
 * channel must; signatures are checked with the SDK's own `validateSignature`.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as plivo from 'plivo';
import { startSimulator, type RunningSimulator } from '../sim/plivo-simulator';
import { estimateDuration, parsePlivoXml, unescapeXml } from '../sim/voice';

const AUTH_ID = 'MATESTSIMULATOR00003';
const AUTH_TOKEN = 'test-simulator-token';
const OUR_NUMBER = '+390212345678';
const PHONE_A = '+393331234567';
const PHONE_B = '+393471234567';

// ---------------------------------------------------------------- helpers

interface Received {
  path: string;
  method: string;
  headers: IncomingHttpHeaders;
  params: Record<string, string>;
  signatureValid: boolean;
}

interface Endpoint {
  status: number;
  body: string;
  contentType?: string;
}

/**
 * A stand-in for the app: records every request, checks its V2 signature against the full
 * URL it was sent to, and answers per path (default 200 "ok").
 */
async function startApp(
  routes: Record<string, Endpoint> = {},
): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  let base = '';
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', base);
      const params =
        req.method === 'GET' ? Object.fromEntries(url.searchParams) : Object.fromEntries(new URLSearchParams(body));
      const signatureValid = plivo.validateSignature(
        `${base}${req.url ?? ''}`,
        String(req.headers['x-plivo-signature-v2-nonce'] ?? ''),
        String(req.headers['x-plivo-signature-v2'] ?? ''),
        AUTH_TOKEN,
      );
      received.push({ path: url.pathname, method: req.method ?? '', headers: req.headers, params, signatureValid });
      const route = routes[url.pathname] ?? { status: 200, body: 'ok' };
      res.writeHead(route.status, { 'content-type': route.contentType ?? 'text/plain' }).end(route.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  base = `http://127.0.0.1:${port}`;
  return { url: base, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
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

const basicAuth = (token = AUTH_TOKEN) => `Basic ${Buffer.from(`${AUTH_ID}:${token}`).toString('base64')}`;

async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}

function makeCall(sim: RunningSimulator, body: Record<string, unknown>, token?: string): Promise<Response> {
  return fetch(`${sim.url}/v1/Account/${AUTH_ID}/Call/`, {
    method: 'POST',
    headers: { authorization: basicAuth(token), 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

interface CallEntry {
  callUuid: string;
  requestUuid: string;
  status: string;
  spokenText: string;
  speak: Array<{ text: string; language?: string; voice?: string }>;
  hangupCauseName: string;
  duration: number;
  answerError?: string;
}
interface Inbox {
  phones: Record<string, unknown[]>;
  inbound: Record<
    string,
    Array<{ messageUuid: string; to: string; text: string; responseStatus?: number; error?: string }>
  >;
  calls: Record<string, CallEntry[]>;
  total: number;
  totals: { messages: number; inbound: number; calls: number };
}

async function getInbox(sim: RunningSimulator, to?: string): Promise<Inbox> {
  return (await (await fetch(`${sim.url}/inbox.json${to ? `?to=${encodeURIComponent(to)}` : ''}`)).json()) as Inbox;
}

const XML = (inner: string) => ({
  status: 200,
  contentType: 'application/xml',
  body: `<?xml version="1.0" encoding="utf-8"?><Response>${inner}</Response>`,
});

// ---------------------------------------------------------------- Plivo XML

describe('Plivo XML reading', () => {
  test('Speak texts with attributes, entities, CDATA and SSML', () => {
    const parsed = parsePlivoXml(`<?xml version="1.0"?>
      <Response>
        <!-- <Speak>commented out</Speak> -->
        <Speak language="it-IT" voice="WOMAN" loop="2">Guasto &amp; disservizio: &quot;zona&quot; &#39;nord&#39; &#x263A;</Speak>
        <Wait length="3"/>
        <Speak voice="Polly.Bianca"><prosody rate="slow">Ripristino <break/>alle 18</prosody></Speak>
        <Speak><![CDATA[Testo <con> & segni]]></Speak>
        <Hangup/>
      </Response>`);
    assert.ok(typeof parsed !== 'string');
    assert.deepEqual(parsed.speak, [
      { text: `Guasto & disservizio: "zona" 'nord' ☺`, language: 'it-IT', voice: 'WOMAN', loop: 2 },
      { text: 'Ripristino alle 18', voice: 'Polly.Bianca' },
      { text: 'Testo <con> & segni' },
    ]);
    assert.equal(parsed.otherSeconds, 3);
    assert.equal(parsed.hangupReason, 'hangup');
    // 1 s to answer, 3 s of Wait, then ceil(words / 2.5) per Speak, times its loop.
    assert.equal(estimateDuration(parsed), 1 + 3 + 3 * 2 + 2 + 2);
  });

  test('not Plivo XML is an error; an empty Response is fine', () => {
    assert.match(String(parsePlivoXml('<html><body>oops</body></html>')), /no <Response>/);
    assert.deepEqual(parsePlivoXml('<Response/>'), { speak: [], otherSeconds: 0, hangupReason: undefined });
    assert.equal(unescapeXml('a &lt;b&gt; &unknown; c'), 'a <b> &unknown; c');
  });
});

// ---------------------------------------------------------------- inbound SMS

describe('inbound SMS injection', () => {
  let sim: RunningSimulator;
  before(async () => {
    sim = await startSimulator({
      authId: AUTH_ID,
      authToken: AUTH_TOKEN,
      host: '127.0.0.1',
      port: 0,
      callbackDelayMs: 5,
    });
  });
  after(async () => {
    await sim.close();
  });
  beforeEach(async () => {
    await fetch(`${sim.url}/inbox`, { method: 'DELETE' });
  });

  const inject = (body: Record<string, unknown>) =>
    fetch(`${sim.url}/control/inbound`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  test('posts what Plivo posts, signed with V2, and reports the app answer', async () => {
    const app = await startApp({
      '/v1/plivo/inbound': { status: 200, body: '<Response/>', contentType: 'application/xml' },
    });
    try {
      const response = await inject({
        from: PHONE_A,
        to: OUR_NUMBER,
        text: 'STOP',
        url: `${app.url}/v1/plivo/inbound?tenant=acme`,
      });
      assert.equal(response.status, 200);
      const result = await json(response);
      assert.equal(result.status, 200);
      assert.equal(result.body, '<Response/>');
      assert.match(String(result.messageUuid), /^[0-9a-f-]{36}$/);

      assert.equal(app.received.length, 1);
      const [request] = app.received;
      assert.equal(request.method, 'POST');
      assert.equal(request.headers['content-type'], 'application/x-www-form-urlencoded');
      assert.equal(request.signatureValid, true);
      assert.equal(request.headers['x-plivo-signature-ma-v2'], request.headers['x-plivo-signature-v2']);
      assert.equal(
        plivo.validateSignature(
          `${app.url}/v1/plivo/inbound`,
          String(request.headers['x-plivo-signature-v2-nonce']),
          String(request.headers['x-plivo-signature-v2']),
          'other-token',
        ),
        false,
      );
      assert.deepEqual(request.params, {
        From: PHONE_A.slice(1),
        To: OUR_NUMBER.slice(1),
        Type: 'sms',
        Text: 'STOP',
        MessageUUID: result.messageUuid,
        Units: '1',
        TotalRate: '0.00000',
        TotalAmount: '0.00000',
        MessageIntent: '',
      });

      const inbox = await getInbox(sim);
      assert.equal(inbox.totals.inbound, 1);
      assert.equal(inbox.total, 0, 'inbound messages are not counted as sent ones');
      assert.deepEqual(
        inbox.inbound[PHONE_A].map((m) => [m.text, m.to, m.responseStatus]),
        [['STOP', OUR_NUMBER, 200]],
      );
      assert.deepEqual((await getInbox(sim, PHONE_A)).inbound[PHONE_A].length, 1);
      const html = await (await fetch(`${sim.url}/inbox`)).text();
      assert.match(html, /STOP/);
    } finally {
      await app.close();
    }
  });

  test("the app's refusal and an unreachable app are reported; bad input is a 400", async () => {
    const app = await startApp({ '/in': { status: 403, body: 'bad signature' } });
    try {
      const refused = await json(await inject({ from: PHONE_B, to: OUR_NUMBER, text: 'INFO', url: `${app.url}/in` }));
      assert.equal(refused.status, 403);
      assert.equal(refused.body, 'bad signature');
    } finally {
      await app.close();
    }
    const gone = await inject({ from: PHONE_B, to: OUR_NUMBER, text: 'INFO', url: `${app.url}/in` });
    assert.equal(gone.status, 502);
    assert.match(String((await json(gone)).error), /could not be reached/);
    assert.deepEqual(
      (await getInbox(sim)).inbound[PHONE_B].map((m) => m.responseStatus),
      [403, undefined],
    );

    for (const bad of [
      { to: OUR_NUMBER, text: 'x', url: 'http://127.0.0.1:1/' },
      { from: PHONE_A, to: OUR_NUMBER, text: '', url: 'http://127.0.0.1:1/' },
      { from: PHONE_A, to: OUR_NUMBER, text: 'x', url: 'ftp://x' },
    ]) {
      assert.equal((await inject(bad)).status, 400, JSON.stringify(bad));
    }
  });
});

// ---------------------------------------------------------------- voice

describe('Voice Call API', () => {
  let sim: RunningSimulator;
  before(async () => {
    sim = await startSimulator({
      authId: AUTH_ID,
      authToken: AUTH_TOKEN,
      host: '127.0.0.1',
      port: 0,
      callbackDelayMs: 5,
    });
  });
  after(async () => {
    await sim.close();
  });
  beforeEach(async () => {
    await fetch(`${sim.url}/inbox`, { method: 'DELETE' });
    await fetch(`${sim.url}/control/faults`, { method: 'DELETE' });
  });

  test('fires the call, fetches the answer XML, speaks it, reports the hangup (all signed)', async () => {
    const speech = 'Gentile cliente, guasto in zona &amp; dintorni: ripristino previsto alle 18.';
    const app = await startApp({ '/voice/answer': XML(`<Speak language="it-IT" voice="WOMAN">${speech}</Speak>`) });
    try {
      const response = await makeCall(sim, {
        from: OUR_NUMBER,
        to: PHONE_A,
        answer_url: `${app.url}/voice/answer?incident=42`,
        answer_method: 'POST',
        hangup_url: `${app.url}/voice/hangup`,
        ring_url: `${app.url}/voice/ring`,
      });
      assert.equal(response.status, 201);
      const fired = await json(response);
      assert.equal(fired.message, 'call fired');
      assert.equal(typeof fired.api_id, 'string');
      assert.match(String(fired.request_uuid), /^[0-9a-f-]{36}$/);

      const hangup = await waitFor('the hangup callback', () => app.received.find((r) => r.path === '/voice/hangup'));
      assert.deepEqual(
        app.received.map((r) => r.path),
        ['/voice/ring', '/voice/answer', '/voice/hangup'],
      );
      assert.ok(
        app.received.every((r) => r.signatureValid),
        'every request is signed with V2',
      );

      const answer = app.received[1].params;
      assert.equal(answer.CallStatus, 'in-progress');
      assert.equal(answer.Direction, 'outbound');
      assert.equal(answer.From, OUR_NUMBER.slice(1));
      assert.equal(answer.To, PHONE_A.slice(1));
      assert.equal(answer.RequestUUID, fired.request_uuid);
      assert.equal(app.received[0].params.CallStatus, 'ringing');

      const h = hangup.params;
      assert.equal(h.CallUUID, answer.CallUUID);
      assert.equal(h.CallStatus, 'completed');
      assert.equal(h.HangupCause, 'NORMAL_CLEARING');
      assert.ok(Number(h.Duration) > 1, `Duration ${h.Duration}`);
      assert.equal(h.BillDuration, '60');
      assert.equal(h.TotalCost, '0.02000');

      const inbox = await getInbox(sim);
      assert.equal(inbox.totals.calls, 1);
      const [call] = inbox.calls[PHONE_A];
      assert.equal(call.callUuid, answer.CallUUID);
      assert.equal(call.status, 'completed');
      assert.equal(call.spokenText, 'Gentile cliente, guasto in zona & dintorni: ripristino previsto alle 18.');
      assert.deepEqual(call.speak[0].language, 'it-IT');
      assert.equal(call.duration, Number(h.Duration));

      for (const uuid of [call.callUuid, call.requestUuid]) {
        const detail = await json(
          await fetch(`${sim.url}/v1/Account/${AUTH_ID}/Call/${uuid}/`, { headers: { authorization: basicAuth() } }),
        );
        assert.equal(detail.call_uuid, call.callUuid);
        assert.equal(detail.call_status, 'completed');
        assert.equal(detail.call_direction, 'outbound');
        assert.equal(detail.to_number, PHONE_A.slice(1));
        assert.equal(detail.bill_duration, 60);
        assert.equal(detail.total_amount, '0.02000');
        assert.equal(detail.resource_uri, `/v1/Account/${AUTH_ID}/Call/${call.callUuid}/`);
      }
      const html = await (await fetch(`${sim.url}/inbox`)).text();
      assert.match(html, /ripristino previsto alle 18/);
    } finally {
      await app.close();
    }
  });

  test('several destinations joined with "<": one call (and request UUID) each', async () => {
    const app = await startApp({ '/a': XML('<Speak>Avviso</Speak>') });
    try {
      const fired = await json(
        await makeCall(sim, {
          from: OUR_NUMBER,
          to: `${PHONE_A}<${PHONE_B}`,
          answer_url: `${app.url}/a`,
          hangup_url: `${app.url}/h`,
        }),
      );
      assert.equal(fired.message, 'calls fired');
      assert.equal((fired.request_uuid as string[]).length, 2);
      await waitFor('two hangups', () => app.received.filter((r) => r.path === '/h').length === 2);
      const inbox = await getInbox(sim);
      assert.deepEqual([inbox.calls[PHONE_A][0].spokenText, inbox.calls[PHONE_B][0].spokenText], ['Avviso', 'Avviso']);
    } finally {
      await app.close();
    }
  });

  test('callFailRate: the call ends no-answer or busy without fetching the answer URL', async () => {
    const app = await startApp({ '/a': XML('<Speak>mai sentito</Speak>') });
    try {
      await fetch(`${sim.url}/control/faults`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ callFailRate: 1, seed: 5 }),
      });
      const fired = await makeCall(sim, {
        from: OUR_NUMBER,
        to: `${PHONE_A}<${PHONE_B}`,
        answer_url: `${app.url}/a`,
        hangup_url: `${app.url}/h`,
      });
      assert.equal(fired.status, 201);
      await waitFor('two hangups', () => app.received.filter((r) => r.path === '/h').length === 2);
      assert.equal(app.received.filter((r) => r.path === '/a').length, 0);
      for (const { params } of app.received) {
        assert.ok(['no-answer', 'busy'].includes(params.CallStatus), params.CallStatus);
        assert.equal(params.HangupCause, params.CallStatus === 'busy' ? 'USER_BUSY' : 'NO_ANSWER');
        assert.equal(params.Duration, '0');
        assert.equal(params.TotalCost, '0.00000');
      }
      const inbox = await getInbox(sim);
      assert.ok(['no-answer', 'busy'].includes(inbox.calls[PHONE_A][0].status));
      assert.equal(inbox.calls[PHONE_A][0].spokenText, '');
      const stats = await json(await fetch(`${sim.url}/control/stats`));
      const calls = stats.calls as Record<string, number>;
      assert.equal(calls.noAnswer + calls.busy, 2);
    } finally {
      await app.close();
    }
  });

  test('an answer URL that fails still ends the call, with the reason recorded', async () => {
    const app = await startApp({ '/a': { status: 500, body: 'boom' } });
    try {
      await makeCall(sim, { from: OUR_NUMBER, to: PHONE_A, answer_url: `${app.url}/a`, hangup_url: `${app.url}/h` });
      const hangup = await waitFor('the hangup', () => app.received.find((r) => r.path === '/h'));
      assert.equal(hangup.params.CallStatus, 'completed');
      assert.equal(hangup.params.HangupCauseName, 'Error Reaching Answer URL');
      const [call] = (await getInbox(sim)).calls[PHONE_A];
      assert.match(String(call.answerError), /HTTP 500/);
      assert.equal(call.spokenText, '');
    } finally {
      await app.close();
    }
  });

  test('bad requests: 400 for missing parameters, 401 for wrong credentials, faults apply too', async () => {
    const missing = await makeCall(sim, { from: OUR_NUMBER, to: PHONE_A });
    assert.equal(missing.status, 400);
    assert.match(String((await json(missing)).error), /answer_url/);
    const badNumber = await makeCall(sim, { from: OUR_NUMBER, to: '123', answer_url: 'http://127.0.0.1:1/a' });
    assert.equal(badNumber.status, 400);
    assert.equal(
      (await makeCall(sim, { from: OUR_NUMBER, to: PHONE_A, answer_url: 'http://127.0.0.1:1/a' }, 'wrong')).status,
      401,
    );
    const unknown = await fetch(`${sim.url}/v1/Account/${AUTH_ID}/Call/00000000-0000-4000-8000-000000000000/`, {
      headers: { authorization: basicAuth() },
    });
    assert.equal(unknown.status, 404);

    await fetch(`${sim.url}/control/faults`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ errorRate: { '503': 1 } }),
    });
    assert.equal(
      (await makeCall(sim, { from: OUR_NUMBER, to: PHONE_A, answer_url: 'http://127.0.0.1:1/a' })).status,
      503,
    );
    assert.equal((await getInbox(sim)).totals.calls, 0);
  });
});

// ---------------------------------------------------------------- call listings

describe('Call listings: records of ended calls, live calls, queued calls', () => {
  let fast: RunningSimulator;
  let slow: RunningSimulator;
  let app: Awaited<ReturnType<typeof startApp>>;
  before(async () => {
    fast = await startSimulator({
      authId: AUTH_ID,
      authToken: AUTH_TOKEN,
      host: '127.0.0.1',
      port: 0,
      callbackDelayMs: 5,
    });
    // Each step of a call takes 400 ms here: long enough to see it queued, then live.
    slow = await startSimulator({
      authId: AUTH_ID,
      authToken: AUTH_TOKEN,
      host: '127.0.0.1',
      port: 0,
      callbackDelayMs: 400,
    });
    app = await startApp({ '/a': XML('<Speak>Avviso di guasto</Speak>') });
  });
  after(async () => {
    await Promise.all([fast.close(), slow.close(), app.close()]);
  });
  beforeEach(async () => {
    for (const sim of [fast, slow]) await fetch(`${sim.url}/inbox`, { method: 'DELETE' });
    app.received.length = 0;
  });

  const get = async (sim: RunningSimulator, path: string, query: Record<string, string> = {}) => {
    const res = await fetch(`${sim.url}/v1/Account/${AUTH_ID}/Call/${path}?${new URLSearchParams(query).toString()}`, {
      headers: { authorization: basicAuth() },
    });
    return { status: res.status, body: await json(res) };
  };
  const fire = async (sim: RunningSimulator, to: string): Promise<string> =>
    String(
      (
        await json(
          await makeCall(sim, { from: OUR_NUMBER, to, answer_url: `${app.url}/a`, hangup_url: `${app.url}/h` }),
        )
      ).request_uuid,
    );
  const plivoTime = (d: Date) => d.toISOString().replace('T', ' ').slice(0, 19);

  test('a call is listed queued, then live, then among the records of ended calls, each with its request UUID', async () => {
    const requestUuid = await fire(slow, PHONE_A);
    const [call] = (await getInbox(slow)).calls[PHONE_A];
    assert.equal(call.requestUuid, requestUuid);

    const queued = await get(slow, '', { status: 'queued' });
    assert.equal(queued.status, 200);
    assert.deepEqual(queued.body.calls, [call.callUuid]);
    assert.equal(typeof queued.body.api_id, 'string');
    const queuedDetail = await get(slow, `${call.callUuid}/`, { status: 'queued' });
    assert.deepEqual(
      { ...queuedDetail.body, api_id: undefined },
      {
        api_id: undefined,
        direction: 'outbound',
        from: OUR_NUMBER.slice(1),
        to: PHONE_A.slice(1),
        call_status: 'queued',
        caller_name: OUR_NUMBER.slice(1),
        call_uuid: call.callUuid,
        request_uuid: requestUuid,
      },
    );
    assert.deepEqual((await get(slow, '', { status: 'live' })).body.calls, [], 'not live while queued');
    assert.equal((await get(slow, `${call.callUuid}/`, { status: 'live' })).status, 404);

    await waitFor('the call to ring', async () =>
      (await getInbox(slow)).calls[PHONE_A][0].status === 'ringing' ? true : undefined,
    );
    assert.deepEqual((await get(slow, '', { status: 'queued' })).body.calls, [], 'no longer queued once dialled');
    assert.deepEqual((await get(slow, '', { status: 'live' })).body.calls, [call.callUuid]);
    assert.deepEqual(
      (await get(slow, '', { status: 'live', call_direction: 'outbound', to_number: PHONE_A.slice(1) })).body.calls,
      [call.callUuid],
    );
    assert.deepEqual((await get(slow, '', { status: 'live', to_number: PHONE_B })).body.calls, [], 'to_number filters');
    assert.deepEqual(
      (await get(slow, '', { status: 'live', call_direction: 'inbound' })).body.calls,
      [],
      'our calls are outbound',
    );
    const live = await get(slow, `${call.callUuid}/`, { status: 'live' });
    assert.equal(live.body.call_uuid, call.callUuid);
    assert.equal(live.body.request_uuid, requestUuid);
    assert.equal(live.body.to, PHONE_A.slice(1));
    assert.equal(live.body.direction, 'outbound');
    assert.match(String(live.body.session_start), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/);
    assert.deepEqual(
      (await get(slow, '', { call_direction: 'outbound' })).body.objects,
      [],
      'no record before it ends',
    );

    await waitFor('the hangup', () => app.received.find((r) => r.path === '/h'), 10_000);
    assert.deepEqual((await get(slow, '', { status: 'live' })).body.calls, []);
    assert.equal((await get(slow, `${call.callUuid}/`, { status: 'live' })).status, 404);
    const records = await get(slow, '', {
      call_direction: 'outbound',
      to_number: PHONE_A.slice(1),
      end_time__gte: plivoTime(new Date(Date.now() - 60_000)),
    });
    assert.equal(records.status, 200);
    const objects = records.body.objects as Record<string, unknown>[];
    assert.equal(objects.length, 1);
    assert.equal(objects[0]!.call_uuid, call.callUuid);
    assert.equal(objects[0]!.request_uuid, requestUuid);
    assert.equal(objects[0]!.call_status, 'completed');
    assert.equal(objects[0]!.to_number, PHONE_A.slice(1));
    assert.deepEqual(records.body.meta, { limit: 20, offset: 0, total_count: 1, next: null, previous: null });
  });

  test("records of ended calls: Plivo's filters, newest first, paged by 20 at most", async () => {
    const start = new Date(Date.now() - 1000);
    const numbers = Array.from({ length: 5 }, (_, i) => `+3933300000${10 + i}`);
    for (const n of numbers) await fire(fast, n);
    await waitFor('five hangups', () => app.received.filter((r) => r.path === '/h').length === 5);
    const since = { end_time__gte: plivoTime(start) };

    const all = await get(fast, '', { ...since, call_direction: 'outbound' });
    assert.equal((all.body.objects as unknown[]).length, 5);
    const ends = (all.body.objects as { end_time: string }[]).map((o) => o.end_time);
    assert.deepEqual(ends, [...ends].sort().reverse(), 'newest first');
    assert.equal(((await get(fast, '', { ...since, call_direction: 'inbound' })).body.objects as unknown[]).length, 0);
    assert.equal(
      ((await get(fast, '', { ...since, to_number: '393330000012' })).body.objects as unknown[]).length,
      1,
      'an exact number',
    );
    assert.equal(
      ((await get(fast, '', { ...since, to_number: '+39333000001' })).body.objects as unknown[]).length,
      5,
      'a prefix',
    );
    assert.equal(
      ((await get(fast, '', { end_time__gte: plivoTime(new Date(Date.now() + 60_000)) })).body.objects as unknown[])
        .length,
      0,
      'ended before the bound',
    );
    assert.equal(
      ((await get(fast, '', { ...since, bill_duration: '60' })).body.objects as unknown[]).length,
      5,
      'answered calls bill a minute',
    );
    assert.equal(((await get(fast, '', { ...since, bill_duration__gt: '60' })).body.objects as unknown[]).length, 0);

    const page1 = await get(fast, '', { ...since, limit: '2' });
    const meta1 = page1.body.meta as Record<string, unknown>;
    assert.equal(meta1.total_count, 5);
    assert.equal(meta1.previous, null);
    assert.match(String(meta1.next), new RegExp(`^/v1/Account/${AUTH_ID}/Call/\\?.*limit=2&offset=2$`));
    const page3 = await get(fast, '', { ...since, limit: '2', offset: '4' });
    assert.equal((page3.body.objects as unknown[]).length, 1);
    assert.equal((page3.body.meta as Record<string, unknown>).next, null);
    const listed = [
      ...(page1.body.objects as { call_uuid: string }[]),
      ...((await get(fast, '', { ...since, limit: '2', offset: '2' })).body.objects as { call_uuid: string }[]),
      ...(page3.body.objects as { call_uuid: string }[]),
    ];
    assert.deepEqual(
      listed.map((o) => o.call_uuid),
      (all.body.objects as { call_uuid: string }[]).map((o) => o.call_uuid),
      'the pages add up to the whole list',
    );
  });

  test('bad listing parameters are refused with a 400 that names them', async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ limit: '21' }, /limit must be an integer between 1 and 20/],
      [{ offset: '-1' }, /offset/],
      [{ end_time__gte: 'yesterday' }, /end_time__gte must look like YYYY-MM-DD/],
      [{ end_time__gte: '2025-01-01 00:00', end_time__lte: '2025-03-01 00:00' }, /at most 30 days/],
      [{ bill_duration__gt: 'long' }, /bill_duration__gt must be a whole number/],
      [{ call_direction: 'sideways' }, /call_direction must be inbound or outbound/],
      [{ status: 'ringing' }, /status must be live or queued/],
    ];
    for (const [query, message] of cases) {
      const r = await get(fast, '', query);
      assert.equal(r.status, 400, JSON.stringify(query));
      assert.match(String(r.body.error), message, JSON.stringify(query));
    }
    assert.equal((await get(fast, '00000000-0000-4000-8000-000000000000/', { status: 'live' })).status, 404);
    assert.equal((await get(fast, '00000000-0000-4000-8000-000000000000/', { status: 'sideways' })).status, 400);
  });
});
