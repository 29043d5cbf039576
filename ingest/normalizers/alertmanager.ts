/**
 * Prometheus Alertmanager's webhook (`version` "4"): one POST holds a group of alerts, firing and
 * resolved mixed, and each becomes its own event. Grafana sends the same shape (see grafana.ts).
 *
 * Identity: the alert's `fingerprint` (a hash of its label set), reused by the next outage of the
 * same thing, so episodes are told apart later (ingest/process.ts). We do not add `externalURL`
 * to the key: the replicas of an HA Alertmanager may each report their own URL, and keying on it
 * would open one incident per replica. Two separate Alertmanagers get two integrations.
 * A resend of a still-firing group (every repeat_interval) has the same fingerprint, status and
 * startsAt, hence the same event id: it is recognised as a repeat.
 */
import { createHash } from 'node:crypto';
import type { AlertEvent, AlertSource } from '../alert-event';
import { Fields } from './fields';
import { dedupKeyOf, eventIdOf, severityFromWord, withoutPort, type NormalizeContext, type Normalizer } from './common';
import { rfc3339 } from './time';

/** Alertmanager before 0.19 sent no fingerprint: the same idea, over the sorted labels. */
function fingerprintOf(labels: Record<string, string>): string {
  const text = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join('\u0000');
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

export interface AlertShapeOptions {
  source: AlertSource;
  /** The native key of one alert, given its fingerprint and the whole payload. */
  nativeKey(fingerprint: string, payload: Fields): string;
  /** The link for operators: Grafana has better ones than generatorURL. */
  url(alert: Fields): string | undefined;
}

/** Both Alertmanager and Grafana: one event per element of `alerts`. */
export function alertsOfGroup(payload: unknown, ctx: NormalizeContext, opts: AlertShapeOptions): AlertEvent[] {
  const body = Fields.of(payload);
  return body.objects('alerts').map((alert) => {
    const status = alert.oneOf('status', ['firing', 'resolved'] as const);
    alert.object('labels');
    const labels = alert.stringMap('labels');
    const annotations = alert.stringMap('annotations');
    const startsAt = rfc3339(alert.string('startsAt'), alert.pathOf('startsAt'));
    const endsAtText = alert.optionalString('endsAt');
    const endsAt = endsAtText === undefined ? undefined : rfc3339(endsAtText, alert.pathOf('endsAt'));
    const fingerprint = alert.optionalString('fingerprint') ?? fingerprintOf(labels);
    const nativeKey = opts.nativeKey(fingerprint, body);
    const device = labels.device ?? labels.host ?? labels.hostname ?? withoutPort(labels.instance);
    const service = labels.service ?? labels.job;
    const url = opts.url(alert);
    return {
      source: opts.source,
      integration: ctx.integration,
      dedupKey: dedupKeyOf(opts.source, ctx.integration, nativeKey),
      eventId: eventIdOf(
        opts.source,
        ctx.integration,
        nativeKey,
        status,
        startsAt?.toISOString(),
        status === 'resolved' ? endsAt?.toISOString() : undefined,
      ),
      kind: 'state',
      status,
      target: {
        ...(device ? { device } : {}),
        ...(labels.site ? { site: labels.site } : {}),
        ...(labels.ip ? { ip: labels.ip } : {}),
        ...(service ? { service } : {}),
        labels,
      },
      severity: severityFromWord(labels.severity ?? labels.priority),
      summary:
        annotations.summary ??
        annotations.description ??
        annotations.message ??
        ([labels.alertname, device].filter(Boolean).join(' on ') || 'alert'),
      ...(url ? { url } : {}),
      ...(startsAt ? { startsAt } : {}),
      ...(endsAt ? { endsAt } : {}),
      receivedAt: ctx.receivedAt,
    } satisfies AlertEvent;
  });
}

export const normalizeAlertmanager: Normalizer = (payload, ctx) =>
  alertsOfGroup(payload, ctx, {
    source: 'alertmanager',
    nativeKey: (fingerprint) => fingerprint,
    url: (alert) => alert.optionalString('generatorURL'),
  });
