/**
 * Hot reload: the running system picks up a changed rule file once it is valid, keeps the
 * rules it has when the new file is broken (and logs why), and keeps older versions for the
 * incidents that started with them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadRuleSetFromFiles, RuleErrors, RulesHolder, type RulesLogger } from '../../rules';
import { subscriber, TEMPLATES_FILE, writeRules } from './helpers';

const MAIN = (wait: string) =>
  `include: templates.yaml\nrules:\n  - name: paying\n    when: { subscriber.paidSms: true }\n    notify: sms\n    wait: ${wait}\n`;
const BROKEN =
  'include: templates.yaml\nrules:\n  - name: paying\n    when: { subscriber.paidSms: true }\n    notify: sms\n    wait: soon\n';

function recordingLogger() {
  const lines: { level: string; obj: object; msg: string }[] = [];
  const logger: RulesLogger = {
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  };
  return { logger, lines };
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const incident = { kind: 'outage' as const, severity: 'major' as const, siteIds: ['S1'] };
const graceOf = async (rules: ReturnType<RulesHolder['current']>) =>
  (await rules.decideOne(incident, subscriber())).notices[0]!.graceSeconds;

test('a watched rule file: a broken edit is refused and logged, the next good one is taken', async () => {
  const dir = writeRules({ 'avviso.yaml': MAIN('5m'), 'templates.yaml': TEMPLATES_FILE });
  const { logger, lines } = recordingLogger();
  const holder = await RulesHolder.open({ path: dir, watch: true, debounceMs: 50, logger });
  try {
    const first = holder.current();
    assert.equal(await graceOf(first), 300);
    assert.match(lines[0]!.msg, new RegExp(`rules loaded: version ${first.version}`));

    writeFileSync(path.join(dir, 'avviso.yaml'), BROKEN);
    const refused = await until('the broken file to be refused', () => lines.find((l) => l.level === 'error'));
    assert.match(
      refused.msg,
      new RegExp(`rules not reloaded: the changed files have 1 error; still using version ${first.version}`),
    );
    assert.deepEqual((refused.obj as { errors: string[] }).errors, [
      'avviso.yaml:6:11: error: "soon" is not a duration such as 90s, 30m, 2h, 1h30m or 1d',
    ]);
    assert.equal(holder.current(), first, 'the rules in force are unchanged');
    assert.equal(holder.lastReload?.outcome.status, 'invalid');

    writeFileSync(path.join(dir, 'avviso.yaml'), MAIN('15m'));
    const second = await until('the fixed file to be taken', () =>
      holder.current() !== first ? holder.current() : undefined,
    );
    assert.notEqual(second.version, first.version);
    assert.equal(await graceOf(second), 900);
    assert.ok(lines.some((l) => l.level === 'info' && l.msg === `rules reloaded: version ${second.version}`));
    assert.equal(holder.get(first.version), first, 'an incident pinned to the first version still finds it');

    // An included file counts as much as the main one.
    writeFileSync(
      path.join(dir, 'templates.yaml'),
      TEMPLATES_FILE.replace('outage a {{ area }}', 'Guasto a {{ area }}'),
    );
    const third = await until('the changed template to be taken', () =>
      holder.current() !== second ? holder.current() : undefined,
    );
    assert.equal(third.render('outage', 'it', { area: 'Siena' }).text, 'Guasto a Siena dalle');
  } finally {
    holder.close();
  }
});

test('reload by hand: unchanged files keep the version; a broken file keeps the rules and says why', async () => {
  const dir = writeRules({ 'avviso.yaml': MAIN('5m'), 'templates.yaml': TEMPLATES_FILE });
  const holder = await RulesHolder.open({ path: path.join(dir, 'avviso.yaml') });
  const first = holder.current();
  assert.deepEqual(await holder.reload(), { status: 'unchanged', version: first.version });

  writeFileSync(path.join(dir, 'avviso.yaml'), BROKEN);
  const outcome = await holder.reload();
  assert.equal(outcome.status, 'invalid');
  assert.equal(outcome.version, first.version);
  assert.deepEqual(
    outcome.status === 'invalid' && outcome.errors.map((e) => [path.basename(e.file), e.line, e.column]),
    [['avviso.yaml', 6, 11]],
  );
  assert.equal(holder.current(), first);

  writeFileSync(path.join(dir, 'avviso.yaml'), MAIN('1m'));
  const updated = await holder.reload();
  assert.deepEqual(
    updated.status === 'updated' && [updated.previousVersion, updated.version === holder.current().version],
    [first.version, true],
  );
  assert.deepEqual(holder.knownVersions(), [first.version, holder.current().version]);
});

test('a process does not start on broken rules', async () => {
  const dir = writeRules({ 'avviso.yaml': BROKEN, 'templates.yaml': TEMPLATES_FILE });
  await assert.rejects(
    RulesHolder.open({ path: dir }),
    (err: unknown) => err instanceof RuleErrors && err.errors[0]!.line === 6,
  );
});

test('a version can be rebuilt from its stored files, without the disk, for an incident that outlived its process', async () => {
  const dir = writeRules({ 'avviso.yaml': MAIN('5m'), 'templates.yaml': TEMPLATES_FILE });
  const holder = await RulesHolder.open({ path: dir });
  const original = holder.current();
  const stored = JSON.parse(JSON.stringify(original.files)) as typeof original.files; // as it would come back from a database
  writeFileSync(path.join(dir, 'avviso.yaml'), MAIN('45m'));
  const rebuilt = await loadRuleSetFromFiles(stored);
  assert.equal(rebuilt.version, original.version);
  assert.equal(await graceOf(rebuilt), 300);
});
