/**
 * Counters for `GET /control/stats`: what the simulator answered, what it recorded, what
 * happened to the callbacks. A fault drill compares them with what the app believes.
 * And the record of every Plivo API request (`GET /control/requests`), with the simulator's own
 * timestamps, so that a test can check the rate it was sent at and what each bulk send carried.
 */
import type { MessageStatus, MessageStore } from './store';

/** Which endpoint a request hit: Message POST, Call POST, or any other Plivo API route. */
export type EndpointKind = 'message' | 'call' | 'read';

/** One Plivo API request as the simulator saw it. */
export interface RequestEntry {
  /** 1, 2, ... in order of arrival. */
  seq: number;
  kind: EndpointKind;
  method: string;
  /** The route pattern, e.g. `/v1/Account/:authId/Message/`. */
  route: string;
  /** Arrival, ms since the epoch. */
  at: number;
  /** When the answer went out, or the connection was dropped; absent while in progress. */
  answeredAt?: number;
  /** The HTTP status answered; absent when the connection was dropped. */
  status?: number;
  /** The connection was dropped instead of answered: before or after the request was recorded. */
  dropped?: 'before' | 'after';
  /** Seconds, on a 429. */
  retryAfterSeconds?: number;
  /** The 429 came from the account limit (`limits.requestsPer5s`), not from a fault. */
  limited?: boolean;
  /** Sends: every destination named (valid in E.164, invalid as given), and the text (SMS). */
  destinations?: string[];
  text?: string;
  /** Sends: what the simulator refused as invalid numbers. */
  invalid?: string[];
  /** Sends that were recorded: the `api_id` that the created messages carry as `requestId`. */
  apiId?: string;
}

/** Keeps the last `max` requests. */
export class RequestLog {
  private entries: RequestEntry[] = [];
  private readonly open = new WeakMap<object, RequestEntry>();
  private seq = 0;

  constructor(private readonly max = 20_000) {}

  begin(request: object, entry: Pick<RequestEntry, 'kind' | 'method' | 'route'>, at = Date.now()): void {
    this.seq += 1;
    const full: RequestEntry = { seq: this.seq, at, ...entry };
    this.entries.push(full);
    if (this.entries.length > this.max) this.entries.splice(0, this.entries.length - this.max);
    this.open.set(request, full);
  }

  /** Adds what the handler learnt (destinations, text, api id); ignored for unknown requests. */
  note(
    request: object,
    details: Partial<Pick<RequestEntry, 'destinations' | 'text' | 'invalid' | 'apiId' | 'limited'>>,
  ): void {
    const entry = this.open.get(request);
    if (entry) Object.assign(entry, details);
  }

  answered(request: object, status: number, retryAfter: unknown, at = Date.now()): void {
    const entry = this.open.get(request);
    if (!entry || entry.answeredAt !== undefined) return;
    entry.answeredAt = at;
    entry.status = status;
    const seconds = Number(retryAfter);
    if (status === 429 && retryAfter !== undefined && Number.isFinite(seconds)) entry.retryAfterSeconds = seconds;
  }

  dropped(request: object, when: 'before' | 'after', at = Date.now()): void {
    const entry = this.open.get(request);
    if (!entry || entry.answeredAt !== undefined) return;
    entry.answeredAt = at;
    entry.dropped = when;
  }

  list(): readonly RequestEntry[] {
    return this.entries;
  }
}

interface EndpointCounters {
  byStatus: Map<number, number>;
  droppedBeforeAccept: number;
  droppedAfterAccept: number;
  /** 429s caused by `limits.requestsPer5s` (the rest come from the rateLimit fault). */
  limitRejections: number;
}

function endpointCounters(): EndpointCounters {
  return { byStatus: new Map(), droppedBeforeAccept: 0, droppedAfterAccept: 0, limitRejections: 0 };
}

function bump(map: Map<number, number>, key: number): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function plainCounts(map: Map<number, number>, keep: (status: number) => boolean): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [status, count] of [...map.entries()].sort(([a], [b]) => a - b))
    if (keep(status)) out[String(status)] = count;
  return out;
}

