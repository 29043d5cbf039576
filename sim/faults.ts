/**
 * Faults on demand: the settings (validated from JSON, as given to `PUT /control/faults`,
 * `SimulatorOptions.faults` or `SIM_FAULTS`) and the engine that turns them into seeded,
 * reproducible decisions. Also carries the Plivo-like rate limits, which are not faults
 * but are switched on the same way.
 */
import { z } from 'zod';
import { plivoNumber } from './phone';
import { RandomStreams, randomSeed } from './prng';
import type { FinalStatus } from './store';

const rate = z.number().min(0).max(1);
const seconds = z.number().int().min(0).max(3600);

const range = z
  .strictObject({ min: z.number().int().min(0).max(600_000), max: z.number().int().min(0).max(600_000) })
  .refine((r) => r.max >= r.min, { message: 'max must be at least min' });
/** `{min, max}` in ms, or a single number for a fixed value. */
const millis = z.union([
  z
    .number()
    .int()
    .min(0)
    .max(600_000)
    .transform((n) => ({ min: n, max: n })),
  range,
]);

const burstLimit = z
  .strictObject({
    /** Out of every `burstEvery` send requests, the last `burstLength` get a 429. */
    burstEvery: z.number().int().min(1),
    burstLength: z.number().int().min(1),
    retryAfterSeconds: seconds.optional(),
  })
  .refine((b) => b.burstLength <= b.burstEvery, { message: 'burstLength must not exceed burstEvery' });

const randomLimit = z.strictObject({ rate429: rate, retryAfterSeconds: seconds.optional() });

/** What one scripted send request meets: as usual, a dropped connection, or an HTTP error status. */
const scriptStep = z.union([z.enum(['ok', 'dropBeforeAccept', 'dropAfterAccept']), z.number().int().min(400).max(599)]);
const script = z.array(scriptStep).max(10_000);

/** Faults for one number, whatever the shares say. */
const numberFault = z.strictObject({
  /** Messages to this number end so (undelivered: the carrier could not deliver; failed: never sent). */
  sms: z.enum(['undelivered', 'failed']).optional(),
  /** Only the first this many messages to it end so; later ones are delivered (default: every one). */
  smsTimes: z.number().int().min(1).optional(),
  smsErrorCode: z
    .string()
    .regex(/^\d{1,4}$/)
    .optional(),
  /** Calls to this number are not answered. */
  call: z.enum(['no-answer', 'busy']).optional(),
  /** Only the first this many calls to it end so (default: every one). */
  callTimes: z.number().int().min(1).optional(),
  /** Plivo refuses the number as invalid: it comes back in `invalid_number`, nothing is sent to it. */
  invalid: z.boolean().optional(),
});

const errorCodes = z
  .record(z.string().regex(/^[45]\d\d$/, 'errorRate keys are HTTP status codes 400-599'), rate)
  .refine((codes) => Object.values(codes).reduce((a, b) => a + b, 0) <= 1, {
    message: 'errorRate shares add up to more than 1',
  });

export const faultSettingsSchema = z
  .strictObject({
    /** Seed for every random decision; without it a random seed is picked (and reported by GET). */
    seed: z.number().int().min(0).max(0xffffffff).optional(),
    /** Share of send requests answered with that HTTP status and a Plivo error body. */
    errorRate: errorCodes.optional(),
    /** 429 Too Many Requests (with Retry-After) in deterministic bursts or at random. */
    rateLimit: z.union([burstLimit, randomLimit]).optional(),
    /** Extra wait before a send request is answered. */
    latencyMs: millis.optional(),
    /** Share of send requests whose messages are recorded but whose connection is then dropped. */
    dropAfterAcceptRate: rate.optional(),
    /** Share of send requests whose connection is dropped before anything is recorded. */
    dropBeforeAcceptRate: rate.optional(),
    /** Share of messages (that would be delivered) that end `undelivered`. */
    undeliveredRate: rate.optional(),
    undeliveredErrorCode: z
      .string()
      .regex(/^\d{1,4}$/)
      .optional(),
    /** Share of messages (that would be delivered) that end `failed` (never sent, not charged). */
    failedRate: rate.optional(),
    failedErrorCode: z
      .string()
      .regex(/^\d{1,4}$/)
      .optional(),
    callbacks: z
      .strictObject({
        /** Extra wait before each status callback. */
        delayMs: millis.optional(),
        /** Share of callbacks sent twice (same fields, same Sequence). */
        duplicateRate: rate.optional(),
        /** Share of messages whose final-status callback is sent before `sent` (true = half). */
        reorder: z.union([z.boolean(), rate]).optional(),
      })
      .optional(),
    /** Share of voice calls that end `no-answer` or `busy` instead of being answered. */
    callFailRate: rate.optional(),
    /**
     * The fates of the first send requests, in order, per endpoint (Message POST, Call POST):
     * `['ok', 'dropAfterAccept']` answers the first request and drops the second's connection once
     * its messages are recorded (the crash window). After the script the shares apply.
     */
    script: z.strictObject({ message: script.optional(), call: script.optional() }).optional(),
    /** Faults for particular numbers (E.164 with +): `{ "+393331234567": { "sms": "undelivered" } }`. */
    numbers: z
      .record(z.string().regex(/^\+\d{8,15}$/, 'numbers are keyed by E.164 numbers with a leading +'), numberFault)
      .optional(),
    /** Plivo's own limits, enforced as Plivo does (off unless set). */
    limits: z
      .strictObject({
        /** REST requests per rolling 5 s per account (Plivo: 300); beyond it, 429 with Retry-After. */
        requestsPer5s: z.number().int().min(1).optional(),
        /** Messages moved to `sent` per second (Plivo: 5); the excess waits `queued`. */
        messagesPerSecond: z.number().positive().optional(),
        /** A message queued longer than this ends `failed` with error 420 (Plivo: 3 h). */
        queueExpirySeconds: z.number().positive().optional(),
      })
      .optional(),
  })
  .refine(
    (s) =>
      (s.dropBeforeAcceptRate ?? 0) +
        (s.dropAfterAcceptRate ?? 0) +
        (s.rateLimit && 'rate429' in s.rateLimit ? s.rateLimit.rate429 : 0) +
        Object.values(s.errorRate ?? {}).reduce((a, b) => a + b, 0) <=
      1,
    { message: 'the request-level shares (drops, rate429, errorRate) add up to more than 1' },
  )
  .refine((s) => (s.undeliveredRate ?? 0) + (s.failedRate ?? 0) <= 1, {
    message: 'undeliveredRate + failedRate add up to more than 1',
  });

