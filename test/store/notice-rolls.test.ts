/**
 * A resolution reads its outage notices from their rolls (store/notice-rolls.ts) and reads whole only
 * the records a roll and the send requests cannot speak for. What subscribers depend on: it sees
 * exactly what reading every record whole would show (who was reached, who still waits, who was
 * given up), so that nobody is told "restored" without "down", nor twice, nor forgotten; an incident
 * whose rolls are not complete (planned by a version before them) is read the old way; an erased
 * subscriber is gone from the rolls.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import { connectStore, type Store } from '../../store/db';
import { planAll, type PlanInput } from '../../store/deliveries';
import { noticesForResolution, writeNoticeRoll } from '../../store/notice-rolls';
import { answeredOverlay, type SendRequestDoc } from '../../store/send-requests';
import { eraseSubscriber } from '../../store/privacy';
import { sentAt } from '../../activities/notices';
import type { Delivery } from '../../domain/types';

let env: IsolatedEnv;
let watched: Store;
/** The filters of the finds on `deliveries` since the last reset. */
const finds: Record<string, unknown>[] = [];
before(async () => {
  env = await isolatedEnv(__filename);
  watched = await connectStore(env.servers.mongoUri, env.dbName, { monitorCommands: true });
  watched.client.on('commandStarted', (e) => {
    if (e.commandName === 'find' && e.command.find === 'deliveries') finds.push(e.command.filter);
  });
});
after(async () => {
  await watched?.close();
  await env?.close();
});

const HOLD = { start: '22:00', end: '07:00', timeZone: 'Europe/Rome', atOnce: ['outage' as const] };

function inputs(incidentId: string, n: number): PlanInput[] {
  return Array.from({ length: n }, (_, i) => ({
    incidentId,
    kind: 'outage',
    subscriberId: `C-${String(i).padStart(5, '0')}`,
    channel: 'sms',
    to: `+39349${String(i).padStart(7, '0')}`,
    language: i % 2 ? 'en' : 'it',
    templateSet: 'default',
    area: `Area ${i % 3}`,
    ...(i % 5 === 0 ? { hold: HOLD } : {}),
    ...(i % 7 === 0 ? { restoration: false } : {}),
  }));
}

const T = (s: number) => new Date(Date.UTC(2026, 11, 6, 1, 0, s));

/** A send request of `ids` on `attempt`, answered (the provider accepted each), pending or not. */
function answeredRequest(incidentId: string, seq: number, ids: string[], attempt: number, pending: boolean) {
  const doc: SendRequestDoc = {
    _id: `${incidentId}|outage/sms|p1|${seq}`,
    incidentId,
    kind: 'outage',
    channel: 'sms',
    page: 1,
    seq,
    recipientIds: ids,
    recipientAttempts: ids.map(() => attempt),
    reservedAt: T(seq),
    open: false,
    closedAt: T(seq + 1),
    pending,
    answeredAt: T(seq + 1),
    answerIds: ids,
    answerAttempts: ids.map(() => attempt),
    answerUuids: ids.map((id) => `uuid-${attempt}-${id.slice(-7)}`),
  };
  return doc;
}

/** Puts `ids` in `state` on attempt `attempts`, as the applier, the watchdog or the sweeper would. */
async function setState(ids: string[], state: Delivery['state'], attempts: number, extra: Partial<Delivery> = {}) {
  await env.store.deliveries.updateMany(
    { _id: { $in: ids } },
    {
      $set: { state, attempts, ...extra },
      $push: {
        history: {
          $each: [
            { at: T(1), state: 'sending' },
            { at: T(3), state },
          ],
        },
      },
    },
  );
}

/** What a resolution uses of a notice: the two ways must agree on it. */
function view(d: Delivery) {
  return {
    // Reached the provider: what it became since (sent, delivered) leads a resolution to the same.
    state: ['accepted', 'sent', 'delivered'].includes(d.state) ? 'reached' : d.state,
    attempts: d.attempts,
    subscriberId: d.subscriberId,
    channel: d.channel,
    to: d.to,
    language: d.language,
    templateSet: d.templateSet,
    area: d.area,
    hold: d.hold ?? null,
    restoration: d.restoration,
    coveredBy: d.coveredBy,
    invalidRecipient: d.invalidRecipient,
    sentAt: sentAt(d)?.toISOString(),
  };
}

async function everyRecordWhole(incidentId: string) {
  const asAnswered = await answeredOverlay(env.store, incidentId, 'outage');
  const records = await env.store.deliveries.find({ incidentId, kind: 'outage' }).toArray();
  return new Map(records.map((d) => [d._id, view(asAnswered(d))]));
}

async function asResolutionReads(incidentId: string) {
  const out = new Map<string, ReturnType<typeof view>>();
  for await (const d of await noticesForResolution(watched, incidentId, 'outage')) {
    assert.ok(!out.has(d._id), `${d._id} read twice`);
    out.set(d._id, view(d));
  }
  return out;
}

