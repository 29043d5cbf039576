/**
 * Who a staff escalation reaches besides the rules' own contacts: the contacts stored through
 * `/v1/contacts` that are on call now and cover the incident's areas (a team on call reaches its
 * members too). And what cannot go, said on the incident rather than dropped.
 */
import type { Store } from '../store/db';
import type { Contact, DeliveryChannel, Language } from '../domain/types';
import type { RuleSet } from '../rules';

export interface EscalationTarget {
  contact: string;
  channel: DeliveryChannel;
  address: string;
  language: Language;
  templateSet?: string;
}

/** On call now and covering one of `areas` (a contact with no areas covers all); teams bring their members. */
export async function onCallContacts(store: Store, areas: string[]): Promise<Contact[]> {
  const covering = { $or: [{ areas: { $in: areas } }, { areas: { $exists: false } }] };
  const onCall = await store.contacts
    .find({ onCall: true, ...covering })
    .sort({ _id: 1 })
    .toArray();
  const memberIds = onCall
    .flatMap((c) => (c.kind === 'team' ? (c.members ?? []) : []))
    .filter((id) => !onCall.some((c) => c._id === id));
  const members = memberIds.length
    ? await store.contacts
        .find({ _id: { $in: memberIds } })
        .sort({ _id: 1 })
        .toArray()
    : [];
  return [...onCall, ...members];
}

/** Each phone by SMS; a contact with no phone by e-mail. */
export function onCallTargets(contacts: Contact[], templateSet: string | undefined): EscalationTarget[] {
  return contacts.flatMap((c): EscalationTarget[] => {
    const base = { contact: c._id, language: c.language, templateSet };
    if (c.phones.length) return c.phones.map((phone) => ({ ...base, channel: 'sms', address: phone }));
    return c.email ? [{ ...base, channel: 'email', address: c.email }] : [];
  });
}

/** The rules' staff texts: the set their escalation names, else one called `staff` if the rules have it. */
export function staffTemplateSet(
  rules: Pick<RuleSet, 'hasTemplate'>,
  fromRules: string | undefined,
  kind: 'outage' | 'maintenance',
): string | undefined {
  if (fromRules) return fromRules;
  return rules.hasTemplate('staff', kind) ? 'staff' : undefined;
}

export interface EscalationProblemFound {
  cause: 'nobody' | 'no-voice' | 'no-channel';
  problem: string;
}

/**
 * What of a round cannot be sent as planned. `channels` are the worker's channels (`known`: the
 * caller knows them; a call without voice goes by SMS, activities/delivery.ts).
 */
export function escalationProblems(
  planned: { channel: DeliveryChannel }[],
  channels: Set<string>,
  known: boolean,
): EscalationProblemFound[] {
  if (planned.length === 0)
    return [
      {
        cause: 'nobody',
        problem:
          'nobody to escalate to: the rules name no contact for this incident and no stored contact is on call for its areas',
      },
    ];
  if (!known) return [];
  const found: EscalationProblemFound[] = [];
  const calls = planned.filter((p) => p.channel === 'voice').length;
  if (calls && !channels.has('voice')) {
    found.push({
      cause: 'no-voice',
      problem: channels.has('sms')
        ? `voice is not configured (PLIVO_VOICE_CALLER_ID): ${calls} call(s) go by SMS to the same number instead`
        : `voice is not configured (PLIVO_VOICE_CALLER_ID): ${calls} call(s) cannot be made`,
    });
  }
  const missing = [...new Set(planned.map((p) => p.channel).filter((c) => c !== 'voice' && !channels.has(c)))];
  if (missing.length)
    found.push({
      cause: 'no-channel',
      problem: `not configured on the worker: ${missing.join(', ')}; those escalation messages cannot be sent`,
    });
  return found;
}

/** Once per round and cause, however often the activity is retried. */
export async function recordEscalationProblem(
  store: Store,
  incidentId: string,
  round: number,
  found: EscalationProblemFound,
): Promise<void> {
  const key = `${round}:${found.cause}`;
  await store.incidents.updateOne(
    { _id: incidentId, 'escalationProblems.key': { $ne: key } },
    { $push: { escalationProblems: { key, at: new Date(), round, problem: found.problem } } },
  );
}
