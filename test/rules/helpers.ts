/**
 * Rule files for tests, written to a temporary folder so that positions, includes and reloads
 * are those of real files.
 */
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DateTime } from 'luxon';
import { checkRules, loadRuleSet, RuleErrors, type RuleProblem, type RuleSet, type SubscriberFacts } from '../../rules';

const KINDS = [
  'outage',
  'update',
  'restored',
  'outage-restored',
  'maintenance',
  'reminder',
  'started',
  'completed',
  'rescheduled',
  'cancelled',
];

/** A complete template set in Italian and English, short enough for one SMS part. */
export function templateSet(name = 'standard', indent = '  '): string {
  const lines = [`${indent}${name}:`];
  for (const kind of KINDS) {
    lines.push(
      `${indent}  ${kind}:`,
      `${indent}    it: "${kind} a {{ area }} dalle {{ start | time }}"`,
      `${indent}    en: "${kind} in {{ area }} since {{ start | time }}"`,
    );
  }
  return lines.join('\n');
}

export const TEMPLATES_FILE = `templates:\n${templateSet()}\n`;

/** Writes `files` (name to text) into a new folder; returns the folder. Under the harness's own
 * temporary folder when there is one, which it removes at the end of the run. */
export function writeRules(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(process.env.AVVISO_TEST_TMP ?? tmpdir(), 'avviso-rules-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

/** A main file (`avviso.yaml`) with the standard templates included, plus `extra` files. */
export function rulesDir(main: string, extra: Record<string, string> = {}): string {
  return writeRules({ 'avviso.yaml': `include: templates.yaml\n${main}`, 'templates.yaml': TEMPLATES_FILE, ...extra });
}

export async function load(main: string, extra: Record<string, string> = {}): Promise<RuleSet> {
  return loadRuleSet(rulesDir(main, extra));
}

/** The errors of an invalid rule set (fails the test when it loads). */
export async function errorsOf(main: string, extra: Record<string, string> = {}): Promise<RuleProblem[]> {
  try {
    await loadRuleSet(rulesDir(main, extra));
  } catch (err) {
    if (err instanceof RuleErrors) return err.errors;
    throw err;
  }
  throw new Error('the rules loaded, but errors were expected');
}

export async function warningsOf(main: string, extra: Record<string, string> = {}): Promise<RuleProblem[]> {
  const report = await checkRules(rulesDir(main, extra));
  if (!report.ok)
    throw new Error(`unexpected errors: ${report.errors.map((e) => `${e.line}:${e.column} ${e.message}`).join('; ')}`);
  return report.warnings;
}

export function subscriber(over: Partial<SubscriberFacts> = {}): SubscriberFacts {
  return { id: 'sub-1', paidSms: true, language: 'it', segment: 'residential', siteId: 'S1', area: 'Siena', ...over };
}

/** A local time in Rome as an instant: `romeTime('2025-03-12T23:00')`. */
export function romeTime(local: string): Date {
  return DateTime.fromISO(local, { zone: 'Europe/Rome' }).toJSDate();
}
