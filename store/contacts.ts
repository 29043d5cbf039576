/**
 * Staff contacts for escalation: on-call people and the teams they form, with the numbers and
 * addresses an escalation reaches. Few (dozens), so listing reads them all in id order.
 */
import type { Store } from './db';
import type { Contact, ContactKind, Language } from '../domain/types';
import { RecordError } from './errors';
import {
  contentHash,
  emailAddress,
  FieldError,
  language as parseLanguage,
  mobileNumbers,
  requiredText,
} from './normalize';

export interface ContactInput {
  name?: string;
  kind?: ContactKind;
  phones?: unknown;
  email?: string | null;
  language?: string;
  onCall?: boolean;
  members?: string[] | null;
  areas?: string[] | null;
  notes?: string | null;
}

export interface ContactFields {
  name: string;
  kind: ContactKind;
  phones: string[];
  email?: string;
  language: Language;
  onCall: boolean;
  members?: string[];
  areas?: string[];
  notes?: string;
}

/** Checks a contact; a person needs a phone or an e-mail address to be reachable at all. */
export function contactFields(input: ContactInput): ContactFields {
  const kind = input.kind ?? 'person';
  const hasPhones = Array.isArray(input.phones) ? input.phones.length > 0 : Boolean(input.phones);
  if (!hasPhones && !input.email)
    throw new FieldError(
      'body.phones',
      'give a phone number or an e-mail address: an escalation must reach this contact somehow',
    );
  if (kind === 'person' && input.members?.length) throw new FieldError('body.members', 'only a team has members');
  const members = [...new Set(input.members ?? [])];
  const areas = [...new Set((input.areas ?? []).map((a) => a.trim()).filter(Boolean))].sort();
  return {
    name: requiredText(input.name, 'body.name'),
    kind,
    phones: hasPhones ? mobileNumbers(input.phones, 'body.phones') : [],
    ...(input.email ? { email: emailAddress(input.email, 'body.email') } : {}),
    language: input.language ? parseLanguage(input.language, 'body.language') : 'it',
    onCall: input.onCall ?? false,
    ...(members.length ? { members } : {}),
    ...(areas.length ? { areas } : {}),
    ...(input.notes?.trim() ? { notes: input.notes.trim().slice(0, 1000) } : {}),
  };
}

/** A team's members must be people we know: an escalation to a team reaches them. */
async function assertMembers(store: Store, f: ContactFields): Promise<void> {
  if (!f.members?.length) return;
  const found = await store.contacts.find({ _id: { $in: f.members } }, { projection: { _id: 1, kind: 1 } }).toArray();
  const people = new Set(found.filter((c) => c.kind === 'person').map((c) => c._id));
  const wrong = f.members.filter((m) => !people.has(m));
  if (wrong.length)
    throw new RecordError(
      'invalid',
      'unknown_member',
      `Team members must be people in the contact list; not: ${wrong.join(', ')}.`,
      { field: 'body.members', unknown: wrong },
    );
}

export async function getContact(store: Store, id: string): Promise<Contact> {
  const c = await store.contacts.findOne({ _id: id });
  if (!c) throw new RecordError('not_found', 'contact_not_found', `No contact ${id}; GET /v1/contacts lists them.`);
  return c;
}

export async function createContact(store: Store, id: string, f: ContactFields, now: Date): Promise<Contact> {
  await assertMembers(store, f);
  const doc: Contact = { _id: id, ...f, contentHash: contentHash(f), createdAt: now, updatedAt: now };
  try {
    await store.contacts.insertOne(doc);
  } catch (err) {
    if ((err as { code?: number }).code === 11000)
      throw new RecordError(
        'conflict',
        'contact_exists',
        `Contact ${id} exists already; PATCH /v1/contacts/${id} changes it.`,
      );
    throw err;
  }
  return doc;
}

export async function updateContact(store: Store, id: string, patch: ContactInput, now: Date): Promise<Contact> {
  const current = await getContact(store, id);
  const pick = <K extends keyof ContactInput & keyof Contact>(k: K) =>
    patch[k] === null ? undefined : (patch[k] ?? current[k]);
  const f = contactFields({
    name: patch.name ?? current.name,
    kind: patch.kind ?? current.kind,
    phones: patch.phones ?? current.phones,
    email: pick('email') as string | undefined,
    language: patch.language ?? current.language,
    onCall: patch.onCall ?? current.onCall,
    members: pick('members') as string[] | undefined,
    areas: pick('areas') as string[] | undefined,
    notes: pick('notes') as string | undefined,
  });
  await assertMembers(store, f);
  const doc: Contact = {
    _id: id,
    ...f,
    contentHash: contentHash(f),
    createdAt: current.createdAt ?? now,
    updatedAt: now,
  };
  // A contact is small: replacing it whole removes the optional fields the change dropped.
  await store.contacts.replaceOne({ _id: id }, doc);
  return doc;
}

/** Refuses to delete a person who is still in a team. */
export async function deleteContact(store: Store, id: string): Promise<void> {
  await getContact(store, id);
  const team = await store.contacts.findOne({ members: id }, { projection: { _id: 1 } });
  if (team)
    throw new RecordError(
      'conflict',
      'contact_in_use',
      `Contact ${id} is a member of team ${team._id}: take them out of it first.`,
      { team: team._id },
    );
  await store.contacts.deleteOne({ _id: id });
}

export async function listContacts(
  store: Store,
  q: { onCall?: boolean; kind?: ContactKind; area?: string },
): Promise<Contact[]> {
  return store.contacts
    .find({
      ...(q.onCall !== undefined ? { onCall: q.onCall } : {}),
      ...(q.kind ? { kind: q.kind } : {}),
      ...(q.area ? { $or: [{ areas: q.area }, { areas: { $exists: false } }] } : {}),
    })
    .sort({ _id: 1 })
    .limit(1000)
    .toArray();
}
