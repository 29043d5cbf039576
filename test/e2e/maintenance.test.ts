/**
 * Planned maintenance end to end, through the API, the workflow (dev server, real time: windows
 * of a few seconds), FerretDB and the Plivo simulator, as a subscriber and an operator see it:
 * the notice on creation, reminders, the start and the completion in order; a reschedule tells
 * those told and moves the reminders; a cancellation tells them and nothing follows; an alert
 * for a site under maintenance is recorded as silenced and opens no incident; an overrun
 * escalates to the staff contact the rules name. The status page lists the planned work.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIntegrations } from '../../ingest/integrations';
import { eventually } from '../support/env';
import { call, type TestStack } from '../support/stack';
import { startDemoStack, writeTestRules } from '../support/scenario';

const NOC_PHONE = '+390577000000';
// Paying, not opted out, by site (store/demo.ts).
const CREMA = ['+393471000101', '+393471000103']; // ap-crema-01-a, tower-crema-01
const VECCHIO = ['+393471000005', '+393471000007']; // ap-lodi-02-a, tower-lodi-02
const LODI_AP = ['+393471000001', '+393471000002']; // ap-lodi-01-a

/** The test's rules: the shipped texts, reminders 6 s and 3 s before the start, the NOC told 1 s into an overrun. */
function rulesFile(): string {
  return writeTestRules(
    'maintenance',
    `  sms: { maxParts: 2 }
  wait: 0
  maintenance: { notice: 1h, reminder: [6s, 3s], started: true, completed: true }
rules:
  - name: status-feed
    notify: { channel: feed, template: feed }
    continue: true
  - name: noc-overrun
    when:
      incident.kind: maintenance
    escalate:
      - { after: 1s, contact: noc-oncall, channel: sms, template: staff }
    continue: true
  - name: paid-sms
    when:
      subscriber.paidSms: true
      subscriber.onAffectedSite: true
    notify: sms
`,
  );
}

const token = 'mnt-token';
const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();

/** What each phone read, as message kinds, from the texts of rules/default/templates/sms.yaml. */
function kindOf(text: string): string {
  const kinds: [RegExp, string][] = [
    [/^Manutenzione programmata/, 'maintenance'],
    [/^Promemoria/, 'reminder'],
    [/^Manutenzione iniziata/, 'started'],
    [/^Manutenzione completata/, 'completed'],
    [/spostata/, 'rescheduled'],
    [/è annullata/, 'cancelled'],
    [/^Avviso NOC: manutenzione/, 'escalation'],
  ];
  return kinds.find(([re]) => re.test(text))?.[1] ?? text;
}

async function kinds(stack: TestStack, phones: string[]): Promise<Record<string, string[]>> {
  const inbox = await stack.inbox();
  return Object.fromEntries(phones.map((p) => [p, (inbox[p] ?? []).map((m) => kindOf(m.text))]));
}

async function texts(stack: TestStack, phone: string): Promise<string[]> {
  return ((await stack.inbox())[phone] ?? []).map((m) => m.text);
}

/** Waits until every phone's messages, from `from` on, are `want`. */
async function inboxIs(stack: TestStack, phones: string[], want: string[], from = 0, timeoutMs = 30_000) {
  let last: unknown;
  return eventually(
    `${want.join(', ')} on ${phones.join(', ')}`,
    async () => {
      const k = await kinds(stack, phones);
      last = k;
      return phones.every((p) => JSON.stringify(k[p]!.slice(from)) === JSON.stringify(want)) ? k : undefined;
    },
    timeoutMs,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; inbox: ${JSON.stringify(last)}`);
  });
}

async function phaseOf(stack: TestStack, id: string, phase: string, timeoutMs = 30_000) {
  let last: unknown;
  return eventually(
    `maintenance phase ${phase}`,
    async () => {
      const r = (await call(stack, 'GET', `/v1/maintenances/${id}`)).body;
      last = { phase: r.phase, timeline: r.timeline };
      return r.phase === phase ? r : undefined;
    },
    timeoutMs,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last seen: ${JSON.stringify(last)}`);
  });
}

