/**
 * The Plivo simulator, exercised through the real `plivo` SDK so that any drift between
 * what the SDK sends/expects and what the simulator does shows up here.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as plivo from 'plivo';
import { maskPhone, segmentSms, startSimulator, type RunningSimulator } from '../sim/plivo-simulator';

const AUTH_ID = 'MATESTSIMULATOR00001';
const AUTH_TOKEN = 'test-simulator-token';
const SRC = '+390212345678';
const PHONE_A = '+393331234567';
const PHONE_B = '+393471234567';

// ---------------------------------------------------------------- helpers

interface InboxEntry {
  messageUuid: string;
  from: string;
  text: string;
  units: number;
  status: string;
  acceptedAt: string;
}
interface Inbox {
  phones: Record<string, InboxEntry[]>;
  total: number;
}

interface ReceivedCallback {
  url: string;
  headers: IncomingHttpHeaders;
  params: Record<string, string>;
}

/** A tiny webhook receiver standing in for the app's status-callback endpoint. */
async function startReceiver(): Promise<{ url: string; received: ReceivedCallback[]; close(): Promise<void> }> {
  const received: ReceivedCallback[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      received.push({
        url: req.url ?? '',
        headers: req.headers,
        params: Object.fromEntries(new URLSearchParams(body)),
      });
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

function clientFor(sim: RunningSimulator, token = AUTH_TOKEN): plivo.Client {
  return new plivo.Client(AUTH_ID, token, { url: `${sim.url}/v1/Account/${AUTH_ID}` });
}

async function getInbox(sim: RunningSimulator, to?: string): Promise<Inbox> {
  const query = to ? `?to=${encodeURIComponent(to)}` : '';
  const response = await fetch(`${sim.url}/inbox.json${query}`);
  assert.equal(response.status, 200);
  return (await response.json()) as Inbox;
}

async function clearInbox(sim: RunningSimulator): Promise<void> {
  const response = await fetch(`${sim.url}/inbox`, { method: 'DELETE' });
  assert.equal(response.status, 200);
}

/** The SDK's error for a 4xx carries the HTTP status. */
function withStatus(status: number) {
  return (err: unknown): boolean => {
    assert.equal((err as { status?: number }).status, status, String(err));
    return true;
  };
}

/** `YYYY-MM-DD HH:MM:SS.uuuuuu` in UTC, the format Plivo's time filters take. */
function plivoFilterTime(date: Date): string {
  return `${date.toISOString().slice(0, 23).replace('T', ' ')}000`;
}

// `MessageResponse` is typed with `invalidNumber`, but the SDK sets `invalid_number` at runtime.
type SendResult = Awaited<ReturnType<plivo.Client['messages']['create']>> & { invalid_number?: string[] };
type ListResult = Array<{ messageUuid: string; toNumber: string; messageState: string }> & {
  meta: { totalCount: number };
};

// ---------------------------------------------------------------- unit counting

describe('SMS unit counting', () => {
  test('GSM-7: 160 in one part, 153 per part beyond', () => {
    assert.deepEqual(segmentSms('a'.repeat(160)), { encoding: 'GSM', units: 1, length: 160 });
    assert.equal(segmentSms('a'.repeat(161)).units, 2);
    assert.equal(segmentSms('a'.repeat(306)).units, 2);
    assert.equal(segmentSms('a'.repeat(307)).units, 3);
    assert.equal(segmentSms('Manutenzione già programmata: ore 02:00-04:00 àèéìòù').encoding, 'GSM');
  });

  test('GSM-7 extension characters cost two septets and are never split', () => {
    assert.deepEqual(segmentSms('€'.repeat(80)), { encoding: 'GSM', units: 1, length: 160 });
    assert.equal(segmentSms('€'.repeat(81)).units, 2);
    // 152 plain septets then an escape pair: the pair moves whole to the second part.
    assert.equal(segmentSms(`${'a'.repeat(152)}€${'a'.repeat(152)}`).units, 3);
  });

  test('one non-GSM character makes the whole text UCS-2: 70 single, 67 per part', () => {
    assert.deepEqual(segmentSms('ж'.repeat(70)), { encoding: 'UCS-2', units: 1, length: 70 });
    assert.equal(segmentSms('ж'.repeat(71)).units, 2);
    assert.equal(segmentSms('ж'.repeat(134)).units, 2);
    assert.equal(segmentSms('ж'.repeat(135)).units, 3);
    assert.equal(segmentSms(`${'a'.repeat(100)}“quoted”`).units, 2);
    assert.equal(segmentSms('🙂'.repeat(35)).units, 1); // surrogate pairs: 2 units each
  });
});

test('maskPhone keeps the country code and the last three digits', () => {
  assert.equal(maskPhone(PHONE_A), '+39*******567');
  assert.equal(maskPhone('+14155552671'), '+1*******671');
});

// ---------------------------------------------------------------- through the SDK

describe('Plivo simulator through the real SDK', () => {
  let sim: RunningSimulator;
  let client: plivo.Client;
  const logLines: string[] = [];

  before(async () => {
    sim = await startSimulator({
      authId: AUTH_ID,
      authToken: AUTH_TOKEN,
      host: '127.0.0.1',
      port: 0,
      callbackDelayMs: 10,
      logger: { level: 'info', stream: { write: (line: string) => logLines.push(line) } },
    });
    client = clientFor(sim);
  });
  after(async () => {
    await sim.close();
  });
  beforeEach(async () => {
    await clearInbox(sim);
  });

  test('bulk send: duplicates removed, invalid numbers reported, one UUID per valid number', async () => {
    const response = (await client.messages.create(
      SRC,
      [PHONE_A, PHONE_B, PHONE_A.slice(1), '12345'],
      'Guasto in zona',
      {
        log: false,
      },
    )) as SendResult;
    assert.equal(response.message, 'message(s) queued');
    assert.equal(response.messageUuid.length, 2);
    assert.deepEqual(response.invalid_number, ['12345']);

    const inbox = await getInbox(sim);
    assert.equal(inbox.total, 2);
    assert.deepEqual(Object.keys(inbox.phones).sort(), [PHONE_A, PHONE_B]);
    assert.equal(inbox.phones[PHONE_A][0].text, 'Guasto in zona');
    assert.equal(inbox.phones[PHONE_A][0].from, SRC);
    assert.deepEqual(
      [inbox.phones[PHONE_A][0].messageUuid, inbox.phones[PHONE_B][0].messageUuid].sort(),
      [...response.messageUuid].sort(),
    );

    // With log=false Plivo keeps only a masked destination in its records.
    const detail = await client.messages.get(inbox.phones[PHONE_A][0].messageUuid);
    assert.equal(detail.toNumber, '393XXXXXX567');

    // `?to=` works whether or not the + survives URL decoding.
    assert.equal((await getInbox(sim, PHONE_B)).total, 1);
    const unencoded = (await (await fetch(`${sim.url}/inbox.json?to=${PHONE_B}`)).json()) as Inbox;
    assert.deepEqual(Object.keys(unencoded.phones), [PHONE_B]);
  });

  test('per-phone order is the order of sending', async () => {
    for (const text of ['primo', 'secondo', 'terzo']) await client.messages.create(SRC, PHONE_A, text);
    const inbox = await getInbox(sim, PHONE_A);
    assert.deepEqual(
      inbox.phones[PHONE_A].map((m) => m.text),
      ['primo', 'secondo', 'terzo'],
    );
    const html = await (await fetch(`${sim.url}/inbox`)).text();
    assert.match(html, /http-equiv="refresh" content="3"/);
    assert.ok(html.indexOf('terzo') < html.indexOf('primo'), 'the HTML page shows the newest first');
  });

  test('wrong credentials or a foreign account id are refused with 401', async () => {
    await assert.rejects(clientFor(sim, 'wrong-token').messages.create(SRC, PHONE_A, 'x'), withStatus(401));
    const foreign = new plivo.Client('MAOTHERACCOUNT000000', AUTH_TOKEN, {
      url: `${sim.url}/v1/Account/MAOTHERACCOUNT000000`,
    });
    await assert.rejects(foreign.messages.create(SRC, PHONE_A, 'x'), withStatus(401));
    const body = (await (
      await fetch(`${sim.url}/v1/Account/${AUTH_ID}/Message/`, { method: 'POST' })
    ).json()) as Record<string, unknown>;
    assert.equal(typeof body.api_id, 'string');
    assert.equal(typeof body.error, 'string');
    assert.equal((await getInbox(sim)).total, 0);
  });

  test('missing text is a 400 with a Plivo error body', async () => {
    await assert.rejects(client.messages.create(SRC, PHONE_A, ''), withStatus(400));
  });

  test('at most 1,000 unique destinations per request', async () => {
    const numbers = Array.from({ length: 1001 }, (_, i) => `+39333${String(i).padStart(7, '0')}`);
    await assert.rejects(client.messages.create(SRC, numbers, 'troppi'), withStatus(400));
    assert.equal((await getInbox(sim)).total, 0);

    // Duplicates do not count: 1,000 unique numbers plus a repeat are fine.
    const accepted = (await client.messages.create(SRC, [...numbers.slice(0, 1000), numbers[0]], 'ok')) as SendResult;
    assert.equal(accepted.messageUuid.length, 1000);
  });

  test('multi-part and UCS-2 texts are billed per part', async () => {
    const long = (await client.messages.create(SRC, PHONE_A, 'a'.repeat(161))) as SendResult;
    const unicode = (await client.messages.create(
      SRC,
      PHONE_B,
      `Interruzione “programmata” ${'x'.repeat(50)}`,
    )) as SendResult;
    const inbox = await getInbox(sim);
    assert.equal(inbox.phones[PHONE_A][0].units, 2);
    assert.equal(inbox.phones[PHONE_B][0].units, 2);
    const detail = await client.messages.get(unicode.messageUuid[0]);
    assert.equal(Number(detail.units), 2);
    assert.equal(detail.totalAmount, '0.01000');
    assert.equal((await client.messages.get(long.messageUuid[0])).totalRate, '0.00500');
  });

  test('status callbacks arrive in order, form-encoded and signed with signature V2', async () => {
    const receiver = await startReceiver();
    try {
      const callbackUrl = `${receiver.url}/plivo/status?tenant=acme`;
      const sent = (await client.messages.create(SRC, PHONE_A, 'Ripristino completato', {
        url: callbackUrl,
      })) as SendResult;
      const uuid = sent.messageUuid[0];
      await waitFor('two callbacks', () => receiver.received.length >= 2);

      const [first, second] = receiver.received;
      assert.deepEqual([first.params.Status, second.params.Status], ['sent', 'delivered']);
      assert.deepEqual([first.params.Sequence, second.params.Sequence], ['1', '2']);
      for (const cb of receiver.received) {
        assert.equal(cb.url, '/plivo/status?tenant=acme');
        assert.equal(cb.headers['content-type'], 'application/x-www-form-urlencoded');
        assert.equal(cb.params.MessageUUID, uuid);
        assert.equal(cb.params.ParentMessageUUID, uuid);
        assert.equal(cb.params.To, PHONE_A.slice(1));
        assert.equal(cb.params.From, SRC.slice(1));
        assert.equal(cb.params.Units, '1');
        assert.equal(cb.params.TotalRate, '0.00500');
        assert.equal(cb.params.TotalAmount, '0.00500');
        assert.equal(cb.params.ErrorCode, '');
        assert.equal(cb.params.PartInfo, '1 of 1');
        assert.match(cb.params.MessageTime, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \+0000$/);

        const nonce = String(cb.headers['x-plivo-signature-v2-nonce']);
        const signature = String(cb.headers['x-plivo-signature-v2']);
        assert.match(nonce, /^\d+$/);
        assert.equal(cb.headers['x-plivo-signature-ma-v2'], signature);
        assert.equal(plivo.validateSignature(callbackUrl, nonce, signature, AUTH_TOKEN), true);
        assert.equal(plivo.validateSignature(callbackUrl, nonce, signature, 'another-token'), false);
      }
      assert.match(second.params.DeliveryReportTime, /\+0000$/);

      const detail = await client.messages.get(uuid);
      assert.equal(detail.messageState, 'delivered');
      assert.equal(detail.toNumber, PHONE_A.slice(1));
      assert.equal(detail.messageDirection, 'outbound');
    } finally {
      await receiver.close();
    }
  });

  test('an unreachable callback URL neither crashes the simulator nor stalls delivery', async () => {
    const receiver = await startReceiver();
    await receiver.close(); // its port is now closed: every callback attempt fails
    const sent = (await client.messages.create(SRC, PHONE_A, 'x', { url: `${receiver.url}/gone` })) as SendResult;
    await waitFor(
      'delivered status',
      async () => (await client.messages.get(sent.messageUuid[0])).messageState === 'delivered',
    );
    const health = await fetch(`${sim.url}/healthz`);
    assert.deepEqual(await health.json(), { ok: true });
  });

  test('unknown message UUID is a 404', async () => {
    await assert.rejects(client.messages.get('00000000-0000-4000-8000-000000000000'), withStatus(404));
  });

  test('message list: time filters, paging and Plivo meta through the SDK', async () => {
    const early = (await client.messages.create(SRC, [PHONE_A, PHONE_B], 'prima')) as SendResult;
    await new Promise((resolve) => setTimeout(resolve, 20));
    const boundary = new Date();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const late = (await client.messages.create(SRC, PHONE_A, 'dopo')) as SendResult;

    const newer = (await client.messages.list({
      message_time__gte: plivoFilterTime(boundary),
    })) as unknown as ListResult;
    assert.deepEqual(
      newer.map((m) => m.messageUuid),
      late.messageUuid,
    );
    assert.equal(newer.meta.totalCount, 1);

    const older = (await client.messages.list({
      message_time__lte: plivoFilterTime(boundary),
    })) as unknown as ListResult;
    assert.deepEqual(older.map((m) => m.messageUuid).sort(), [...early.messageUuid].sort());

    const page = (await client.messages.list({ limit: 1, offset: 1 })) as unknown as ListResult;
    assert.equal(page.length, 1);
    assert.equal(page.meta.totalCount, 3);
    assert.deepEqual(page.meta, { ...page.meta, limit: 1, offset: 1 });

    await assert.rejects(client.messages.list({ limit: 21 }), withStatus(400));
  });

  test('logs never carry a full phone number', () => {
    assert.ok(logLines.length > 0);
    const leaked = logLines.filter((line) => line.includes(PHONE_A.slice(3)) || line.includes(PHONE_B.slice(3)));
    assert.deepEqual(leaked, []);
  });
});

describe('delivery outcomes and other request shapes', () => {
  let sim: RunningSimulator;
  before(async () => {
    sim = await startSimulator({
      authId: AUTH_ID,
      authToken: AUTH_TOKEN,
      host: '127.0.0.1',
      port: 0,
      callbackDelayMs: 5,
      deliveryOutcome: (to) => (to === PHONE_B ? 'failed' : to.endsWith('0') ? 'undelivered' : 'delivered'),
    });
  });
  after(async () => {
    await sim.close();
  });

  test('failed and undelivered endings carry an error code; failed is not charged', async () => {
    const receiver = await startReceiver();
    try {
      const undeliverable = '+393331234560';
      await clientFor(sim).messages.create(SRC, [PHONE_B, undeliverable], 'x', { url: `${receiver.url}/cb` });
      await waitFor('three callbacks', () => receiver.received.length >= 3);
      await new Promise((resolve) => setTimeout(resolve, 30)); // nothing more should come
      const byTo = (to: string) =>
        receiver.received.filter((cb) => cb.params.To === to.slice(1)).map((cb) => cb.params);
      const failed = byTo(PHONE_B);
      assert.deepEqual(
        failed.map((p) => [p.Status, p.Sequence]),
        [['failed', '1']],
      );
      assert.equal(failed[0].TotalAmount, '0.00000');
      assert.notEqual(failed[0].ErrorCode, '');
      const undelivered = byTo(undeliverable);
      assert.deepEqual(
        undelivered.map((p) => p.Status),
        ['sent', 'undelivered'],
      );
      assert.notEqual(undelivered[1].ErrorCode, '');
    } finally {
      await receiver.close();
    }
  });

  test('form-encoded sends work and method=GET callbacks carry the fields in the query', async () => {
    const receiver = await startReceiver();
    try {
      const form = new URLSearchParams({
        src: 'Avviso',
        dst: PHONE_A,
        text: 'via form',
        url: `${receiver.url}/get-cb`,
        method: 'GET',
      });
      const response = await fetch(`${sim.url}/v1/Account/${AUTH_ID}/Message`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${AUTH_ID}:${AUTH_TOKEN}`).toString('base64')}` },
        body: form,
      });
      assert.equal(response.status, 202);
      await waitFor('two GET callbacks', () => receiver.received.length >= 2);
      const url = new URL(receiver.received[1].url, receiver.url);
      assert.equal(url.pathname, '/get-cb');
      assert.equal(url.searchParams.get('Status'), 'delivered');
      assert.equal(url.searchParams.get('From'), 'Avviso');
      const { headers } = receiver.received[1];
      const signed = plivo.validateSignature(
        `${receiver.url}/get-cb`,
        String(headers['x-plivo-signature-v2-nonce']),
        String(headers['x-plivo-signature-v2']),
        AUTH_TOKEN,
      );
      assert.equal(signed, true);
    } finally {
      await receiver.close();
    }
  });

  test('the inbox page escapes message text', async () => {
    await clientFor(sim).messages.create(SRC, PHONE_A, '<script>alert(1)</script>');
    const html = await (await fetch(`${sim.url}/inbox`)).text();
    assert.ok(!html.includes('<script>'));
    assert.ok(html.includes('&lt;script&gt;'));
  });
});

