/**
 * The network is a forest: every site is fed by at most one uplink, and following uplinks
 * always ends at a root. This module decides which proposed sites (an import file's rows, an API
 * change) keep it so, judged together with the sites already stored. Pure: no database.
 */

/** Site id to the id of the site that feeds it (null for a root). */
export type Uplinks = ReadonlyMap<string, string | null>;

export interface ProposedSite {
  id: string;
  uplink: string | null;
  /** Where it came from (a file's line), to point at it in reasons. */
  line?: number;
}

/**
 * Returns the proposed sites that must be refused, with the reason for each (about the uplink,
 * e.g. `"t2" would make a loop: ...`). The others can be
 * written together without making a loop or pointing at a site that does not exist.
 *
 * A refused site that already exists keeps its stored uplink, and rows that relied on a refused
 * row are judged again without it: the check repeats until nothing more is refused.
 */
export function refusedSites(existing: Uplinks, proposed: ProposedSite[]): Map<string, string> {
  const byId = new Map(proposed.map((p) => [p.id, p]));
  const refused = new Map<string, string>();
  for (;;) {
    const graph = new Map(existing);
    for (const p of proposed) if (!refused.has(p.id)) graph.set(p.id, p.uplink);
    const judged = new Set(proposed.filter((p) => !refused.has(p.id)).map((p) => p.id));
    const found = problems(graph, judged, (id) => {
      const r = byId.get(id);
      return r && refused.has(id) && !existing.has(id)
        ? `"${id}" was refused${r.line ? ` (line ${r.line})` : ''}, so it cannot feed this site`
        : undefined;
    });
    if (found.size === 0) return refused;
    for (const [id, reason] of found) refused.set(id, reason);
  }
}

/**
 * One pass over the graph: the judged sites that point at an unknown site, or lie on a loop.
 * Sites whose chain merely passes through such a site are left for the next pass, which sees
 * the graph without it.
 */
function problems(
  graph: Map<string, string | null>,
  judged: Set<string>,
  whyUnknown: (id: string) => string | undefined,
): Map<string, string> {
  const found = new Map<string, string>();
  const settled = new Set<string>();
  for (const start of judged) {
    if (settled.has(start)) continue;
    const path: string[] = [];
    const onPath = new Map<string, number>();
    let current: string | null = start;
    while (current !== null && !settled.has(current)) {
      if (!graph.has(current)) {
        const child = path[path.length - 1]!;
        if (judged.has(child))
          found.set(
            child,
            whyUnknown(current) ?? `"${current}" is not a known site: add it first, or in the same file`,
          );
        break;
      }
      const seenAt = onPath.get(current);
      if (seenAt !== undefined) {
        const loop = path.slice(seenAt);
        const shown = [...loop, loop[0]].join(' → ');
        for (const id of loop)
          if (judged.has(id)) found.set(id, `"${graph.get(id)}" would make a loop: ${shown} (each fed by the next)`);
        break;
      }
      onPath.set(current, path.length);
      path.push(current);
      current = graph.get(current)!;
    }
    for (const id of path) settled.add(id);
  }
  return found;
}
