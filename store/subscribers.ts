/**
 * Subscribers one at a time (the API), and the rules both the API and the importer follow:
 * which fields describe a subscriber, how they are checked, and what a write sets.
 *
 * Opting out belongs to the subscriber: STOP by SMS, or an operator through the API. An import
 * may opt someone out (a billing system that records "no messages") but never opts anyone back
 * in, so that re-importing an old export cannot undo a STOP.
 */
import type { Filter, UpdateFilter } from 'mongodb';
import type { Store } from './db';
import type { Language, Segment, Subscriber } from '../domain/types';
import { RecordError } from './errors';
import { writingSubscribers } from './site-roster';
import { findByValues } from './backend';
import {
  contentHash,
  emailAddress,
  FieldError,
  language as parseLanguage,
  mobileNumber,
  mobileNumbers,
  quietHours as parseQuietHours,
  requiredText,
  segment as parseSegment,
} from './normalize';

/** What billing knows about a subscriber: what an import row or an API body sets. */
export interface SubscriberFields {
  name: string;
  phones: string[];
  email?: string;
  language: Language;
  siteId: string;
  segment: Segment;
  smsAlerts: { active: boolean; since?: Date; until?: Date };
  quietHours?: string;
  /** True: opt out. False or missing: leave the subscriber's own choice alone (imports). */
  optOut?: boolean;
}

/** Raw values, as JSON gives them; every check happens in `subscriberFields`. */
export interface SubscriberInput {
  name?: string;
  phones?: unknown;
  email?: string | null;
  language?: string;
  siteId?: string;
  segment?: string;
  smsAlerts?: { active?: boolean; since?: Date | null; until?: Date | null };
  quietHours?: string | null;
  optOut?: boolean;
}

/** Checks and tidies a subscriber's fields; throws FieldError naming the field. */
export function subscriberFields(
  input: SubscriberInput,
  names: Partial<Record<keyof SubscriberInput | 'smsAlerts.since' | 'smsAlerts.until', string>> = {},
): SubscriberFields {
  const n = (k: keyof typeof names) => names[k] ?? k;
  const since = input.smsAlerts?.since ?? undefined;
  const until = input.smsAlerts?.until ?? undefined;
  if (since && until && until <= since)
    throw new FieldError(
      n('smsAlerts.until'),
      `ends (${until.toISOString()}) before it starts (${since.toISOString()})`,
    );
  if (!input.siteId?.trim())
    throw new FieldError(n('siteId'), 'is required: the site or access point that serves this subscriber');
  return {
    name: requiredText(input.name, n('name')),
    phones: mobileNumbers(input.phones, n('phones')),
    ...(input.email ? { email: emailAddress(input.email, n('email')) } : {}),
    language: input.language ? parseLanguage(input.language, n('language')) : 'it',
    siteId: input.siteId.trim(),
    segment: input.segment ? parseSegment(input.segment, n('segment')) : 'residential',
    smsAlerts: { active: input.smsAlerts?.active ?? false, ...(since ? { since } : {}), ...(until ? { until } : {}) },
    ...(input.quietHours ? { quietHours: parseQuietHours(input.quietHours, n('quietHours')) } : {}),
    ...(input.optOut ? { optOut: true } : {}),
  };
}

/** The digest of the fields a writer set: equal digests mean there is nothing to write. */
export function subscriberHash(f: SubscriberFields): string {
  return contentHash({
    name: f.name,
    phones: f.phones,
    email: f.email,
    language: f.language,
    siteId: f.siteId,
    segment: f.segment,
    smsAlerts: f.smsAlerts,
    quietHours: f.quietHours,
    optOut: f.optOut === true,
  });
}

/** A new subscriber's document. */
export function newSubscriber(id: string, f: SubscriberFields, now: Date): Subscriber {
  const { optOut, ...fields } = f;
  return {
    _id: id,
    ...fields,
    optedOut: optOut === true,
    ...(optOut ? { optedOutAt: now } : {}),
    contentHash: subscriberHash(f),
    createdAt: now,
    updatedAt: now,
  };
}

