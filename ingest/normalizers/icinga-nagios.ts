/**
 * Icinga 2 and Nagios, through the notification commands we ship (ingest/templates/icinga2-
 * avviso.conf, nagios-avviso.cfg): curl posts the macros form-encoded (`--data-urlencode`, so plugin
 * output with quotes or newlines cannot break the body); JSON with the same fields is read too.
 *
 * Identity: Nagios numbers each problem (`$HOSTPROBLEMID$`, 0 on recovery, where
 * `$LASTHOSTPROBLEMID$` holds it); Icinga 2 has no such id: `host!service`, reused by the next
 * outage. Icinga re-notifies a problem every `interval` with a new `timet` but the same
 * `last_state_change`, which is why the event id is built on the latter: re-notifications are
 * recognised as repeats instead of reopening an incident an operator closed.
 */
import type { AlertEvent, AlertKind, AlertSeverity, AlertSource, AlertStatus } from '../alert-event';
import { Fields } from './fields';
import { dedupKeyOf, eventIdOf, type NormalizeContext, type Normalizer } from './common';
import { unixSeconds } from './time';

const TYPES: Record<string, { kind: AlertKind; status: AlertStatus }> = {
  PROBLEM: { kind: 'state', status: 'firing' },
  RECOVERY: { kind: 'state', status: 'resolved' },
  ACKNOWLEDGEMENT: { kind: 'ack', status: 'firing' },
  CUSTOM: { kind: 'info', status: 'firing' },
  FLAPPINGSTART: { kind: 'info', status: 'firing' },
  FLAPPINGEND: { kind: 'info', status: 'resolved' },
  FLAPPINGSTOP: { kind: 'info', status: 'resolved' },
  FLAPPINGDISABLED: { kind: 'info', status: 'resolved' },
  DOWNTIMESTART: { kind: 'info', status: 'firing' },
  DOWNTIMEEND: { kind: 'info', status: 'resolved' },
  DOWNTIMECANCELLED: { kind: 'info', status: 'resolved' },
  DOWNTIMEREMOVED: { kind: 'info', status: 'resolved' },
};

/**
 * UNREACHABLE is a host behind a parent that is down: its own incident is a lesser one (joining it
 * to the parent's is correlation, elsewhere). UNKNOWN is a check that could not run, not an outage.
 */
const STATES: Record<string, AlertSeverity> = {
  DOWN: 'critical',
  UNREACHABLE: 'major',
  CRITICAL: 'major',
  WARNING: 'warning',
  UNKNOWN: 'warning',
  UP: 'info',
  OK: 'info',
};

function nonZero(v: string | undefined): string | undefined {
  return v && v !== '0' ? v : undefined;
}

function normalizer(source: Extract<AlertSource, 'icinga2' | 'nagios'>): Normalizer {
  return (payload, ctx: NormalizeContext) => {
    const body = Fields.of(payload);
    const type = body.oneOf('type', Object.keys(TYPES), { ignoreCase: true });
    const meaning = TYPES[type]!;
    const host = body.string('host');
    const service = body.optionalString('service');
    const state = body.oneOf('state', Object.keys(STATES), { ignoreCase: true });
    const address = body.optionalString('address');
    const object = service ? `${host}!${service}` : host;
    const problemId =
      source === 'nagios'
        ? (nonZero(body.optionalString('problem_id')) ?? nonZero(body.optionalString('last_problem_id')))
        : undefined;
    const nativeKey = problemId ? `problem:${problemId}` : object;
    const notifiedAt = body.has('timet') ? unixSeconds(body.string('timet'), body.pathOf('timet')) : undefined;
    const changedAt = body.has('last_state_change')
      ? unixSeconds(body.string('last_state_change'), body.pathOf('last_state_change'))
      : undefined;
    const since = changedAt ?? notifiedAt;
    // State changes are identified by when the state began; acks and the rest by when they were sent.
    const when = meaning.kind === 'state' ? since : (notifiedAt ?? since);
    const event: AlertEvent = {
      source,
      integration: ctx.integration,
      dedupKey: dedupKeyOf(source, ctx.integration, nativeKey),
      eventId: eventIdOf(
        source,
        ctx.integration,
        nativeKey,
        type,
        state,
        when?.toISOString() ?? ctx.receivedAt.toISOString(),
        body.optionalString('comment'),
      ),
      kind: meaning.kind,
      status: meaning.status,
      target: {
        device: host,
        ...(address ? { ip: address } : {}),
        ...(service ? { service } : {}),
        labels: { host, ...(service ? { service } : {}), state },
      },
      severity: STATES[state]!,
      summary: body.optionalString('output')
        ? `${object} ${state}: ${body.optionalString('output')}`
        : `${object} is ${state}`,
      ...(since ? (meaning.status === 'firing' ? { startsAt: since } : { endsAt: since }) : {}),
      receivedAt: ctx.receivedAt,
    };
    return [event];
  };
}

export const normalizeIcinga2 = normalizer('icinga2');
export const normalizeNagios = normalizer('nagios');
