/**
 * The simulator's faults aimed at particular numbers and requests, and its record of every API
 * request, which the delivery tests read (test/delivery/*): checked here on their own, through the
 * real plivo SDK and raw HTTP, without the rest of the system.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as plivo from 'plivo';
import { parseFaultSettings, startSimulator, type RunningSimulator } from '../sim/plivo-simulator';
import type { RequestEntry } from '../sim/stats';
import { classifyPlivoError } from '../channels/plivo-errors';

const AUTH_ID = 'MATESTSIMULATOR00003';
const AUTH_TOKEN = 'test-simulator-token';
const SRC = '+390212345678';
const A = '+393331230001';
const B = '+393331230002';
const C = '+393331230003';

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
  client = new plivo.Client(AUTH_ID, AUTH_TOKEN, { url: `${sim.url}/v1/Account/${AUTH_ID}` });
});
after(() => sim.close());
beforeEach(async () => {
  await fetch(`${sim.url}/inbox`, { method: 'DELETE' });
  await fetch(`${sim.url}/control/stats`, { method: 'DELETE' });
  await fetch(`${sim.url}/control/faults`, { method: 'DELETE' });
});

async function putFaults(faults: unknown): Promise<void> {
  const res = await fetch(`${sim.url}/control/faults`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(faults),
  });
  assert.equal(res.status, 200, await res.text());
}

async function requests(): Promise<RequestEntry[]> {
  return ((await (await fetch(`${sim.url}/control/requests`)).json()) as { requests: RequestEntry[] }).requests;
}

type Sent = { messageUuid: string[]; invalid_number?: string[] };
const send = (dst: string[], text = 'Avviso di prova') =>
  client.messages.create(
    SRC,
    dst.map((d) => d.slice(1)),
    text,
  ) as Promise<unknown> as Promise<Sent>;

async function finalStatuses(count: number): Promise<Record<string, string[]>> {
  for (const deadline = Date.now() + 5000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 10))) {
    const phones = (
      (await (await fetch(`${sim.url}/inbox.json`)).json()) as { phones: Record<string, { status: string }[]> }
    ).phones;
    const all = Object.values(phones).flat();
    if (all.length === count && all.every((m) => ['delivered', 'undelivered', 'failed'].includes(m.status))) {
      return Object.fromEntries(Object.entries(phones).map(([p, list]) => [p, list.map((m) => m.status)]));
    }
  }
  throw new Error(`timed out waiting for ${count} messages to end`);
}

describe('faults aimed at numbers', () => {
  test('an invalid number comes back in invalid_number while the others are sent; alone, the request is refused with 400', async () => {
    await putFaults({ numbers: { [B]: { invalid: true } } });
    const res = await send([A, B]);
    assert.deepEqual(res.invalid_number, [B.slice(1)]);
    assert.equal(res.messageUuid.length, 1);
    await assert.rejects(
      send([B]),
      (err: Error & { status?: number }) => err.status === 400 && /no valid destination/.test(err.message),
    );
  });

  test('undelivered every time, or only the first N times; the other numbers as usual', async () => {
    await putFaults({ numbers: { [A]: { sms: 'undelivered' }, [B]: { sms: 'failed', smsTimes: 1 } } });
    await send([A, B, C]);
    await send([A, B, C]);
    assert.deepEqual(await finalStatuses(6), {
      [A]: ['undelivered', 'undelivered'],
      [B]: ['failed', 'delivered'],
      [C]: ['delivered', 'delivered'],
    });
  });

  test('numbers must be E.164 with a +', () => {
    assert.throws(
      () => parseFaultSettings({ numbers: { '393331230001': { sms: 'undelivered' } } }),
      /Invalid key in record[\s\S]*numbers\.393331230001/,
    );
    assert.throws(() => parseFaultSettings({ numbers: { [A]: { sms: 'lost' } } }), /invalid fault settings/);
  });
});

describe('scripted requests', () => {
  test('the first send requests meet the script in order, then the shares apply', async () => {
    await putFaults({
      script: { message: ['ok', 503, 'dropAfterAccept', 429] },
      rateLimit: { rate429: 0, retryAfterSeconds: 3 },
    });
    const outcomes: string[] = [];
    for (let i = 0; i < 5; i++) {
      outcomes.push(
        await send([A]).then(
          () => 'ok',
          (err: unknown) => String(classifyPlivoError(err).status ?? 'network'),
        ),
      );
    }
    assert.deepEqual(outcomes, ['ok', '503', 'network', '429', 'ok']);
    const log = (await requests()).filter((r) => r.kind === 'message');
    assert.deepEqual(
      log.map((r) => r.status ?? r.dropped),
      [202, 503, 'after', 429, 202],
    );
    assert.equal(log[3]!.retryAfterSeconds, 3);
    const inbox = (
      (await (await fetch(`${sim.url}/inbox.json?to=${encodeURIComponent(A)}`)).json()) as {
        phones: Record<string, { responseDropped?: boolean }[]>;
      }
    ).phones[A]!;
    assert.deepEqual(
      inbox.map((m) => m.responseDropped === true),
      [false, true, false],
      'three messages recorded, the second in the crash window',
    );
  });
});

describe('the request record', () => {
  test('every request with arrival and answer times, status, destinations, text and api id; limit refusals marked', async () => {
    await putFaults({ numbers: { [C]: { invalid: true } }, limits: { requestsPer5s: 2 } });
    const before = Date.now();
    await send([A, B, C], 'Testo uno');
    await client.messages.list({ limit: 5 });
    await assert.rejects(send([A], 'Testo due'), /429/);
    const log = await requests();
    assert.deepEqual(
      log.map((r) => [r.kind, r.method, r.status]),
      [
        ['message', 'POST', 202],
        ['read', 'GET', 200],
        ['message', 'POST', 429],
      ],
    );
    const [first, , third] = log;
    assert.ok(first!.at >= before && first!.answeredAt! >= first!.at);
    assert.deepEqual(first!.destinations, [A, B, C.slice(1)]);
    assert.deepEqual(first!.invalid, [C.slice(1)]);
    assert.equal(first!.text, 'Testo uno');
    const inbox = (
      (await (await fetch(`${sim.url}/inbox.json?to=${encodeURIComponent(A)}`)).json()) as {
        phones: Record<string, { requestId: string }[]>;
      }
    ).phones[A]!;
    assert.equal(inbox[0]!.requestId, first!.apiId, 'messages name the request that created them');
    assert.equal(third!.limited, true);
    assert.ok(third!.retryAfterSeconds! >= 1);
    assert.equal(
      ((await (await fetch(`${sim.url}/control/requests?kind=read`)).json()) as { requests: unknown[] }).requests
        .length,
      1,
    );
    await fetch(`${sim.url}/control/stats`, { method: 'DELETE' });
    assert.deepEqual(await requests(), [], 'cleared with the counters');
  });
});
