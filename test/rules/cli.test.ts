/**
 * `avviso rules check|explain|simulate` as operations staff use them: exit codes, errors with
 * their place, and readable reports, all without a database.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { rulesCommand } from '../../cli/rules';
import { TEMPLATES_FILE, writeRules } from './helpers';

/** Runs the command with console output captured. */
async function run(t: TestContext, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  t.mock.method(console, 'log', (...a: unknown[]) => out.push(a.join(' ')));
  t.mock.method(console, 'error', (...a: unknown[]) => err.push(a.join(' ')));
  const code = await rulesCommand(args);
  t.mock.restoreAll();
  return { code, out: out.join('\n'), err: err.join('\n') };
}

test('check: exit code 1 and each error at file:line:column; 0 and the version when clean', async (t) => {
  const dir = writeRules({
    'avviso.yaml':
      'include: templates.yaml\nrules:\n  - name: r\n    notify: { channel: sms, template: nope }\n    quietHours: "7:00-7:00"\n',
    'templates.yaml': TEMPLATES_FILE,
  });
  const bad = await run(t, 'check', dir);
  assert.equal(bad.code, 1);
  assert.match(bad.out, /avviso\.yaml:4:13: error: unknown template set "nope"/);
  assert.match(bad.out, /avviso\.yaml:5:17: error: quietHours: the window 7:00-7:00 is impossible/);
  assert.match(bad.out, /2 errors; the rules were not accepted/);

  writeFileSync(path.join(dir, 'avviso.yaml'), 'include: templates.yaml\nrules:\n  - name: r\n    notify: sms\n');
  const good = await run(t, 'check', path.join(dir, 'avviso.yaml'), '--json');
  assert.equal(good.code, 0);
  const report = JSON.parse(good.out) as { ok: boolean; version: string; errors: unknown[] };
  assert.equal(report.ok, true);
  assert.match(report.version, /^[0-9a-f]{12}$/);

  // The shipped rules escalate to a placeholder number: fine for a development stack, refused for production.
  const saved = process.env.AVVISO_MODE;
  const savedVoice = process.env.PLIVO_VOICE_CALLER_ID;
  try {
    process.env.AVVISO_MODE = 'development';
    process.env.PLIVO_VOICE_CALLER_ID = '+390212345678';
    const shipped = await run(t, 'check');
    assert.equal(shipped.code, 0);
    assert.match(shipped.out, /rules\/default\/avviso\.yaml: ok, version [0-9a-f]{12} \(4 files\)/);
    // Without voice, the shipped call to the NOC is said to go by SMS: never dropped silently.
    delete process.env.PLIVO_VOICE_CALLER_ID;
    const noVoice = await run(t, 'check');
    assert.equal(noVoice.code, 0);
    assert.match(
      noVoice.out,
      /rules\/default\/avviso\.yaml:\d+:\d+: warning: rule "noc-oncall" escalates to noc-oncall by voice, but voice is not configured \(PLIVO_VOICE_CALLER_ID\): the call goes as an SMS/,
    );
    assert.match(noVoice.out, /\(4 files, 1 warning\)/);
    assert.equal((await run(t, 'check', '--strict')).code, 1);
    delete process.env.AVVISO_MODE;
    const production = await run(t, 'check');
    assert.equal(production.code, 1);
    assert.match(
      production.out,
      /rules\/default\/contacts\.yaml:3:3: error: contact "noc-oncall" has the shipped placeholder phone \+390577000000: put the real number/,
    );
    assert.match(production.out, /rules\/default\/avviso\.yaml: 1 error; the rules were not accepted/);
  } finally {
    if (saved === undefined) delete process.env.AVVISO_MODE;
    else process.env.AVVISO_MODE = saved;
    if (savedVoice === undefined) delete process.env.PLIVO_VOICE_CALLER_ID;
    else process.env.PLIVO_VOICE_CALLER_ID = savedVoice;
  }
});

