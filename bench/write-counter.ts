/**
 * Counts the documents the database writes (inserted plus modified, upserted and deleted), from the
 * driver's command monitoring, sorted into what the delivery engine spends them on:
 *
 * - planning: delivery records inserted, and their incident's page counter;
 * - sending: send claims, and delivery records moved to `sending`, `accepted` or `failed` (a send);
 * - receipts: receipts stored or queued, and delivery records moved by a receipt (`sent`,
 *   `delivered`, `undelivered`), or given back for a retry by the watchdog;
 * - other: everything else (incidents, status feed, rate limits, cursors, audit).
 *
 * The numbers come from the server's own replies (`n`, `nModified`, `upserted`), so what is counted
 * is what the engine really wrote, whatever the code meant to write.
 */
import type { CommandStartedEvent, CommandSucceededEvent, Document, MongoClient } from 'mongodb';

export type WritePhase = 'planning' | 'sending' | 'receipts' | 'other';
export type WriteCounts = Record<WritePhase, number>;

const SEND_STATES = new Set(['sending', 'accepted', 'failed']);
const RECEIPT_STATES = new Set(['sent', 'delivered', 'undelivered', 'planned', 'expired']);

/** The collection a write command names (findAndModify's `update` is its update document, not a name). */
function collectionOf(command: Document): string {
  return String(command.findAndModify ?? command.insert ?? command.update ?? command.delete ?? '?');
}

/** The phase one write command belongs to, from its collection and what it sets. */
export function phaseOf(command: Document): WritePhase {
  const collection = collectionOf(command);
  if (collection === 'delivery_pages') return 'planning';
  if (collection === 'send_claims' || collection === 'send_requests') return 'sending';
  if (collection === 'receipts' || collection === 'receipt_batches' || collection === 'pending_receipts')
    return 'receipts';
  if (collection !== 'deliveries') return 'other';
  if (command.insert) return 'planning';
  const update: Document | undefined = command.findAndModify ? command.update : command.updates?.[0]?.u;
  const state = update?.$set?.state;
  if (typeof state === 'string' && SEND_STATES.has(state)) return 'sending';
  if (typeof state === 'string' && RECEIPT_STATES.has(state)) return 'receipts';
  return 'other';
}

/** Documents one successful write command wrote, from its reply. */
export function documentsWritten(commandName: string, reply: Document): number {
  if (commandName === 'insert' || commandName === 'delete') return Number(reply.n ?? 0);
  if (commandName === 'update')
    return Number(reply.nModified ?? 0) + (Array.isArray(reply.upserted) ? reply.upserted.length : 0);
  if (commandName === 'findAndModify') return reply.lastErrorObject?.n ? 1 : 0;
  return 0;
}

const WRITE_COMMANDS = new Set(['insert', 'update', 'delete', 'findAndModify']);

/** Where a write went, for the detail: `deliveries update state=accepted`, `receipts insert`. */
export function targetOf(commandName: string, command: Document): string {
  const collection = collectionOf(command);
  const update: Document | undefined = command.findAndModify ? command.update : command.updates?.[0]?.u;
  const state = update?.$set?.state;
  return `${collection} ${commandName}${typeof state === 'string' ? ` state=${state}` : ''}`;
}

/** What the server spent on one kind of command (`deliveries update state=delivered`, `deliveries find`). */
export interface CommandTime {
  commands: number;
  /** The round trips' time as the driver measured it, in milliseconds. */
  ms: number;
  /** Documents a read returned (its first and next batches). */
  returned: number;
}

/**
 * Where a read or other command went: its collection, name and the fields its filter names
 * (`deliveries find {incidentId,state}`); a getMore names its collection apart and goes with the find
 * whose cursor it continues.
 */
