/**
 * From what an alert names (a label, a host, an IP) to the network's site ids, following the
 * integration's site mappings, tried in order. Pure: whether the ids exist is checked against
 * the database by the caller.
 */
import type { AlertTarget } from './alert-event';
import type { SiteMapping } from './integrations';

export type SiteResolution = { siteIds: string[] } | { problem: string };

function describe(mapping: SiteMapping, target: AlertTarget): string {
  if ('label' in mapping) {
    const names = Object.keys(target.labels);
    return `the alert has no label "${mapping.label}"${names.length ? ` (it has ${names.slice(0, 12).join(', ')})` : ''}`;
  }
  if ('field' in mapping) return `the alert has no ${mapping.field}`;
  if ('lookup' in mapping) {
    const key = mapping.lookup.by === 'ip' ? target.ip : target.device;
    return key
      ? `${mapping.lookup.by} ${JSON.stringify(key)} is not in the integration's lookup table`
      : `the alert has no ${mapping.lookup.by === 'ip' ? 'IP address' : 'host name'} to look up`;
  }
  return 'no static site';
}

function apply(mapping: SiteMapping, target: AlertTarget): string[] | undefined {
  if ('static' in mapping) return mapping.static;
  if ('label' in mapping) {
    const v = target.labels[mapping.label];
    return v ? [v] : undefined;
  }
  if ('field' in mapping) {
    const v = target[mapping.field];
    return v ? [v] : undefined;
  }
  const key = mapping.lookup.by === 'ip' ? target.ip : target.device?.toLowerCase();
  return key ? mapping.lookup.table[key] : undefined;
}

export function siteIdsFor(target: AlertTarget, mappings: SiteMapping[]): SiteResolution {
  for (const mapping of mappings) {
    const ids = apply(mapping, target);
    if (ids && ids.length > 0) return { siteIds: [...new Set(ids.map((id) => id.trim()))] };
  }
  return {
    problem: `cannot tell which site this alert is about: ${mappings.map((m) => describe(m, target)).join('; ')}`,
  };
}
