/**
 * readPagesInOrder (store/server.ts): the walk the sender and the receipt applier make over
 * numbered pages. It must return items in page order, stop reading once it has enough, and say
 * truthfully whether anything may be left, since the sender takes "complete" for "nothing more due".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readPagesInOrder } from '../../store/backend';

function pages(sizes: number[]) {
  const read: number[] = [];
  const reader = async (p: number) => {
    read.push(p);
    return Array.from({ length: sizes[p] ?? 0 }, (_, i) => `${p}.${i}`);
  };
  return { read, reader };
}

test('items come in page order, and reading stops once enough are found', async () => {
  const { read, reader } = pages([0, 3, 0, 2, 5, 5, 5, 5, 5, 5, 5, 5]);
  const r = await readPagesInOrder(0, 11, 4, reader);
  assert.deepEqual(r.items, ['1.0', '1.1', '1.2', '3.0']);
  assert.equal(r.complete, false);
  // Page 0 alone, then 1-2, then 3-6 side by side; 7-11 are never read.
  assert.deepEqual(read, [0, 1, 2, 3, 4, 5, 6]);
});

test('a full page first is read alone: one page, not eight', async () => {
  const { read, reader } = pages([0, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]);
  await readPagesInOrder(1, 8, 1000, reader);
  assert.deepEqual(read, [1]);
});

test('complete only when every page was read and nothing was left over', async () => {
  assert.deepEqual(await readPagesInOrder(0, 3, 10, pages([1, 0, 2, 0]).reader), {
    items: ['0.0', '2.0', '2.1'],
    complete: true,
  });
  assert.equal(
    (await readPagesInOrder(0, 3, 3, pages([1, 0, 2, 0]).reader)).complete,
    false,
    'exactly enough found before the last page: the rest is unread',
  );
  assert.equal(
    (await readPagesInOrder(0, 2, 2, pages([0, 0, 3]).reader)).complete,
    false,
    'the last page held more than wanted',
  );
  assert.deepEqual(
    await readPagesInOrder(0, -1, 5, pages([]).reader),
    { items: [], complete: true },
    'no pages at all',
  );
});

test('empty pages are read more and more side by side, up to the limit', async () => {
  const sizes = Array.from({ length: 40 }, () => 0);
  sizes[39] = 1;
  let inFlight = 0;
  let most = 0;
  const r = await readPagesInOrder(0, 39, 1, async (p) => {
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise((resolve) => setTimeout(resolve, 1));
    inFlight--;
    return sizes[p] ? ['found'] : [];
  });
  assert.deepEqual(r.items, ['found']);
  assert.equal(most, 8);
});
