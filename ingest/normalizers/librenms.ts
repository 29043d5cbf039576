/**
 * LibreNMS, through the API transport and the body we ship (ingest/templates/librenms-body.json).
 * LibreNMS posts it as text/plain unless a Content-Type header is added: both are read. Its Blade
 * templates HTML-escape every `{{ }}` value, which keeps the JSON valid; we undo the escaping.
 *
 * Identity: `device_id:rule_id` (what `alert_id` stands for, and reused by the next outage of
 * the same device and rule). `uid` is one alert-log row: the delivery's own id.
 * States: 1 alert, 3 worse, 4 better are firing; 0 recovered; 2 acknowledged; 5 changed is an update.
 * `timestamp` is the LibreNMS server's local time: the integration's time zone places it.
 * LibreNMS does not retry.
 */
import type { AlertEvent, AlertKind, AlertStatus } from '../alert-event';
import { malformed } from '../errors';
import { Fields } from './fields';
import { dedupKeyOf, eventIdOf, severityFromWord, type NormalizeContext, type Normalizer } from './common';
import { localTime } from './time';

const STATES: Record<string, { kind: AlertKind; status: AlertStatus }> = {
  '0': { kind: 'state', status: 'resolved' },
  '1': { kind: 'state', status: 'firing' },
  '2': { kind: 'ack', status: 'firing' },
  '3': { kind: 'state', status: 'firing' },
  '4': { kind: 'state', status: 'firing' },
  '5': { kind: 'update', status: 'firing' },
};

const ENTITIES: Record<string, string> = {
  '&amp;': '&',
  '&lt;': '<',
  '&gt;': '>',
  '&quot;': '"',
  '&#039;': "'",
  '&#39;': "'",
};
function unescapeHtml(v: string | undefined): string | undefined {
  return v?.replace(/&(amp|lt|gt|quot|#0?39);/g, (m) => ENTITIES[m] ?? m);
}

function digits(body: Fields, key: string): string {
  const v = body.string(key);
  if (!/^\d+$/.test(v)) throw malformed(body.pathOf(key), `must be a LibreNMS id (digits), got ${JSON.stringify(v)}`);
  return v;
}

export const normalizeLibreNms: Normalizer = (payload, ctx: NormalizeContext) => {
  const body = Fields.of(payload);
  const deviceId = digits(body, 'device_id');
  const ruleId = digits(body, 'rule_id');
  const state = body.oneOf('state', Object.keys(STATES));
  const meaning = STATES[state]!;
  const text = (key: string) => unescapeHtml(body.optionalString(key));
  const at = body.has('timestamp')
    ? localTime(body.string('timestamp'), body.pathOf('timestamp'), ctx.timeZone)
    : undefined;
  const hostname = text('hostname');
  const ip = text('ip');
  const labels: Record<string, string> = {};
  for (const key of ['hostname', 'sysName', 'location', 'rule', 'name']) {
    const v = text(key);
    if (v !== undefined) labels[key] = v;
  }
  const nativeKey = `${deviceId}:${ruleId}`;
  const uid = body.optionalString('uid');
  const event: AlertEvent = {
    source: 'librenms',
    integration: ctx.integration,
    dedupKey: dedupKeyOf('librenms', ctx.integration, nativeKey),
    eventId: uid
      ? eventIdOf('librenms', ctx.integration, 'uid', uid)
      : eventIdOf('librenms', ctx.integration, nativeKey, state, at?.toISOString()),
    kind: meaning.kind,
    status: meaning.status,
    target: { ...(hostname ? { device: hostname } : {}), ...(ip ? { ip } : {}), labels },
    severity: severityFromWord(body.optionalString('severity')),
    summary: text('title') ?? `LibreNMS rule ${ruleId} on ${hostname ?? `device ${deviceId}`}`,
    ...(at ? (meaning.status === 'firing' ? { startsAt: at } : { endsAt: at }) : {}),
    receivedAt: ctx.receivedAt,
  };
  return [event];
};