function readTargetOf(commandName: string, command: Document, cursors: Map<string, string>): string {
  if (commandName === 'getMore') return `${cursors.get(String(command.getMore)) ?? String(command.collection)} (more)`;
  const filter: Document | undefined = command.filter ?? command.query ?? command.pipeline?.[0]?.$match;
  const fields = filter ? `{${Object.keys(filter).join(',')}}` : '';
  return `${String(command[commandName] ?? '?')} ${commandName}${fields ? ` ${fields}` : ''}`;
}

/** Documents a read's reply carries. */
function documentsReturned(reply: Document): number {
  const batch = reply.cursor?.firstBatch ?? reply.cursor?.nextBatch;
  return Array.isArray(batch) ? batch.length : 0;
}

/** Starts counting on a client created with `monitorCommands: true`; `stop()` ends it. */
export function countWrites(client: MongoClient): {
  counts: WriteCounts;
  byTarget: Record<string, number>;
  /** Every command (reads too), by target: how much of the database's time each kind took. */
  timeByTarget: Record<string, CommandTime>;
  stop(): void;
} {
  const counts: WriteCounts = { planning: 0, sending: 0, receipts: 0, other: 0 };
  const byTarget: Record<string, number> = {};
  const timeByTarget: Record<string, CommandTime> = {};
  const pending = new Map<number, { phase: WritePhase; target: string }>();
  const targets = new Map<number, string>();
  const cursors = new Map<string, string>();
  const started = (e: CommandStartedEvent) => {
    const write = WRITE_COMMANDS.has(e.commandName);
    if (write) pending.set(e.requestId, { phase: phaseOf(e.command), target: targetOf(e.commandName, e.command) });
    targets.set(
      e.requestId,
      write ? targetOf(e.commandName, e.command) : readTargetOf(e.commandName, e.command, cursors),
    );
  };
  const succeeded = (e: CommandSucceededEvent) => {
    const target = targets.get(e.requestId);
    if (target !== undefined) {
      targets.delete(e.requestId);
      const t = (timeByTarget[target] ??= { commands: 0, ms: 0, returned: 0 });
      t.commands++;
      t.ms += e.duration;
      t.returned += documentsReturned(e.reply as Document);
      const cursorId = (e.reply as Document).cursor?.id;
      if (cursorId && String(cursorId) !== '0' && !target.endsWith('(more)')) cursors.set(String(cursorId), target);
    }
    const write = pending.get(e.requestId);
    if (write === undefined) return;
    pending.delete(e.requestId);
    const n = documentsWritten(e.commandName, e.reply as Document);
    counts[write.phase] += n;
    byTarget[write.target] = (byTarget[write.target] ?? 0) + n;
  };
  const failed = (e: { requestId: number }) => {
    pending.delete(e.requestId);
    targets.delete(e.requestId);
  };
  client.on('commandStarted', started);
  client.on('commandSucceeded', succeeded);
  client.on('commandFailed', failed);
  return {
    counts,
    byTarget,
    timeByTarget,
    stop() {
      client.off('commandStarted', started);
      client.off('commandSucceeded', succeeded);
      client.off('commandFailed', failed);
    },
  };
}

/** Writes per delivered SMS, per phase and in total, to two decimals. */
export function perSms(counts: WriteCounts, sms: number): WriteCounts & { total: number } {
  const per = (n: number) => +(n / Math.max(1, sms)).toFixed(2);
  const total = counts.planning + counts.sending + counts.receipts + counts.other;
  return {
    planning: per(counts.planning),
    sending: per(counts.sending),
    receipts: per(counts.receipts),
    other: per(counts.other),
    total: per(total),
  };
}

/** Two tallies of command times added together, by target. */
export function addTimes(a: Record<string, CommandTime>, b: Record<string, CommandTime>): Record<string, CommandTime> {
  const sum: Record<string, CommandTime> = {};
  for (const [target, t] of [...Object.entries(a), ...Object.entries(b)]) {
    const s = (sum[target] ??= { commands: 0, ms: 0, returned: 0 });
    s.commands += t.commands;
    s.ms += t.ms;
    s.returned += t.returned;
  }
  return sum;
}
