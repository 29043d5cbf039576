/**
 * Retry, then fall back, end to end: the simulator reports every SMS to some numbers undelivered
 * (a fault aimed at those numbers), the watchdog resends up to `maxAttempts`, then calls the number
 * (the simulator's Call API records the call and what it said) and, when the call is not answered
 * either, writes to the subscriber's e-mail address (a real SMTP server, the `smtp-server`
 * package). Every step is in the records' history. And a number Plivo calls invalid is not resent
 * by SMS, nor called: it goes straight to the next channel that can reach the subscriber.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SMTPServer } from 'smtp-server';
import type { Delivery } from '../../domain/types';
import { freePort } from '../../dev/process';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';
import { simInbox, simRequests, site, subscriber } from './sim-record';

const MAX_ATTEMPTS = 2;
const CALLER_ID = '+390212345678';
/** Every SMS undelivered; the call is answered. */
const VOICE_OK = '+393471110001';
/** Every SMS undelivered, every call unanswered; has an e-mail address. */
const ALL_PHONE_FAILS = '+393471110002';
/** Plivo calls it invalid; has an e-mail address; sent together with the others. */
const INVALID = '+393471110003';
/** Nothing wrong. */
const FINE = '+393471110004';
/** Plivo calls it invalid, and it is the only number of its request. */
const INVALID_ALONE = '+393471110005';

interface Mail {
  to: string[];
  raw: string;
}

