/**
 * The rules' incident facts mean the same live as in `avviso rules simulate`: `incident.subscribers`
 * is the number of subscribers the affected sites serve, counted when the audience is snapshot.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../support/env';
import { call, type TestStack } from '../support/stack';
import { startDemoStack, writeTestRules } from '../support/scenario';

function rulesForLargeOutagesOnly(): string {
  return writeTestRules(
    'live-facts',
    `  sms: { maxParts: 2 }
  wait: 0
  restoration: true
  updates: { every: off, onEtaChange: false }
rules:
  - name: paid-sms-when-many-are-down
    when:
      subscriber.paidSms: true
      incident.subscribers: { moreThan: 2 }
    notify: sms
`,
  );
}

describe('incident facts in live decisions', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startDemoStack(__filename, rulesForLargeOutagesOnly());
  });
  after(async () => stack?.stop());

  const notified = async (siteId: string) => {
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: [siteId] })).body.id as string;
    await eventually(`${id} notified`, async () =>
      (await call(stack, 'GET', `/v1/incidents/${id}`)).body.phase === 'notified' ? true : undefined,
    );
    return id;
  };

  test('incident.subscribers counts who the affected sites serve: three on one access point, two on the other', async () => {
    const big = await notified('ap-lodi-01-a'); // C-1001, C-1002 (paying), C-1003
    const small = await notified('ap-lodi-02-a'); // C-1005 (paying), C-1006
    assert.equal((await stack.store.incidents.findOne({ _id: big }))?.audienceSize, 3);
    assert.equal((await stack.store.incidents.findOne({ _id: small }))?.audienceSize, 2);
    assert.equal(
      await stack.store.deliveries.countDocuments({ incidentId: big, channel: 'sms' }),
      2,
      'more than 2 subscribers: the paying ones are told',
    );
    assert.equal(
      await stack.store.deliveries.countDocuments({ incidentId: small, channel: 'sms' }),
      0,
      '2 subscribers: nobody is',
    );
    await call(stack, 'POST', `/v1/incidents/${big}/resolve`, {});
    await call(stack, 'POST', `/v1/incidents/${small}/resolve`, {});
  });

  test('POST /v1/rules/simulate with no audience of its own simulates on the real subscribers of the sites, and agrees with the live decision', async () => {
    const big = await call(stack, 'POST', '/v1/rules/simulate', {
      incident: { kind: 'outage', severity: 'major', siteIds: ['ap-lodi-01-a'] },
    });
    assert.equal(big.status, 200, JSON.stringify(big.body));
    assert.deepEqual(
      { subscribers: big.body.subscribers, notified: big.body.notified },
      { subscribers: 3, notified: 2 },
    );
    // A tower: every site it feeds is simulated, as a live incident would plan it.
    const tower = await call(stack, 'POST', '/v1/rules/simulate', {
      incident: { kind: 'outage', severity: 'major', siteIds: ['tower-lodi-02'] },
    });
    assert.deepEqual(
      { subscribers: tower.body.subscribers, notified: tower.body.notified },
      { subscribers: 3, notified: 2 },
      'C-1005, C-1006 (opted out) and C-1007',
    );
    const small = await call(stack, 'POST', '/v1/rules/simulate', {
      incident: { kind: 'outage', severity: 'major', siteIds: ['ap-lodi-02-a'] },
    });
    assert.deepEqual(
      { subscribers: small.body.subscribers, notified: small.body.notified },
      { subscribers: 2, notified: 0 },
    );
  });
});
