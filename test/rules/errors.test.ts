/**
 * Every kind of mistake in a rule file is caught at load, with the file, line and column
 * where it was made, and a message that says what to write instead.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { checkRules, loadRuleSet, RuleErrors, type RuleProblem } from '../../rules';
import { TEMPLATES_FILE, templateSet, writeRules } from './helpers';

/** The problems of a main file written exactly as given (line 1 is its first line). */
async function problems(
  main: string,
  extra: Record<string, string> = { 'templates.yaml': TEMPLATES_FILE },
): Promise<{ errors: RuleProblem[]; warnings: RuleProblem[] }> {
  const dir = writeRules({ 'avviso.yaml': main, ...extra });
  const report = await checkRules(dir);
  return { errors: report.errors, warnings: report.warnings };
}

function where(p: RuleProblem): string {
  return `${path.basename(p.file)}:${p.line}:${p.column}`;
}

async function onlyError(main: string, extra?: Record<string, string>): Promise<RuleProblem> {
  const { errors } = await problems(main, extra);
  assert.equal(
    errors.length,
    1,
    `expected one error, got: ${errors.map((e) => `${where(e)} ${e.message}`).join(' | ')}`,
  );
  return errors[0]!;
}

const HEAD = 'include: templates.yaml\n';

/** `file:line:column` of the `nth` occurrence of `needle` in `text`, as the rules should report it. */
function at(text: string, needle: string, nth = 1, file = 'avviso.yaml'): string {
  let index = -1;
  for (let k = 0; k < nth; k++) index = text.indexOf(needle, index + 1);
  assert.ok(index >= 0, `"${needle}" is not in the text`);
  const before = text.slice(0, index).split('\n');
  return `${file}:${before.length}:${before[before.length - 1]!.length + 1}`;
}

describe('YAML and shape', () => {
  test('a YAML syntax error names its line', async () => {
    const e = await onlyError(`${HEAD}rules:\n  - name: r\n    notify: [sms\n    wait: 5m\n`);
    assert.equal(where(e).split(':').slice(0, 2).join(':'), 'avviso.yaml:5');
    assert.match(e.message, /^YAML: /);
  });

  test('an unknown setting points at its key and suggests the right one', async () => {
    const e = await onlyError(`${HEAD}rules:\n  - name: r\n    notify: sms\n    wiat: 5m\n`);
    assert.equal(where(e), 'avviso.yaml:5:5');
    assert.match(e.message, /unknown setting "wiat"; did you mean "wait"\?/);
  });

  test('a value of the wrong kind, a bad duration, an unknown channel', async () => {
    const { errors } = await problems(
      `${HEAD}rules:\n  - name: r\n    notify: smss\n    wait: 5 minutes\n    restoration: yes\n`,
    );
    assert.deepEqual(
      errors.map((e) => [where(e), e.message]),
      [
        ['avviso.yaml:4:13', '"smss" is not one of sms, voice, email, webhook, feed; did you mean "sms"?'],
        ['avviso.yaml:5:11', '"5 minutes" is not a duration such as 90s, 30m, 2h, 1h30m or 1d'],
        ['avviso.yaml:6:18', 'expected true or false, found "yes"'],
      ],
    );
  });

  test('a rule without a name', async () => {
    const e = await onlyError(`${HEAD}rules:\n  - notify: sms\n`);
    assert.equal(where(e), 'avviso.yaml:3:5');
    assert.match(e.message, /every rule needs a name/);
  });
});

describe('conditions', () => {
  test('an unknown fact, with a suggestion', async () => {
    const e = await onlyError(
      `${HEAD}rules:\n  - name: r\n    when:\n      incident.severty: major\n    notify: sms\n`,
    );
    assert.equal(where(e), 'avviso.yaml:5:7');
    assert.match(e.message, /unknown fact "incident.severty"; did you mean "incident.severity"\?/);
  });

  test('a value that the fact cannot have', async () => {
    const e = await onlyError(
      `${HEAD}rules:\n  - name: r\n    when:\n      incident.severity: [major, critcal]\n    notify: sms\n`,
    );
    assert.equal(where(e), 'avviso.yaml:5:34');
    assert.match(e.message, /"critcal" is not one of minor, major, critical; did you mean "critical"\?/);
  });

  test('an unknown operator, and an operator that does not fit the fact', async () => {
    const yaml = `${HEAD}rules:\n  - name: r\n    when:\n      incident.subscribers: { atleast: 30 }\n      subscriber.area: { atLeast: Siena }\n      any:\n        - incident.subscribers: { atLeast: many }\n    notify: sms\n`;
    const { errors } = await problems(yaml);
    assert.deepEqual(errors.map(where), [at(yaml, 'atleast'), at(yaml, 'atLeast: Siena'), at(yaml, 'many }')]);
    assert.match(errors[0]!.message, /unknown operator "atleast"; did you mean "atLeast"\?/);
    assert.match(errors[1]!.message, /"atLeast" compares numbers, durations and severities; subscriber.area is a text/);
    assert.match(errors[2]!.message, /many/);
  });

  test('an impossible time window, in a condition and in quiet hours', async () => {
    const { errors } = await problems(
      `${HEAD}defaults:\n  quietHours: "21:00-21:00"\nrules:\n  - name: r\n    when:\n      time.localTime: { within: "25:00-07:00" }\n    notify: sms\n`,
    );
    assert.deepEqual(errors.map(where), ['avviso.yaml:3:15', 'avviso.yaml:7:33']);
    assert.match(errors[0]!.message, /the window 21:00-21:00 is impossible/);
    assert.match(errors[1]!.message, /"25:00" is not a time of day: hours go from 00 to 23/);
  });
});

