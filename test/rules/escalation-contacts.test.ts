/**
 * `rules check` warns of escalations in areas where no stored staff contact is, or none is on
 * call: the escalation then reaches the rules' own contact only. Pure over the rules and the
 * contacts given; the same warning from the CLI (`--contacts FILE`) and the API.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import Fastify from 'fastify';
import { rulesCommand } from '../../cli/rules';
import { installErrorHandler } from '../../api/errors';
import { rulesRoutes } from '../../api/routes/rules';
import { RulesHolder } from '../../rules';
import { areasOfRule, escalationsWithNobodyOnCall, type StoredContact } from '../../rules/escalation-check';
import { load, rulesDir } from './helpers';

const RULES = `contacts:
  noc: { name: NOC, phone: "+390577123456" }
rules:
  - name: lodi-noc
    when:
      incident.areas: { contains: Lodi }
    escalate:
      - { after: 30m, contact: noc, channel: sms }
    continue: true
  - name: south-noc
    when:
      incident.areas: { containsAny: [Crema, Cremona] }
    escalate:
      - { after: 1h, contact: noc, channel: sms }
    continue: true
  - name: everywhere
    when:
      incident.severity: critical
    escalate:
      - { after: 2h, contact: noc, channel: sms }
    continue: true
  - name: subscribers
    notify: sms
`;

const person = (id: string, onCall: boolean, areas?: string[]): StoredContact => ({
  _id: id,
  kind: 'person',
  onCall,
  ...(areas ? { areas } : {}),
});

test('the areas a rule is confined to come from its incident.areas conditions', async () => {
  const rules = await load(RULES);
  const byRule = Object.fromEntries(rules.escalatingRules.map((r) => [r.rule, areasOfRule(r.chain)]));
  assert.deepEqual(byRule, { 'lodi-noc': ['Lodi'], 'south-noc': ['Crema', 'Cremona'], everywhere: undefined });
});

test('an area with no stored contact, or none on call, is a warning at the rule; covered areas are not', async () => {
  const rules = await load(RULES);
  const contacts = [
    person('mario', true, ['Lodi']),
    person('piero', false, ['Crema']),
    { _id: 'empty-team', kind: 'team', onCall: true, areas: ['Cremona'], members: [] } as StoredContact,
  ];
  const warnings = escalationsWithNobodyOnCall(rules, contacts);
  const messages = warnings.map((w) => w.message);
  assert.deepEqual(messages, [
    'rule "south-noc" escalates in Crema to the stored contacts on call there too, but none of the stored contacts covering Crema (piero) is on call: only noc is reached',
    'rule "south-noc" escalates in Cremona to the stored contacts on call there too, but no stored contact (/v1/contacts) covers Cremona: only noc is reached',
  ]);
  assert.ok(
    warnings.every((w) => w.severity === 'warning' && w.file.endsWith('avviso.yaml') && w.line === 15),
    JSON.stringify(warnings),
  );

  // Nobody on call at all: every escalating rule says so, the unconfined one included.
  const offCall = escalationsWithNobodyOnCall(rules, [person('mario', false), person('piero', false, ['Crema'])]);
  assert.deepEqual(
    offCall.map((w) => w.message.slice(0, w.message.indexOf(' to the'))),
    [
      'rule "lodi-noc" escalates in Lodi',
      'rule "south-noc" escalates in Crema',
      'rule "south-noc" escalates in Cremona',
      'rule "everywhere" escalates anywhere',
    ],
  );
  // Someone on call for every area, and a deployment that stores no contacts: nothing to say.
  assert.deepEqual(escalationsWithNobodyOnCall(rules, [person('noc-desk', true)]), []);
  assert.deepEqual(escalationsWithNobodyOnCall(rules, []), []);
});

async function run(t: TestContext, ...args: string[]): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  t.mock.method(console, 'log', (...a: unknown[]) => out.push(a.join(' ')));
  t.mock.method(console, 'error', (...a: unknown[]) => out.push(a.join(' ')));
  const code = await rulesCommand(args);
  t.mock.restoreAll();
  return { code, out: out.join('\n') };
}

test('avviso rules check --contacts FILE (GET /v1/contacts saved) warns at file:line; --strict fails on it', async (t) => {
  const dir = rulesDir(RULES);
  const file = path.join(dir, 'contacts.json');
  writeFileSync(file, JSON.stringify({ items: [{ id: 'mario', kind: 'person', onCall: true, areas: ['Lodi'] }] }));
  const r = await run(t, 'check', dir, '--contacts', file);
  assert.equal(r.code, 0, r.out);
  assert.match(
    r.out,
    /avviso\.yaml:15:\d+: warning: rule "south-noc" escalates in Crema .* no stored contact \(\/v1\/contacts\) covers Crema/,
  );
  assert.doesNotMatch(r.out, /"lodi-noc"/);
  assert.equal((await run(t, 'check', dir, '--contacts', file, '--strict')).code, 1);
  assert.doesNotMatch((await run(t, 'check', dir)).out, /stored contact/, 'without --contacts: not checked');

  writeFileSync(file, '{"items": [{"onCall": true}]}');
  const bad = await run(t, 'check', dir, '--contacts', file);
  assert.notEqual(bad.code, 0);
  assert.match(bad.out, /--contacts .*contacts\.json: expected a list of contacts, each with an id/);
});

test('POST /v1/rules/check says the same with the stored contacts', async () => {
  const holder = await RulesHolder.open({ path: rulesDir(RULES) });
  const api = Fastify();
  installErrorHandler(api);
  await api.register(rulesRoutes, { rules: holder, storedContacts: async () => [person('mario', true, ['Lodi'])] });
  try {
    const report = (
      await api.inject({ method: 'POST', url: '/v1/rules/check', payload: { path: 'avviso.yaml' } })
    ).json();
    assert.equal(report.ok, true);
    const mine = report.warnings.filter((w: { message: string }) => /stored contact/.test(w.message));
    assert.deepEqual(
      mine.map((w: { message: string; line: number }) => [w.line, /in (\w+) to/.exec(w.message)?.[1]]),
      [
        [15, 'Crema'],
        [15, 'Cremona'],
      ],
    );
  } finally {
    await api.close();
    holder.close();
  }
});
