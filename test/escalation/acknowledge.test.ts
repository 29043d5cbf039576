/**
 * Staff escalation that is acknowledged: the rules text the NOC every few seconds and the stored
 * contacts on call get the same message with its code; an acknowledgement (the API, or a staff
 * number replying "OK <code>") stops the repeats and the incident shows who took it and when.
 * An escalation with nobody to reach is shown on the incident, not dropped.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { acknowledgementCode } from '../../domain/acknowledgement';
import { eventually } from '../support/env';
import { call, type TestStack } from '../support/stack';
import { startDemoStack, writeTestRules } from '../support/scenario';
import { inboundSms } from '../support/inbound-sms';

const NOC_PHONE = '+390577000000'; // noc-oncall in rules/default/contacts.yaml
const ON_CALL_LODI = '+393470009001';
const OFF_CALL = '+393470009002';
const ON_CALL_CREMA = '+393470009003';
const REPEAT_SECONDS = 3;

/** The NOC is texted 2 s after an outage opens in Lodi, then every 3 s; Crema outages escalate to nobody in the rules. */
function rulesTextingTheNoc(): string {
  return writeTestRules(
    'noc-ack',
    `  sms: { maxParts: 2 }
  wait: 0
  restoration: true
  updates: { every: off, onEtaChange: false }
rules:
  - name: noc-by-sms
    when:
      incident.kind: outage
      incident.areas: { contains: Lodi }
    escalate:
      - after: 2s
        contact: noc-oncall
        channel: sms
        template: staff
        repeat: { every: ${REPEAT_SECONDS}s, times: 30 }
    continue: true
  - name: paid-sms
    when:
      subscriber.paidSms: true
      subscriber.onAffectedSite: true
    notify: sms
`,
  );
}

