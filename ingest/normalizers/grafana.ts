/**
 * Grafana Alerting's webhook contact point: Alertmanager's shape plus `orgId`, `state`, `title`,
 * `message`, and per alert `ruleUID`, `values`, `dashboardURL`, `panelURL`. Fingerprints are
 * only unique within an organisation, hence the key `<orgId>:<fingerprint>`. Its optional HMAC
 * signature is checked by the route (ingest/auth.ts), over the raw body, before this runs.
 */
import { alertsOfGroup } from './alertmanager';
import type { Normalizer } from './common';

export const normalizeGrafana: Normalizer = (payload, ctx) =>
  alertsOfGroup(payload, ctx, {
    source: 'grafana',
    nativeKey: (fingerprint, body) => `${body.optionalString('orgId') ?? '1'}:${fingerprint}`,
    url: (alert) =>
      alert.optionalString('panelURL') ?? alert.optionalString('dashboardURL') ?? alert.optionalString('generatorURL'),
  });