describe('references', () => {
  test('an unknown template set', async () => {
    const e = await onlyError(`${HEAD}rules:\n  - name: r\n    notify: { channel: sms, template: standrad }\n`);
    assert.equal(where(e), 'avviso.yaml:4:13');
    assert.match(e.message, /unknown template set "standrad"; did you mean "standard"\?/);
  });

  test('an unknown contact, and a contact that cannot be reached on the channel', async () => {
    const yaml = `${HEAD}contacts:\n  noc: { email: noc@example.net }\nrules:\n  - name: r\n    escalate:\n      - { after: 30m, contact: nco, channel: email }\n      - { after: 30m, contact: noc, channel: voice }\n`;
    const { errors } = await problems(yaml);
    assert.deepEqual(errors.map(where), [at(yaml, 'nco'), at(yaml, 'voice')]);
    assert.match(errors[0]!.message, /unknown contact "nco"; did you mean "noc"\?/);
    assert.match(errors[1]!.message, /contact "noc" has no phone, which voice needs/);
  });

  test('a template set without a message a rule may send', async () => {
    const yaml = `templates:\n  short:\n    outage: { it: "Guasto", en: "Outage" }\nrules:\n  - name: r\n    when: { incident.kind: outage }\n    notify: { channel: sms, template: short }\n    updates: off\n`;
    const { errors } = await problems(yaml, {});
    assert.deepEqual(
      errors.map((e) => [where(e), e.message]),
      [
        [
          at(yaml, 'short'),
          'template set "short" has no "restored" message, which rule "r" may send; add templates.short.restored',
        ],
        [
          at(yaml, 'short'),
          'template set "short" has no "outage-restored" message, which rule "r" may send; add templates.short.outage-restored',
        ],
      ],
    );
  });

  test('feed and escalation only in rules that read no subscriber fact', async () => {
    const yaml = `${HEAD}contacts:\n  noc: { phone: "+390577000001" }\nrules:\n  - name: r\n    when: { subscriber.paidSms: true }\n    notify: [sms, feed]\n    escalate: { after: 30m, contact: noc, channel: sms }\n`;
    const { errors } = await problems(yaml);
    assert.deepEqual(errors.map(where), [at(yaml, 'feed'), at(yaml, 'escalate')]);
    assert.match(
      errors[0]!.message,
      /the public status feed is one post per incident.*reads subscriber.paidSms \(line 6\)/,
    );
    assert.match(errors[1]!.message, /escalation is per incident/);
  });

  test('the same name twice: rules, and template sets across files', async () => {
    const { errors } = await problems(
      `include: [templates.yaml, more.yaml]\nrules:\n  - name: r\n    notify: sms\n  - name: r\n    notify: email\n`,
      {
        'templates.yaml': TEMPLATES_FILE,
        'more.yaml': `templates:\n${templateSet()}\n`,
      },
    );
    assert.deepEqual(errors.map(where), ['avviso.yaml:5:11', 'more.yaml:2:3']);
    assert.match(errors[0]!.message, /already a rule named "r" \(avviso.yaml:3\)/);
    assert.match(errors[1]!.message, /template set "standard" is already defined at templates.yaml:2/);
  });
});

