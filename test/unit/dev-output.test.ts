/**
 * `npm run dev` stays readable: FerretDB's warnings (a JSON dump of the wire message for every
 * endSessions, a line per closed connection) go to its log file only; its errors still show.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnManaged, waitUntilHealthy } from '../../dev/process';
import { ferretDbLineMatters } from '../../dev/services';

// As FerretDB 1.24 prints them (captured from avviso-ferretdb --log-level warn).
const WARNINGS = [
  'time=2026-12-04T06:26:08.637Z level=WARN msg="Response header: length:   121, id:    3, response_to:    4, opcode: OP_MSG" name="// 127.0.0.1:34798 -> 127.0.0.1:37999 "',
  'time=2026-12-04T06:26:08.637Z level=WARN msg="Response message:\\n{\\n  \\"FlagBits\\": \\"[]\\",\\n  \\"Sections\\": [{\\"errmsg\\": \\"no such command: \'endSessions\'\\"}]}\\n" name="// 127.0.0.1:34798 -> 127.0.0.1:37999 "',
  'time=2026-12-04T06:26:08.637Z level=WARN msg="Connection stopped" name=listener conn="127.0.0.1:34798 -> 127.0.0.1:37999" error="read: connection reset by peer"',
  'time=2026-12-04T06:26:08.000Z level=INFO msg=listening addr=127.0.0.1:27017 handler=postgresql',
];
const ERRORS = [
  'time=2026-12-04T06:26:09.000Z level=ERROR msg="cannot connect to PostgreSQL" error="connection refused"',
  'avviso-ferretdb: initdb failed: exit status 1',
  'panic: runtime error: invalid memory address or nil pointer dereference',
];

test('FerretDB: warnings and info are quiet; errors, panics and fatal messages show', () => {
  for (const line of WARNINGS) assert.equal(ferretDbLineMatters(line), false, line);
  for (const line of ERRORS) assert.equal(ferretDbLineMatters(line), true, line);
});

test('a managed process: every line in its log file, only the shown ones on stderr', async (t) => {
  const log = path.join(mkdtempSync(path.join(os.tmpdir(), 'avviso-devlog-')), 'nested', 'ferretdb.log');
  const shown: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  t.mock.method(process.stderr, 'write', (chunk: string | Uint8Array, ...rest: unknown[]) => {
    if (String(chunk).startsWith('[fake-ferretdb]')) return shown.push(String(chunk)) > 0;
    return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
  });
  const lines = [...WARNINGS, ...ERRORS];
  const proc = spawnManaged(
    'fake-ferretdb',
    process.execPath,
    ['-e', `for (const l of ${JSON.stringify(lines)}) console.error(l)`],
    { logFile: log, show: ferretDbLineMatters },
  );
  await proc.exited;
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(
    shown,
    ERRORS.map((l) => `[fake-ferretdb] ${l}\n`),
  );
  assert.deepEqual(readFileSync(log, 'utf8').trimEnd().split('\n'), lines);
});

test('a server that exits before it is healthy says why, even with its output ignored', async () => {
  const proc = spawnManaged(
    'failing-server',
    process.execPath,
    ['-e', 'console.log("starting"); console.error("avviso-ferretdb: initdb failed: exit status 1"); process.exit(3)'],
    { output: 'ignore' },
  );
  await assert.rejects(
    waitUntilHealthy('the failing server', () => Promise.reject(new Error('not yet')), { proc, timeoutMs: 10_000 }),
    (err: Error) => {
      assert.match(err.message, /the failing server exited \(3\) before it became healthy; its last lines:/);
      assert.match(err.message, /starting/);
      assert.match(err.message, /initdb failed: exit status 1/);
      return true;
    },
  );
});