/** Settings as sent (JSON); latencies may be plain numbers. */
export type FaultSettingsInput = z.input<typeof faultSettingsSchema>;
/** Settings after validation; latencies are `{min, max}`. */
export type FaultSettings = z.output<typeof faultSettingsSchema>;
export type Limits = NonNullable<FaultSettings['limits']>;

/** Validates settings from JSON; throws an Error whose message lists every problem. */
export function parseFaultSettings(value: unknown): FaultSettings {
  const result = faultSettingsSchema.safeParse(value ?? {});
  if (!result.success) throw new Error(`invalid fault settings: ${z.prettifyError(result.error)}`);
  return result.data;
}

/** What happens to one send request (Message or Call POST) besides its latency. */
export type RequestFault =
  | { kind: 'none' }
  | { kind: 'dropBeforeAccept' }
  | { kind: 'dropAfterAccept' }
  | { kind: 'tooManyRequests'; retryAfterSeconds: number }
  | { kind: 'error'; status: number };

export interface MessageFate {
  finalStatus: FinalStatus;
  errorCode?: string;
}

const DEFAULT_RETRY_AFTER_SECONDS = 1;
/** Plivo: "destination temporarily unavailable" and "failed to dispatch message". */
const DEFAULT_UNDELIVERED_CODE = '80';
const DEFAULT_FAILED_CODE = '300';

export type SendKind = 'message' | 'call';

export class FaultEngine {
  private settings: FaultSettings = {};
  private random = new RandomStreams(randomSeed());
  private sendRequests = 0;
  private scripted: Record<SendKind, number> = { message: 0, call: 0 };
  /** Messages and calls seen per targeted number, for `smsTimes` and `callTimes`. */
  private seen = new Map<string, { sms: number; call: number }>();

  constructor(initial?: FaultSettings) {
    this.set(initial ?? {});
  }

  /** Replaces every setting and restarts the random streams and the burst counter. */
  set(settings: FaultSettings): void {
    this.settings = settings;
    this.random = new RandomStreams(settings.seed ?? randomSeed());
    this.sendRequests = 0;
    this.scripted = { message: 0, call: 0 };
    this.seen = new Map();
  }

  clear(): void {
    this.set({});
  }

  /** The settings in force, with the seed actually used (reuse it to replay a run). */
  current(): FaultSettings & { seed: number } {
    return { ...this.settings, seed: this.random.seed };
  }

  /** True when any fault (not counting limits) is switched on. */
  get active(): boolean {
    const { seed: _seed, limits: _limits, ...faults } = this.settings;
    return Object.values(faults).some((value) => value !== undefined);
  }

  get limits(): Limits {
    return this.settings.limits ?? {};
  }

