/**
 * The README's configuration tables are the code's: every variable config/index.ts reads is in the
 * first table and nothing else is; every other variable the code reads (dev stack, tools, tests)
 * is in the second.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { CONFIG_VARIABLES } from '../../config';

const ROOT = path.join(__dirname, '..', '..');
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The variables named in the first column of each table of the Configuration section. */
function tables(): string[][] {
  const section = README.slice(README.indexOf('\n## Configuration'), README.indexOf('\n## Operations'));
  const found: string[][] = [];
  let current: string[] | undefined;
  for (const line of section.split('\n')) {
    if (!line.startsWith('|')) {
      current = undefined;
      continue;
    }
    if (!current) found.push((current = []));
    const first = line.split('|')[1] ?? '';
    current.push(...[...first.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!));
  }
  return found;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (['node_modules', '.tools', '.git', '.data', 'fixtures', 'histories', 'results'].includes(name)) return [];
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return /\.(ts|js)$/.test(name) ? [p] : [];
  });
}

test("the processes' table lists exactly the variables config/index.ts reads", () => {
  const [processes] = tables();
  assert.ok(processes, 'the Configuration section has a table');
  assert.deepEqual([...new Set(processes)].sort(), [...CONFIG_VARIABLES].sort());
});

test('every other variable the code reads is in the second table', () => {
  const [, others] = tables();
  assert.ok(others, 'the Configuration section has a second table');
  const read = new Set<string>();
  for (const file of sourceFiles(ROOT)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/process\.env\.([A-Z][A-Z0-9_]+)/g)) read.add(m[1]!);
    for (const m of text.matchAll(/const \{([^}]+)\} = process\.env/g))
      for (const name of m[1]!.split(',')) read.add(name.trim());
  }
  // The harness's and `avviso dev`'s own wiring, and the system's variables, are not settings anyone sets.
  const internal =
    /^(AVVISO_TEST_(TEMPORAL_ADDRESS|MONGODB_URI|WORKFLOW_BUNDLE|TMP)$|AVVISO_PARENT_PID$|PATH$|HOME$|CI$)/;
  const missing = [...read]
    .filter((name) => !internal.test(name) && !CONFIG_VARIABLES.includes(name) && !others.includes(name))
    .sort();
  assert.deepEqual(missing, [], 'variables read by the code but not in the README');
});
