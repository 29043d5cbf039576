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
  /**
   * Set when the message was recorded but the simulator then dropped the connection instead
   * of answering (the crash-window fault): the client never learnt its UUID.
   */
  responseDropped?: boolean;
  /** Error code the unhappy ending will carry (set by faults); default per status. */
  finalErrorCode?: string;
}

/** An SMS a subscriber sent to one of our numbers, injected through the control API. */
export interface InboundMessage {
  messageUuid: string;
  /** The subscriber's number, E.164 with a leading + when it is a number. */
  from: string;
  /** Our number, as given. */
  to: string;
  text: string;
  units: number;
  encoding: SmsEncoding;
  messageIntent: string;
  receivedAt: string;
  url: string;
  method: 'GET' | 'POST';
  /** The app's answer; undefined when it could not be reached. */
  responseStatus?: number;
  error?: string;
}

export type CallStatus = 'queued' | 'ringing' | 'in-progress' | 'completed' | 'no-answer' | 'busy' | 'failed';

export interface SpokenText {
  text: string;
  language?: string;
  voice?: string;
  loop?: number;
}

export interface SimCall {
  callUuid: string;
  requestUuid: string;
  /** `from` exactly as the client sent it. */
  from: string;
  /** E.164 with a leading +. */
  to: string;
  status: CallStatus;
  /** All `<Speak>` texts of the answer XML, joined with a newline. */
  spokenText: string;
  speak: SpokenText[];
  hangupCause: string;
  hangupCauseCode: number;
  hangupCauseName: string;
  hangupSource: string;
  /** Seconds, estimated from the spoken text (the simulator does not really wait that long). */
  duration: number;
  billDuration: number;
  totalCost: string;
  firedAt: string;
  answeredAt?: string;
  endedAt?: string;
  answerUrl: string;
  answerMethod: 'GET' | 'POST';
  hangupUrl?: string;
  hangupMethod: 'GET' | 'POST';
  ringUrl?: string;
  ringMethod: 'GET' | 'POST';
  /** Why the answer URL gave no usable XML, when it did not. */
  answerError?: string;
  responseDropped?: boolean;
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
  /** `ordered`'s acceptance times (ms), for the list API's time filters; `inOrder` while they never go back. */
  private readonly times: number[] = [];
  private inOrder = true;

  add(message: SimMessage): void {
    if (this.byUuid.has(message.messageUuid)) return;
    this.byUuid.set(message.messageUuid, message);
    const at = Date.parse(message.acceptedAt);
    if (this.times.length && at < this.times[this.times.length - 1]!) this.inOrder = false;
    this.ordered.push(message);
    this.times.push(at);
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

  /**
   * The messages accepted within `[from, to)` (ms; open ends when undefined), oldest first: found by
   * binary search, so that paging through a list of 20,000 costs a page each, not a scan of all.
   */
  acceptedWithin(from = -Infinity, to = Infinity): readonly SimMessage[] {
    if (!this.inOrder) return this.ordered.filter((_, i) => this.times[i]! >= from && this.times[i]! < to);
    return this.ordered.slice(this.firstAtOrAfter(from), this.firstAtOrAfter(to));
  }

  private firstAtOrAfter(ms: number): number {
    let lo = 0;
    let hi = this.times.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.times[mid]! < ms) lo = mid + 1;
      else hi = mid;
    }
    return lo;
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
    this.times.length = 0;
    this.inOrder = true;
  }
}

function pushTo<T>(index: Map<string, T[]>, key: string, value: T): void {
  const list = index.get(key);
  if (list) list.push(value);
  else index.set(key, [value]);
}

/** Inbound messages, by the subscriber's number, in arrival order. */
export class InboundStore {
  private readonly byPhone = new Map<string, InboundMessage[]>();
  private readonly ids = new Set<string>();
  private count = 0;