// ---------------------------------------------------------------- persistence

describe('data file', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plivo-sim-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const start = (dataFile: string, callbackDelayMs = 10): Promise<RunningSimulator> =>
    startSimulator({ authId: AUTH_ID, authToken: AUTH_TOKEN, host: '127.0.0.1', port: 0, dataFile, callbackDelayMs });

  test('the inbox and final statuses survive a restart; DELETE /inbox empties the file', async () => {
    const dataFile = join(dir, 'nested', 'inbox.ndjson');
    const first = await start(dataFile);
    const sent = (await clientFor(first).messages.create(SRC, [PHONE_A, PHONE_B], 'persistente')) as SendResult;
    await waitFor('delivery', async () => {
      const inbox = await getInbox(first);
      return (
        inbox.total === 2 && Object.values(inbox.phones).every((list) => list.every((m) => m.status === 'delivered'))
      );
    });
    await first.close();

    const second = await start(dataFile);
    try {
      const inbox = await getInbox(second);
      assert.equal(inbox.total, 2);
      assert.equal(inbox.phones[PHONE_A][0].status, 'delivered');
      assert.equal((await clientFor(second).messages.get(sent.messageUuid[0])).messageState, 'delivered');
      await clearInbox(second);
    } finally {
      await second.close();
    }
    assert.equal(await readFile(dataFile, 'utf8'), '');
  });

  test('messages still in flight at shutdown resume after a restart', async () => {
    const dataFile = join(dir, 'resume.ndjson');
    const slow = await start(dataFile, 60_000);
    await clientFor(slow).messages.create(SRC, PHONE_A, 'in volo');
    await slow.close();

    const resumed = await start(dataFile);
    try {
      assert.equal((await getInbox(resumed)).total, 1);
      await waitFor(
        'resumed delivery',
        async () => (await getInbox(resumed)).phones[PHONE_A]?.[0]?.status === 'delivered',
      );
    } finally {
      await resumed.close();
    }
  });
});
