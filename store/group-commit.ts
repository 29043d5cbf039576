/**
 * Group commit: writes that arrive while one is running go together in the next, as one command.
 * A lone write goes at once (no timer, no added latency); a storm of concurrent writes costs a few
 * commands instead of one each. Each caller awaits its own item's outcome, so a caller that goes
 * on after its write (an answer after a store) goes on only once that item is durable.
 *
 * For writes nobody waits on (the audit log, written after the answer), `stormPauseMs` gathers
 * bigger groups in a storm: after a group of several items, the next waits that long, so that a
 * storm costs a command every few hundred items rather than one per round trip. A lone write
 * still goes at once.
 */

/** The outcome of one item of a group: its value, or why it failed. */
export type ItemOutcome<R> = { ok: true; value: R } | { ok: false; error: unknown };

/**
 * `writeGroup` writes the items in one command and returns each item's outcome, in order (or
 * throws: every item of the group then fails with that error).
 */
export function groupCommit<T, R>(
  writeGroup: (items: T[]) => Promise<ItemOutcome<R>[]>,
  maxGroup = 500,
  { stormPauseMs = 0 }: { stormPauseMs?: number } = {},
): (item: T) => Promise<R> {
  let waiting: { item: T; resolve: (v: R) => void; reject: (e: unknown) => void }[] = [];
  let writing = false;
  const drain = async () => {
    writing = true;
    while (waiting.length > 0) {
      const group = waiting.slice(0, maxGroup);
      waiting = waiting.slice(group.length);
      let outcomes: ItemOutcome<R>[];
      try {
        outcomes = await writeGroup(group.map((g) => g.item));
      } catch (error) {
        outcomes = group.map(() => ({ ok: false, error: error ?? new Error('group write failed') }));
      }
      group.forEach((g, i) => {
        const o = outcomes[i] ?? { ok: false, error: new Error('no outcome for this item of the group') };
        if (o.ok) g.resolve(o.value);
        else g.reject(o.error);
      });
      if (stormPauseMs > 0 && group.length > 1) await new Promise((r) => setTimeout(r, stormPauseMs));
    }
    writing = false;
  };
  return (item) =>
    new Promise<R>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      if (!writing) void drain();
    });
}