/**
 * The update that makes an existing subscriber match `f`: optional fields it lacks are removed,
 * the opt-out is only ever set (see the top of this file).
 */
export function subscriberUpdate(f: SubscriberFields, now: Date): UpdateFilter<Subscriber> {
  const { optOut, email, quietHours, ...always } = f;
  const unset: Record<string, ''> = {};
  if (email === undefined) unset.email = '';
  if (quietHours === undefined) unset.quietHours = '';
  return {
    $set: {
      ...always,
      ...(email ? { email } : {}),
      ...(quietHours ? { quietHours } : {}),
      ...(optOut ? { optedOut: true } : {}),
      contentHash: subscriberHash(f),
      updatedAt: now,
    },
    ...(optOut ? { $min: { optedOutAt: now } } : {}),
    ...(Object.keys(unset).length ? { $unset: unset } : {}),
  };
}

async function assertSiteExists(store: Store, siteId: string, field: string): Promise<void> {
  if (!(await store.sites.findOne({ _id: siteId }, { projection: { _id: 1 } }))) {
    throw new RecordError('invalid', 'unknown_site', `No site ${siteId}: GET /v1/sites lists them.`, { field, siteId });
  }
}

export async function getSubscriber(store: Store, id: string): Promise<Subscriber> {
  const s = await store.subscribers.findOne({ _id: id });
  if (!s) throw new RecordError('not_found', 'subscriber_not_found', `No subscriber with contract ${id}.`);
  return s;
}

export async function createSubscriber(store: Store, id: string, f: SubscriberFields, now: Date): Promise<Subscriber> {
  await assertSiteExists(store, f.siteId, 'body.siteId');
  const doc = newSubscriber(id, f, now);
  try {
    await writingSubscribers(store, [doc.siteId], () => store.subscribers.insertOne(doc));
  } catch (err) {
    if ((err as { code?: number }).code === 11000)
      throw new RecordError(
        'conflict',
        'subscriber_exists',
        `Contract ${id} exists already; PATCH /v1/subscribers/${id} changes it.`,
      );
    throw err;
  }
  return doc;
}

/** What an API change may carry: any subset; null removes an optional field; `optedOut` both ways. */
export interface SubscriberPatch extends Omit<SubscriberInput, 'optOut'> {
  optedOut?: boolean;
}

export async function updateSubscriber(
  store: Store,
  id: string,
  patch: SubscriberPatch,
  now: Date,
  names?: Parameters<typeof subscriberFields>[1],
  attempt = 1,
): Promise<Subscriber> {
  const current = await getSubscriber(store, id);
  const f = subscriberFields(
    {
      name: patch.name ?? current.name,
      phones: patch.phones ?? current.phones,
      email: patch.email === null ? undefined : (patch.email ?? current.email),
      language: patch.language ?? current.language,
      siteId: patch.siteId ?? current.siteId,
      segment: patch.segment ?? current.segment,
      smsAlerts: {
        active: patch.smsAlerts?.active ?? current.smsAlerts.active,
        since: patch.smsAlerts?.since === null ? undefined : (patch.smsAlerts?.since ?? current.smsAlerts.since),
        until: patch.smsAlerts?.until === null ? undefined : (patch.smsAlerts?.until ?? current.smsAlerts.until),
      },
      quietHours: patch.quietHours === null ? undefined : (patch.quietHours ?? current.quietHours),
    },
    names,
  );
  if (f.siteId !== current.siteId) await assertSiteExists(store, f.siteId, 'body.siteId');
  const update = subscriberUpdate(f, now);
  // The API may opt back in as well as out (an operator acting on the subscriber's request).
  if (patch.optedOut !== undefined && patch.optedOut !== current.optedOut) {
    update.$set = { ...update.$set, optedOut: patch.optedOut, ...(patch.optedOut ? { optedOutAt: now } : {}) };
    if (!patch.optedOut) update.$unset = { ...update.$unset, optedOutAt: '' };
  }
  // Only while it is still on the site read above: the site it leaves is then known for certain (both
  // sites' rosters go stale). Moved meanwhile by another writer: read it again and start over.
  const updated = await writingSubscribers(store, [current.siteId, f.siteId], () =>
    store.subscribers.findOneAndUpdate({ _id: id, siteId: current.siteId }, update, { returnDocument: 'after' }),
  );
  if (!updated) {
    if (attempt < 3 && (await store.subscribers.findOne({ _id: id }, { projection: { _id: 1 } })))
      return updateSubscriber(store, id, patch, now, names, attempt + 1);
    throw new RecordError('not_found', 'subscriber_not_found', `Contract ${id} was deleted meanwhile.`);
  }
  return updated;
}