  add(message: InboundMessage): void {
    if (this.ids.has(message.messageUuid)) return;
    this.ids.add(message.messageUuid);
    pushTo(this.byPhone, message.from, message);
    this.count += 1;
  }

  phones(): ReadonlyMap<string, readonly InboundMessage[]> {
    return this.byPhone;
  }

  forPhone(phone: string): readonly InboundMessage[] {
    return this.byPhone.get(phone) ?? [];
  }

  get size(): number {
    return this.count;
  }

  clear(): void {
    this.byPhone.clear();
    this.ids.clear();
    this.count = 0;
  }
}

/** Voice calls, by call UUID, request UUID and destination; updates mutate in place. */
export class CallStore {
  private readonly byUuid = new Map<string, SimCall>();
  private readonly byRequest = new Map<string, SimCall>();
  private readonly byPhone = new Map<string, SimCall[]>();

  /** Adds a call, or copies a newer snapshot of a known one onto it. */
  upsert(call: SimCall): SimCall {
    const known = this.byUuid.get(call.callUuid);
    if (known) return Object.assign(known, call);
    this.byUuid.set(call.callUuid, call);
    this.byRequest.set(call.requestUuid, call);
    pushTo(this.byPhone, call.to, call);
    return call;
  }

  /** By call UUID or, failing that, by request UUID (what the Make-a-Call answer carries). */
  get(uuid: string): SimCall | undefined {
    return this.byUuid.get(uuid) ?? this.byRequest.get(uuid);
  }

  has(callUuid: string): boolean {
    return this.byUuid.has(callUuid);
  }

  all(): IterableIterator<SimCall> {
    return this.byUuid.values();
  }

  phones(): ReadonlyMap<string, readonly SimCall[]> {
    return this.byPhone;
  }

  forPhone(phone: string): readonly SimCall[] {
    return this.byPhone.get(phone) ?? [];
  }

  get size(): number {
    return this.byUuid.size;
  }

  clear(): void {
    this.byUuid.clear();
    this.byRequest.clear();
    this.byPhone.clear();
  }
}

export interface JournalTargets {
  messages: MessageStore;
  inbound?: InboundStore;
  calls?: CallStore;
}

type LogEntry =
  | ({ kind: 'message' } & SimMessage)
  | ({ kind: 'status' } & StatusChange)
  | ({ kind: 'inbound' } & InboundMessage)
  | ({ kind: 'call' } & SimCall);

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

  recordInbound(message: InboundMessage): void {
    this.enqueue(`${JSON.stringify({ kind: 'inbound', ...message })}\n`);
  }

  /** Calls are journaled as whole snapshots; the last one wins on load. */
  recordCall(call: SimCall): void {
    this.enqueue(`${JSON.stringify({ kind: 'call', ...call })}\n`);
  }

  clear(): void {
    this.enqueue(CLEAR);
  }

  /** Resolves once everything queued so far is on disk. */
  async flush(): Promise<void> {
    await this.chain;
  }

  /** Replays the journal into the stores; a torn last line (crash mid-write) is skipped. */
  async load(targets: MessageStore | JournalTargets): Promise<{ loaded: number; skipped: number }> {
    const { messages: store, inbound, calls } = targets instanceof MessageStore ? { messages: targets } : targets;
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
      else if (entry.kind === 'status') store.applyStatus(entry);
      else if (entry.kind === 'inbound') inbound?.add(withoutKind(entry));
      else calls?.upsert(withoutKind(entry));
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
    if (kind === 'call')
      return typeof (value as { callUuid?: unknown }).callUuid === 'string' ? (value as LogEntry) : undefined;
    if ((kind !== 'message' && kind !== 'status' && kind !== 'inbound') || typeof uuid !== 'string') return undefined;
    return value as LogEntry;
  } catch {
    return undefined;
  }
}

function withoutKind<T>(entry: { kind: string } & T): T {
  const { kind: _kind, ...record } = entry;
  return record as T;
}
