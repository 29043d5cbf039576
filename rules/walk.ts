/**
 * Order and `continue`: which of the rules whose conditions hold actually apply. Siblings are
 * tried in order; one that applies stops its later siblings unless it says `continue: true`.
 * A group applies when one of its rules applies (it sends nothing itself).
 */
import type { RuleNode } from './model';

export type RuleOutcome =
  | { status: 'applied' }
  | { status: 'no-match' }
  /** An earlier sibling applied and stopped. */
  | { status: 'not-reached'; stoppedBy: string }
  /** Deciding for the incident as a whole, a rule that reads subscriber facts has no say. */
  | { status: 'per-subscriber' };

export interface WalkResult {
  /** Rules without children that applied, in order. */
  applied: RuleNode[];
  outcomes: Map<RuleNode, RuleOutcome>;
}

/** `matches(leaf)` tells whether a rule's conditions hold; `consider` leaves out rules that have no say. */
export function walkRules(
  roots: RuleNode[],
  matches: (leaf: RuleNode) => boolean,
  consider: (leaf: RuleNode) => boolean = () => true,
): WalkResult {
  const result: WalkResult = { applied: [], outcomes: new Map() };
  const markAll = (nodes: RuleNode[], outcome: RuleOutcome) => {
    for (const n of nodes) {
      result.outcomes.set(n, outcome);
      markAll(n.children, outcome);
    }
  };
  const walk = (siblings: RuleNode[]) => {
    let stoppedBy: string | undefined;
    for (const node of siblings) {
      if (stoppedBy) {
        markAll([node], { status: 'not-reached', stoppedBy });
        continue;
      }
      let applied: boolean;
      if (node.children.length === 0) {
        if (!consider(node)) {
          result.outcomes.set(node, { status: 'per-subscriber' });
          continue;
        }
        applied = matches(node);
        if (applied) result.applied.push(node);
      } else {
        const before = result.applied.length;
        walk(node.children);
        applied = result.applied.length > before;
      }
      result.outcomes.set(node, applied ? { status: 'applied' } : { status: 'no-match' });
      if (applied && !node.continue) stoppedBy = node.name;
    }
  };
  walk(roots);
  return result;
}
