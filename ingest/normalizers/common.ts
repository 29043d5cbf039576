/**
 * What every normalizer shares: its signature, how identities are built, and the words tools
 * use for severity.
 */
import { createHash } from 'node:crypto';
import type { AlertEvent, AlertSeverity, AlertSource } from '../alert-event';

export interface NormalizeContext {
  integration: string;
  /** IANA zone for the tools that send local times without one. */
  timeZone: string;
  receivedAt: Date;
  /** Request headers, lower-cased (binary CloudEvents carry their attributes there). */
  headers: Record<string, string | undefined>;
}

/** Pure: a decoded payload in, its events out, or an IngestError naming the field that is wrong. */
export type Normalizer = (payload: unknown, ctx: NormalizeContext) => AlertEvent[];

export function dedupKeyOf(source: AlertSource, integration: string, nativeKey: string): string {
  return `${source}:${integration}:${nativeKey}`;
}

/**
 * An event id for senders that have none: a hash of what makes this delivery this alert state
 * (so the same state delivered again gets the same id, and is recognised as a repeat).
 */
export function eventIdOf(source: AlertSource, integration: string, ...parts: (string | number | undefined)[]): string {
  const hash = createHash('sha256').update(
    [source, integration, ...parts.map((p) => (p === undefined ? '' : String(p)))].join('\u0000'),
  );
  return `evt_${hash.digest('hex').slice(0, 32)}`;
}

const SEVERITY_WORDS: Record<string, AlertSeverity> = {
  critical: 'critical',
  crit: 'critical',
  disaster: 'critical',
  emergency: 'critical',
  emerg: 'critical',
  fatal: 'critical',
  page: 'critical',
  p1: 'critical',
  major: 'major',
  high: 'major',
  error: 'major',
  err: 'major',
  p2: 'major',
  minor: 'minor',
  average: 'minor',
  medium: 'minor',
  moderate: 'minor',
  p3: 'minor',
  warning: 'warning',
  warn: 'warning',
  low: 'warning',
  p4: 'warning',
  info: 'info',
  information: 'info',
  informational: 'info',
  notice: 'info',
  ok: 'info',
  none: 'info',
  p5: 'info',
};

/** A tool's severity word (any case) to ours; unknown words and no word give `unknown`. */
export function severityFromWord(word: string | undefined): AlertSeverity {
  return (word && SEVERITY_WORDS[word.trim().toLowerCase()]) || 'unknown';
}

/** Host part of `instance`-style labels (`10.0.0.1:9100` -> `10.0.0.1`, `[fe80::1]:9100` -> `fe80::1`). */
export function withoutPort(hostPort: string | undefined): string | undefined {
  if (!hostPort) return undefined;
  const m = /^([^:[\]]+):\d+$/.exec(hostPort) ?? /^\[(.+)\]:\d+$/.exec(hostPort);
  return m ? m[1] : hostPort;
}
