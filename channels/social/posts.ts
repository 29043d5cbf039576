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
  createdAt: Date;
  updatedAt: Date;
  postedAt?: Date;
}

export const SOCIAL_POSTS_COLLECTION = 'social_posts';

/** From a database, or from the store (then always through its current client, as statusFeedCollections). */
export function socialPostsCollection(source: Db | { readonly db: Db }): () => Collection<SocialPost> {
  return () => ('collection' in source ? source : source.db).collection<SocialPost>(SOCIAL_POSTS_COLLECTION);
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
