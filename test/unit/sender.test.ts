/**
 * The sender's decisions (delivery/sender.ts) against an in-memory repository: pure logic, no
 * database. The integration tests (test/delivery/send-requests.test.ts, crash-window.test.ts and
 * the drill) run the same code on the real store; these pin the windows that are hard to hit there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSender } from '../../delivery/sender';
import type { DeliveryRepository, Reserved } from '../../delivery/ports';
import { ChannelError, type Channel, type OutboundMessage } from '../../channels/channel';
import type { Delivery, Incident } from '../../domain/types';
import { createLogger } from '../../domain/log';
import type { PlivoSmsChannel } from '../../channels/sms-plivo';

const now = new Date('2026-12-04T03:00:00Z');

function record(id: string): Reserved {
  return {
    _id: id,
    incidentId: 'inc_1',
    kind: 'outage',
    subscriberId: id,
    channel: 'sms',
    to: `+3934700000${id}`,
    language: 'it',
    state: 'planned',
    attempts: 1,
    page: 1,
    history: [],
    createdAt: now,
    updatedAt: now,
    reservedAt: now,
    request: 'inc_1|outage/sms|p1|1',
  };
}

/** A repository holding one open request and due records; it notes what the sender asks of it. */
function repository(opts: { unfinished: Reserved[]; openRequests: string[]; due: Reserved[] }) {
  const calls: string[] = [];
  const closed: string[] = [];
  const recorded: string[] = [];
  let due = opts.due;
  const repo: Partial<DeliveryRepository> = {
    incident: async () => ({ _id: 'inc_1', areas: ['Borgo'], openedAt: now }) as unknown as Incident,
    unfinishedReservations: async () => ({ records: opts.unfinished, requests: opts.openRequests }),
    closeRequests: async (ids) => void closed.push(...ids),
    abandonRequests: async () => undefined,
    recordSendResults: async (_taken, accepted) => void recorded.push(...accepted.map((a) => a.id)),
    recordAnswers: async (_taken, accepted) => void recorded.push(...accepted.map((a) => a.id)),
    releaseReservations: async () => undefined,
    applyReceiptsFor: async () => undefined,
    reserveNextBatch: async () => {
      const records = due;
      due = [];
      return { records, more: false, held: 0 };
    },
    countDue: async () => due.length,
    scopesWithRecords: async () => [{ kind: 'outage', channel: 'sms' }],
  };
  const proxy = new Proxy(repo, {
    get(target, name: string) {
      calls.push(name);
      const f = target[name as keyof DeliveryRepository];
      if (!f) throw new Error(`the sender asked the repository for ${name}, which this test does not expect`);
      return f;
    },
  }) as DeliveryRepository;
  return { repo: proxy, calls, closed, recorded };
}

function smsChannel(sent: OutboundMessage[]): Channel {
  return {
    name: 'sms',
    maxBatch: 100,
    send: async (batch) => (
      sent.push(...batch),
      batch.map((m) => ({
        deliveryId: m.deliveryId,
        outcome: 'accepted' as const,
        providerMessageId: `uuid-${m.deliveryId}`,
      }))
    ),
  };
}

/** What Plivo's message list answers: nothing accepted since then (asking about an invalid time fails, as the SDK does). */
const plivoList = { acceptedSince: async (since: Date) => (since.toISOString(), new Map<string, string[]>()) };

function sender(repo: DeliveryRepository, sent: OutboundMessage[]) {
  return createSender({
    repo,
    channels: { sms: smsChannel(sent) },
    sms: plivoList as unknown as PlivoSmsChannel,
    texts: async () => (d: Delivery) => `guasto ${d._id}`,
    runtime: { heartbeat: () => undefined, sleep: async () => undefined },
    logger: createLogger('sender-test', 'silent'),
  });
}

test('a request whose records were all written before its sender died is closed, and the batch goes on', async () => {
  const r = repository({ unfinished: [], openRequests: ['inc_1|outage/sms|p1|5'], due: [record('a'), record('b')] });
  const sent: OutboundMessage[] = [];
  const out = await sender(r.repo, sent).sendDue({ incidentId: 'inc_1', kinds: ['outage'] });
  assert.deepEqual(r.closed.slice(0, 1), ['inc_1|outage/sms|p1|5'], "the dead sender's request closed first");
  assert.deepEqual(
    sent.map((m) => m.deliveryId),
    ['a', 'b'],
    'then the due records sent',
  );
  assert.deepEqual(r.recorded, ['a', 'b']);
  assert.equal(out.accepted.outage, 2);
  assert.ok(r.closed.includes('inc_1|outage/sms|p1|1'), "and the new batch's request closed once recorded");
  assert.ok(
    r.calls.includes('recordAnswers') && !r.calls.includes('recordSendResults'),
    'SMS answers go to their requests',
  );
});

test('a batch whose request may have reached the provider keeps its request open for the next sender to reconcile', async () => {
  const r = repository({ unfinished: [], openRequests: [], due: [record('c')] });
  const failing: Channel = {
    name: 'sms',
    maxBatch: 100,
    send: async () => Promise.reject(new ChannelError('socket hang up', true)),
  };
  const s = createSender({
    repo: r.repo,
    channels: { sms: failing },
    texts: async () => () => 'x',
    runtime: { heartbeat: () => undefined, sleep: async () => undefined },
    logger: createLogger('sender-test', 'silent'),
  });
  await assert.rejects(s.sendDue({ incidentId: 'inc_1', kinds: ['outage'] }), /socket hang up/);
  assert.deepEqual(r.closed, [], 'left open: no answer, so the provider may have it');
});
