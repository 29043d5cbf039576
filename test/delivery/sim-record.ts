/**
 * What the delivery tests read from the Plivo simulator's own record: every API request it saw
 * (`GET /control/requests`, with its own timestamps), its counters, its inbox and its calls.
 * Not a test file (no `.test.ts`): the runner does not pick it up.
 */
import type { Site, Subscriber } from '../../domain/types';
import type { RequestEntry } from '../../sim/stats';
import type { TestStack } from '../support/stack';

export type { RequestEntry };

export async function simRequests(stack: TestStack, kind?: 'message' | 'call' | 'read'): Promise<RequestEntry[]> {
  const res = await fetch(`${stack.simUrl}/control/requests${kind ? `?kind=${kind}` : ''}`);
  return ((await res.json()) as { requests: RequestEntry[] }).requests;
}

export async function simStats(stack: TestStack): Promise<SimStatsSnapshot> {
  return (await (await fetch(`${stack.simUrl}/control/stats`)).json()) as SimStatsSnapshot;
}

export async function setFaults(stack: TestStack, faults: unknown): Promise<void> {
  const res = await fetch(`${stack.simUrl}/control/faults`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(faults),
  });
  if (!res.ok) throw new Error(`the simulator refused the faults: ${await res.text()}`);
}

export interface SimInboxEntry {
  messageUuid: string;
  text: string;
  status: string;
  errorCode: string;
  acceptedAt: string;
  sentAt?: string;
  responseDropped?: boolean;
  requestId: string;
}

export interface SimCallEntry {
  callUuid: string;
  requestUuid: string;
  status: string;
  spokenText: string;
  firedAt: string;
}

export async function simInbox(
  stack: TestStack,
): Promise<{ phones: Record<string, SimInboxEntry[]>; calls: Record<string, SimCallEntry[]> }> {
  return (await (await fetch(`${stack.simUrl}/inbox.json`)).json()) as {
    phones: Record<string, SimInboxEntry[]>;
    calls: Record<string, SimCallEntry[]>;
  };
}

export interface EndpointSnapshot {
  total: number;
  accepted: number;
  tooManyRequests: number;
  limitRejections: number;
  serverErrors: Record<string, number>;
  clientErrors: Record<string, number>;
  droppedBeforeAccept: number;
  droppedAfterAccept: number;
}

export interface SimStatsSnapshot {
  requests: Record<'message' | 'call' | 'read', EndpointSnapshot>;
  messages: {
    accepted: number;
    acceptedWithoutResponse: number;
    expiredInQueue: number;
    stored: number;
    byStatus: Record<string, number>;
  };
  calls: Record<string, number>;
}

/** Italian mobile numbers, one per index: +39347 then seven digits. */
export function phoneOf(base: number, i: number): string {
  return `+39347${String(base + i).padStart(7, '0')}`;
}

export function subscriber(id: string, phone: string, siteId: string, extra: Partial<Subscriber> = {}): Subscriber {
  return {
    _id: id,
    name: `Subscriber ${id}`,
    phones: [phone],
    language: 'it',
    siteId,
    segment: 'residential',
    smsAlerts: { active: true },
    optedOut: false,
    ...extra,
  };
}

export function site(id: string, area: string): Site {
  return { _id: id, name: `Tower ${area}`, area, uplink: null };
}
