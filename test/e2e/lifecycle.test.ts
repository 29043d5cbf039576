/**
 * The incident lifecycle as the rules shape it: a blip resolved within the grace delay costs no
 * SMS (the public feed still shows it); at night (quiet hours) SMS wait for the morning unless the
 * outage is critical, and an outage resolved while its SMS waited becomes one combined
 * outage-and-restored message, held like the rest.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DateTime } from 'luxon';
import { eventually } from '../support/env';
import { call, type TestStack } from '../support/stack';
import { phaseOf, startDemoStack, writeTestRules } from '../support/scenario';

/** A rule file for these tests, in a folder of its own; includes the shipped texts. */
function rulesFile(name: string, defaults: string): string {
  return writeTestRules(
    name,
    `  sms: { maxParts: 2 }
${defaults}
rules:
  - name: status-feed
    notify: { channel: feed, template: feed }
    wait: 0
    quietHours: off
    continue: true
  - name: paid-sms
    when:
      subscriber.paidSms: true
      subscriber.onAffectedSite: true
    notify: sms
`,
  );
}

const cremaPhones = ['+393471000101', '+393471000103'];

describe('grace delay', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startDemoStack(__filename, rulesFile('grace', '  wait: 20s\n  restoration: true'));
  });
  after(async () => stack?.stop());

  test('resolved within the grace delay: no SMS, the public feed still tells the story', async () => {
    const opened = await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-crema-01'] });
    const id = opened.body.id;
    await phaseOf(stack, id, 'notifying');
    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    const done = await phaseOf(stack, id, 'billed');
    assert.deepEqual(done.deliveries.sms, { outage: { expired: 2 } }, 'both SMS cancelled');
    assert.deepEqual(done.deliveries.status, { outage: { delivered: 2 }, restored: { delivered: 2 } });
    const inbox = await stack.inbox();
    for (const phone of cremaPhones) assert.equal(inbox[phone], undefined, `${phone} got no SMS`);
    const record = await stack.store.deliveries.findOne({ incidentId: id, channel: 'sms' });
    assert.match(record!.history.at(-1)!.note!, /cancelled: resolved within the grace delay/);
  });
});

describe('quiet hours', () => {
  let stack: TestStack;
  // A quiet window around now, in Rome, ending two hours from now.
  const rome = DateTime.now().setZone('Europe/Rome');
  const window = `${rome.minus({ hours: 1 }).toFormat('HH:mm')}-${rome.plus({ hours: 2 }).toFormat('HH:mm')}`;
  before(async () => {
    stack = await startDemoStack(
      __filename,
      rulesFile('quiet', `  wait: 0\n  quietHours:\n    window: "${window}"\n    unlessSeverity: critical`),
    );
  });
  after(async () => stack?.stop());

  test('a major outage waits for the end of quiet hours; resolved meanwhile, it becomes one combined message, still held', async () => {
    const opened = await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-crema-01'], severity: 'major' });
    const id = opened.body.id;
    await eventually('the feed post', async () =>
      (await call(stack, 'GET', `/v1/incidents/${id}`)).body.deliveries.status?.outage?.delivered === 2
        ? true
        : undefined,
    );
    const held = await stack.store.deliveries.find({ incidentId: id, channel: 'sms' }).toArray();
    assert.equal(held.length, 2);
    const morning = rome.plus({ hours: 2 }).startOf('minute').toMillis();
    for (const d of held) {
      assert.equal(d.state, 'planned');
      assert.ok(
        Math.abs(d.notBefore!.getTime() - morning) < 61_000,
        `held until the window ends (${d.notBefore!.toISOString()})`,
      );
    }

    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    const combined = await eventually('the combined messages', async () => {
      const docs = await stack.store.deliveries
        .find({ incidentId: id, channel: 'sms', kind: 'outage-restored' })
        .toArray();
      return docs.length === 2 ? docs : undefined;
    });
    for (const d of combined) {
      assert.equal(d.state, 'planned', 'the combined message waits for the morning too');
      assert.ok(Math.abs(d.notBefore!.getTime() - morning) < 61_000);
    }
    // The combined messages are planned before the notices they replace are given up (a crash in between loses neither).
    await eventually('the outage notices replaced', async () => {
      const replaced = await stack.store.deliveries.find({ incidentId: id, channel: 'sms', kind: 'outage' }).toArray();
      return replaced.every((d) => d.state === 'expired') && replaced.length === 2 ? true : undefined;
    });
    assert.equal(
      await stack.store.deliveries.countDocuments({ incidentId: id, kind: 'restored', channel: 'sms' }),
      0,
      'no restoration without an outage notice',
    );
    const inbox = await stack.inbox();
    for (const phone of cremaPhones) assert.equal(inbox[phone], undefined, 'nothing sent during quiet hours');
  });

  test('a critical outage is sent at once, day or night', async () => {
    const opened = await call(stack, 'POST', '/v1/incidents', { siteIds: ['ap-lodi-02-a'], severity: 'critical' });
    const id = opened.body.id;
    await phaseOf(stack, id, 'notified');
    const inbox = await stack.inbox();
    // ap-lodi-02-a serves C-1005 (paying); C-1006 opted out; C-1007 is on the tower above it.
    assert.match(inbox['+393471000005']![0]!.text, /guasto/);
    assert.equal(inbox['+393471000007'], undefined);
    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    const done = await phaseOf(stack, id, 'billed');
    assert.deepEqual(done.deliveries.sms.restored, { delivered: 1 });
  });
});
