/**
 * A maintenance that overruns its window escalates to staff every few seconds, each message with
 * the maintenance's code; an acknowledgement (the CLI over the API, or the NOC's number replying
 * "OK <code>") stops the repeats, and the maintenance shows who took it and when. Real Temporal
 * dev server, FerretDB and the Plivo simulator, real time (windows of a few seconds).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { acknowledgementCode } from '../../domain/acknowledgement';
import { maintenancesCommand } from '../../cli/maintenances';
import { eventually } from '../support/env';
import { inboundSms } from '../support/inbound-sms';
import { call, type TestStack } from '../support/stack';
import { startDemoStack, writeTestRules } from '../support/scenario';

const NOC_PHONE = '+390577000000'; // noc-oncall ("NOC reperibile") in rules/default/contacts.yaml
const REPEAT_SECONDS = 2;

/** The NOC is texted 1 s into an overrun, then every 2 s. */
function rulesTextingTheNoc(): string {
  return writeTestRules(
    'maintenance-ack',
    `  sms: { maxParts: 2 }
  wait: 0
  maintenance: { notice: 1h, started: false, completed: false }
rules:
  - name: noc-overrun
    when:
      incident.kind: maintenance
    escalate:
      - after: 1s
        contact: noc-oncall
        channel: sms
        template: staff
        repeat: { every: ${REPEAT_SECONDS}s, times: 30 }
`,
  );
}

