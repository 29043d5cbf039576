/**
 * The night policy end to end (rules/night.ts), through the API, the workflows (dev server, real
 * time), FerretDB and the Plivo simulator. The test's rule file sets a one-minute quiet window that
 * starts a little over a minute and a half from now, and runs three things through it at once, on
 * sites that do not share subscribers:
 *  - a major outage told before the window, whose estimate changes three times inside it: each
 *    phone gets one update, the latest, at the window's end (the older ones record what replaced them);
 *  - a critical outage opened inside the window: its notice goes at once, its updates wait, and its
 *    restoration goes at once (the notice woke them), replacing the updates still waiting;
 *  - maintenance starting inside the window: its reminder would fall inside it and goes the minute
 *    before the window instead; the start notice waits for the end.
 * And, on a stack of its own, an SMS sent just before the window that is reported undelivered inside
 * it: the call that replaces it waits for the end of the window.
 */
import { answeredOverlay } from '../../store/send-requests';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DateTime } from 'luxon';
import { loadDemoDataIfEmpty } from '../../store/demo';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';
import { startDemoStack, writeTestRules } from '../support/scenario';

const CREMA = ['+393471000101', '+393471000103']; // ap-crema-01-a, tower-crema-01: the major outage
const VECCHIO = ['+393471000005', '+393471000007']; // ap-lodi-02-a, tower-lodi-02: the critical outage
const LODI_AP = ['+393471000001', '+393471000002']; // ap-lodi-01-a: the maintenance

// The quiet window: from the first whole minute at least 90 s away, for one minute (Rome time).
const windowStart = DateTime.now()
  .setZone('Europe/Rome')
  .plus({ seconds: 90 })
  .endOf('minute')
  .plus({ milliseconds: 1 });
const windowEnd = windowStart.plus({ minutes: 1 });
const startMs = windowStart.toMillis();
const endMs = windowEnd.toMillis();

function rulesFile(name = 'night', from: DateTime = windowStart, to: DateTime = windowEnd): string {
  return writeTestRules(
    name,
    `  sms: { maxParts: 2 }
  wait: 0
  updates: { every: off, onEtaChange: true }
  quietHours:
    window: "${from.toFormat('HH:mm')}-${to.toFormat('HH:mm')}"
    unlessSeverity: critical
  maintenance: { notice: 1h, reminder: 20s, started: true, completed: true }
rules:
  - name: paid-sms
    when:
      subscriber.paidSms: true
      subscriber.onAffectedSite: true
    notify: sms
`,
  );
}

function kindOf(text: string): string {
  const kinds: [RegExp, string][] = [
    [/^Avviso guasto/, 'outage'],
    [/^Aggiornamento guasto/, 'update'],
    [/^Servizio internet ripristinato/, 'restored'],
    [/^Manutenzione programmata/, 'maintenance'],
    [/^Promemoria/, 'reminder'],
    [/^Manutenzione iniziata/, 'started'],
  ];
  return kinds.find(([re]) => re.test(text))?.[1] ?? text;
}

async function inboxOf(stack: TestStack, phone: string) {
  return ((await stack.inbox())[phone] ?? []).map((m) => ({
    kind: kindOf(m.text),
    text: m.text,
    at: Date.parse(m.acceptedAt),
  }));
}

