/**
 * A filter and a projection applied in Node to documents already read (a site's roster, see
 * store/site-roster.ts), with the database's meaning. Filters are judged by mingo, a kept
 * implementation of MongoDB's query language (arrays, nulls, dates and operators as the server
 * treats them), rather than by a matcher of our own; projections are inclusions of top-level fields
 * only. What mingo cannot compile compiles to null, and the caller asks the database instead.
 */
import type { Document } from 'mongodb';
import { Query } from 'mingo';

/** The filter as a test on a document, or null when it cannot be judged here. */
export function compileFilter(filter: Document): ((doc: Document) => boolean) | null {
  let query: Query;
  try {
    query = new Query(filter);
  } catch {
    return null;
  }
  return (doc) => query.test(doc);
}

/** An inclusion projection of top-level fields as a function, or null for any other kind. */
export function compileProjection(projection: Document | undefined): ((doc: Document) => Document) | null {
  const fields = Object.entries(projection ?? {});
  if (fields.length === 0) return (doc) => doc;
  if (fields.some(([k, v]) => k.includes('.') || k.startsWith('$') || (k !== '_id' && v !== 1 && v !== true)))
    return null;
  const keep = fields.filter(([k, v]) => k !== '_id' && (v === 1 || v === true)).map(([k]) => k);
  const withId = projection!._id === undefined || projection!._id === 1 || projection!._id === true;
  // `{_id: 0}` alone excludes rather than includes: left to the database.
  if ((!withId && projection!._id !== 0 && projection!._id !== false) || (keep.length === 0 && !withId)) return null;
  return (doc) => {
    const out: Document = withId && '_id' in doc ? { _id: doc._id } : {};
    for (const k of keep) if (k in doc) out[k] = doc[k];
    return out;
  };
}