const readWhole = (incidentId: string) =>
  finds.some((f) => Object.keys(f).length === 2 && f.incidentId === incidentId && f.kind === 'outage');

test('the rolls and the requests show what reading every record whole shows, reading few records', async () => {
  const id = 'inc_rolls';
  await planAll(env.store, inputs(id, 2500), T(0)); // three pages: 1,000, 1,000, 500
  // A retried planning: nothing new, and nothing read twice.
  await planAll(env.store, inputs(id, 2500), T(0));
  const all = (await env.store.deliveries.find({ incidentId: id }, { projection: { _id: 1 } }).toArray())
    .map((d) => d._id)
    .sort();
  assert.equal(all.length, 2500);
  const ids = (from: number, to: number) => all.slice(from, to);

  // Page 1 and most of page 2 were sent: some answers are written on their records, some still pending.
  await env.store.sendRequests.insertMany([
    answeredRequest(id, 1, ids(0, 600), 1, false),
    answeredRequest(id, 2, ids(600, 1200), 1, true),
    answeredRequest(id, 3, ids(1200, 1900), 1, true),
  ]);
  await setState(ids(0, 300), 'delivered', 1);
  await setState(ids(300, 500), 'sent', 1);
  await setState(ids(500, 540), 'undelivered', 1); // the provider could not deliver: waits for a retry
  await setState(ids(540, 560), 'planned', 1); // that retry, due again on attempt 2
  await env.store.sendRequests.insertOne(answeredRequest(id, 4, ids(560, 570), 2, true)); // on its way again
  await setState(ids(560, 570), 'planned', 1);
  await setState(ids(570, 580), 'failed', 1, { invalidRecipient: true });
  await setState(ids(580, 590), 'expired', 1); // given up by the watchdog
  await setState(ids(590, 600), 'delivered', 1);
  await setState(ids(1900, 1910), 'expired', 0, { coveredBy: 'inc_other' }); // told by another outage
  // 1910-2500 never taken: waiting for the grace delay (more than a page reads by id), and a crash's roll.
  await writeNoticeRoll(env.store, id, 99, [
    { ...(await env.store.deliveries.findOne({ _id: all[0] }))!, _id: `${id}|outage|C-99999|sms:+393490099999` },
  ]);

  finds.length = 0;
  const rolled = await asResolutionReads(id);
  assert.deepEqual(rolled, await everyRecordWhole(id));
  assert.ok(!readWhole(id), 'the records are not read whole');
  const states = [...rolled.values()].reduce<Record<string, number>>(
    (n, v) => ((n[v.state] = (n[v.state] ?? 0) + 1), n),
    {},
  );
  assert.deepEqual(states, { reached: 1820, undelivered: 40, planned: 610, failed: 10, expired: 20 });
});

test('an incident planned before rolls, or with a page planned without one, is read whole, the same', async () => {
  const id = 'inc_no_rolls';
  await planAll(env.store, inputs(id, 1200), T(0));
  const [first] = await env.store.deliveries.find({ incidentId: id }).limit(1).toArray();
  await setState([first!._id], 'delivered', 1);
  const expected = await everyRecordWhole(id);

  // A page planned by a version before rolls (during a rolling upgrade): its roll is missing.
  await env.store.noticeRolls.deleteMany({ incidentId: id, page: 2 });
  finds.length = 0;
  assert.deepEqual(await asResolutionReads(id), expected);
  assert.ok(readWhole(id), 'read whole');

  // The incident's pages noted by a version before rolls.
  await env.store.deliveryPages.updateOne({ _id: id }, { $unset: { rolled: '' } });
  finds.length = 0;
  assert.deepEqual(await asResolutionReads(id), expected);
  assert.ok(readWhole(id), 'read whole');
});

test('an erased subscriber is taken out of the rolls: no restoration reaches their number', async () => {
  const id = 'inc_rolls_erased';
  await planAll(env.store, inputs(id, 40), T(0));
  const all = (await env.store.deliveries.find({ incidentId: id }, { projection: { _id: 1 } }).toArray()).map(
    (d) => d._id,
  );
  await env.store.sendRequests.insertOne(answeredRequest(id, 1, all, 1, true));
  await setState(all, 'delivered', 1);

  await eraseSubscriber(env.store, 'C-00003');
  const rolls = await env.store.noticeRolls.find({ incidentId: id }).toArray();
  assert.ok(!JSON.stringify(rolls).includes('+393490000003'), 'the number is gone from the rolls');
  assert.ok(!JSON.stringify(rolls).includes('C-00003'));
  const read = [...(await asResolutionReads(id)).values()];
  assert.equal(read.length, 39);
  assert.ok(!read.some((v) => v.to === '+393490000003' || v.subscriberId === 'C-00003'));
});
