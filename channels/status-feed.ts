/**
 * The public status feed as a channel: "sending" a message to it writes the incident's public
 * post in MongoDB (`status_posts`, one document per incident, a list of updates), which the status
 * page and its Atom/RSS feeds (api/routes/status-page.ts) show. Nobody signs up; it costs nothing.
 *
 * One update usually arrives as several messages, one per language; they meet in one entry of
 * the post's `updates`, named by `meta.updateId` (default: the message kind).
 *
 * How it is written: each message is first recorded as an entry (`status_post_entries`, keyed by
 * delivery id), then the post is rebuilt from all the entries of its incident. Inserting by a
 * unique id is the one write FerretDB keeps atomic under concurrency (its updates, even
 * conditional ones, lose each other's changes), and it makes a repeated send change nothing.
 * After replacing the post the writer counts the entries again and rebuilds if another writer
 * added one meanwhile, so racing writers converge on a post that holds every entry.
 */
import { MongoServerError, type Collection, type Db } from 'mongodb';
import { ChannelError, type Channel, type OutboundMessage, type SendOutcome } from './channel';
import type { Language } from '../domain/types';

export type PostState = 'open' | 'resolved';

export interface StatusUpdate {
  /** Unique within its post: the language versions of one update share it. */
  id: string;
  at: Date;
  /** The message kind: outage, update, restored... */
  kind: string;
  text: Partial<Record<Language, string>>;
  areas: string[];
  /** This update ends the incident (a restoration). */
  resolves: boolean;
}

/** What the status page shows for one incident. Derived from its entries: never edited in place. */
export interface StatusPost {
  /** The incident id. */
  _id: string;
  title: Partial<Record<Language, string>>;
  areas: string[];
  /** Follows the newest update: resolved when it resolves, open otherwise. */
  state: PostState;
  openedAt: Date;
  updatedAt: Date;
  resolvedAt?: Date;
  /** Oldest first. */
  updates: StatusUpdate[];
  /** How many entries the post was built from. */
  entries: number;
}

/** One message to the status channel, as recorded. */
export interface StatusEntry {
  /** The delivery id: a message is recorded once. */
  _id: string;
  incidentId: string;
  updateId: string;
  kind: string;
  language: Language;
  title?: string;
  text: string;
  areas: string[];
  /** When the update happened (meta.at), else when it was first recorded. */
  at: Date;
  openedAt?: Date;
  resolves: boolean;
  recordedAt: Date;
}

export interface StatusFeedCollections {
  posts: Collection<StatusPost>;
  entries: Collection<StatusEntry>;
}

export const STATUS_POSTS_COLLECTION = 'status_posts';
export const STATUS_ENTRIES_COLLECTION = 'status_post_entries';

/** From a database, or from the store (then always through its current client: see store/db.ts replaceClient). */
export function statusFeedCollections(source: Db | { readonly db: Db }): StatusFeedCollections {
  const db = () => ('collection' in source ? source : source.db);
  return {
    get posts() {
      return db().collection<StatusPost>(STATUS_POSTS_COLLECTION);
    },
    get entries() {
      return db().collection<StatusEntry>(STATUS_ENTRIES_COLLECTION);
    },
  };
}

/** Idempotent: creating an index that exists is a no-op. */
export async function ensureStatusFeedIndexes(c: StatusFeedCollections): Promise<void> {
  await Promise.all([
    // The page asks for open posts, and for those updated in the last 30 days.
    c.posts.createIndex({ state: 1 }),
    c.posts.createIndex({ updatedAt: -1 }),
    c.entries.createIndex({ incidentId: 1 }),
  ]);
}

/** Kinds that end an incident when no `meta.resolves` says otherwise. */
const RESOLVING_KINDS = new Set(['restored', 'resolved', 'completed']);

/**
 * Reads a message: its language, subject (the post's title) and text, and from `meta` the
 * `incidentId` (required), `kind`, `updateId`, `areas`, `at`, `openedAt` and `resolves`.
 * Returns why it cannot be posted when it names no incident.
 */
export function statusEntry(m: OutboundMessage, now: Date): StatusEntry | string {
  const meta = m.meta ?? {};
  const incidentId = typeof meta.incidentId === 'string' && meta.incidentId ? meta.incidentId : undefined;
  if (!incidentId) return 'a status post needs meta.incidentId';
  const kind = typeof meta.kind === 'string' && meta.kind ? meta.kind : 'update';
  return {
    _id: m.deliveryId,
    incidentId,
    updateId: typeof meta.updateId === 'string' && meta.updateId ? meta.updateId : kind,
    kind,
    language: m.language,
    ...(m.subject ? { title: m.subject } : {}),
    text: m.text,
    areas: Array.isArray(meta.areas) ? meta.areas.filter((a): a is string => typeof a === 'string') : [],
    at: dateOr(meta.at, now),
    ...(meta.openedAt !== undefined ? { openedAt: dateOr(meta.openedAt, now) } : {}),
    resolves: typeof meta.resolves === 'boolean' ? meta.resolves : RESOLVING_KINDS.has(kind),
    recordedAt: now,
  };
}