describe('planned maintenance', () => {
  let stack: TestStack;
  before(async () => {
    const integrations = parseIntegrations(
      `integrations:\n  - { name: noc, source: alertmanager, token: ${token}, site: { label: device } }\n`,
      'test-integrations.yaml',
      {},
    );
    stack = await startDemoStack(__filename, rulesFile(), { integrations });
  });
  after(async () => stack?.stop());

  test('the whole lifecycle: notice on creation, two reminders, start, completion, in order; the status page lists it', async () => {
    const body = {
      siteIds: ['tower-crema-01'],
      startsAt: inSeconds(9),
      endsAt: inSeconds(120),
      title: 'Sostituzione antenne',
      description: 'Two sectors',
    };
    const created = await call(stack, 'POST', '/v1/maintenances', body, { 'idempotency-key': 'crema-antennas' });
    assert.equal(created.status, 202, JSON.stringify(created.body));
    const id = created.body.id;
    assert.match(id, /^mnt_[a-z0-9]{16}$/);
    assert.equal(created.headers.get('location'), `/v1/maintenances/${id}`);
    assert.deepEqual(
      [created.body.phase, created.body.affectedSiteIds, created.body.areas],
      ['scheduled', ['ap-crema-01-a', 'tower-crema-01'], ['Crema']],
    );
    // The same key again: the same maintenance, nothing new.
    const again = await call(stack, 'POST', '/v1/maintenances', body, { 'idempotency-key': 'crema-antennas' });
    assert.deepEqual([again.status, again.body.id], [200, id]);

    const notice = await inboxIs(stack, CREMA, ['maintenance']);
    assert.ok(notice, "the notice at once: the start is within the rules' hour");
    assert.match(
      (await texts(stack, CREMA[0]!))[0]!,
      /^Manutenzione programmata a Crema: internet sospeso dal .+ al .+\./,
    );

    // The public status page lists the planned work.
    const page = await eventually('the status page lists it', async () => {
      const s = (await call(stack, 'GET', '/status.json', undefined, {}, { key: null })).body;
      return s.maintenance?.some((p: { id: string }) => p.id === id) ? s : undefined;
    });
    assert.deepEqual(page.areas.find((a: { name: string }) => a.name === 'Crema').state, 'maintenance');
    const listed = await call(stack, 'GET', '/v1/maintenances?state=scheduled&site=ap-crema-01-a');
    assert.deepEqual(
      listed.body.items.map((m: { id: string }) => m.id),
      [id],
    );

    await inboxIs(stack, CREMA, ['maintenance', 'reminder', 'reminder', 'started'], 0, 20_000);
    await phaseOf(stack, id, 'in_progress');
    assert.match(
      (await texts(stack, CREMA[1]!))[3]!,
      /^Manutenzione iniziata a Crema\. Internet sospeso fino alle \d\d:\d\d circa\./,
    );
    const early = await call(stack, 'POST', `/v1/maintenances/${id}/cancel`, { reason: 'too late' });
    assert.equal(early.status, 409, 'a maintenance that began cannot be cancelled');
    assert.equal(early.body.error.code, 'maintenance_rejected');
    assert.match(early.body.error.message, /complete it instead/);

    const done = await call(stack, 'POST', `/v1/maintenances/${id}/complete`, { note: 'ahead of time' });
    assert.equal(done.status, 202, JSON.stringify(done.body));
    await inboxIs(stack, CREMA, ['maintenance', 'reminder', 'reminder', 'started', 'completed']);
    const billed = await phaseOf(stack, id, 'billed');
    assert.deepEqual(
      billed.timeline.map((t: { event: string }) => t.event.replace(/#\d+$/, '#')),
      ['scheduled', 'announced', 'reminder#', 'reminder#', 'in_progress', 'completed', 'billed'],
    );
    assert.deepEqual(billed.deliveries.sms, {
      maintenance: { delivered: 2 },
      reminder: { delivered: 4 },
      started: { delivered: 2 },
      completed: { delivered: 2 },
    });
    assert.ok(billed.completedAt);
    assert.equal(
      (await call(stack, 'POST', `/v1/maintenances/${id}/complete`, {})).status,
      202,
      'completing twice is harmless',
    );
    const status = (await call(stack, 'GET', '/status.json', undefined, {}, { key: null })).body;
    assert.ok(
      status.recent.some((p: { id: string; state: string }) => p.id === id && p.state === 'resolved'),
      'completed: among the recent, no longer planned',
    );
  });

  test('a reschedule tells those told, and the reminders follow the new window', async () => {
    const created = await call(stack, 'POST', '/v1/maintenances', {
      siteIds: ['tower-lodi-02'],
      startsAt: inSeconds(40),
      endsAt: inSeconds(100),
      title: 'Upgrade firmware',
    });
    const id = created.body.id;
    await inboxIs(stack, VECCHIO, ['maintenance']);
    const movedAt = Date.now();
    const r = await call(stack, 'POST', `/v1/maintenances/${id}/reschedule`, {
      startsAt: inSeconds(10),
      endsAt: inSeconds(90),
      reason: 'crew available earlier',
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.reschedules, 1);
    await inboxIs(stack, VECCHIO, ['maintenance', 'rescheduled']);
    assert.match(
      (await texts(stack, VECCHIO[0]!))[1]!,
      /^Manutenzione a Lodi Vecchio spostata: ora dal .+ al .+ \(prima .+\)\./,
    );
    // The old window's reminders would have come 34 s and 37 s after creation: the new ones come before.
    await inboxIs(stack, VECCHIO, ['maintenance', 'rescheduled', 'reminder', 'reminder', 'started'], 0, 25_000);
    assert.ok(Date.now() - movedAt < 25_000, 'the reminders moved with the window');
    const m = await phaseOf(stack, id, 'in_progress');
    assert.ok(m.previousWindow, 'the window before the move is kept');
    assert.ok(m.timeline.some((t: { event: string; window?: unknown }) => t.event === 'rescheduled#1' && t.window));
    await call(stack, 'POST', `/v1/maintenances/${id}/complete`, {});
    await inboxIs(stack, VECCHIO, ['maintenance', 'rescheduled', 'reminder', 'reminder', 'started', 'completed']);
    await phaseOf(stack, id, 'billed');
  });

  test('a cancellation tells those told, and nothing is sent after it', async () => {
    const created = await call(stack, 'POST', '/v1/maintenances', {
      siteIds: ['ap-lodi-01-a'],
      startsAt: inSeconds(8),
      endsAt: inSeconds(60),
      title: 'Cambio alimentatore',
    });
    const id = created.body.id;
    await inboxIs(stack, LODI_AP, ['maintenance']);
    const done = await call(stack, 'POST', `/v1/maintenances/${id}/complete`, {});
    assert.equal(done.status, 409, 'not begun: it cannot be completed');
    const r = await call(stack, 'POST', `/v1/maintenances/${id}/cancel`, { reason: 'parts not delivered' });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    await inboxIs(stack, LODI_AP, ['maintenance', 'cancelled']);
    const over = await phaseOf(stack, id, 'billed');
    assert.ok(over.cancelledAt);
    assert.ok(over.timeline.some((t: { phase: string }) => t.phase === 'cancelled'));
    // Past the reminders' and the start's times: still nothing more.
    await new Promise((res) => setTimeout(res, Math.max(0, Date.parse(created.body.startsAt) + 1500 - Date.now())));
    assert.deepEqual((await kinds(stack, LODI_AP))[LODI_AP[0]!], ['maintenance', 'cancelled']);
    const late = await call(stack, 'POST', `/v1/maintenances/${id}/reschedule`, { endsAt: inSeconds(300) });
    assert.equal(late.status, 409);
    assert.equal(
      (await call(stack, 'POST', `/v1/maintenances/${id}/cancel`, {})).status,
      202,
      'cancelling twice is harmless',
    );
    const cancelled = await call(stack, 'GET', '/v1/maintenances?state=billed&site=ap-lodi-01-a');
    assert.deepEqual(
      cancelled.body.items.map((x: { id: string }) => x.id),
      [id],
    );
  });

  test('while a site is under maintenance its alerts open no incident; an overrun escalates to staff', async () => {
    const before = (await kinds(stack, CREMA))[CREMA[0]!]!.length;
    const created = await call(stack, 'POST', '/v1/maintenances', {
      siteIds: ['tower-crema-01'],
      startsAt: inSeconds(2),
      endsAt: inSeconds(6),
      title: 'Riallineamento ponte radio',
    });
    const id = created.body.id;
    await phaseOf(stack, id, 'in_progress');

    // A monitoring alert for the access point below the tower: recorded, silenced, no incident.
    const alert = {
      version: '4',
      status: 'firing',
      receiver: 'avviso',
      groupKey: '{}:{alertname="ApDown"}',
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'ApDown', device: 'ap-crema-01-a', severity: 'critical' },
          annotations: { summary: 'ap-crema-01-a down' },
          startsAt: new Date().toISOString(),
          endsAt: '0001-01-01T00:00:00Z',
          fingerprint: 'fp-ap-crema',
        },
      ],
    };
    const res = await call(
      stack,
      'POST',
      '/v1/ingest/alertmanager/noc',
      alert,
      { authorization: `Bearer ${token}` },
      { key: null },
    );
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.deepEqual([res.body.results[0].action, res.body.results[0].maintenanceId], ['silenced', id]);
    const stored = await stack.store.alertEvents.findOne({ dedupKey: res.body.results[0].dedupKey });
    assert.deepEqual([stored?.result?.action, stored?.result?.maintenanceId], ['silenced', id]);
    assert.equal(await stack.store.incidents.countDocuments({ kind: 'outage' }), 0, 'no incident opened');

    // The window ends, the work is not reported done: the NOC is told.
    const noc = await eventually(
      'the NOC escalation',
      async () => {
        const t = await texts(stack, NOC_PHONE);
        return t.length ? t : undefined;
      },
      20_000,
    );
    assert.match(
      noc[0]!,
      /^Avviso NOC: manutenzione a Crema non completata, la fine era prevista alle \d\d:\d\d\. Riallineamento ponte radio\./,
    );
    const overrun = await phaseOf(stack, id, 'overrun');
    assert.ok(overrun.timeline.some((t: { event: string }) => t.event.startsWith('escalated#')));

    // More time: only the end can move now; the work is under way again, and those told hear of it.
    const moveStart = await call(stack, 'POST', `/v1/maintenances/${id}/reschedule`, {
      startsAt: inSeconds(60),
      endsAt: inSeconds(120),
    });
    assert.deepEqual([moveStart.status, moveStart.body.error?.code], [409, 'maintenance_rejected']);
    const longer = await call(stack, 'POST', `/v1/maintenances/${id}/reschedule`, {
      endsAt: inSeconds(60),
      reason: 'one more hour',
    });
    assert.equal(longer.status, 202, JSON.stringify(longer.body));
    await phaseOf(stack, id, 'in_progress');
    await inboxIs(stack, CREMA, ['maintenance', 'started', 'rescheduled'], before);

    await call(stack, 'POST', `/v1/maintenances/${id}/complete`, {});
    await inboxIs(stack, CREMA, ['maintenance', 'started', 'rescheduled', 'completed'], before);
    await phaseOf(stack, id, 'billed');
    assert.deepEqual(await texts(stack, NOC_PHONE), noc, 'no more escalation after the completion');
  });

  test('the API refuses what makes no sense, in the one error shape', async () => {
    const past = await call(stack, 'POST', '/v1/maintenances', {
      siteIds: ['tower-crema-01'],
      startsAt: inSeconds(-3600),
      endsAt: inSeconds(60),
      title: 'x',
    });
    assert.deepEqual([past.status, past.body.error.code], [422, 'invalid_window']);
    const backwards = await call(stack, 'POST', '/v1/maintenances', {
      siteIds: ['tower-crema-01'],
      startsAt: inSeconds(120),
      endsAt: inSeconds(60),
      title: 'x',
    });
    assert.deepEqual([backwards.status, backwards.body.error.code], [422, 'invalid_window']);
    const unknown = await call(stack, 'POST', '/v1/maintenances', {
      siteIds: ['tower-nowhere'],
      startsAt: inSeconds(60),
      endsAt: inSeconds(120),
      title: 'x',
    });
    assert.deepEqual([unknown.status, unknown.body.error.code], [422, 'unknown_site']);
    const missing = await call(stack, 'POST', '/v1/maintenances', { siteIds: ['tower-crema-01'] });
    assert.deepEqual([missing.status, missing.body.error.code], [400, 'invalid_request']);
    const none = await call(stack, 'GET', '/v1/maintenances/mnt_0000000000000000');
    assert.deepEqual([none.status, none.body.error.code], [404, 'maintenance_not_found']);
    const viewer = await stack.createKey('viewer');
    assert.equal((await call(stack, 'GET', '/v1/maintenances', undefined, {}, { key: viewer })).status, 200);
    assert.equal(
      (
        await call(
          stack,
          'POST',
          '/v1/maintenances',
          { siteIds: ['tower-crema-01'], startsAt: inSeconds(60), endsAt: inSeconds(120), title: 'x' },
          {},
          { key: viewer },
        )
      ).status,
      403,
    );
    // Paging by start time.
    const page1 = await call(stack, 'GET', '/v1/maintenances?limit=2');
    assert.equal(page1.body.items.length, 2);
    const page2 = await call(stack, 'GET', `/v1/maintenances?limit=2&after=${page1.body.next}`);
    const all = (await call(stack, 'GET', '/v1/maintenances?limit=100')).body.items.map((m: { id: string }) => m.id);
    assert.deepEqual(
      [...page1.body.items, ...page2.body.items].map((m: { id: string }) => m.id),
      all.slice(0, 2 + page2.body.items.length),
    );
  });
});