async function until(ms: number) {
  const wait = ms - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

async function kindsAre(stack: TestStack, phones: string[], want: string[], timeoutMs = 30_000) {
  let last: unknown;
  return eventually(
    `${want.join(', ')} on ${phones.join(', ')}`,
    async () => {
      const got = await Promise.all(phones.map((p) => inboxOf(stack, p)));
      last = got.map((g) => g.map((m) => m.kind));
      return got.every((g) => JSON.stringify(g.map((m) => m.kind)) === JSON.stringify(want)) ? got : undefined;
    },
    timeoutMs,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; inbox: ${JSON.stringify(last)}`);
  });
}

describe('quiet hours, kind by kind', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startDemoStack(__filename, rulesFile());
  });
  after(async () => stack?.stop());

  test(
    'one message per phone at the end of the window; a critical outage at night; a reminder before the window',
    { timeout: 300_000 },
    async () => {
      // Before the window: the major outage is told at once; the maintenance notice too (its start is within the rules' hour).
      const major = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-crema-01'], severity: 'major' }))
        .body.id;
      const work = await call(
        stack,
        'POST',
        '/v1/maintenances',
        {
          siteIds: ['ap-lodi-01-a'],
          startsAt: new Date(startMs + 30_000).toISOString(),
          endsAt: new Date(endMs + 600_000).toISOString(),
          title: 'Antenne',
        },
        { 'idempotency-key': 'night-work' },
      );
      assert.equal(work.status, 202, JSON.stringify(work.body));
      await kindsAre(stack, CREMA, ['outage']);
      await kindsAre(stack, LODI_AP, ['maintenance']);

      // The reminder (20 s after the window opens, 10 s before the work) goes the minute before the window.
      const reminded = await kindsAre(stack, LODI_AP, ['maintenance', 'reminder'], startMs - Date.now() + 5_000);
      for (const inbox of reminded)
        assert.ok(inbox[1]!.at < startMs, `the reminder before the window (${new Date(inbox[1]!.at).toISOString()})`);

      // Inside the window.
      await until(startMs + 3_000);
      const critical = (
        await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-lodi-02'], severity: 'critical' })
      ).body.id;
      await kindsAre(stack, VECCHIO, ['outage'], 20_000);
      for (let i = 1; i <= 3; i++) {
        const eta = new Date(endMs + i * 3_600_000).toISOString();
        assert.equal(
          (await call(stack, 'POST', `/v1/incidents/${major}/updates`, { estimatedEnd: eta })).status < 300,
          true,
        );
        if (i < 3)
          assert.equal(
            (await call(stack, 'POST', `/v1/incidents/${critical}/updates`, { estimatedEnd: eta })).status < 300,
            true,
          );
      }
      const heldUpdates = await eventually('the updates planned and held', async () => {
        const docs = await stack.store.deliveries
          .find({ incidentId: { $in: [major, critical] }, kind: 'update', channel: 'sms' })
          .toArray();
        return docs.length === 10 ? docs : undefined;
      });
      assert.ok(
        heldUpdates.every((d) => d.state !== 'accepted' && d.state !== 'sent' && d.state !== 'delivered'),
        'no update goes out inside the window, critical or not',
      );
      await call(stack, 'POST', `/v1/incidents/${critical}/resolve`, {});
      const vecchio = await kindsAre(stack, VECCHIO, ['outage', 'restored'], 20_000);
      for (const inbox of vecchio) assert.ok(inbox[1]!.at < endMs, 'the restoration at once: the notice woke them');
      const replaced = await stack.store.deliveries
        .find({ incidentId: critical, kind: 'update', channel: 'sms' })
        .sort({ round: 1, _id: 1 })
        .toArray();
      assert.deepEqual(
        replaced.map((d) => [d.round, d.state, d.supersededBy]),
        replaced.map((d) => [d.round, 'expired', d.round === 1 ? `${critical}|update#2` : `${critical}|restored`]),
        'the second update replaced the first; the restoration replaced the second',
      );
      // The maintenance's start notice waits for the end of the window.
      assert.deepEqual(
        (await inboxOf(stack, LODI_AP[0]!)).map((m) => m.kind),
        ['maintenance', 'reminder'],
      );

      // The end of the window: one message each, the latest update.
      await until(endMs);
      const crema = await kindsAre(stack, CREMA, ['outage', 'update'], 30_000);
      const latest = DateTime.fromMillis(endMs + 3 * 3_600_000)
        .setZone('Europe/Rome')
        .toFormat('HH:mm');
      for (const inbox of crema) {
        assert.ok(inbox[1]!.at >= endMs, 'sent when the window ended');
        assert.ok(inbox[1]!.text.includes(latest), `the latest estimate (${latest}): ${inbox[1]!.text}`);
      }
      const rounds = await stack.store.deliveries
        .find({ incidentId: major, kind: 'update', channel: 'sms' })
        .sort({ round: 1 })
        .toArray();
      const older = rounds.filter((d) => d.round !== 3);
      assert.equal(older.length, 4);
      assert.deepEqual(
        older.map((d) => [d.state, d.supersededBy]),
        older.map((d) => ['expired', `${major}|update#${d.round! + 1}`]),
        'each older round says which one replaced it',
      );
      await kindsAre(stack, LODI_AP, ['maintenance', 'reminder', 'started'], 30_000);
      // A moment later, still nothing more.
      await new Promise((r) => setTimeout(r, 3_000));
      await kindsAre(stack, CREMA, ['outage', 'update'], 1_000);
    },
  );
});

