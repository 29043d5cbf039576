/**
 * The compiled rules as json-rules-engine rules: one engine rule per rule of the tree that
 * has no children, whose conditions are those of its enclosing groups and its own. The
 * engine says which rules' conditions hold; walk.ts then applies order and `continue`.
 */
import { Engine, type RuleProperties } from 'json-rules-engine';
import { CLOCK_WITHIN, clockWithinOperator, toEngineCondition } from './conditions';
import type { CompiledRules, RuleNode } from './model';
import type { TimeWindow } from './time';

export function engineRules(compiled: CompiledRules, leaves: RuleNode[] = compiled.leaves): RuleProperties[] {
  return leaves.map((leaf) => ({
    name: leaf.name,
    conditions: toEngineCondition(
      leaf.chain.length === 1 ? leaf.chain[0] : { type: 'all', items: leaf.chain, at: leaf.at },
    ),
    event: { type: 'rule-matched', params: { rule: leaf.name } },
  }));
}

/**
 * A fresh engine. One engine must not run twice at once: `Engine.run` keeps its state on the
 * instance, and a run that ends while another is between priority levels makes the other
 * skip its remaining rules. Each evaluation session therefore owns an engine and runs it
 * one fact set at a time.
 */
export function createEngine(compiled: CompiledRules, leaves: RuleNode[] = compiled.leaves): Engine {
  // Undefined facts (a subscriber with no area) make their conditions false instead of throwing.
  const engine = new Engine(engineRules(compiled, leaves), { allowUndefinedFacts: true });
  engine.addOperator<unknown, TimeWindow>(CLOCK_WITHIN, clockWithinOperator);
  return engine;
}

/** The names of the rules whose conditions hold for `facts`, with the engine's detailed results. */
export async function matchingRules(
  engine: Engine,
  facts: Record<string, unknown>,
): Promise<{ matched: Set<string>; results: Map<string, unknown> }> {
  const run = await engine.run(facts);
  const results = new Map<string, unknown>();
  for (const r of [...run.results, ...run.failureResults]) results.set(r.name, r.conditions);
  return { matched: new Set(run.results.map((r) => r.name)), results };
}
