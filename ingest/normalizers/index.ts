/** Which normalizer reads which tool's payload. */
import type { IngestSource } from '../integrations';
import type { Normalizer } from './common';
import { normalizeAlertmanager } from './alertmanager';
import { normalizeGrafana } from './grafana';
import { normalizeZabbix } from './zabbix';
import { normalizeUptimeKuma } from './uptime-kuma';
import { normalizeLibreNms } from './librenms';
import { normalizeIcinga2, normalizeNagios } from './icinga-nagios';
import { normalizeHealthchecks } from './healthchecks';
import { normalizePrtg } from './prtg';
import { normalizeCloudEvents } from './cloudevents';

export const NORMALIZERS: Record<IngestSource, Normalizer> = {
  alertmanager: normalizeAlertmanager,
  grafana: normalizeGrafana,
  zabbix: normalizeZabbix,
  'uptime-kuma': normalizeUptimeKuma,
  librenms: normalizeLibreNms,
  icinga2: normalizeIcinga2,
  nagios: normalizeNagios,
  healthchecks: normalizeHealthchecks,
  prtg: normalizePrtg,
  cloudevents: normalizeCloudEvents,
};

export type { NormalizeContext, Normalizer } from './common';
