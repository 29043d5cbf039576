/**
 * Healthchecks.io's webhook integration, with the body we ship
 * (ingest/templates/healthchecks-body.json): `$CODE` (the check's uuid: identity, reused by the
 * check's next outage), `$STATUS` (down | up), `$NOW` (ISO 8601, UTC), `$NAME_JSON`, `$TAGS`
 * (space-separated; `site:tower-lodi-01` or `site=tower-lodi-01` become labels).
 * Healthchecks retries 3 times on a non-2xx answer; a retry is the same delivery.
 */
import type { AlertEvent } from '../alert-event';
import { malformed } from '../errors';
import { Fields } from './fields';
import { dedupKeyOf, eventIdOf, severityFromWord, type NormalizeContext, type Normalizer } from './common';
import { rfc3339 } from './time';

function labelsOf(tags: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const tag of (tags ?? '').split(/\s+/).filter(Boolean)) {
    const m = /^([^:=]+)[:=](.*)$/.exec(tag);
    if (m) labels[m[1]!] = m[2]!;
    else labels[tag] = '';
  }
  return labels;
}

export const normalizeHealthchecks: Normalizer = (payload, ctx: NormalizeContext) => {
  const body = Fields.of(payload);
  const code = body.string('code');
  if (!/^[0-9a-f-]{8,64}$/i.test(code))
    throw malformed(body.pathOf('code'), `must be $CODE (the check's uuid), got ${JSON.stringify(code)}`);
  const status = body.oneOf('status', ['down', 'up'] as const, { ignoreCase: true });
  const at = body.has('now') ? rfc3339(body.string('now'), body.pathOf('now')) : undefined;
  const labels = labelsOf(body.optionalString('tags'));
  const name = body.optionalString('name');
  const device = labels.device ?? labels.host ?? name;
  const event: AlertEvent = {
    source: 'healthchecks',
    integration: ctx.integration,
    dedupKey: dedupKeyOf('healthchecks', ctx.integration, code),
    eventId: eventIdOf('healthchecks', ctx.integration, code, status, at?.toISOString()),
    kind: 'state',
    status: status === 'down' ? 'firing' : 'resolved',
    target: {
      ...(device ? { device } : {}),
      ...(labels.site ? { site: labels.site } : {}),
      ...(name ? { service: name } : {}),
      labels,
    },
    severity: severityFromWord(labels.severity),
    summary: `${name ?? `check ${code}`} is ${status}`,
    ...(at ? (status === 'down' ? { startsAt: at } : { endsAt: at }) : {}),
    receivedAt: ctx.receivedAt,
  };
  return [event];
};
