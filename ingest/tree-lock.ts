/**
 * One decision at a time per network tree: a lock held while an alert or an API call decides
 * whether it opens, joins or absorbs an incident, and while that decision is written.
 *
 * Why a lock in MongoDB, and why this one: the decision reads the incidents open in the tree and
 * writes one, and two requests that read before either writes both open (the race that texted a
 * relay's customers twice). A unique-`_id` insert is the one write that is atomic on FerretDB
 * (whose conditional updates are read-modify-write in its own process) as on MongoDB, so taking
 * the lock is inserting `tree:<root site>`, and a second taker gets a duplicate-key error and
 * waits. A Temporal workflow per tree would serialize as well, but the caller could not be told
 * what happened (opened, joined, absorbed, which incident) without waiting for a worker, and a
 * webhook must never wait for one. The lock is held for a few database writes and a Temporal
 * start or signal (none of which needs a worker), so waiting for it is short.
 *
 * A lock left by a process that died expires after `LEASE_MS`: the next taker removes it (only
 * that holder's document: the delete names its owner) and takes it. Locks are taken in sorted
 * order, so requests spanning two trees cannot deadlock, and a process that holds a tree's lock
 * may take it again (nested calls through AsyncLocalStorage).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { MongoServerError } from 'mongodb';
import type { Store } from '../store/db';

interface TreeLockDoc {
  _id: string;
  owner: string;
  expiresAt: Date;
}

/** Longer than any decision takes; a lock older than this was left by a process that died. */
const LEASE_MS = 30_000;
/** How long a request waits for a tree's lock before it fails (the tool retries, the operator sees a 5xx). */
const WAIT_MS = 20_000;

export class TreeLockTimeout extends Error {}

const held = new AsyncLocalStorage<Set<string>>();

function locks(store: Store) {
  return store.db.collection<TreeLockDoc>('tree_locks');
}

async function acquire(store: Store, root: string, owner: string): Promise<void> {
  const _id = `tree:${root}`;
  const deadline = Date.now() + WAIT_MS;
  for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
    try {
      await locks(store).insertOne({ _id, owner, expiresAt: new Date(Date.now() + LEASE_MS) });
      return;
    } catch (err) {
      if (!(err instanceof MongoServerError && err.code === 11000)) throw err;
    }
    const holder = await locks(store).findOne({ _id });
    if (holder && holder.expiresAt.getTime() < Date.now()) {
      await locks(store).deleteOne({ _id, owner: holder.owner });
      continue;
    }
    if (Date.now() > deadline) throw new TreeLockTimeout(`network tree ${root} stayed busy for ${WAIT_MS / 1000} s; try again`);
    await new Promise((r) => setTimeout(r, pause + Math.random() * pause));
  }
}

/** Runs `fn` holding the locks of these trees (their root sites). */
export async function withTreeLocks<T>(store: Store, roots: string[], fn: () => Promise<T>): Promise<T> {
  const mine = held.getStore() ?? new Set<string>();
  const wanted = [...new Set(roots)].filter((r) => !mine.has(r)).sort();
  if (wanted.length === 0) return fn();
  const owner = randomUUID();
  const taken: string[] = [];
  try {
    for (const root of wanted) {
      await acquire(store, root, owner);
      taken.push(root);
    }
    return await held.run(new Set([...mine, ...taken]), fn);
  } finally {
    await Promise.all(taken.map((root) => locks(store).deleteOne({ _id: `tree:${root}`, owner })));
  }
}