describe('a fallback inside quiet hours', () => {
  const FAILING = CREMA[0]!;
  let stack: TestStack;
  // A window of its own: this stack starts after the first one's window.
  let from: DateTime;
  let to: DateTime;
  before(async () => {
    from = DateTime.now().setZone('Europe/Rome').plus({ seconds: 50 }).endOf('minute').plus({ milliseconds: 1 });
    to = from.plus({ minutes: 1 });
    stack = await startTestStack(__filename, {
      // Receipts come 20 s late, so that an SMS sent before the window is reported undelivered inside it.
      deliveryPolicy: { deliveryTimeoutMs: 60_000, maxAttempts: 1, sweepEveryMs: 200 },
      channels: { voiceCallerId: '+390212345678' },
      simulator: { callbackDelayMs: 20_000, faults: { numbers: { [FAILING]: { sms: 'undelivered' } } } },
      rulesPath: rulesFile('night-fallback', from, to),
    });
    await loadDemoDataIfEmpty(stack.store);
  });
  after(async () => stack?.stop());

  test(
    'an SMS undelivered inside the window becomes a call at its end, not at night',
    { timeout: 240_000 },
    async () => {
      await until(from.toMillis() - 15_000);
      const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-crema-01'], severity: 'major' })).body
        .id;
      const sms = await eventually('the SMS sent before the window', async () => {
        const d = await stack.store.deliveries.findOne({ incidentId: id, channel: 'sms', to: FAILING, kind: 'outage' });
        // Accepted by Plivo: on its record, or in its request while the (late) receipt is on its way.
        const seen = d && (await answeredOverlay(stack.store, id))(d);
        return seen && seen.attempts > 0 ? seen : undefined;
      });
      assert.ok(
        sms.history.some((h) => h.state === 'sending' && h.at.getTime() < from.toMillis()),
        'sent before the window',
      );
      const voice = await eventually(
        'the call planned as the fallback',
        async () =>
          (await stack.store.deliveries.findOne({ incidentId: id, channel: 'voice', to: FAILING })) ?? undefined,
        60_000,
      );
      assert.equal(voice.fallbackOf, sms._id);
      assert.ok(
        voice.createdAt.getTime() >= from.toMillis(),
        `the SMS failed inside the window (${voice.createdAt.toISOString()})`,
      );
      assert.equal(voice.notBefore?.getTime(), to.toMillis(), 'the call waits for the end of the window');
      const calls = async () =>
        ((await (await fetch(`${stack.simUrl}/inbox.json`)).json()) as { calls: Record<string, { status: string }[]> })
          .calls[FAILING] ?? [];
      assert.deepEqual(await calls(), [], 'no call at night');
      await until(to.toMillis());
      await eventually(
        'the call after the window',
        async () => ((await calls()).length === 1 ? true : undefined),
        30_000,
      );
    },
  );
});