export class SimStats {
  /** Every Plivo API request, in arrival order. */
  readonly requests = new RequestLog();
  private since = new Date().toISOString();
  private endpoints: Record<EndpointKind, EndpointCounters> = {
    message: endpointCounters(),
    call: endpointCounters(),
    read: endpointCounters(),
  };
  private messages = { accepted: 0, acceptedWithoutResponse: 0, expiredInQueue: 0 };
  private callbacks = { sent: 0, failed: 0, duplicated: 0, reordered: 0, retried: 0 };
  private inbound = { injected: 0, unreachable: 0, byStatus: new Map<number, number>() };
  private calls = { fired: 0, completed: 0, noAnswer: 0, busy: 0, answerUrlErrors: 0, hangupCallbacksFailed: 0 };

  response(kind: EndpointKind, status: number): void {
    bump(this.endpoints[kind].byStatus, status);
  }

  dropped(kind: EndpointKind, when: 'before' | 'after'): void {
    if (when === 'before') this.endpoints[kind].droppedBeforeAccept += 1;
    else this.endpoints[kind].droppedAfterAccept += 1;
  }

  limitRejection(kind: EndpointKind): void {
    this.endpoints[kind].limitRejections += 1;
  }

  messagesAccepted(count: number, responseDropped: boolean): void {
    this.messages.accepted += count;
    if (responseDropped) this.messages.acceptedWithoutResponse += count;
  }

  messageExpired(): void {
    this.messages.expiredInQueue += 1;
  }

  callback(outcome: { ok: boolean; attempts: number }, duplicate: boolean): void {
    if (outcome.ok) this.callbacks.sent += 1;
    else this.callbacks.failed += 1;
    this.callbacks.retried += Math.max(0, outcome.attempts - 1);
    if (duplicate) this.callbacks.duplicated += 1;
  }

  callbacksReordered(): void {
    this.callbacks.reordered += 1;
  }

  inboundInjected(status: number | undefined): void {
    this.inbound.injected += 1;
    if (status === undefined) this.inbound.unreachable += 1;
    else bump(this.inbound.byStatus, status);
  }

  call(event: 'fired' | 'completed' | 'no-answer' | 'busy' | 'answer-url-error' | 'hangup-callback-failed'): void {
    const key = (
      {
        fired: 'fired',
        completed: 'completed',
        'no-answer': 'noAnswer',
        busy: 'busy',
        'answer-url-error': 'answerUrlErrors',
        'hangup-callback-failed': 'hangupCallbacksFailed',
      } as const
    )[event];
    this.calls[key] += 1;
  }

  reset(): void {
    const fresh = new SimStats();
    Object.assign(this, fresh);
  }

  snapshot(store: MessageStore): Record<string, unknown> {
    const requests: Record<string, unknown> = {};
    for (const [kind, c] of Object.entries(this.endpoints)) {
      let total = c.droppedBeforeAccept + c.droppedAfterAccept;
      let accepted = 0;
      for (const [status, count] of c.byStatus) {
        total += count;
        if (status >= 200 && status < 300) accepted += count;
      }
      requests[kind] = {
        total,
        /** Answered 2xx; requests dropped after acceptance are counted apart. */
        accepted,
        tooManyRequests: c.byStatus.get(429) ?? 0,
        limitRejections: c.limitRejections,
        serverErrors: plainCounts(c.byStatus, (s) => s >= 500),
        clientErrors: plainCounts(c.byStatus, (s) => s >= 400 && s < 500 && s !== 429),
        droppedBeforeAccept: c.droppedBeforeAccept,
        droppedAfterAccept: c.droppedAfterAccept,
      };
    }
    const byStatus: Record<MessageStatus, number> = { queued: 0, sent: 0, delivered: 0, undelivered: 0, failed: 0 };
    for (const message of store.all()) byStatus[message.status] += 1;
    return {
      since: this.since,
      requests,
      messages: { ...this.messages, stored: store.size, byStatus },
      callbacks: { ...this.callbacks },
      inbound: {
        injected: this.inbound.injected,
        unreachable: this.inbound.unreachable,
        byStatus: plainCounts(this.inbound.byStatus, () => true),
      },
      calls: { ...this.calls },
    };
  }
}
