/**
 * What `avviso test` runs, and on which engine (test/support/run.ts): the whole suite on FerretDB
 * and then the store's and the delivery tests on mongo-java-server, so that CI (`npm test`) always
 * checks the second engine; an engine asked for by flag or environment; a mistyped engine refused
 * with the names there are.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { planPasses } from '../support/run';

const rel = (files: string[]) => files.map((f) => path.relative(path.join(__dirname, '..', '..'), f));

test('the whole suite runs on FerretDB, then test/store and test/delivery on mongo-java-server', () => {
  const [first, second, ...more] = planPasses([], {});
  assert.equal(first!.engine, 'ferretdb');
  assert.ok(rel(first!.files).includes('test/unit/test-passes.test.ts'), 'every test file in the first pass');
  assert.equal(second!.engine, 'mongo-java-server');
  assert.ok(second!.files.length > 0);
  assert.ok(
    rel(second!.files).every((f) => /^test\/(store|delivery)\/.*\.test\.ts$/.test(f)),
    rel(second!.files).join(', '),
  );
  assert.ok(rel(second!.files).includes('test/delivery/fallback.test.ts'));
  assert.deepEqual(more, []);
  assert.equal(
    planPasses([], { AVVISO_TEST_SECOND_ENGINE: '0' }).length,
    1,
    'AVVISO_TEST_SECOND_ENGINE=0 leaves the second pass out',
  );
});

test('an engine by flag or by environment runs the files given (a directory: the test files under it), once', () => {
  const byFlag = planPasses(['--engine', 'mongo-java-server', 'test/store'], {});
  assert.equal(byFlag.length, 1);
  assert.equal(byFlag[0]!.engine, 'mongo-java-server');
  assert.ok(byFlag[0]!.files.length > 0 && rel(byFlag[0]!.files).every((f) => f.startsWith('test/store/')));
  assert.deepEqual(
    planPasses(['--engine=ferretdb', 'test/unit/test-passes.test.ts'], { AVVISO_TEST_ENGINE: 'mongo-java-server' }).map(
      (p) => p.engine,
    ),
    ['ferretdb'],
    'the flag wins',
  );
  assert.deepEqual(
    planPasses([], { AVVISO_TEST_ENGINE: 'mongo-java-server' }).map((p) => p.engine),
    ['mongo-java-server'],
    'the whole suite on the second engine, once',
  );
});

test('an unknown engine is refused, naming where it came from and the engines there are', () => {
  assert.throws(
    () => planPasses(['--engine', 'mongo']),
    /--engine: unknown test engine 'mongo'; want one of ferretdb, mongo-java-server/,
  );
  assert.throws(
    () => planPasses([], { AVVISO_TEST_ENGINE: 'mongodb' }),
    /AVVISO_TEST_ENGINE: unknown test engine 'mongodb'/,
  );
  assert.throws(() => planPasses(['--engine']), /give the engine/);
});
