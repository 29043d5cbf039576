import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SmsEncoding } from './sms-units';

export type MessageStatus = 'queued' | 'sent' | 'failed' | 'delivered' | 'undelivered';
/** Where a message's life ends; chosen at acceptance so a restart resumes the same story. */
export type FinalStatus = 'delivered' | 'undelivered' | 'failed';

export interface SimMessage {
  messageUuid: string;
  /** `src` exactly as the client sent it. */
  from: string;
  /** E.164 with a leading +. */
  to: string;
  text: string;
  units: number;
  encoding: SmsEncoding;
  status: MessageStatus;
  finalStatus: FinalStatus;
  /** Plivo error code once a message fails; empty while all is well. */
  errorCode: string;
  acceptedAt: string;
  updatedAt: string;
  sentAt?: string;
  deliveryReportAt?: string;
  callbackUrl?: string;
  callbackMethod: 'GET' | 'POST';
  /** Plivo's `log` flag: false (or 'content_only') masks the number in the message API. */
  log: boolean | string;
  /** The `api_id` of the send request that created the message. */
  requestId: string;
}

export interface StatusChange {
  messageUuid: string;
  status: MessageStatus;
  at: string;
  errorCode: string;
}

/**
 * All messages in memory, indexed the three ways the routes read them: by UUID (message
 * API), by phone in arrival order (inbox), and globally in arrival order (list API).
 * Status changes mutate the record in place so every index sees them.
 */
export class MessageStore {
  private readonly byUuid = new Map<string, SimMessage>();
  private readonly byPhone = new Map<string, SimMessage[]>();
  private readonly ordered: SimMessage[] = [];

  add(message: SimMessage): void {
    if (this.byUuid.has(message.messageUuid)) return;
    this.byUuid.set(message.messageUuid, message);
    this.ordered.push(message);
    const list = this.byPhone.get(message.to);
    if (list) list.push(message);
    else this.byPhone.set(message.to, [message]);
  }

  get(messageUuid: string): SimMessage | undefined {
    return this.byUuid.get(messageUuid);
  }

  /** Returns the updated message, or undefined when it is unknown (e.g. cleared meanwhile). */
  applyStatus(change: StatusChange): SimMessage | undefined {
    const message = this.byUuid.get(change.messageUuid);
    if (!message) return undefined;
    message.status = change.status;
    message.errorCode = change.errorCode;
    message.updatedAt = change.at;
    if (change.status === 'sent') message.sentAt = change.at;
    if (change.status === 'delivered' || change.status === 'undelivered' || change.status === 'failed') {
      message.deliveryReportAt = change.at;
    }
    return message;
  }

  /** Oldest first, as accepted. */
  all(): readonly SimMessage[] {
    return this.ordered;
  }

  phones(): ReadonlyMap<string, readonly SimMessage[]> {
    return this.byPhone;
  }

  forPhone(phone: string): readonly SimMessage[] {
    return this.byPhone.get(phone) ?? [];
  }

  get size(): number {
    return this.ordered.length;
  }

  clear(): void {
    this.byUuid.clear();
    this.byPhone.clear();
    this.ordered.length = 0;
  }
}

type LogEntry = ({ kind: 'message' } & SimMessage) | ({ kind: 'status' } & StatusChange);

const CLEAR = Symbol('clear');

/**
 * Append-only NDJSON journal. Writes are batched and strictly ordered through one promise
 * chain so a burst of 1,000 messages costs a handful of appends, and a clear queued after
 * some appends can never be overtaken by them.
 */
export class NdjsonJournal {
  private pending: Array<string | typeof CLEAR> = [];
  private chain: Promise<void> = Promise.resolve();
  private scheduled = false;

  constructor(
    private readonly file: string,
    private readonly onError: (err: unknown) => void,
  ) {}

  recordMessage(message: SimMessage): void {
    this.enqueue(`${JSON.stringify({ kind: 'message', ...message })}\n`);
  }

  recordStatus(change: StatusChange): void {
    this.enqueue(`${JSON.stringify({ kind: 'status', ...change })}\n`);
  }

  clear(): void {
    this.enqueue(CLEAR);
  }

  /** Resolves once everything queued so far is on disk. */
  async flush(): Promise<void> {
    await this.chain;
  }

  /** Replays the journal into the store; a torn last line (crash mid-write) is skipped. */
  async load(store: MessageStore): Promise<{ loaded: number; skipped: number }> {
    await mkdir(dirname(this.file), { recursive: true });
    const content = await readFile(this.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    let skipped = 0;
    for (const line of content.split('\n')) {
      if (line.trim() === '') continue;
      const entry = parseEntry(line);
      if (!entry) skipped += 1;
      else if (entry.kind === 'message') store.add(withoutKind(entry));
      else store.applyStatus(entry);
    }
    return { loaded: store.size, skipped };
  }

  private enqueue(item: string | typeof CLEAR): void {
    this.pending.push(item);
    if (this.scheduled) return;
    this.scheduled = true;
    this.chain = this.chain.then(() => this.write()).catch(this.onError);
  }

  private async write(): Promise<void> {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    const lastClear = batch.lastIndexOf(CLEAR);
    const data = batch.slice(lastClear + 1).join('');
    if (lastClear >= 0) await writeFile(this.file, data);
    else if (data !== '') await appendFile(this.file, data);
  }
}

function parseEntry(line: string): LogEntry | undefined {
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value !== 'object' || value === null) return undefined;
    const kind = (value as { kind?: unknown }).kind;
    const uuid = (value as { messageUuid?: unknown }).messageUuid;
    if ((kind !== 'message' && kind !== 'status') || typeof uuid !== 'string') return undefined;
    return value as LogEntry;
  } catch {
    return undefined;
  }
}

function withoutKind(entry: { kind: 'message' } & SimMessage): SimMessage {
  const { kind: _kind, ...message } = entry;
  return message;
}
