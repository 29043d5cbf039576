/**
 * Bulk sends, as the simulator records them (its request record, `GET /control/requests`): an
 * incident's SMS go out as Plivo bulk requests, one text per request, each naming at most a batch
 * of numbers (the policy's batch size, never more than Plivo's 1,000), and every number receives
 * exactly one message, in its own language. The English speakers are scattered among the Italian
 * ones, as in real data: records are taken a batch at a time in contract order, so each batch costs
 * one request per distinct text in it.
 *
 * The issue's own example, an audience of 2,500 numbers in exactly 3 requests of 1,000, runs when
 * `AVVISO_BULK_FULL=1` is set: it takes a quarter of an hour here, because FerretDB updates a
 * record in time proportional to the size of the collection (measured alone: 15-40 ms per update
 * at 2,700 records, ~90 ms on a loaded machine; in this test ~0.3 s per record for recording what
 * Plivo accepted) and every record is written twice before its message leaves. The default run
 * proves the same path with batches of 100.
 *
 * The simulator holds every message `queued` (its status changes wait ten minutes), so no receipt
 * traffic competes with the sends: this test is about how the audience is split into requests.
 */
import { deliveryCounts } from '../../store/incidents';
import { answeredOverlay } from '../../store/send-requests';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';
import { phoneOf, simInbox, simRequests, site, subscriber } from './sim-record';

const PLIVO_MAX = 1000;

interface Case {
  italian: number;
  english: number;
  /** The policy's batch size; none: the channel's own (Plivo's 1,000). */
  batchSize?: number;
}

