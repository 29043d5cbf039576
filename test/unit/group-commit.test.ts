/**
 * Group commit: a lone item is written at once, the items arriving meanwhile share the next write,
 * and each caller gets its own item's outcome.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupCommit } from '../../store/group-commit';

test('the first item goes alone, the ones queued meanwhile go together, each gets its own outcome', async () => {
  const groups: number[][] = [];
  const write = groupCommit<number, string>(async (items) => {
    groups.push(items);
    await new Promise((r) => setTimeout(r, 10));
    return items.map((n) => (n % 2 ? { ok: true, value: `odd ${n}` } : { ok: false, error: new Error(`even ${n}`) }));
  });
  const settled = await Promise.allSettled([1, 2, 3, 4, 5].map((n) => write(n)));
  assert.deepEqual(groups, [[1], [2, 3, 4, 5]]);
  assert.deepEqual(
    settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message)),
    ['odd 1', 'even 2', 'odd 3', 'even 4', 'odd 5'],
  );
});

test('a write that throws fails every item of its group, and the next group is still written', async () => {
  let calls = 0;
  const write = groupCommit<number, number>(async (items) => {
    calls++;
    if (calls === 1) throw new Error('database down');
    return items.map((n) => ({ ok: true, value: n * 10 }));
  }, 2);
  const settled = await Promise.allSettled([1, 2, 3].map((n) => write(n)));
  assert.deepEqual(
    settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message)),
    ['database down', 20, 30],
  );
});

test('stormPauseMs: after a group of several, the next gathers for that long; a lone write still goes at once', async () => {
  const groups: number[][] = [];
  const write = groupCommit<number, number>(
    async (items) => {
      groups.push(items);
      return items.map((n) => ({ ok: true, value: n }));
    },
    500,
    { stormPauseMs: 80 },
  );
  const storm = [1, 2, 3].map((n) => write(n));
  await Promise.all(storm);
  // Written during the pause that follows the group [2, 3]: they wait for each other.
  const late = [write(4)];
  await new Promise((r) => setTimeout(r, 20));
  late.push(write(5));
  await Promise.all(late);
  assert.deepEqual(groups, [[1], [2, 3], [4, 5]]);

  await new Promise((r) => setTimeout(r, 120)); // quiet again
  const started = Date.now();
  await write(6);
  assert.ok(Date.now() - started < 40, 'a lone write is not held back');
  assert.deepEqual(groups.at(-1), [6]);
});
