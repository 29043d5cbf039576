/**
 * The SMS channel's message list as a reconciliation reads it (channels/sms-plivo.ts acceptedSince):
 * every message to the numbers asked about, page after page (Plivo serves 20 a page), each page
 * after the caller's pacing, and a page refused for the account's rate (429) asked again after
 * Plivo's Retry-After: a listing of hundreds of pages beside the sends used to fail at its first 429.
 * Against the Plivo simulator, through the real SDK.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { PlivoSmsChannel } from '../../channels/sms-plivo';
import { startSimulator, type RunningSimulator } from '../../sim/plivo-simulator';

const AUTH_ID = 'MATESTSMSLIST0000001';
const AUTH_TOKEN = 'test-simulator-token';

let sim: RunningSimulator;
before(async () => {
  sim = await startSimulator({ authId: AUTH_ID, authToken: AUTH_TOKEN, host: '127.0.0.1', port: 0 });
});
after(() => sim?.close());

async function putFaults(faults: unknown): Promise<void> {
  const response = await fetch(`${sim.url}/control/faults`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(faults),
  });
  assert.equal(response.status, 200, await response.text());
}

test('acceptedSince reads every page, each after the pacing, and asks a page again after a 429', async () => {
  const channel = new PlivoSmsChannel({ authId: AUTH_ID, authToken: AUTH_TOKEN, baseUrl: sim.url, sender: 'Avviso' });
  const since = new Date(Date.now() - 2000);
  // 45 messages: three pages (20, 20, 5).
  const phones = Array.from({ length: 45 }, (_, i) => `+393470004${String(i).padStart(3, '0')}`);
  const outcomes = await channel.send(
    phones.map((to, i) => ({ deliveryId: `d-${i}`, to, text: 'Guasto nella tua zona', language: 'it' as const })),
  );
  const uuidOf = new Map(
    outcomes.map((o, i) => [phones[i], o.outcome === 'accepted' ? o.providerMessageId : 'not accepted']),
  );

  // Two API requests per 5 s from now on: the third page is refused once.
  await putFaults({ limits: { requestsPer5s: 2 } });
  let paced = 0;
  const found = await channel.acceptedSince(since, new Set(phones), { beforeRequest: async () => void paced++ });
  assert.deepEqual(
    new Map([...found].sort()),
    new Map(phones.map((p) => [p, [uuidOf.get(p)]])),
    'every message found, once',
  );
  assert.equal(paced, 4, 'three pages, the third asked twice, each after the pacing');
  const stats = (await (await fetch(`${sim.url}/control/stats`)).json()) as {
    requests: { read: { limitRejections: number } };
  };
  assert.equal(stats.requests.read.limitRejections, 1);
  await putFaults({});
});
