/**
 * Which MongoDB-wire server the tests run against. FerretDB (embedded, as `avviso dev` runs it) is
 * the default; mongo-java-server, a second engine with other internals, checks that the store and
 * delivery code depend on no quirk of one engine (docs/second-engine.md). The harness (./run.ts)
 * tells each test process through AVVISO_TEST_ENGINE.
 */
export const TEST_ENGINES = ['ferretdb', 'mongo-java-server'] as const;
export type TestEngine = (typeof TEST_ENGINES)[number];

/** Parses an engine's name, failing with the names there are and where the bad one came from. */
export function parseTestEngine(value: string, from: string): TestEngine {
  if ((TEST_ENGINES as readonly string[]).includes(value)) return value as TestEngine;
  throw new Error(`${from}: unknown test engine '${value}'; want one of ${TEST_ENGINES.join(', ')}`);
}

/** The engine this test process runs against. */
export function testEngine(): TestEngine {
  const v = process.env.AVVISO_TEST_ENGINE;
  return v ? parseTestEngine(v, 'AVVISO_TEST_ENGINE') : 'ferretdb';
}

/**
 * For node:test's `skip` option: the reason when running on `engine`, false otherwise, e.g.
 * `test('...', { skip: skipOn('mongo-java-server', 'asserts PostgreSQL plans') }, ...)`.
 */
export function skipOn(engine: TestEngine, reason: string): string | false {
  return testEngine() === engine ? `not on ${engine}: ${reason}` : false;
}