describe('retry, then voice, then e-mail', () => {
  let stack: TestStack;
  let smtp: SMTPServer;
  const mails: Mail[] = [];

  before(async () => {
    const smtpPort = await freePort();
    smtp = new SMTPServer({
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, session, callback) {
        let raw = '';
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => (raw += chunk));
        stream.on('end', () => {
          mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw });
          callback();
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      smtp.once('error', reject);
      smtp.listen(smtpPort, '127.0.0.1', () => resolve());
    });
    stack = await startTestStack(__filename, {
      deliveryPolicy: { deliveryTimeoutMs: 10_000, maxAttempts: MAX_ATTEMPTS, sweepEveryMs: 300 },
      channels: {
        voiceCallerId: CALLER_ID,
        email: {
          host: '127.0.0.1',
          port: smtpPort,
          secure: false,
          requireTls: false,
          from: 'Avviso <avvisi@isp.example>',
          timeoutMs: 5000,
        },
      },
      simulator: {
        faults: {
          numbers: {
            [VOICE_OK]: { sms: 'undelivered' },
            [ALL_PHONE_FAILS]: { sms: 'undelivered', call: 'no-answer' },
            [INVALID]: { invalid: true },
            [INVALID_ALONE]: { invalid: true },
          },
        },
      },
    });
    await stack.store.sites.insertMany([site('tower-fb', 'Borgo Ripiego'), site('tower-solo', 'Borgo Solo')]);
    await stack.store.subscribers.insertMany([
      subscriber('FB-1', VOICE_OK, 'tower-fb'),
      subscriber('FB-2', ALL_PHONE_FAILS, 'tower-fb', { email: 'bruna@example.it' }),
      subscriber('FB-3', INVALID, 'tower-fb', { email: 'carlo@example.it' }),
      subscriber('FB-4', FINE, 'tower-fb', { email: 'dario@example.it' }),
      subscriber('FB-5', INVALID_ALONE, 'tower-solo', { email: 'elena@example.it' }),
    ]);
  });
  after(async () => {
    await stack?.stop();
    await new Promise<void>((resolve) => (smtp ? smtp.close(() => resolve()) : resolve()));
  });

  /** The records of one subscriber, by channel. */
  async function recordsOf(incidentId: string, subscriberId: string): Promise<Partial<Record<string, Delivery>>> {
    const list = await stack.store.deliveries.find({ incidentId, subscriberId }).toArray();
    return Object.fromEntries(list.map((d) => [d.channel, d]));
  }
  const states = (d: Delivery | undefined) => (d?.history ?? []).map((h) => h.state);
  const count = <T>(list: T[], x: T) => list.filter((y) => y === x).length;

  test(`an SMS undelivered ${MAX_ATTEMPTS} times becomes a call; a call unanswered ${MAX_ATTEMPTS} times becomes an e-mail; each step in the history`, async () => {
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-fb'] })).body.id as string;
    const done = await eventually(
      'the call answered and the e-mails handed over',
      async () => {
        const [a, b, c, d] = await Promise.all(['FB-1', 'FB-2', 'FB-3', 'FB-4'].map((s) => recordsOf(id, s)));
        return a!.voice?.state === 'delivered' &&
          b!.email?.state === 'delivered' &&
          c!.email?.state === 'delivered' &&
          d!.sms?.state === 'delivered'
          ? { a: a!, b: b!, c: c!, d: d! }
          : undefined;
      },
      45_000,
    ).catch(async (err) => {
      const all = await stack.store.deliveries.find({ incidentId: id, channel: { $ne: 'status' } }).toArray();
      throw new Error(
        `${(err as Error).message}\n${all.map((d) => `${d._id}: ${d.history.map((h) => `${h.state}${h.note ? ` (${h.note})` : ''}`).join(' > ')}`).join('\n')}`,
      );
    });
    const inbox = await simInbox(stack);
    const sends = (await simRequests(stack, 'message')).filter((r) => r.method === 'POST');
    const calls = (await simRequests(stack, 'call')).filter((r) => r.method === 'POST');

    // Undelivered SMS, resent up to maxAttempts, then one call, answered.
    const { a } = done;
    assert.equal(
      inbox.phones[VOICE_OK]?.length,
      MAX_ATTEMPTS,
      `${MAX_ATTEMPTS} SMS to the number whose SMS never arrive`,
    );
    assert.ok(inbox.phones[VOICE_OK]!.every((m) => m.status === 'undelivered'));
    assert.equal(a.sms!.state, 'expired');
    assert.equal(a.sms!.attempts, MAX_ATTEMPTS);
    assert.equal(
      count(states(a.sms), 'sending'),
      MAX_ATTEMPTS,
      `sent ${MAX_ATTEMPTS} times: ${states(a.sms).join(' > ')}`,
    );
    assert.equal(
      count(states(a.sms), 'undelivered'),
      MAX_ATTEMPTS,
      `each reported undelivered: ${a.sms!.history.map((h) => `${h.state}${h.note ? ` (${h.note})` : ''}`).join(' > ')}`,
    );
    assert.match(a.sms!.history.at(-1)!.note ?? '', new RegExp(`gave up on sms after ${MAX_ATTEMPTS} attempt`));
    assert.equal(a.voice!.fallbackOf, a.sms!._id, 'the call replaces the SMS');
    assert.equal(a.voice!.history[0]!.note, 'fallback');
    assert.deepEqual(
      states(a.voice).filter((s) => s !== 'sent'),
      ['planned', 'sending', 'accepted', 'delivered'],
    );
    assert.ok(!a.email, 'no e-mail once the call was answered (and this subscriber has no address)');
    const callsToA = inbox.calls[VOICE_OK] ?? [];
    assert.equal(callsToA.length, 1, 'one call');
    assert.equal(callsToA[0]!.status, 'completed');
    assert.match(callsToA[0]!.spokenText, /internet interrotto a Borgo Ripiego/, 'the call spoke the outage notice');

    // Undelivered SMS, unanswered calls, then one e-mail.
    const { b } = done;
    assert.equal(inbox.phones[ALL_PHONE_FAILS]?.length, MAX_ATTEMPTS);
    assert.equal((inbox.calls[ALL_PHONE_FAILS] ?? []).length, MAX_ATTEMPTS, `${MAX_ATTEMPTS} calls, none answered`);
    assert.ok(inbox.calls[ALL_PHONE_FAILS]!.every((c) => c.status === 'no-answer'));
    assert.equal(b.sms!.state, 'expired');
    assert.equal(b.voice!.state, 'expired');
    assert.equal(b.voice!.fallbackOf, b.sms!._id);
    assert.equal(
      count(states(b.voice), 'sending'),
      MAX_ATTEMPTS,
      `called ${MAX_ATTEMPTS} times: ${states(b.voice).join(' > ')}`,
    );
    assert.match(b.voice!.history.at(-1)!.note ?? '', new RegExp(`gave up on voice after ${MAX_ATTEMPTS} attempt`));
    assert.equal(b.email!.fallbackOf, b.voice!._id, 'the e-mail replaces the call');
    assert.equal(b.email!.to, 'bruna@example.it');
    assert.deepEqual(states(b.email), ['planned', 'sending', 'delivered']);
    const mailsToB = mails.filter((m) => m.to.includes('bruna@example.it'));
    assert.equal(mailsToB.length, 1, 'one e-mail');
    assert.match(mailsToB[0]!.raw, /Borgo Ripiego/);

    // An invalid number: one SMS request named it, no resend, no call: straight to e-mail.
    const { c } = done;
    assert.equal((inbox.phones[INVALID] ?? []).length, 0, 'Plivo sent nothing to the invalid number');
    assert.equal(
      sends.filter((r) => r.destinations!.includes(INVALID.slice(1)) || r.destinations!.includes(INVALID)).length,
      1,
      'the invalid number was in one SMS request only',
    );
    assert.ok(
      calls.every((r) => !r.destinations!.some((to) => to.endsWith(INVALID.slice(1)))),
      'and it was not called',
    );
    assert.equal(c.sms!.state, 'expired');
    assert.equal(c.sms!.invalidRecipient, true);
    assert.equal(c.sms!.attempts, 1);
    assert.deepEqual(states(c.sms), ['planned', 'sending', 'failed', 'expired']);
    assert.ok(!c.voice, 'no call to a number Plivo calls invalid');
    assert.equal(c.email!.fallbackOf, c.sms!._id);
    assert.equal(mails.filter((m) => m.to.includes('carlo@example.it')).length, 1);

    // Nothing wrong: one SMS, nothing else.
    const { d } = done;
    assert.equal(inbox.phones[FINE]?.length, 1);
    assert.ok(!d.voice && !d.email);
    assert.equal(mails.filter((m) => m.to.includes('dario@example.it')).length, 0);
  });

  test('a request whose only number Plivo calls invalid: no resend, no call, straight to e-mail', async () => {
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-solo'] })).body.id as string;
    const e = await eventually(
      'the e-mail handed over',
      async () => {
        const r = await recordsOf(id, 'FB-5');
        return r.email?.state === 'delivered' ? r : undefined;
      },
      30_000,
    ).catch(async (err) => {
      const all = await stack.store.deliveries.find({ incidentId: id, channel: { $ne: 'status' } }).toArray();
      throw new Error(
        `${(err as Error).message}\n${all.map((d) => `${d._id}: ${d.history.map((h) => `${h.state}${h.note ? ` (${h.note})` : ''}`).join(' > ')}`).join('\n')}`,
      );
    });
    const sends = (await simRequests(stack, 'message')).filter(
      (r) => r.method === 'POST' && r.destinations!.some((to) => to.endsWith(INVALID_ALONE.slice(1))),
    );
    const calls = (await simRequests(stack, 'call')).filter(
      (r) => r.method === 'POST' && r.destinations!.some((to) => to.endsWith(INVALID_ALONE.slice(1))),
    );
    assert.equal(sends.length, 1, `one SMS request, answered ${sends.map((r) => r.status).join(', ')}`);
    assert.equal(calls.length, 0, 'no call');
    assert.equal(e.sms!.invalidRecipient, true, 'recorded as an invalid recipient');
    assert.equal(e.sms!.attempts, 1);
    assert.deepEqual(states(e.sms), ['planned', 'sending', 'failed', 'expired']);
    assert.equal(e.email!.fallbackOf, e.sms!._id);
    assert.equal(mails.filter((m) => m.to.includes('elena@example.it')).length, 1);
  });
});
