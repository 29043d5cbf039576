/**
 * Zabbix, through the webhook media type script we ship (ingest/templates/zabbix-webhook.js),
 * which posts the macros below as JSON. One request is one event.
 *
 * Identity: `{EVENT.ID}` of the problem; a recovery message carries the problem's id too, so it
 * closes the incident the problem opened. `{EVENT.UPDATE.STATUS}` 1 is an acknowledgement or
 * update, not a state change. Zabbix retries (3 times by default) when the script throws on a
 * non-2xx answer; escalation steps resend the same problem: both are recognised as repeats.
 * Times: `{EVENT.TIMESTAMP}` (unix) when sent, else `{EVENT.DATE}` `{EVENT.TIME}`, which are the
 * Zabbix server's local time: the integration's time zone places them.
 */
import type { AlertEvent, AlertKind, AlertSeverity } from '../alert-event';
import { malformed } from '../errors';
import { Fields } from './fields';
import { dedupKeyOf, eventIdOf, type NormalizeContext, type Normalizer } from './common';
import { localTime, unixSeconds } from './time';

/** `{EVENT.NSEVERITY}`: not classified, information, warning, average, high, disaster. */
const NSEVERITY: AlertSeverity[] = ['unknown', 'info', 'warning', 'minor', 'major', 'critical'];

/** A macro Zabbix could not expand stays literal (`{EVENT.RECOVERY.ID}`): it means "no value". */
function expanded(v: string | undefined): string | undefined {
  return v === undefined || /^\{[A-Z0-9_.]+\}$/.test(v.trim()) ? undefined : v;
}

function tagsOf(body: Fields): Record<string, string> {
  let tags = body.raw('tags');
  if (typeof tags === 'string') {
    if (expanded(tags) === undefined || tags.trim() === '') return {};
    try {
      tags = JSON.parse(tags);
    } catch {
      throw malformed(body.pathOf('tags'), 'must be {EVENT.TAGSJSON}: a JSON array of {"tag","value"}');
    }
  }
  if (tags === undefined || tags === null) return {};
  if (!Array.isArray(tags)) return body.stringMap('tags');
  const out: Record<string, string> = {};
  tags.forEach((t, i) => {
    const tag = Fields.of(t, `${body.pathOf('tags')}[${i}]`);
    out[tag.string('tag')] = tag.optionalString('value') ?? '';
  });
  return out;
}

function timeOf(body: Fields, prefix: 'event' | 'recovery', zone: string): Date | undefined {
  const ts = expanded(body.optionalString(`${prefix}_ts`));
  if (ts) return unixSeconds(ts, body.pathOf(`${prefix}_ts`));
  const date = expanded(body.optionalString(`${prefix}_date`));
  const time = expanded(body.optionalString(`${prefix}_time`));
  if (!date || !time) return undefined;
  return localTime(`${date} ${time}`, body.pathOf(`${prefix}_date`), zone, ['yyyy.MM.dd HH:mm:ss']);
}

export const normalizeZabbix: Normalizer = (payload, ctx: NormalizeContext) => {
  const body = Fields.of(payload);
  const eventId = body.string('event_id');
  if (!/^\d+$/.test(eventId))
    throw malformed(body.pathOf('event_id'), `must be {EVENT.ID} (digits), got ${JSON.stringify(eventId)}`);
  const value = body.oneOf('event_value', ['0', '1'] as const);
  const isUpdate = (expanded(body.optionalString('update_status')) ?? '0') === '1';
  const kind: AlertKind = isUpdate
    ? /^yes$/i.test(body.optionalString('ack_status') ?? '')
      ? 'ack'
      : 'update'
    : 'state';
  const nseverity = expanded(body.optionalString('nseverity'));
  if (nseverity !== undefined && !/^[0-5]$/.test(nseverity))
    throw malformed(body.pathOf('nseverity'), `must be {EVENT.NSEVERITY} (0 to 5), got ${JSON.stringify(nseverity)}`);
  const labels = tagsOf(body);
  const host = expanded(body.optionalString('host'));
  const ip = expanded(body.optionalString('host_ip'));
  const startsAt = timeOf(body, 'event', ctx.timeZone);
  const endsAt = value === '0' ? timeOf(body, 'recovery', ctx.timeZone) : undefined;
  const status = value === '1' ? 'firing' : 'resolved';
  const event: AlertEvent = {
    source: 'zabbix',
    integration: ctx.integration,
    dedupKey: dedupKeyOf('zabbix', ctx.integration, eventId),
    // An update (comment, acknowledgement, severity change) is its own delivery: hash all of it.
    eventId: isUpdate
      ? eventIdOf('zabbix', ctx.integration, eventId, 'update', JSON.stringify(payload))
      : eventIdOf('zabbix', ctx.integration, eventId, status),
    kind,
    status,
    target: {
      ...(host ? { device: host } : {}),
      ...(ip ? { ip } : {}),
      ...(labels.site ? { site: labels.site } : {}),
      ...(labels.service ? { service: labels.service } : {}),
      labels,
    },
    severity: nseverity === undefined ? 'unknown' : NSEVERITY[Number(nseverity)]!,
    summary: expanded(body.optionalString('event_name')) ?? `Zabbix problem ${eventId}${host ? ` on ${host}` : ''}`,
    ...(expanded(body.optionalString('url')) ? { url: body.optionalString('url') } : {}),
    ...(startsAt ? { startsAt } : {}),
    ...(endsAt ? { endsAt } : {}),
    receivedAt: ctx.receivedAt,
  };
  return [event];
};
