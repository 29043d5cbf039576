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
 * may take it again (nested calls through AsyncLocalStorage). A released lock lingers a moment in
 * its process (`LINGER_MS`) and is handed to that process's next decision for the tree without a
 * write: in a storm the in-process queue decides a tree's alerts back to back under one lock.
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

/**
 * How long a released lock stays taken by this process, in case its next decision for the tree
 * follows (the in-process queue runs them back to back: ingest/intake.ts). Taken again within it,
 * the lock costs no database write; a storm's decisions then take and release it once per run
 * rather than twice per alert. Other processes wait this much longer at most.
 */
const LINGER_MS = 100;

/**
 * Locks this process holds in the database, by root. `busy`: a caller holds it; otherwise it
 * lingers after its release until `linger` fires and deletes it. Handed on only while the lease
 * has at least half its time left, so that a lock is never held past its expiry.
 */
interface LocalLock {
  owner: string;
  takenAt: number;
  busy: boolean;
  linger?: NodeJS.Timeout;
}
const local = new Map<string, LocalLock>();
/** Callers of this process waiting for a tree's lock: woken when it is released here, rather than at their next poll. */
const waiters = new Map<string, Set<() => void>>();

/** Sleeps `ms`, or less if this process releases the tree's lock meanwhile. */
function pauseFor(root: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const set = waiters.get(root) ?? new Set<() => void>();
    waiters.set(root, set);
    const wake = () => {
      clearTimeout(timer);
      set.delete(wake);
      if (set.size === 0 && waiters.get(root) === set) waiters.delete(root);
      resolve();
    };
    const timer = setTimeout(wake, ms);
    set.add(wake);
  });
}

/** This process's lingering lock on the tree, taken over at no cost when its lease allows. */
function takeLingering(root: string): boolean {
  const mine = local.get(root);
  if (!mine || mine.busy || Date.now() - mine.takenAt > LEASE_MS / 2) return false;
  clearTimeout(mine.linger);
  mine.busy = true;
  return true;
}

function locks(store: Store) {
  return store.db.collection<TreeLockDoc>('tree_locks');
}

async function acquire(store: Store, root: string): Promise<void> {
  const _id = `tree:${root}`;
  const deadline = Date.now() + WAIT_MS;
  for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
    if (takeLingering(root)) return;
    if (!local.has(root)) {
      const owner = randomUUID();
      try {
        await locks(store).insertOne({ _id, owner, expiresAt: new Date(Date.now() + LEASE_MS) });
        local.set(root, { owner, takenAt: Date.now(), busy: true });
        return;
      } catch (err) {
        if (!(err instanceof MongoServerError && err.code === 11000)) throw err;
      }
      const holder = await locks(store).findOne({ _id });
      if (holder && holder.expiresAt.getTime() < Date.now() && !local.has(root)) {
        await locks(store).deleteOne({ _id, owner: holder.owner });
        continue;
      }
    }
    if (Date.now() > deadline)
      throw new TreeLockTimeout(`network tree ${root} stayed busy for ${WAIT_MS / 1000} s; try again`);
    await pauseFor(root, pause + Math.random() * pause);
  }
}

async function deleteLock(store: Store, root: string, lock: LocalLock): Promise<void> {
  if (local.get(root) === lock) local.delete(root);
  await locks(store).deleteOne({ _id: `tree:${root}`, owner: lock.owner });
}

/** Released: lingers for this process's next decision on the tree, then is deleted (at once when its lease is half spent). */
async function release(store: Store, root: string): Promise<void> {
  const lock = local.get(root);
  if (!lock) return;
  lock.busy = false;
  for (const wake of [...(waiters.get(root) ?? [])]) wake();
  if (Date.now() - lock.takenAt > LEASE_MS / 2) return deleteLock(store, root, lock);
  lock.linger = setTimeout(() => {
    if (!lock.busy && local.get(root) === lock) void deleteLock(store, root, lock).catch(() => undefined); // expires with its lease otherwise
  }, LINGER_MS);
  lock.linger.unref();
}

/** Runs `fn` holding the locks of these trees (their root sites). */
export async function withTreeLocks<T>(store: Store, roots: string[], fn: () => Promise<T>): Promise<T> {
  const mine = held.getStore() ?? new Set<string>();
  const wanted = [...new Set(roots)].filter((r) => !mine.has(r)).sort();
  if (wanted.length === 0) return fn();
  const taken: string[] = [];
  try {
    for (const root of wanted) {
      await acquire(store, root);
      taken.push(root);
    }
    return await held.run(new Set([...mine, ...taken]), fn);
  } finally {
    await Promise.all(taken.map((root) => release(store, root)));
  }
}
