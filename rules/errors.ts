/**
 * Problems found in a rule file, each pointing at a place in it: operations staff fix
 * files, so every message names the file, the line and the column, like a compiler.
 */
import path from 'node:path';

export interface SourcePosition {
  /** Absolute path of the file (or the name given to text that came from elsewhere). */
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
}

export type ProblemSeverity = 'error' | 'warning';

export interface RuleProblem extends SourcePosition {
  severity: ProblemSeverity;
  message: string;
}

/** Thrown when a rule set cannot be loaded; `errors` lists every problem found, not just the first. */
export class RuleErrors extends Error {
  constructor(
    readonly errors: RuleProblem[],
    readonly warnings: RuleProblem[] = [],
  ) {
    super(
      `the rules have ${errors.length} error${errors.length === 1 ? '' : 's'}:\n${errors.map((e) => `  ${formatProblem(e)}`).join('\n')}`,
    );
    this.name = 'RuleErrors';
  }
}

/** `file:line:column: error: message`, the shape editors and CI logs turn into links. */
export function formatProblem(p: RuleProblem, relativeTo?: string): string {
  const file = relativeTo ? path.relative(relativeTo, p.file) || p.file : p.file;
  return `${file}:${p.line}:${p.column}: ${p.severity}: ${p.message}`;
}

/** Orders problems as a reader goes through the files. */
export function byPosition(a: SourcePosition, b: SourcePosition): number {
  return a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column;
}

/** Collects problems while a rule set is checked, so that one run reports all of them. */
export class ProblemList {
  readonly items: RuleProblem[] = [];

  error(at: SourcePosition, message: string): void {
    this.items.push({ ...pick(at), severity: 'error', message });
  }

  warning(at: SourcePosition, message: string): void {
    this.items.push({ ...pick(at), severity: 'warning', message });
  }

  get errors(): RuleProblem[] {
    return this.items.filter((p) => p.severity === 'error').sort(byPosition);
  }

  get warnings(): RuleProblem[] {
    return this.items.filter((p) => p.severity === 'warning').sort(byPosition);
  }

  hasErrors(): boolean {
    return this.items.some((p) => p.severity === 'error');
  }
}

function pick(at: SourcePosition): SourcePosition {
  return { file: at.file, line: at.line, column: at.column };
}

/** "did you mean ...?" for a misspelt name, when one of the known names is close enough. */
export function suggest(given: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(given.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  const tolerated = Math.max(1, Math.floor(given.length / 3));
  return best !== undefined && bestDistance <= tolerated ? `; did you mean "${best}"?` : '';
}

/** Edits between two names, a swap of neighbours counting as one (the commonest typo). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}