function bulkSuite(name: string, c: Case, options: { skip?: string } = {}) {
  const total = c.italian + c.english;
  const perRequest = Math.min(c.batchSize ?? PLIVO_MAX, PLIVO_MAX);
  /** Records are taken a batch at a time whatever their language: the Italian text takes one request per batch. */
  const batches = Math.ceil(total / perRequest);
  /** Enough for FerretDB's writes (see above): they cost more per record as the collection grows. */
  const timeoutMs = Math.max(45_000, total * (total > 1000 ? 400 : 150));

  describe(name, { skip: options.skip }, () => {
    let stack: TestStack;
    const language = new Map<string, 'it' | 'en'>();

    before(async () => {
      assert.equal(
        batches,
        Math.ceil(c.italian / perRequest),
        'the audience is sized so that the Italian text is in every batch',
      );
      stack = await startTestStack(__filename, {
        simulator: { callbackDelayMs: 600_000 },
        deliveryPolicy: {
          deliveryTimeoutMs: 600_000,
          maxAttempts: 3,
          sweepEveryMs: 60_000,
          ...(c.batchSize ? { batchSize: c.batchSize } : {}),
        },
      });
      await stack.store.sites.insertOne(site('tower-bulk', 'Borgo Grande'));
      const step = Math.floor(total / c.english);
      const subs = Array.from({ length: total }, (_, i) => {
        const lang = i % step === step - 1 && Math.floor(i / step) < c.english ? 'en' : 'it';
        language.set(phoneOf(3_000_000, i), lang);
        return subscriber(`B-${String(i).padStart(5, '0')}`, phoneOf(3_000_000, i), 'tower-bulk', { language: lang });
      });
      assert.equal([...language.values()].filter((l) => l === 'en').length, c.english);
      for (let i = 0; i < subs.length; i += 1000) await stack.store.subscribers.insertMany(subs.slice(i, i + 1000));
    });
    after(async () => stack?.stop());

    test(`${c.italian} numbers for one text go out in exactly ${batches} requests of at most ${perRequest}; the other language in requests of its own; one message per number`, async () => {
      const opened = await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-bulk'] });
      assert.equal(opened.status, 202);
      const id = opened.body.id as string;
      const openedAt = Date.now();
      // Polled slowly: every count is a scan of the records, which competes with the sends' writes.
      await eventually(
        'every SMS handed to Plivo',
        async () => {
          await new Promise((r) => setTimeout(r, 1000));
          // Accepted on the record, or in its request while its receipt is on the way (deliveryCounts counts both).
          const sms = (await deliveryCounts(stack.store, id)).sms?.outage ?? {};
          const reached = (sms.accepted ?? 0) + (sms.sent ?? 0) + (sms.delivered ?? 0);
          return reached === total ? true : undefined;
        },
        timeoutMs,
      ).catch(async (err) => {
        const states = await stack.store.deliveries
          .aggregate([
            { $match: { incidentId: id } },
            { $group: { _id: { c: '$channel', s: '$state' }, n: { $sum: 1 } } },
          ])
          .toArray();
        const reqs = (await simRequests(stack)).map((r) => ({
          seq: r.seq,
          route: r.route,
          at: r.at - openedAt,
          status: r.status,
          n: r.destinations?.length,
        }));
        throw new Error(`${(err as Error).message}\n${JSON.stringify({ states, reqs })}`);
      });
      console.log(`bulk: ${total} records handed to Plivo in ${((Date.now() - openedAt) / 1000).toFixed(1)} s`);

      const sends = (await simRequests(stack, 'message')).filter((r) => r.method === 'POST');
      assert.ok(
        sends.every((r) => r.status === 202),
        `every send was answered 202: ${sends.map((r) => r.status).join(',')}`,
      );
      const byText = new Map<string, typeof sends>();
      for (const r of sends) byText.set(r.text!, [...(byText.get(r.text!) ?? []), r]);
      const italian = [...byText.entries()].find(([text]) => /^Avviso guasto/.test(text));
      const english = [...byText.entries()].find(([text]) => /^Outage:/.test(text));
      assert.equal(
        byText.size,
        2,
        `two texts, the Italian and the English outage notice: ${[...byText.keys()].join(' | ')}`,
      );
      assert.ok(italian && english);
      const sizes = (list: typeof sends) => list.map((r) => r.destinations!.length);

      assert.equal(
        italian[1].length,
        batches,
        `the ${c.italian} Italian numbers in exactly ${batches} requests, got ${sizes(italian[1]).join('+')}`,
      );
      assert.equal(
        sizes(italian[1]).reduce((a, b) => a + b, 0),
        c.italian,
      );
      assert.equal(
        sizes(english[1]).reduce((a, b) => a + b, 0),
        c.english,
      );
      assert.ok(
        english[1].length <= batches,
        `the English text in at most one request per batch: ${sizes(english[1]).join('+')}`,
      );
      assert.equal(sends.length, italian[1].length + english[1].length, 'no other send request');
      for (const r of sends) {
        assert.ok(
          r.destinations!.length <= perRequest,
          `request ${r.seq}: ${r.destinations!.length} numbers, at most ${perRequest}`,
        );
        assert.equal(new Set(r.destinations).size, r.destinations!.length, `request ${r.seq} names each number once`);
        const lang: 'it' | 'en' = r.text === italian[0] ? 'it' : 'en';
        for (const to of r.destinations!)
          assert.equal(language.get(to), lang, `${to} is in a request of its own language`);
      }

      const inbox = await simInbox(stack);
      assert.equal(
        Object.values(inbox.phones).filter((list) => list.length > 0).length,
        total,
        'every number received something',
      );
      for (const [phone, lang] of language) {
        const got = inbox.phones[phone] ?? [];
        assert.equal(got.length, 1, `${phone}: exactly one message, got ${got.length}`);
        assert.match(got[0]!.text, lang === 'it' ? /^Avviso guasto/ : /^Outage:/, `${phone}: in ${lang}`);
      }

      // And each record points at the message its number got (written, or in its request until its receipt comes).
      const asAnswered = await answeredOverlay(stack.store, id);
      const records = (await stack.store.deliveries.find({ incidentId: id, channel: 'sms' }).toArray()).map(asAnswered);
      assert.equal(records.length, total);
      for (const d of records) {
        assert.equal(d.attempts, 1, `${d.to}: one attempt`);
        assert.equal(
          d.providerMessageId,
          inbox.phones[d.to]![0]!.messageUuid,
          `${d.to}: the record carries Plivo's message id`,
        );
      }
    });
  });
}

bulkSuite('bulk splitting: batches of the policy size', { italian: 270, english: 30, batchSize: 100 });
bulkSuite(
  "bulk splitting: 2,500 numbers at Plivo's 1,000 per request",
  { italian: 2500, english: 200 },
  {
    skip: process.env.AVVISO_BULK_FULL
      ? undefined
      : 'takes about 15 minutes on FerretDB: set AVVISO_BULK_FULL=1 to run it',
  },
);