test('check --strict fails on warnings', async (t) => {
  const dir = writeRules({
    'avviso.yaml':
      'include: templates.yaml\nrules:\n  - name: all\n    notify: sms\n  - name: never\n    notify: email\n',
    'templates.yaml': TEMPLATES_FILE,
  });
  assert.equal((await run(t, 'check', dir)).code, 0);
  const strict = await run(t, 'check', dir, '--strict');
  assert.equal(strict.code, 1);
  assert.match(strict.out, /avviso\.yaml:5:11: warning: rule "never" is never reached/);
});

test('explain: the rules in order, why each did or did not match, and the plan', async (t) => {
  const r = await run(
    t,
    'explain',
    '--sites',
    'S1',
    '--areas',
    'Siena',
    '--severity',
    'major',
    '--at',
    '2025-03-12T23:00',
    '--paid',
    '--language',
    'en',
  );
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /rule "paid-sms-outage" \(line \d+\): APPLIED -> sms/);
  assert.match(r.out, /rule "paid-sms-maintenance" \(line \d+\): not reached/);
  assert.match(
    r.out,
    /sms \(rule "paid-sms-outage", templates "sms", en\): first notice at 13 Mar 2025, 07:00 \(held by quiet hours\)/,
  );

  const unpaid = await run(t, 'explain', '--sites', 'S1', '--at', '2025-03-12T23:00', '--json');
  const e = JSON.parse(unpaid.out) as {
    decision: { notify: boolean };
    rules: { name: string; outcome: { status: string } }[];
  };
  assert.equal(e.decision.notify, false);
  assert.equal(e.rules.find((x) => x.name === 'paid-sms')!.outcome.status, 'no-match');
});

test('simulate: counts, times, texts, parts and cost for an incident on given sites', async (t) => {
  const r = await run(
    t,
    'simulate',
    '--sites',
    'S1,S2',
    '--areas',
    'Siena,Colle',
    '--severity',
    'critical',
    '--at',
    '2025-03-12T23:00',
    '--population',
    '2000',
  );
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^rules [0-9a-f]{12}: outage, critical, sites S1, S2/);
  assert.match(r.out, /2000 subscribers: \d+ notified, \d+ not/);
  assert.match(r.out, /sms +\d+ +paid-sms-outage +it +12 Mar, 23:10 +1\+1 GSM +\d+\.\d\d/);
  assert.match(
    r.out,
    /outage: "Avviso guasto: internet interrotto a (Siena|Colle) dalle 23:00\. Vi avviseremo al ripristino\."/,
  );
  assert.match(r.out, /escalation: NOC reperibile by voice at 12 Mar, 23:30/);
  assert.match(r.out, /total: \d+ messages, \d+ SMS parts, \d+\.\d\d EUR/);

  const file = path.join(writeRules({}), 'subscribers.json');
  writeFileSync(
    file,
    [
      { id: 'a', paidSms: true, language: 'it', segment: 'business', siteId: 'S1', area: 'Siena' },
      { id: 'b', paidSms: false, language: 'it', segment: 'residential', siteId: 'S1' },
    ]
      .map((s) => JSON.stringify(s))
      .join('\n'),
  );
  const json = await run(t, 'simulate', '--sites', 'S1', '--subscribers', file, '--json');
  const sim = JSON.parse(json.out) as { subscribers: number; notified: number };
  assert.deepEqual([sim.subscribers, sim.notified], [2, 1]);
});

test('usage mistakes exit with 2 and say what is wrong', async (t) => {
  const noSites = await run(t, 'simulate');
  assert.equal(noSites.code, 2);
  assert.match(noSites.err, /name the affected sites: --sites S1,S2/);
  assert.equal((await run(t, 'simulate', '--sites', 'S1', '--severity', 'huge')).code, 2);
  assert.equal((await run(t, 'frobnicate')).code, 2);
  const help = await run(t, '--help');
  assert.equal(help.code, 0);
  assert.match(help.out, /None of these commands needs a database/);
});