function dateOr(value: unknown, fallback: Date): Date {
  const d =
    value instanceof Date
      ? value
      : typeof value === 'string' || typeof value === 'number'
        ? new Date(value)
        : undefined;
  return d && !Number.isNaN(d.getTime()) ? d : fallback;
}

/**
 * The post of an incident from all its entries, in any order. Pure. Entries are folded oldest
 * first, so for each language the newest text and title win, and the newest update sets the state.
 */
export function buildPost(incidentId: string, entries: StatusEntry[]): StatusPost {
  const sorted = [...entries].sort(
    (a, b) =>
      a.at.getTime() - b.at.getTime() || a.recordedAt.getTime() - b.recordedAt.getTime() || a._id.localeCompare(b._id),
  );
  const updates = new Map<string, StatusUpdate>();
  const title: Partial<Record<Language, string>> = {};
  const areas = new Set<string>();
  let openedAt: Date | undefined;
  for (const e of sorted) {
    const u = updates.get(e.updateId) ?? {
      id: e.updateId,
      at: e.at,
      kind: e.kind,
      text: {},
      areas: [],
      resolves: e.resolves,
    };
    u.text[e.language] = e.text;
    u.areas = [...new Set([...u.areas, ...e.areas])];
    updates.set(e.updateId, u);
    if (e.title) title[e.language] = e.title;
    e.areas.forEach((a) => areas.add(a));
    const opened = e.openedAt ?? e.at;
    if (!openedAt || opened < openedAt) openedAt = opened;
  }
  const list = [...updates.values()].sort((a, b) => a.at.getTime() - b.at.getTime());
  const newest = list[list.length - 1];
  if (!newest || !openedAt) throw new Error(`no entries for incident ${incidentId}`);
  return {
    _id: incidentId,
    title,
    areas: [...areas],
    state: newest.resolves ? 'resolved' : 'open',
    openedAt,
    updatedAt: newest.at,
    // Left out rather than undefined, which the driver would store as null.
    ...(newest.resolves ? { resolvedAt: newest.at } : {}),
    updates: list,
    entries: entries.length,
  };
}

export interface StatusFeedSettings {
  /** Rebuilds of one post before giving up when writers keep adding entries (default 10). */
  maxRebuilds?: number;
}

export class StatusFeedChannel implements Channel {
  readonly name = 'status' as const;
  readonly maxBatch = 100;

  constructor(
    private readonly collections: StatusFeedCollections,
    private readonly settings: StatusFeedSettings = {},
  ) {}

  async send(batch: OutboundMessage[]): Promise<SendOutcome[]> {
    const outcomes: SendOutcome[] = [];
    const touched = new Set<string>();
    try {
      for (const message of batch) {
        const entry = statusEntry(message, new Date());
        if (typeof entry === 'string') {
          outcomes.push({ deliveryId: message.deliveryId, outcome: 'invalid', error: entry });
          continue;
        }
        await this.record(entry);
        touched.add(entry.incidentId);
        outcomes.push({ deliveryId: message.deliveryId, outcome: 'accepted', providerMessageId: entry.incidentId });
      }
      // Once per incident, not per message: a batch often holds every language of one update.
      for (const incidentId of touched) await this.rebuild(incidentId);
    } catch (err) {
      if (err instanceof ChannelError) throw err;
      // Safe to retry whole: entries already recorded are skipped, and the rebuild starts afresh.
      throw new ChannelError(`status feed: ${(err as Error).message}`, true);
    }
    return outcomes;
  }

  private async record(entry: StatusEntry): Promise<void> {
    try {
      await this.collections.entries.insertOne(entry);
    } catch (err) {
      // Recorded by an earlier attempt: the rebuild below still runs, in case that attempt stopped before it.
      if (!(err instanceof MongoServerError && err.code === 11000)) throw err;
    }
  }

  private async rebuild(incidentId: string): Promise<void> {
    const { posts, entries } = this.collections;
    const attempts = this.settings.maxRebuilds ?? 10;
    for (let i = 0; i < attempts; i++) {
      const all = await entries.find({ incidentId }).toArray();
      try {
        await posts.replaceOne({ _id: incidentId }, buildPost(incidentId, all), { upsert: true });
      } catch (err) {
        // Two first writers both inserting the post: the loser simply builds again.
        if (err instanceof MongoServerError && err.code === 11000) continue;
        throw err;
      }
      // Entries are never removed, so an unchanged count means nobody added one since our read;
      // a writer adding one later rebuilds after us.
      if ((await entries.countDocuments({ incidentId })) === all.length) return;
    }
    throw new ChannelError(
      `status feed: post ${incidentId} kept changing while being rebuilt (${attempts} times)`,
      true,
    );
  }
}