  /**
   * Decides a send request's fate. A scripted step comes first; then one draw picks among the
   * mutually exclusive outcomes, so each configured share is exact; a configured burst of 429s
   * overrides it.
   */
  sendRequest(kind: SendKind = 'message'): { latencyMs: number; fault: RequestFault } {
    const s = this.settings;
    const index = this.sendRequests;
    this.sendRequests += 1;
    const latencyMs = this.random.between('latency', s.latencyMs);
    const retryAfterSeconds = s.rateLimit?.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS;
    const steps = s.script?.[kind];
    if (steps && this.scripted[kind] < steps.length) {
      const step = steps[this.scripted[kind]];
      this.scripted[kind] += 1;
      if (step === 'ok') return { latencyMs, fault: { kind: 'none' } };
      if (step === 'dropBeforeAccept' || step === 'dropAfterAccept') return { latencyMs, fault: { kind: step } };
      if (step === 429) return { latencyMs, fault: { kind: 'tooManyRequests', retryAfterSeconds } };
      return { latencyMs, fault: { kind: 'error', status: step } };
    }
    if (s.rateLimit && 'burstEvery' in s.rateLimit) {
      const { burstEvery, burstLength } = s.rateLimit;
      if (index % burstEvery >= burstEvery - burstLength)
        return { latencyMs, fault: { kind: 'tooManyRequests', retryAfterSeconds } };
    }
    const shares: Array<[number, RequestFault]> = [
      [s.dropBeforeAcceptRate ?? 0, { kind: 'dropBeforeAccept' }],
      [
        s.rateLimit && 'rate429' in s.rateLimit ? s.rateLimit.rate429 : 0,
        { kind: 'tooManyRequests', retryAfterSeconds },
      ],
      ...Object.entries(s.errorRate ?? {}).map(([code, share]): [number, RequestFault] => [
        share,
        { kind: 'error', status: Number(code) },
      ]),
      [s.dropAfterAcceptRate ?? 0, { kind: 'dropAfterAccept' }],
    ];
    const total = shares.reduce((sum, [share]) => sum + share, 0);
    if (total <= 0) return { latencyMs, fault: { kind: 'none' } };
    let draw = this.random.stream('request')();
    for (const [share, fault] of shares) {
      if (draw < share) return { latencyMs, fault };
      draw -= share;
    }
    return { latencyMs, fault: { kind: 'none' } };
  }

  /** Whether Plivo is to refuse this number (E.164) as invalid. */
  invalidNumber(to: string): boolean {
    return this.settings.numbers?.[to]?.invalid === true;
  }

  /** Counts a message or call to a targeted number; true while its fault still applies. */
  private targeted(to: string, what: 'sms' | 'call', times: number | undefined): boolean {
    const seen = this.seen.get(to) ?? { sms: 0, call: 0 };
    this.seen.set(to, seen);
    seen[what] += 1;
    return times === undefined || seen[what] <= times;
  }

  /**
   * How a message that would otherwise end `base` ends; only `delivered` is degraded. A fault
   * set for the number (`to`) wins over the shares.
   */
  messageFate(base: FinalStatus, to?: string): MessageFate {
    const s = this.settings;
    const target = to === undefined ? undefined : s.numbers?.[to];
    if (target?.sms && base === 'delivered' && this.targeted(to!, 'sms', target.smsTimes)) {
      const errorCode =
        target.smsErrorCode ??
        (target.sms === 'undelivered'
          ? (s.undeliveredErrorCode ?? DEFAULT_UNDELIVERED_CODE)
          : (s.failedErrorCode ?? DEFAULT_FAILED_CODE));
      return { finalStatus: target.sms, errorCode };
    }
    if (base !== 'delivered' || (!s.undeliveredRate && !s.failedRate)) return { finalStatus: base };
    const draw = this.random.stream('outcome')();
    const undelivered = s.undeliveredRate ?? 0;
    if (draw < undelivered)
      return { finalStatus: 'undelivered', errorCode: s.undeliveredErrorCode ?? DEFAULT_UNDELIVERED_CODE };
    if (draw < undelivered + (s.failedRate ?? 0))
      return { finalStatus: 'failed', errorCode: s.failedErrorCode ?? DEFAULT_FAILED_CODE };
    return { finalStatus: base };
  }

  /** Whether this message's final callback goes out before its `sent` one. */
  reorderCallbacks(): boolean {
    const reorder = this.settings.callbacks?.reorder;
    return this.random.chance('reorder', reorder === true ? 0.5 : reorder === false ? 0 : reorder);
  }

  callbackDelayMs(): number {
    return this.random.between('callback-delay', this.settings.callbacks?.delayMs);
  }

  duplicateCallback(): boolean {
    return this.random.chance('duplicate', this.settings.callbacks?.duplicateRate);
  }

  /** A call that is not answered is, half the time each, `no-answer` or `busy`; a fault set for the number (`to`) wins. */
  callOutcome(to?: string): 'answered' | 'no-answer' | 'busy' {
    const target = to === undefined ? undefined : this.settings.numbers?.[to];
    if (target?.call && this.targeted(to!, 'call', target.callTimes)) return target.call;
    if (!this.random.chance('call', this.settings.callFailRate)) return 'answered';
    return this.random.stream('call-kind')() < 0.5 ? 'no-answer' : 'busy';
  }
}

/** Numbers the `numbers` fault marks invalid move from `valid` to `invalid`, written as Plivo writes them (no +). */
export function withTargetedInvalid(
  faults: FaultEngine,
  split: { valid: string[]; invalid: string[]; unique: number },
): { valid: string[]; invalid: string[]; unique: number } {
  const refused = split.valid.filter((to) => faults.invalidNumber(to));
  if (refused.length === 0) return split;
  return {
    valid: split.valid.filter((to) => !faults.invalidNumber(to)),
    invalid: [...split.invalid, ...refused.map(plivoNumber)],
    unique: split.unique,
  };
}