describe('templates', () => {
  /** A template set whose Italian outage text is a block whose second line is `line`. */
  const withTemplate = (line: string) =>
    `templates:\n  custom:\n    extends: standard\n    outage:\n      en: "Outage in {{ area }}"\n      it: |\n        Guasto a {{ area }}\n${line}\n${HEAD}`;

  test('a variable that does not exist, at its line inside a block text', async () => {
    const yaml = withTemplate('        dalle {{ strat | time }}');
    const e = await onlyError(yaml);
    assert.equal(where(e), at(yaml, 'strat'));
    assert.match(e.message, /unknown variable "strat"; the variables are area, areas, /);
  });

  test('a mistake inside a folded text (>-), whose line breaks are spaces in the value', async () => {
    const yaml = `${HEAD}templates:\n  custom:\n    extends: standard\n    outage:\n      en: "Outage"\n      it: >-\n        Guasto a {{ area }} dalle {{ start | time }}.\n        Fine prevista {{ eta | ora }}.\n`;
    const e = await onlyError(yaml);
    assert.equal(where(e), at(yaml, '{{ eta'));
  });

  test('an unknown filter and a broken tag', async () => {
    const yaml = withTemplate('        dalle {{ start | hour }}');
    const filter = await onlyError(yaml);
    assert.equal(where(filter), at(yaml, '{{ start'));
    assert.match(filter.message, /unknown filter "hour" \(Avviso's filters: time, date, datetime, weekday, duration;/);
    const broken = withTemplate('        {% if eta %}fine {{ eta | time }}');
    const tag = await onlyError(broken);
    assert.equal(where(tag), at(broken, '{% if'));
    assert.match(tag.message, /not closed/);
  });

  test('a language missing, or one the rule set does not speak', async () => {
    const { errors } = await problems(
      `templates:\n  custom:\n    extends: standard\n    outage:\n      it: "Guasto"\n      de: "Störung"\n${HEAD}`,
    );
    assert.deepEqual(errors.map(where), ['avviso.yaml:4:5', 'avviso.yaml:6:7']);
    assert.match(errors[0]!.message, /templates.custom.outage has no text in en/);
    assert.match(errors[1]!.message, /"de" is not one of the rule set's languages \(it, en/);
  });
});

describe('files and settings', () => {
  test('an include that does not exist, and includes in a circle', async () => {
    const missing = await onlyError(`include: [templates.yaml, contcts.yaml]\n`);
    assert.equal(where(missing), 'avviso.yaml:1:27');
    assert.match(missing.message, /cannot include "contcts.yaml": no such file/);
    const circle = await onlyError(`include: [templates.yaml, a.yaml]\n`, {
      'templates.yaml': TEMPLATES_FILE,
      'a.yaml': 'include: b.yaml\n',
      'b.yaml': 'include: a.yaml\n',
    });
    assert.equal(where(circle), 'b.yaml:1:10');
    assert.match(circle.message, /include cycle: a.yaml -> b.yaml -> a.yaml/);
  });

  test('defaults only in the main file; a bad time zone, language and holiday', async () => {
    const { errors } = await problems(
      `include: [templates.yaml, extra.yaml]\ndefaults:\n  timeZone: Europe/Roma\n  language: fr\nholidays: ["02-30"]\n`,
      {
        'templates.yaml': TEMPLATES_FILE,
        'extra.yaml': 'defaults:\n  wait: 5m\n',
      },
    );
    assert.deepEqual(errors.map(where), ['avviso.yaml:3:13', 'avviso.yaml:4:13', 'avviso.yaml:5:12', 'extra.yaml:1:1']);
    assert.match(errors[0]!.message, /unknown time zone "Europe\/Roma"/);
    assert.match(errors[1]!.message, /default language "fr" is not among the languages/);
    assert.match(errors[2]!.message, /"02-30" is not a date that exists/);
    assert.match(errors[3]!.message, /defaults belong in the main rule file/);
  });

  test('loadRuleSet throws RuleErrors with every problem, formatted file:line:column', async () => {
    const dir = writeRules({
      'avviso.yaml': `${HEAD}rules:\n  - name: r\n    wait: soon\n    notify: sms\n  - name: s\n    notify: pigeon\n`,
      'templates.yaml': TEMPLATES_FILE,
    });
    await assert.rejects(loadRuleSet(dir), (err: unknown) => {
      assert.ok(err instanceof RuleErrors);
      assert.equal(err.errors.length, 2);
      assert.match(err.message, /avviso\.yaml:4:11: error: "soon" is not a duration/);
      assert.match(err.message, /avviso\.yaml:7:13: error: "pigeon" is not one of/);
      return true;
    });
  });
});

describe('warnings', () => {
  test('a rule that can never be reached', async () => {
    const { warnings } = await problems(
      `${HEAD}rules:\n  - name: everyone\n    notify: sms\n  - name: paying\n    when: { subscriber.paidSms: true }\n    notify: voice\n`,
    );
    assert.deepEqual(warnings.map(where), ['avviso.yaml:5:11']);
    assert.match(
      warnings[0]!.message,
      /"paying" is never reached: "everyone" \(line 3\) applies to everything and stops/,
    );
  });
});

describe('defaults.delivery: receipt timeout, attempts, fallback', () => {
  const RULES = 'rules:\n  - name: r\n    notify: sms\n';

  test('an unknown channel in fallback, with a suggestion, at its place in the list', async () => {
    const text = `${HEAD}defaults:\n  delivery:\n    fallback: [voice, emial, webhook]\n${RULES}`;
    const { errors } = await problems(text);
    assert.deepEqual(
      errors.map((e) => [where(e), e.message]),
      [
        [
          at(text, 'emial'),
          '"emial" is not a channel a message can fall back to (sms, voice, email); did you mean "email"?',
        ],
        [at(text, 'webhook'), '"webhook" is not a channel a message can fall back to (sms, voice, email)'],
      ],
    );
  });

  test('a timeout that is not a duration, attempts that are not a count, a misspelt setting', async () => {
    const text = `${HEAD}defaults:\n  delivery:\n    receiptTimeout: ten minutes\n    attempts: 2.5\n    fallbak: [voice]\n${RULES}`;
    const { errors } = await problems(text);
    assert.deepEqual(
      errors.map((e) => [where(e), e.message]),
      [
        [at(text, 'ten minutes'), '"ten minutes" is not a duration such as 90s, 30m, 2h, 1h30m or 1d'],
        [at(text, '2.5'), '2.5 is not a number of sends per channel: write a whole number from 1 to 20, e.g. 3'],
        [
          at(text, 'fallbak'),
          'unknown setting "fallbak"; did you mean "fallback"? (here: receiptTimeout, attempts, fallback)',
        ],
      ],
    );
    const zero = `${HEAD}defaults:\n  delivery: { attempts: 0 }\n${RULES}`;
    assert.deepEqual(
      (await problems(zero)).errors.map((e) => [where(e), e.message]),
      [[at(zero, '0 }'), '0 is not a number of sends per channel: write a whole number from 1 to 20, e.g. 3']],
    );
  });

  test('a timeout of 0 and a channel listed twice are errors; a short timeout is a warning', async () => {
    const text = `${HEAD}defaults:\n  delivery:\n    receiptTimeout: 0\n    fallback: [voice, email, voice]\n${RULES}`;
    const { errors } = await problems(text);
    assert.deepEqual(errors.map(where), [at(text, '0\n'), at(text, 'voice', 2)]);
    assert.match(errors[0]!.message, /receiptTimeout of 0 would send every message again at once/);
    assert.match(errors[1]!.message, /voice is already in the fallback list \(position 1\)/);

    const short = `${HEAD}defaults:\n  delivery: { receiptTimeout: 20s }\n${RULES}`;
    const report = await problems(short);
    assert.deepEqual(report.errors, []);
    assert.deepEqual(report.warnings.map(where), [at(short, '20s')]);
    assert.match(report.warnings[0]!.message, /receipts often take longer than 20 s/);
  });

  test('delivery belongs in defaults, not in a rule', async () => {
    const text = `${HEAD}rules:\n  - name: r\n    notify: sms\n    delivery: { attempts: 2 }\n`;
    const e = await onlyError(text);
    assert.equal(where(e), at(text, 'delivery'));
    assert.match(e.message, /unknown setting "delivery"/);
  });

  test('what the rules say reaches the rule set; what they do not say is null (the configured policy applies)', async () => {
    const given = await loadRuleSet(
      writeRules({
        'avviso.yaml': `${HEAD}defaults:\n  delivery: { receiptTimeout: 10m, attempts: 3, fallback: [voice, email] }\n${RULES}`,
        'templates.yaml': TEMPLATES_FILE,
      }),
    );
    assert.deepEqual(given.settings.delivery, {
      receiptTimeoutSeconds: 600,
      attempts: 3,
      fallback: ['voice', 'email'],
    });
    const partly = await loadRuleSet(
      writeRules({
        'avviso.yaml': `${HEAD}defaults:\n  delivery: { fallback: none }\n${RULES}`,
        'templates.yaml': TEMPLATES_FILE,
      }),
    );
    assert.deepEqual(
      partly.settings.delivery,
      { receiptTimeoutSeconds: null, attempts: null, fallback: [] },
      'none: no fallback at all',
    );
    const silent = await loadRuleSet(
      writeRules({ 'avviso.yaml': `${HEAD}${RULES}`, 'templates.yaml': TEMPLATES_FILE }),
    );
    assert.deepEqual(silent.settings.delivery, { receiptTimeoutSeconds: null, attempts: null, fallback: null });
  });
});
