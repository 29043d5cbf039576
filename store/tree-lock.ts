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
 *
 * A second kind of lock per tree, `plan`, serializes the plannings of outage notices of different
 * incidents over one tree (activities/notices.ts): each reads who the others tell and then writes
 * whom it tells, so two plannings side by side would each miss the other's and both text the
 * subscribers they share. A planning can take minutes (it sends as it plans), so a held lock's lease
 * is renewed while its holder runs, and a planning waits for another one as long as it takes.
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

/** What the lock serializes: correlation decisions (`tree`), or the plannings of outage notices (`plan`). */
export type TreeLockKind = 'tree' | 'plan';

export interface TreeLockOptions {
  kind?: TreeLockKind;
  /** How long to wait for it before failing (default 20 s). */
  waitMs?: number;
  /** How long a dead holder keeps it (default 30 s); renewed every third of it while the holder runs. */
  leaseMs?: number;
}

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
 * Locks this process holds in the database, by key (`tree:<root>`, `plan:<root>`). `busy`: a caller holds it; otherwise it
 * lingers after its release until `linger` fires and deletes it. Handed on only while the lease
 * has at least half its time left, so that a lock is never held past its expiry.
 */
interface LocalLock {
  owner: string;
  leaseMs: number;
  takenAt: number;
  busy: boolean;
  linger?: NodeJS.Timeout;
  renew?: NodeJS.Timeout;
}
const local = new Map<string, LocalLock>();
/** Callers of this process waiting for a lock, by key: woken when it is released here, rather than at their next poll. */
const waiters = new Map<string, Set<() => void>>();

/** Sleeps `ms`, or less if this process releases the tree's lock meanwhile. */
function pauseFor(key: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const set = waiters.get(key) ?? new Set<() => void>();
    waiters.set(key, set);
    const wake = () => {
      clearTimeout(timer);
      set.delete(wake);
      if (set.size === 0 && waiters.get(key) === set) waiters.delete(key);
      resolve();
    };
    const timer = setTimeout(wake, ms);
    set.add(wake);
  });
}

/** This process's lingering lock, taken over at no cost when its lease allows. */
function takeLingering(key: string): boolean {
  const mine = local.get(key);
  if (!mine || mine.busy || Date.now() - mine.takenAt > mine.leaseMs / 2) return false;
  clearTimeout(mine.linger);
  mine.busy = true;
  return true;
}

function locks(store: Store) {
  return store.db.collection<TreeLockDoc>('tree_locks');
}

/** Keeps a held lock's lease ahead of the clock while its holder runs (a planning can outlast a lease). */
function renewWhileBusy(store: Store, key: string, lock: LocalLock): void {
  lock.renew = setInterval(() => {
    if (!lock.busy || local.get(key) !== lock) return;
    const at = Date.now();
    void locks(store)
      .updateOne({ _id: key, owner: lock.owner }, { $set: { expiresAt: new Date(at + lock.leaseMs) } })
      .then((r) => {
        if (r.matchedCount === 1) lock.takenAt = Math.max(lock.takenAt, at);
      })
      .catch(() => undefined); // the next renewal tries again; the lease has two more renewals' time left
  }, lock.leaseMs / 3);
  lock.renew.unref();
}

async function acquire(store: Store, key: string, waitMs: number, leaseMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
    if (takeLingering(key)) return;
    if (!local.has(key)) {
      const owner = randomUUID();
      try {
        await locks(store).insertOne({ _id: key, owner, expiresAt: new Date(Date.now() + leaseMs) });
        const lock: LocalLock = { owner, leaseMs, takenAt: Date.now(), busy: true };
        local.set(key, lock);
        renewWhileBusy(store, key, lock);
        return;
      } catch (err) {
        if (!(err instanceof MongoServerError && err.code === 11000)) throw err;
      }
      const holder = await locks(store).findOne({ _id: key });
      if (holder && holder.expiresAt.getTime() < Date.now() && !local.has(key)) {
        await locks(store).deleteOne({ _id: key, owner: holder.owner });
        continue;
      }
    }
    if (Date.now() > deadline)
      throw new TreeLockTimeout(`network tree lock ${key} stayed busy for ${waitMs / 1000} s; try again`);
    await pauseFor(key, pause + Math.random() * pause);
  }
}

async function deleteLock(store: Store, key: string, lock: LocalLock): Promise<void> {
  clearInterval(lock.renew);
  if (local.get(key) === lock) local.delete(key);
  await locks(store).deleteOne({ _id: key, owner: lock.owner });
}

/** Released: lingers for this process's next holder, then is deleted (at once when its lease is half spent). */
async function release(store: Store, key: string): Promise<void> {
  const lock = local.get(key);
  if (!lock) return;
  lock.busy = false;
  for (const wake of [...(waiters.get(key) ?? [])]) wake();
  if (Date.now() - lock.takenAt > lock.leaseMs / 2) return deleteLock(store, key, lock);
  lock.linger = setTimeout(() => {
    if (!lock.busy && local.get(key) === lock) void deleteLock(store, key, lock).catch(() => undefined); // expires with its lease otherwise
  }, LINGER_MS);
  lock.linger.unref();
}

/** Runs `fn` holding the locks of these trees (their root sites): by default the correlation decisions' locks. */
export async function withTreeLocks<T>(
  store: Store,
  roots: string[],
  fn: () => Promise<T>,
  options: TreeLockOptions = {},
): Promise<T> {
  const mine = held.getStore() ?? new Set<string>();
  const kind = options.kind ?? 'tree';
  const wanted = [...new Set(roots.map((r) => `${kind}:${r}`))].filter((k) => !mine.has(k)).sort();
  if (wanted.length === 0) return fn();
  const taken: string[] = [];
  try {
    for (const key of wanted) {
      await acquire(store, key, options.waitMs ?? WAIT_MS, options.leaseMs ?? LEASE_MS);
      taken.push(key);
    }
    return await held.run(new Set([...mine, ...taken]), fn);
  } finally {
    await Promise.all(taken.map((key) => release(store, key)));
  }
}
