/** A bounded fan-out for I/O: the store's per-value queries, the watchdog's questions to the provider. */

/** Runs `fn` for every item, at most `parallel` at a time. */
export async function eachParallel<T>(items: T[], parallel: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, parallel), items.length) }, lane));
}