const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('an overrunning maintenance, its escalation acknowledged', () => {
  let stack: TestStack;
  let operator: string;
  let viewer: string;
  const withCode = async (code: string) =>
    ((await stack.inbox())[NOC_PHONE] ?? []).filter(
      (m) => /^Avviso NOC: manutenzione/.test(m.text) && m.text.includes(code),
    );

  async function run(args: string[], key: string) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await maintenancesCommand(args, {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      env: { AVVISO_URL: stack.apiUrl, AVVISO_API_KEY: key },
    });
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  /**
   * A maintenance on the Crema tower whose window ends in a few seconds, and its code. The window
   * leaves the first test time to be told "nothing to acknowledge yet" on a loaded machine.
   */
  async function overrunning(title: string): Promise<{ id: string; code: string }> {
    const made = await call(stack, 'POST', '/v1/maintenances', {
      siteIds: ['tower-crema-01'],
      startsAt: inSeconds(1),
      endsAt: inSeconds(6),
      title,
    });
    assert.equal(made.status, 202, JSON.stringify(made.body));
    return { id: made.body.id, code: acknowledgementCode(made.body.id) };
  }

  /**
   * Once the workflow has acted on the acknowledgement (its timeline says so), messages already
   * being sent may still land; after that, none for three repeat periods.
   */
  async function noMoreRepeats(id: string, code: string, what: string): Promise<void> {
    await eventually('the workflow acted on the acknowledgement', async () =>
      (await call(stack, 'GET', `/v1/maintenances/${id}`)).body.timeline?.some((e: { note?: string }) =>
        /escalation acknowledged by/.test(e.note ?? ''),
      )
        ? true
        : undefined,
    );
    await sleep(2000);
    const settled = (await withCode(code)).length;
    await sleep(REPEAT_SECONDS * 3 * 1000);
    assert.equal((await withCode(code)).length, settled, what);
  }

  before(async () => {
    stack = await startDemoStack(__filename, rulesTextingTheNoc());
    operator = await stack.createKey('operator', { name: 'noc-desk' });
    viewer = await stack.createKey('viewer');
  });
  after(async () => stack?.stop());

  test('with `avviso maintenances ack`: the repeats stop and the maintenance says who took it and when', async () => {
    const { id, code } = await overrunning('Riallineamento ponte radio');
    // Before the window ends nothing has escalated: nothing to acknowledge.
    const early = await call(stack, 'POST', `/v1/maintenances/${id}/acknowledge`, {}, {}, { key: operator });
    assert.deepEqual([early.status, early.body.error?.code], [409, 'maintenance_rejected']);
    assert.match(early.body.error.message, /only an overrun escalates/);

    const texts = await eventually(
      'two escalation rounds with the code',
      async () => {
        const t = await withCode(code);
        return t.length >= 2 ? t : undefined;
      },
      30_000,
    );
    assert.match(texts[0]!.text, new RegExp(`rispondi OK ${code}\\.`));

    assert.equal((await run(['ack', id], viewer)).code, 1, 'a viewer cannot acknowledge');
    const started = Date.now();
    const acked = await run(['ack', id], operator);
    assert.equal(acked.code, 0, acked.err);
    assert.match(
      acked.out,
      new RegExp(
        `^${id}: acknowledged by noc-desk \\(key \\w+\\) at \\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2} UTC: the escalation stops`,
      ),
    );
    await noMoreRepeats(id, code, 'no repeat after the acknowledgement');

    const shown = (await call(stack, 'GET', `/v1/maintenances/${id}`)).body;
    assert.match(shown.acknowledged.by, /^noc-desk/);
    assert.equal(shown.acknowledged.via, 'api');
    assert.ok(Date.parse(shown.acknowledged.at) >= started - 1000 && Date.parse(shown.acknowledged.at) <= Date.now());
    assert.match(shown.live.acknowledgedBy, /^noc-desk/, 'the workflow took it');
    assert.ok(shown.timeline.some((e: { note?: string }) => /escalation acknowledged by noc-desk/.test(e.note ?? '')));
    assert.match((await run(['show', id], viewer)).out, /acknowledged by noc-desk .* UTC \(api\)/);

    const again = await call(stack, 'POST', `/v1/maintenances/${id}/acknowledge`, null, {}, { key: stack.adminKey });
    assert.equal(again.status, 202);
    assert.equal(again.body.alreadyAcknowledged, true);
    assert.match(again.body.acknowledged.by, /^noc-desk/, 'the first acknowledgement counts');
    type Audited = {
      actor: { keyName?: string };
      action: { route: string; params?: { id?: string }; outcome?: { alreadyAcknowledged?: boolean } };
      result: { status: number };
    };
    // Written as each answer goes out: both are there soon after.
    const audited = await eventually('both acknowledgements in the audit log', async () => {
      const found = ((await call(stack, 'GET', '/v1/audit?limit=50')).body.items as Audited[])
        .filter(
          (e) =>
            e.action.route === '/v1/maintenances/:id/acknowledge' &&
            e.action.params?.id === id &&
            e.result.status === 202,
        )
        .map((e) => [e.actor.keyName, e.action.outcome?.alreadyAcknowledged])
        .reverse();
      return found.length >= 2 ? found : undefined;
    });
    assert.deepEqual(audited, [
      ['noc-desk', false],
      ['test admin', true],
    ]);

    assert.equal((await call(stack, 'POST', `/v1/maintenances/${id}/complete`, {})).status, 202);
    const closed = await eventually('completed: nothing more to acknowledge', async () => {
      const r = await call(stack, 'POST', `/v1/maintenances/${id}/acknowledge`, {}, {}, { key: operator });
      return r.body.error?.code === 'maintenance_closed' ? r : undefined;
    });
    assert.match(closed.body.error.message, /no escalation to acknowledge/);
  });

  test('with an SMS reply "OK <code>" from the NOC: the repeats stop, the NOC is told it is taken', async () => {
    const { id, code } = await overrunning('Sostituzione antenna');
    await eventually(
      'the escalation with its code',
      async () => ((await withCode(code)).length ? true : undefined),
      30_000,
    );

    assert.notEqual(
      (await inboundSms(stack, '+393471000101', `OK ${code}`)).action,
      'acknowledge',
      'a subscriber acknowledges nothing',
    );
    assert.equal((await inboundSms(stack, NOC_PHONE, `ok ${code}`)).action, 'acknowledge');
    const shown = await eventually('acknowledged', async () => {
      const m = (await call(stack, 'GET', `/v1/maintenances/${id}`)).body;
      return m.acknowledged &&
        m.timeline.some((e: { note?: string }) => /acknowledged by NOC reperibile/.test(e.note ?? ''))
        ? m
        : undefined;
    });
    assert.deepEqual([shown.acknowledged.by, shown.acknowledged.via], ['NOC reperibile', 'sms']);
    await eventually('the confirmation', async () =>
      ((await stack.inbox())[NOC_PHONE] ?? []).find(
        (m) => m.text.startsWith('Presa in carico') && m.text.includes(code),
      ),
    );
    await noMoreRepeats(id, code, 'no repeat after the SMS acknowledgement');

    // A code no escalation carries is answered as such.
    assert.equal((await inboundSms(stack, NOC_PHONE, 'OK 000000')).action, 'acknowledge');
    await eventually('the unknown-code answer', async () =>
      ((await stack.inbox())[NOC_PHONE] ?? []).find((m) =>
        /Nessun guasto aperto o manutenzione in ritardo/.test(m.text),
      ),
    );
    await call(stack, 'POST', `/v1/maintenances/${id}/complete`, {});
  });
});
