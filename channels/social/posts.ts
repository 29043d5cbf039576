/**
 * The record of each social post: one document per network and status change, inserted (unique
 * `_id`) before anything is sent, with the text fixed then. A retried activity finds it: a post
 * already made is not made again, a retry sends the very same text (which Mastodon's
 * Idempotency-Key and X's refusal of duplicate text rely on), and a post refused for good stays
 * refused, with the reason, for the incident's page.
 */
import { MongoServerError, type Collection, type Db } from 'mongodb';

export type SocialNetwork = 'x' | 'mastodon';
export type SocialPostState = 'pending' | 'posted' | 'failed';

export interface SocialPost {
  /** `<network>|<status change>`: one post per network per change. */
  _id: string;
  network: SocialNetwork;
  incidentId: string;
  /** The status change: `<incident>|<kind>[#round]`. */
  change: string;
  kind: string;
  text: string;
  state: SocialPostState;
  /** Requests made so far (a retry after a lost answer counts too). */
  attempts: number;
  /** The tweet's or the status's id; absent when X refused a retry as a duplicate of the post it had made. */
  postId?: string;
  url?: string;
  /** The last failure: why it was refused (failed), or why the last attempt will be retried (pending). */
  error?: string;
  httpStatus?: number;
  /** A request is out since then (cleared when it ends): another sender waits for it rather than sending too. */
  sendingSince?: Date;
  createdAt: Date;
  updatedAt: Date;
  postedAt?: Date;
}

/** One request for a post: `<post id>#<attempt>`, inserted before the request goes out, so that one sender makes it. */
export interface SocialPostAttempt {
  _id: string;
  at: Date;
}

export interface SocialCollections {
  posts: Collection<SocialPost>;
  attempts: Collection<SocialPostAttempt>;
}

export const SOCIAL_POSTS_COLLECTION = 'social_posts';
export const SOCIAL_POST_ATTEMPTS_COLLECTION = 'social_post_attempts';

/** From a database, or from the store (then always through its current client, as statusFeedCollections). */
export function socialCollections(source: Db | { readonly db: Db }): SocialCollections {
  const db = () => ('collection' in source ? source : source.db);
  return {
    get posts() {
      return db().collection<SocialPost>(SOCIAL_POSTS_COLLECTION);
    },
    get attempts() {
      return db().collection<SocialPostAttempt>(SOCIAL_POST_ATTEMPTS_COLLECTION);
    },
  };
}

/** Inserts the attempt's claim; false when another sender holds it. */
export async function claimAttempt(
  attempts: Collection<SocialPostAttempt>,
  postId: string,
  attempt: number,
  at: Date,
): Promise<boolean> {
  try {
    await attempts.insertOne({ _id: `${postId}#${attempt}`, at });
    return true;
  } catch (err) {
    if (err instanceof MongoServerError && err.code === 11000) return false;
    throw err;
  }
}

export function socialPostId(network: SocialNetwork, change: string): string {
  return `${network}|${change}`;
}

/** Records the post unless it is recorded already, and returns the record as stored. */
export async function recordPost(posts: Collection<SocialPost>, post: SocialPost): Promise<SocialPost> {
  try {
    await posts.insertOne(post);
    return post;
  } catch (err) {
    if (!(err instanceof MongoServerError && err.code === 11000)) throw err;
    const stored = await posts.findOne({ _id: post._id });
    if (!stored) throw err;
    return stored;
  }
}

/** An incident's posts, for its page in the API. */
export async function postsOfIncident(posts: Collection<SocialPost>, incidentId: string): Promise<SocialPost[]> {
  return posts.find({ incidentId }).sort({ createdAt: 1, _id: 1 }).toArray();
}
