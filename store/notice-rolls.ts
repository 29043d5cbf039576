/**
 * Notice rolls: what a resolution needs of an incident's outage notices, written once when they are
 * planned, so that the resolution does not read every outage record whole.
 *
 * Each insert of planned records (store/deliveries.ts insertNew) first writes one roll for the page
 * it was given: for each outage record of the batch, one string with what a restoration copies from
 * it (the id, subscriber, channel, number, language, template set, area, quiet hours, whether a
 * restoration follows). These never change after planning; what does change (the state) is
 * answered without reading most records:
 *
 * - the records in the few states that are not "reached, or planned and never taken" are read by
 *   equality (`undelivered`, `failed`, `expired`, `sending`, and `planned` on a later attempt: a
 *   retry), whole;
 * - every other record is planned on its first attempt, or reached the provider (`accepted`, `sent`,
 *   `delivered`). Which one the send requests say: a record the provider accepted on some attempt
 *   (an answer in a request) reached it; a record no answer names was never taken, or went another
 *   way (a call, written on the record), and is read whole by its `_id` (or its page with it, when
 *   many are).
 *
 * So a fan-out of 4,000 resolved right after its outage reads four rolls, its requests and a few
 * empty equality queries instead of 4,000 records (1.1-1.4 s of its resolution on FerretDB, where a
 * record costs what its fields cost to decode, 140 µs idle).
 *
 * The rolls are complete for an incident only if every page it ever took has a roll: versions before
 * this one wrote none (an incident planned by one of them, or a page planned by one during a rolling
 * upgrade, is read the old way, every record whole), and so did versions before pages (page 0).
 * A roll written by a planning that then failed names records that do not exist: they are looked for
 * by `_id` and skipped. An erased subscriber is taken out of the rolls too (store/privacy.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Store } from './db';
import { answeredOverlay, answersAtResolution } from './send-requests';
import { eachParallel } from '../domain/each-parallel';
import type { Delivery, DeliveryState, MessageKind } from '../domain/types';

/** The kinds whose records are rolled: what a resolution reads. */
const ROLLED: MessageKind[] = ['outage'];

export interface NoticeRollDoc {
  _id: string;
  incidentId: string;
  page: number;
  /** One JSON array per rolled record, as rollEntry writes it (strings: FerretDB decodes each field of a document on every read). */
  entries: string[];
  /** The subscribers the entries name, for an erasure to find them. */
  subscriberIds: string[];
  /** Erasures applied: each rewrites the roll on the count it read. */
  erasures: number;
  at: Date;
}

type RolledFields = Pick<
  Delivery,
  '_id' | 'subscriberId' | 'channel' | 'to' | 'language' | 'templateSet' | 'area' | 'hold' | 'restoration'
>;

function rollEntry(d: RolledFields): string {
  return JSON.stringify([
    d._id,
    d.subscriberId,
    d.channel,
    d.to,
    d.language,
    d.templateSet ?? null,
    d.area ?? null,
    d.hold ?? null,
    d.restoration ?? null,
  ]);
}

function readEntry(entry: string): RolledFields {
  const [_id, subscriberId, channel, to, language, templateSet, area, hold, restoration] = JSON.parse(entry) as [
    string,
    string,
    Delivery['channel'],
    string,
    Delivery['language'],
    string | null,
    string | null,
    Delivery['hold'],
    boolean | null,
  ];
  return {
    _id,
    subscriberId,
    channel,
    to,
    language,
    ...(templateSet !== null ? { templateSet } : {}),
    ...(area !== null ? { area } : {}),
    ...(hold ? { hold } : {}),
    ...(restoration !== null ? { restoration } : {}),
  };
}

/**
 * Writes the roll of one page of records about to be inserted (all of one incident, on `page`),
 * before them: a roll names every rolled record that may exist. Written for every page, rolled
 * records or not, since a page without a roll is how a page planned by a version before rolls shows.
 */
export async function writeNoticeRoll(store: Store, incidentId: string, page: number, records: Delivery[]) {
  const rolled = records.filter((d) => ROLLED.includes(d.kind));
  await store.noticeRolls.insertOne({
    _id: `${incidentId}|p${page}|${randomUUID()}`,
    incidentId,
    page,
    entries: rolled.map(rollEntry),
    subscriberIds: [...new Set(rolled.map((d) => d.subscriberId))],
    erasures: 0,
    at: new Date(),
  });
}

/** The states a record can be in, other than "planned on its first attempt" or reached: read whole, by equality. */
const READ_WHOLE: DeliveryState[] = ['undelivered', 'failed', 'expired', 'sending'];

/** Records not named by any answer, read one by one up to this many on a page; more, and the page is read. */
const BY_ID_PER_PAGE = 32;

/**
 * An incident's notices of `kind` (outage), as its resolution reads them: each record with the
 * answer of its request on it (store/send-requests.ts answeredOverlay), or, for one that reached the
 * provider as an answer says, what the resolution uses of it (the rolled fields, `accepted` on the
 * answered attempt, and a `sending` step at the time it was taken). From the rolls when the incident
 * has them complete; otherwise every record is read whole.
 */
export async function noticesForResolution(
  store: Store,
  incidentId: string,
  kind: MessageKind,
): Promise<AsyncIterable<Delivery>> {
  return (await fromRolls(store, incidentId, kind)) ?? (await everyRecord(store, incidentId, kind));
}

