/**
 * The drill's verdict, from the simulator's own record of what each phone was sent (not from
 * what Avviso believes): for every paying subscriber, exactly one outage notice and then exactly
 * one restoration notice reached the phone (delivered), or one combined notice; a message was sent
 * again only after the previous one was reported undelivered or failed. Pure, so it is unit tested
 * on its own (test/unit/drill-check.test.ts).
 */

export type NoticeKind = 'outage' | 'restored' | 'combined' | 'other';

export interface RecordedMessage {
  text: string;
  /** The simulator's final status: delivered, undelivered, failed, or queued/sent while in flight. */
  status: string;
  acceptedAt: string;
}

export interface Verdict {
  subscribers: number;
  /** Phones without a delivered outage (or combined) notice, or without a delivered restoration (or combined). */
  lost: number;
  /** Phones that received a notice twice, or were sent one again while the previous had not failed. */
  duplicated: number;
  /** Phones whose restoration was sent before their (last) outage notice. */
  outOfOrder: number;
  /** Messages to numbers outside the audience, or that are no notice at all. */
  strays: number;
  /** Resends after an undelivered or failed message: the cost of the faults. */
  resends: number;
  /** Up to ten examples of each problem, numbers masked. */
  examples: string[];
}

const FINAL_FAILURES = new Set(['undelivered', 'failed', 'rejected']);

function masked(phone: string): string {
  return phone.length > 6 ? `${phone.slice(0, 3)}${'*'.repeat(phone.length - 6)}${phone.slice(-3)}` : '***';
}

/** Judges one phone's messages (in the order the simulator accepted them). */
export function judgePhone(
  messages: RecordedMessage[],
  kindOf: (text: string) => NoticeKind,
): { lost: boolean; duplicated: boolean; outOfOrder: boolean; resends: number; other: number; why: string[] } {
  const byKind: Record<NoticeKind, RecordedMessage[]> = { outage: [], restored: [], combined: [], other: [] };
  for (const m of [...messages].sort((a, b) => Date.parse(a.acceptedAt) - Date.parse(b.acceptedAt)))
    byKind[kindOf(m.text)].push(m);
  const delivered = (k: NoticeKind) => byKind[k].filter((m) => m.status === 'delivered').length;
  const why: string[] = [];
  let duplicated = false;
  let resends = 0;
  for (const k of ['outage', 'restored', 'combined'] as const) {
    if (delivered(k) > 1) {
      duplicated = true;
      why.push(`${delivered(k)} ${k} notices delivered`);
    }
    const list = byKind[k];
    // Every message but the last must have failed: a resend of one that did not is a duplicate.
    list.slice(0, -1).forEach((m, i) => {
      if (FINAL_FAILURES.has(m.status)) resends++;
      else {
        duplicated = true;
        why.push(`${k} sent again after a ${m.status} one (#${i + 1})`);
      }
    });
  }
  const combined = delivered('combined') > 0;
  if (combined && (byKind.outage.length > 0 || byKind.restored.length > 0)) {
    duplicated = true;
    why.push('a combined notice besides separate ones');
  }
  const lost = !combined && (delivered('outage') === 0 || delivered('restored') === 0);
  if (lost)
    why.push(
      `delivered: outage ${delivered('outage')}, restored ${delivered('restored')}, combined ${delivered('combined')}`,
    );
  let outOfOrder = false;
  if (byKind.outage.length > 0 && byKind.restored.length > 0) {
    const lastOutage = Date.parse(byKind.outage.at(-1)!.acceptedAt);
    if (byKind.restored.some((m) => Date.parse(m.acceptedAt) < lastOutage)) {
      outOfOrder = true;
      why.push('a restoration notice before the outage notice');
    }
  }
  return { lost, duplicated, outOfOrder, resends, other: byKind.other.length, why };
}

/** Judges every phone of the audience; messages to other numbers count as strays. */
export function judge(
  audience: string[],
  inbox: Record<string, RecordedMessage[]>,
  kindOf: (text: string) => NoticeKind,
): Verdict {
  const v: Verdict = {
    subscribers: audience.length,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    strays: 0,
    resends: 0,
    examples: [],
  };
  const counts = { lost: 0, duplicated: 0, outOfOrder: 0 };
  const expected = new Set(audience);
  for (const phone of audience) {
    const r = judgePhone(inbox[phone] ?? [], kindOf);
    for (const k of ['lost', 'duplicated', 'outOfOrder'] as const) {
      if (!r[k]) continue;
      v[k]++;
      if (counts[k]++ < 10) v.examples.push(`${k}: ${masked(phone)}: ${r.why.join('; ')}`);
    }
    v.resends += r.resends;
    v.strays += r.other;
  }
  for (const [phone, messages] of Object.entries(inbox)) if (!expected.has(phone)) v.strays += messages.length;
  return v;
}