describe('staff escalation, acknowledged', () => {
  let stack: TestStack;
  const escalations = async (phone: string) =>
    ((await stack.inbox())[phone] ?? []).filter((m) => /Avviso NOC/.test(m.text));
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  before(async () => {
    stack = await startDemoStack(__filename, rulesTextingTheNoc());
    const contacts = [
      { id: 'mario', name: 'Mario Rossi', phones: [ON_CALL_LODI], onCall: true, areas: ['Lodi'] },
      { id: 'lucia', name: 'Lucia Bianchi', phones: [OFF_CALL], onCall: false },
      { id: 'piero', name: 'Piero Verdi', phones: [ON_CALL_CREMA], onCall: true, areas: ['Crema'] },
    ];
    for (const c of contacts) assert.equal((await call(stack, 'POST', '/v1/contacts', c)).status, 201);
  });
  after(async () => stack?.stop());

  test('via the API: the repeats stop, the contacts on call were told, and the incident says who took it and when', async () => {
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['ap-lodi-01-a'] })).body.id as string;
    const code = acknowledgementCode(id);
    // Two rounds: the rules' contact and the contact on call for Lodi, each with the code to reply with.
    await eventually(
      'two escalation rounds',
      async () => ((await escalations(NOC_PHONE)).length >= 2 ? true : undefined),
      30_000,
    );
    const toMario = await eventually('the contact on call texted', async () => (await escalations(ON_CALL_LODI))[0]);
    assert.match(toMario.text, new RegExp(`OK ${code}`));
    assert.equal((await escalations(OFF_CALL)).length, 0, 'a contact not on call is not texted');
    assert.equal((await escalations(ON_CALL_CREMA)).length, 0, 'a contact on call for another area is not texted');

    const viewer = await stack.createKey('viewer');
    assert.equal((await call(stack, 'POST', `/v1/incidents/${id}/acknowledge`, {}, {}, { key: viewer })).status, 403);
    const operator = await stack.createKey('operator', { name: 'noc-desk' });
    const before = Date.now();
    const ack = await call(stack, 'POST', `/v1/incidents/${id}/acknowledge`, {}, {}, { key: operator });
    assert.equal(ack.status, 202, JSON.stringify(ack.body));
    assert.match(ack.body.acknowledged.by, /noc-desk/);
    assert.equal(ack.body.acknowledged.via, 'api');
    assert.equal(ack.body.alreadyAcknowledged, false);
    assert.match(ack.body.acknowledgedBy, /noc-desk/, 'the workflow took it');

    await sleep(1500); // a message in flight at the moment of the acknowledgement may still land
    const settled = (await escalations(NOC_PHONE)).length;
    await sleep(REPEAT_SECONDS * 3 * 1000);
    assert.equal((await escalations(NOC_PHONE)).length, settled, 'no repeat after the acknowledgement');

    const shown = (await call(stack, 'GET', `/v1/incidents/${id}`)).body;
    assert.match(shown.acknowledged.by, /noc-desk/);
    assert.ok(Date.parse(shown.acknowledged.at) >= before - 1000 && Date.parse(shown.acknowledged.at) <= Date.now());
    assert.ok(shown.timeline.some((e: { note?: string }) => /acknowledged by .*noc-desk/.test(e.note ?? '')));

    const again = await call(stack, 'POST', `/v1/incidents/${id}/acknowledge`, null, {}, { key: stack.adminKey });
    assert.equal(again.status, 202);
    assert.equal(again.body.alreadyAcknowledged, true);
    assert.match(again.body.acknowledged.by, /noc-desk/, 'the first acknowledgement counts');

    const audit = (await call(stack, 'GET', '/v1/audit?limit=50')).body;
    assert.ok(
      JSON.stringify(audit).includes(`/v1/incidents/${id}/acknowledge`) ||
        JSON.stringify(audit).includes('/v1/incidents/:id/acknowledge'),
      'in the audit log',
    );
    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
  });

  test('via an SMS reply with the code from a staff number: the repeats stop', async () => {
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['ap-lodi-01-a'], correlate: false })).body
      .id as string;
    const code = acknowledgementCode(id);
    const withCode = async () => (await escalations(ON_CALL_LODI)).filter((m) => m.text.includes(code));
    await eventually(
      'the escalation with its code',
      async () => ((await withCode()).length >= 1 ? true : undefined),
      30_000,
    );

    // A subscriber's number sending the code acknowledges nothing.
    assert.notEqual((await inboundSms(stack, '+393471000001', `OK ${code}`)).action, 'acknowledge');
    const r = await inboundSms(stack, ON_CALL_LODI, `ok ${code}`);
    assert.equal(r.action, 'acknowledge');
    const shown = await eventually('acknowledged', async () => {
      const i = (await call(stack, 'GET', `/v1/incidents/${id}`)).body;
      return i.acknowledged && i.live?.phase ? i : undefined;
    });
    assert.equal(shown.acknowledged.by, 'Mario Rossi');
    assert.equal(shown.acknowledged.via, 'sms');
    assert.match(
      (await eventually('the confirmation', async () =>
        ((await stack.inbox())[ON_CALL_LODI] ?? []).find((m) => /Presa in carico/.test(m.text)),
      ))!.text,
      new RegExp(code),
    );

    await eventually('the workflow took it', async () =>
      (await call(stack, 'GET', `/v1/incidents/${id}`)).body.timeline.some((e: { note?: string }) =>
        /acknowledged by Mario Rossi/.test(e.note ?? ''),
      )
        ? true
        : undefined,
    );
    await sleep(1500);
    const settled = (await withCode()).length;
    await sleep(REPEAT_SECONDS * 3 * 1000);
    assert.equal((await withCode()).length, settled, 'no repeat after the SMS acknowledgement');
    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
  });

  test('an escalation with nobody to reach is shown on the incident', async () => {
    // Crema: the rules escalate to nobody; Piero, on call for Crema, is the only one. Take him off call.
    assert.equal((await call(stack, 'PATCH', '/v1/contacts/piero', { onCall: false })).status, 200);
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['ap-crema-01-a'], correlate: false })).body
      .id as string;
    await eventually('notified', async () =>
      (await call(stack, 'GET', `/v1/incidents/${id}`)).body.phase === 'notified' ? true : undefined,
    );
    assert.equal(
      (await call(stack, 'POST', `/v1/incidents/${id}/escalate`, { reason: 'customers calling' })).status,
      202,
    );
    const shown = await eventually('the problem shown', async () => {
      const i = (await call(stack, 'GET', `/v1/incidents/${id}`)).body;
      return i.escalationProblems?.length ? i : undefined;
    });
    assert.match(shown.escalationProblems[0].problem, /nobody to escalate to/);
    assert.notEqual(shown.phase, 'escalated', 'an escalation that reached nobody does not say escalated');

    // On call again: the next escalation reaches him.
    await call(stack, 'PATCH', '/v1/contacts/piero', { onCall: true });
    await call(stack, 'POST', `/v1/incidents/${id}/escalate`, {});
    await eventually('Piero texted', async () => ((await escalations(ON_CALL_CREMA)).length ? true : undefined));
    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
  });
});