/** The way before rolls: the answers pending, then every record (the order answeredOverlay needs). */
async function everyRecord(store: Store, incidentId: string, kind: MessageKind): Promise<AsyncIterable<Delivery>> {
  const asAnswered = await answeredOverlay(store, incidentId, kind);
  return (async function* () {
    // A thousand at a time: FerretDB's default batch can be 16 MB of records held at once.
    for await (const read of store.deliveries.find({ incidentId, kind }).batchSize(1000)) yield asAnswered(read);
  })();
}

async function fromRolls(
  store: Store,
  incidentId: string,
  kind: MessageKind,
): Promise<AsyncIterable<Delivery> | undefined> {
  if (!ROLLED.includes(kind)) return undefined;
  // The pages before anything else: pages taken after this (the restorations' own) are not about the notices.
  const pages = await store.deliveryPages.findOne({ _id: incidentId }, { projection: { last: 1, rolled: 1 } });
  if (!pages?.rolled) return undefined;
  if (await store.deliveries.findOne({ incidentId, page: 0 }, { projection: { _id: 1 } })) return undefined;
  const rolls = await store.noticeRolls
    .find({ incidentId }, { projection: { subscriberIds: 0 } })
    .batchSize(20)
    .toArray();
  const rolledPages = new Set(rolls.map((r) => r.page));
  for (let p = 1; p <= pages.last; p++) if (!rolledPages.has(p)) return undefined;
  rolls.sort((a, b) => a.page - b.page || (a._id < b._id ? -1 : 1));
  // The few read whole first, then the answers: a record that leaves a state read here for another
  // after this read was reached by then (an answer names it), or is read by its id below.
  const whole = new Map<string, Delivery>();
  const filters = [
    ...READ_WHOLE.map((state) => ({ incidentId, kind, state })),
    { incidentId, kind, state: 'planned' as const, attempts: { $ne: 0 } },
  ];
  await eachParallel(filters, 4, async (filter) => {
    for (const d of await store.deliveries.find(filter).toArray()) whole.set(d._id, d);
  });
  const { asAnswered, firstAnswered } = await answersAtResolution(store, incidentId, kind);

  return (async function* () {
    const seen = new Set<string>();
    for (const roll of rolls) {
      const unanswered: RolledFields[] = [];
      const out: Delivery[] = [];
      for (const entry of roll.entries) {
        const rolled = readEntry(entry);
        if (seen.has(rolled._id)) continue; // a retried planning rolls again what it inserts again
        seen.add(rolled._id);
        const read = whole.get(rolled._id);
        const answered = firstAnswered.get(rolled._id);
        if (read) out.push(asAnswered(read));
        else if (answered) out.push(reachedView(incidentId, kind, roll.page, rolled, answered));
        else unanswered.push(rolled);
      }
      for (const d of await readByIds(store, incidentId, roll.page, unanswered)) out.push(asAnswered(d));
      yield* out;
    }
  })();
}

/**
 * What the resolution reads of a record that reached the provider, without reading it: `accepted`
 * on the attempt an answer names (a later state, `sent` or `delivered`, leads to the same), taken
 * when its first answered attempt was (sentAt: a `sending` step first).
 */
function reachedView(
  incidentId: string,
  kind: MessageKind,
  page: number,
  rolled: RolledFields,
  answered: { attempt: number; at: Date },
): Delivery {
  return {
    ...rolled,
    incidentId,
    kind,
    state: 'accepted',
    attempts: answered.attempt,
    page,
    history: [{ at: answered.at, state: 'sending' }],
    createdAt: answered.at,
    updatedAt: answered.at,
  };
}

/** The records of one page that no answer names, read whole (absent: never inserted, or erased). */
async function readByIds(store: Store, incidentId: string, page: number, wanted: RolledFields[]): Promise<Delivery[]> {
  if (wanted.length === 0) return [];
  const ids = new Set(wanted.map((w) => w._id));
  if (ids.size > BY_ID_PER_PAGE)
    return (await store.deliveries.find({ incidentId, page }).toArray()).filter((d) => ids.has(d._id));
  const found: Delivery[] = [];
  await eachParallel([...ids], 16, async (_id) => {
    const d = await store.deliveries.findOne({ _id });
    if (d) found.push(d);
  });
  const order = [...ids];
  return found.sort((a, b) => order.indexOf(a._id) - order.indexOf(b._id));
}

/**
 * Takes an erased subscriber out of every roll that names them: a roll is rewritten on the count of
 * erasures it was read with, so two erasures of one page do not undo each other.
 */
export async function eraseFromRolls(store: Store, subscriberId: string): Promise<number> {
  let rewritten = 0;
  for (;;) {
    const rolls = await store.noticeRolls.find({ subscriberIds: subscriberId }).toArray();
    if (rolls.length === 0) return rewritten;
    for (const roll of rolls) {
      const entries = roll.entries.filter((e) => readEntry(e).subscriberId !== subscriberId);
      const subscriberIds = roll.subscriberIds.filter((s) => s !== subscriberId);
      const r = await store.noticeRolls.updateOne(
        { _id: roll._id, erasures: roll.erasures },
        { $set: { entries, subscriberIds, erasures: roll.erasures + 1 } },
      );
      rewritten += r.modifiedCount;
    }
  }
}

/** An incident's rolls, deleted with its records (store/retention.ts). */
export async function deleteRollsOf(store: Store, incidentId: string): Promise<number> {
  return (await store.noticeRolls.deleteMany({ incidentId })).deletedCount;
}
