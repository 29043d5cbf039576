/**
 * CloudEvents 1.0, for anything else that can post one: structured mode
 * (`application/cloudevents+json`), batches (`application/cloudevents-batch+json`) and binary
 * mode (attributes in `ce-*` headers, the body is `data`). The `type` says what happened:
 * `<anything>.firing` and `<anything>.resolved` change state, `.ack` and `.update` are recorded.
 * `data` names the alert: `dedupKey` (required for state changes), and `site`, `device`, `ip`,
 * `service`, `severity`, `summary`, `url`, `labels`.
 *
 * Identity of the delivery: `source` + `id`, unique per event by the specification.
 */
import type { AlertEvent, AlertKind, AlertStatus } from '../alert-event';
import { malformed } from '../errors';
import { Fields } from './fields';
import { dedupKeyOf, eventIdOf, severityFromWord, type NormalizeContext, type Normalizer } from './common';
import { rfc3339 } from './time';

const ATTRIBUTES = ['specversion', 'id', 'source', 'type', 'time', 'subject', 'datacontenttype'] as const;

function meaningOf(type: string): { kind: AlertKind; status: AlertStatus } {
  if (/\.firing$/i.test(type)) return { kind: 'state', status: 'firing' };
  if (/\.resolved$/i.test(type)) return { kind: 'state', status: 'resolved' };
  if (/\.ack(nowledged)?$/i.test(type)) return { kind: 'ack', status: 'firing' };
  if (/\.update(d)?$/i.test(type)) return { kind: 'update', status: 'firing' };
  return { kind: 'info', status: 'firing' };
}

/**
 * One event: `attrs` holds its attributes under `<prefix><name>` (`ce-id` in binary mode, where
 * errors then name `headers.ce-id`), `data` its payload.
 */
function normalizeOne(attrs: Fields, prefix: '' | 'ce-', data: Fields, ctx: NormalizeContext): AlertEvent {
  const attr = (name: (typeof ATTRIBUTES)[number]) => attrs.optionalString(prefix + name);
  const required = (name: (typeof ATTRIBUTES)[number]) => attrs.string(prefix + name);
  const specversion = required('specversion');
  if (specversion !== '1.0')
    throw malformed(attrs.pathOf(`${prefix}specversion`), `must be "1.0", got ${JSON.stringify(specversion)}`);
  const id = required('id');
  const ceSource = required('source');
  const type = required('type');
  const meaning = meaningOf(type);
  const timeText = attr('time');
  const time = timeText === undefined ? undefined : rfc3339(timeText, attrs.pathOf(`${prefix}time`));
  const nativeKey =
    meaning.kind === 'state'
      ? data.string('dedupKey')
      : (data.optionalString('dedupKey') ?? `${ceSource}/${attr('subject') ?? id}`);
  const field = (key: string) => data.optionalString(key);
  const target = {
    ...(field('device') ? { device: field('device') } : {}),
    ...(field('site') ? { site: field('site') } : {}),
    ...(field('ip') ? { ip: field('ip') } : {}),
    ...(field('service') ? { service: field('service') } : {}),
    labels: data.stringMap('labels'),
  };
  const url = field('url');
  return {
    source: 'cloudevents',
    integration: ctx.integration,
    dedupKey: dedupKeyOf('cloudevents', ctx.integration, nativeKey),
    eventId: eventIdOf('cloudevents', ctx.integration, ceSource, id),
    kind: meaning.kind,
    status: meaning.status,
    target,
    severity: severityFromWord(field('severity')),
    summary: field('summary') ?? attr('subject') ?? type,
    ...(url ? { url } : {}),
    ...(time ? (meaning.status === 'firing' ? { startsAt: time } : { endsAt: time }) : {}),
    receivedAt: ctx.receivedAt,
  };
}

function structured(item: unknown, path: string, ctx: NormalizeContext): AlertEvent {
  const ce = Fields.of(item, path);
  return normalizeOne(ce, '', ce.optionalObject('data') ?? Fields.of({}, ce.pathOf('data')), ctx);
}

export const normalizeCloudEvents: Normalizer = (payload, ctx: NormalizeContext) => {
  if (ctx.headers['ce-specversion'] !== undefined) {
    // Binary mode: the attributes are the ce-* headers, the body is the data.
    const headers: Record<string, string> = {};
    for (const name of ATTRIBUTES) {
      const v = ctx.headers[`ce-${name}`];
      if (v !== undefined) headers[`ce-${name}`] = v;
    }
    return [normalizeOne(Fields.of(headers, 'headers'), 'ce-', Fields.of(payload ?? {}, 'body'), ctx)];
  }
  if (Array.isArray(payload)) {
    if (payload.length === 0) throw malformed('body', 'must hold at least one event');
    return payload.map((item, i) => structured(item, `body[${i}]`, ctx));
  }
  return [structured(payload, 'body', ctx)];
};
