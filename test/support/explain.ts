/**
 * Reading PostgreSQL's plan out of FerretDB's explain (its `queryPlanner` is PostgreSQL's
 * EXPLAIN): the string values a key takes anywhere in the plan tree, e.g. 'Index Name' for the
 * indexes used, 'Index Cond' for what they were asked.
 */
export function planValues(plan: unknown, key: string): string[] {
  const found: string[] = [];
  const walk = (p: unknown) => {
    if (!p || typeof p !== 'object') return;
    const node = p as Record<string, unknown>;
    if (typeof node[key] === 'string') found.push(node[key]);
    for (const v of Object.values(node)) walk(v);
  };
  walk(plan);
  return found;
}
