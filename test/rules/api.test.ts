/**
 * The rule tools over HTTP, on a bare Fastify app with the route plugin alone (no database,
 * no Temporal): what is loaded, check, explain, simulate, reload.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { installErrorHandler } from '../../api/errors';
import { rulesRoutes } from '../../api/routes/rules';
import { RulesHolder } from '../../rules';
import { TEMPLATES_FILE, writeRules } from './helpers';

const MAIN =
  'include: templates.yaml\nrules:\n  - name: feed\n    notify: feed\n    continue: true\n  - name: paying\n    when: { subscriber.paidSms: true }\n    notify: sms\n    wait: 5m\n';
let dir: string;
let holder: RulesHolder;
let app: FastifyInstance;

before(async () => {
  dir = writeRules({ 'avviso.yaml': MAIN, 'templates.yaml': TEMPLATES_FILE });
  holder = await RulesHolder.open({ path: dir });
  app = Fastify();
  installErrorHandler(app);
  await app.register(rulesRoutes, { rules: holder });
});
after(async () => {
  await app.close();
  holder.close();
});

const incident = { kind: 'outage', severity: 'major', siteIds: ['S1'], areas: ['Siena'] };
const sub = { id: 'a', paidSms: true, language: 'it', segment: 'residential', siteId: 'S1', area: 'Siena' };

test('GET /v1/rules: version, files and when they were loaded', async () => {
  const res = await app.inject({ method: 'GET', url: '/v1/rules' });
  assert.equal(res.statusCode, 200);
  const body = res.json();
  assert.equal(body.version, holder.current().version);
  assert.deepEqual(body.files, ['avviso.yaml', 'templates.yaml']);
  assert.deepEqual(body.rules, ['feed', 'paying']);
  assert.deepEqual(body.subscriberFactsRead, ['subscriber.paidSms']);
  assert.ok(!Number.isNaN(Date.parse(body.loadedAt)));
});

test('POST /v1/rules/check: YAML text or a path; errors with line and column', async () => {
  const text = await app.inject({
    method: 'POST',
    url: '/v1/rules/check',
    payload: {
      yaml: 'include: templates.yaml\nrules:\n  - name: r\n    when: { incident.kind: outgae }\n    notify: sms\n',
    },
  });
  assert.equal(text.statusCode, 200);
  const report = text.json();
  assert.equal(report.ok, false);
  assert.deepEqual(
    report.errors.map((e: { line: number; column: number }) => [e.line, e.column]),
    [[4, 28]],
  );
  assert.match(report.errors[0].message, /"outgae" is not one of outage, maintenance; did you mean "outage"\?/);

  const file = await app.inject({ method: 'POST', url: '/v1/rules/check', payload: { path: 'avviso.yaml' } });
  assert.deepEqual([file.json().ok, file.json().version], [true, holder.current().version]);

  const outside = await app.inject({ method: 'POST', url: '/v1/rules/check', payload: { path: '../../etc/passwd' } });
  assert.equal(outside.statusCode, 400);
  assert.equal(outside.json().error.code, 'path_outside_rules');
  const neither = await app.inject({ method: 'POST', url: '/v1/rules/check', payload: {} });
  assert.equal(neither.statusCode, 400);
});

test('POST /v1/rules/explain: rule by rule, with the text report', async () => {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/rules/explain',
    payload: { incident, subscriber: { ...sub, paidSms: false }, at: '2025-03-12T11:00:00Z' },
  });
  assert.equal(res.statusCode, 200);
  const { explanation, text } = res.json();
  assert.deepEqual(
    explanation.rules.map((r: { name: string; outcome: { status: string } }) => [r.name, r.outcome.status]),
    [
      ['feed', 'applied'],
      ['paying', 'no-match'],
    ],
  );
  assert.match(text, /✗ subscriber.paidSms is true {2}\(is false; line 7\)/);

  const bad = await app.inject({
    method: 'POST',
    url: '/v1/rules/explain',
    payload: { incident: { ...incident, severity: 'huge' }, subscriber: sub },
  });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.json().error.code, 'invalid_request');
  const unknown = await app.inject({
    method: 'POST',
    url: '/v1/rules/explain',
    payload: { incident, subscriber: sub, version: 'ffffffffffff' },
  });
  assert.equal(unknown.statusCode, 404);
});

test('POST /v1/rules/simulate: given subscribers or a made-up population', async () => {
  const given = await app.inject({
    method: 'POST',
    url: '/v1/rules/simulate',
    payload: { incident, subscribers: [sub, { ...sub, id: 'b', paidSms: false }], at: '2025-03-12T11:00:00Z' },
  });
  assert.equal(given.statusCode, 200);
  const sim = given.json();
  assert.deepEqual(
    [sim.subscribers, sim.notified, sim.rows.length, sim.rows[0].channel, sim.rows[0].subscribers],
    [2, 1, 1, 'sms', 1],
  );
  assert.equal(sim.rows[0].sendAt, '2025-03-12T11:05:00.000Z');
  assert.equal(sim.rows[0].first.parts, 1);
  assert.equal(sim.incident.feed.rule, 'feed');

  const made = await app.inject({
    method: 'POST',
    url: '/v1/rules/simulate',
    payload: { incident, population: { count: 3000, seed: 1 } },
  });
  assert.equal(made.statusCode, 200);
  assert.equal(made.json().subscribers, 3000);

  const none = await app.inject({ method: 'POST', url: '/v1/rules/simulate', payload: { incident } });
  assert.equal(none.statusCode, 400);
  assert.equal(none.json().error.code, 'no_audience');
});

test('POST /v1/rules/reload: 422 with the errors for a broken file, the old rules stay; then the new version', async () => {
  const first = holder.current().version;
  writeFileSync(path.join(dir, 'avviso.yaml'), MAIN.replace('wait: 5m', 'wait: 5 minutes'));
  const broken = await app.inject({ method: 'POST', url: '/v1/rules/reload' });
  assert.equal(broken.statusCode, 422);
  const err = broken.json().error;
  assert.equal(err.code, 'invalid_rules');
  assert.deepEqual(
    err.details.errors.map((e: { line: number; column: number }) => [e.line, e.column]),
    [[9, 11]],
  );
  assert.equal(holder.current().version, first);

  writeFileSync(path.join(dir, 'avviso.yaml'), MAIN.replace('wait: 5m', 'wait: 7m'));
  const ok = await app.inject({ method: 'POST', url: '/v1/rules/reload' });
  assert.equal(ok.statusCode, 200);
  assert.deepEqual([ok.json().status, ok.json().previousVersion], ['updated', first]);
  assert.equal((await app.inject({ method: 'GET', url: '/v1/rules' })).json().lastReload.status, 'updated');
});

test('POST /v1/rules/check warns, as the CLI does, of an escalation this deployment cannot send as written', async () => {
  const shipped = await RulesHolder.open({ path: path.join(__dirname, '..', '..', 'rules', 'default') });
  const api = Fastify();
  installErrorHandler(api);
  await api.register(rulesRoutes, { rules: shipped });
  const saved = process.env.PLIVO_VOICE_CALLER_ID;
  try {
    delete process.env.PLIVO_VOICE_CALLER_ID;
    const report = (
      await api.inject({ method: 'POST', url: '/v1/rules/check', payload: { path: 'avviso.yaml' } })
    ).json();
    assert.equal(report.ok, true);
    assert.ok(
      report.warnings.some(
        (w: { message: string; line: number }) =>
          /noc-oncall by voice, but voice is not configured/.test(w.message) && w.line > 0,
      ),
      JSON.stringify(report.warnings),
    );
    process.env.PLIVO_VOICE_CALLER_ID = '+390577000001';
    const withVoice = (
      await api.inject({ method: 'POST', url: '/v1/rules/check', payload: { path: 'avviso.yaml' } })
    ).json();
    assert.ok(!withVoice.warnings.some((w: { message: string }) => /voice is not configured/.test(w.message)));
  } finally {
    if (saved === undefined) delete process.env.PLIVO_VOICE_CALLER_ID;
    else process.env.PLIVO_VOICE_CALLER_ID = saved;
    await api.close();
    shipped.close();
  }
});
