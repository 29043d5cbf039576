/** One row of a sites file to a site's id and fields, or a FieldError naming the column. */
import type { SiteKind } from '../domain/types';
import { FieldError, recordId } from '../store/normalize';
import { siteFields, type SiteFields } from '../store/sites';
import { decimal, text } from './values';

const KINDS: Record<string, SiteKind> = {
  tower: 'tower',
  torre: 'tower',
  traliccio: 'tower',
  backhaul: 'tower',
  access_point: 'access_point',
  accesspoint: 'access_point',
  ap: 'access_point',
};

function kind(v: unknown): SiteKind | undefined {
  const t = text(v, 'kind');
  if (t === undefined) return undefined;
  const k = KINDS[t.toLowerCase().replace(/[\s-]+/g, '_')];
  if (!k) throw new FieldError('kind', `"${t}" is not tower or access_point`);
  return k;
}

export function siteFromRow(fields: Record<string, unknown>): { id: string; site: SiteFields } {
  const id = recordId(text(fields.site_id, 'site_id') ?? '', 'site_id');
  const site = siteFields({
    name: text(fields.name, 'name'),
    area: text(fields.area, 'area'),
    kind: kind(fields.kind),
    lat: decimal(fields.lat, 'lat'),
    lon: decimal(fields.lon, 'lon'),
    uplink: text(fields.uplink, 'uplink') ?? null,
  });
  if (site.uplink === id) throw new FieldError('uplink', 'a site cannot feed itself');
  return { id, site };
}