export async function deleteSubscriber(store: Store, id: string, attempt = 1): Promise<void> {
  const current = await getSubscriber(store, id);
  // Only while it is still on the site read above, which is marked as being written (store/site-roster.ts).
  const deleted = await writingSubscribers(store, [current.siteId], () =>
    store.subscribers.findOneAndDelete({ _id: id, siteId: current.siteId }),
  );
  if (!deleted) {
    if (attempt < 3) return deleteSubscriber(store, id, attempt + 1);
    throw new RecordError('not_found', 'subscriber_not_found', `No subscriber with contract ${id}.`);
  }
}

/**
 * Opts these contracts out (STOP) or back in (START), each by its own atomic update that hands back
 * its site, whose roster then goes stale.
 */
export async function setOptedOut(store: Store, ids: string[], optedOut: boolean, now: Date): Promise<void> {
  const update = optedOut
    ? { $set: { optedOut: true, optedOutAt: now } }
    : { $set: { optedOut: false }, $unset: { optedOutAt: '' as const } };
  const sites = await findByValues(store, store.subscribers, '_id', ids, {}, { projection: { siteId: 1 } });
  await writingSubscribers(
    store,
    sites.map((s) => s.siteId),
    async (touch) => {
      for (const _id of ids) {
        const after = await store.subscribers.findOneAndUpdate({ _id }, update);
        if (after) await touch([after.siteId]); // moved since it was read: its site is bumped too
      }
    },
  );
}

export interface SubscriberQuery {
  /** A contract id: exact match. */
  contract?: string;
  /** A phone number in any usual spelling: normalized, then matched exactly. */
  phone?: string;
  siteId?: string;
  after?: string;
  limit: number;
}

/**
 * Subscribers in contract order, one page at a time. A contract alone is a point look-up; a
 * phone number or a site is an index look-up on MongoDB (on FerretDB 1.24, a collection scan).
 */
export async function findSubscribers(
  store: Store,
  q: SubscriberQuery,
): Promise<{ items: Subscriber[]; next: string | null }> {
  let phone: string | undefined;
  if (q.phone !== undefined) {
    try {
      phone = mobileNumber(q.phone, 'querystring.phone');
    } catch (err) {
      if (err instanceof FieldError)
        throw new RecordError('invalid', 'invalid_phone', err.message, { field: err.field });
      throw err;
    }
  }
  if (q.contract !== undefined && !phone && !q.siteId) {
    const one = await store.subscribers.findOne({ _id: q.contract });
    return { items: one && (!q.after || one._id > q.after) ? [one] : [], next: null };
  }
  const idRange = { ...(q.contract !== undefined ? { $eq: q.contract } : {}), ...(q.after ? { $gt: q.after } : {}) };
  const filter: Filter<Subscriber> = {
    ...(phone ? { phones: phone } : {}),
    ...(q.siteId ? { siteId: q.siteId } : {}),
    ...(Object.keys(idRange).length ? { _id: idRange } : {}),
  };
  const items = await store.subscribers.find(filter).sort({ _id: 1 }).limit(q.limit).toArray();
  return { items, next: items.length === q.limit ? items[items.length - 1]!._id : null };
}
