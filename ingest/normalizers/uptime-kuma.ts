/**
 * Uptime Kuma's webhook notification: `{heartbeat, monitor, msg}` as JSON, or as multipart with
 * one field `data` holding that JSON. Sent on UP->DOWN and DOWN->UP only; PENDING and MAINTENANCE
 * are recorded, not acted on. `heartbeat.time` is UTC written without a zone.
 *
 * Identity: `monitor.id`, reused by the monitor's next outage (episodes are told apart later).
 * The "Test" button sends `heartbeat: null, monitor: null`: an info event, so the test succeeds.
 */
import type { AlertEvent, AlertKind, AlertStatus } from '../alert-event';
import { malformed } from '../errors';
import { Fields } from './fields';
import { dedupKeyOf, eventIdOf, type NormalizeContext, type Normalizer } from './common';
import { utcUnlessZoned } from './time';

const HEARTBEAT: Record<string, { kind: AlertKind; status: AlertStatus; word: string }> = {
  '0': { kind: 'state', status: 'firing', word: 'DOWN' },
  '1': { kind: 'state', status: 'resolved', word: 'UP' },
  '2': { kind: 'info', status: 'firing', word: 'PENDING' },
  '3': { kind: 'info', status: 'resolved', word: 'MAINTENANCE' },
};

/** Multipart posts put the JSON in a `data` field. */
function unwrap(payload: unknown): unknown {
  const p = payload as Record<string, unknown> | null;
  if (p && typeof p === 'object' && typeof p.data === 'string' && !('heartbeat' in p) && !('monitor' in p)) {
    try {
      return JSON.parse(p.data);
    } catch {
      throw malformed('body.data', 'must hold the notification as JSON');
    }
  }
  return payload;
}

function hostOf(monitor: Fields): string | undefined {
  const hostname = monitor.optionalString('hostname');
  if (hostname) return hostname;
  const url = monitor.optionalString('url');
  if (!url) return undefined;
  try {
    return new URL(url).hostname || undefined;
  } catch {
    return undefined;
  }
}

function tagsOf(monitor: Fields): Record<string, string> {
  const tags = monitor.raw('tags');
  if (!Array.isArray(tags)) return {};
  const out: Record<string, string> = {};
  tags.forEach((t, i) => {
    const tag = Fields.of(t, `${monitor.pathOf('tags')}[${i}]`);
    out[tag.string('name')] = tag.optionalString('value') ?? '';
  });
  return out;
}

export const normalizeUptimeKuma: Normalizer = (payload, ctx: NormalizeContext) => {
  const body = Fields.of(unwrap(payload));
  const msg = body.optionalString('msg');
  if (!body.has('heartbeat') && !body.has('monitor')) {
    // The notification's "Test" button.
    return [
      {
        source: 'uptime-kuma',
        integration: ctx.integration,
        dedupKey: dedupKeyOf('uptime-kuma', ctx.integration, 'test'),
        eventId: eventIdOf('uptime-kuma', ctx.integration, 'test', msg, ctx.receivedAt.toISOString()),
        kind: 'info',
        status: 'firing',
        target: { labels: {} },
        severity: 'info',
        summary: msg ?? 'Uptime Kuma test notification',
        receivedAt: ctx.receivedAt,
      },
    ];
  }
  const monitor = body.object('monitor');
  const heartbeat = body.object('heartbeat');
  const monitorId = monitor.string('id');
  const code = heartbeat.oneOf('status', ['0', '1', '2', '3'] as const);
  const meaning = HEARTBEAT[code]!;
  const at = utcUnlessZoned(heartbeat.string('time'), heartbeat.pathOf('time'));
  const labels = tagsOf(monitor);
  const device = hostOf(monitor);
  const name = monitor.optionalString('name');
  const event: AlertEvent = {
    source: 'uptime-kuma',
    integration: ctx.integration,
    dedupKey: dedupKeyOf('uptime-kuma', ctx.integration, monitorId),
    eventId: eventIdOf('uptime-kuma', ctx.integration, monitorId, code, at.toISOString()),
    kind: meaning.kind,
    status: meaning.status,
    target: {
      ...(device ? { device } : {}),
      ...(labels.site ? { site: labels.site } : {}),
      ...(name ? { service: name } : {}),
      labels,
    },
    severity: 'unknown',
    summary: msg ?? heartbeat.optionalString('msg') ?? `${name ?? `monitor ${monitorId}`} is ${meaning.word}`,
    ...(meaning.status === 'firing' ? { startsAt: at } : { endsAt: at }),
    receivedAt: ctx.receivedAt,
  };
  return [event];
};
