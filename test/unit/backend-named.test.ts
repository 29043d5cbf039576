/**
 * Which FerretDB backend the store talks to decides whether a write by `_id` may carry a condition
 * (store/backend.ts). A FerretDB that has not reached its backend yet (just restarted) names none:
 * that must never be taken for SQLite, where writes go by `_id` alone, unconditionally.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backendNamed } from '../../store/backend';

test('the backend is the one FerretDB names; none named yet is no answer, not SQLite', () => {
  const rest = ['Please star us on GitHub: https://github.com/FerretDB/FerretDB.', 'The telemetry state is undecided.'];
  assert.equal(backendNamed(['Powered by FerretDB v1.24.2 and PostgreSQL 15.18.', ...rest]), 'ferretdb-postgresql');
  assert.equal(backendNamed(['Powered by FerretDB v1.24.2 and SQLite 3.45.1.', ...rest]), 'ferretdb-sqlite');
  assert.equal(backendNamed(['Powered by FerretDB v1.24.2.', ...rest]), undefined, 'a FerretDB just restarted');
  assert.equal(backendNamed([]), undefined);
  // As FerretDB 1.24 answers getLog: each line a log entry in JSON.
  const entry = (msg: string) => JSON.stringify({ c: 'STORAGE', id: 42000, msg, tags: ['startupWarnings'] });
  assert.equal(backendNamed([entry('Powered by FerretDB unknown and PostgreSQL 15.18.')]), 'ferretdb-postgresql');
  assert.equal(backendNamed([entry('Powered by FerretDB unknown.')]), undefined);
});
