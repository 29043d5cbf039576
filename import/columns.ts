/**
 * The columns an import file may have (docs/import-formats.md describes them for people).
 * Headers are matched loosely: case, spaces, dashes and camelCase do not matter (`Contract ID`,
 * `contract-id` and `contractId` are all `contract_id`), and common names from Italian billing
 * and CRM exports are understood as aliases.
 */

export interface Column {
  name: string;
  aliases: string[];
  required: boolean;
}

export type ImportKind = 'sites' | 'subscribers';

const col = (name: string, required: boolean, ...aliases: string[]): Column => ({ name, required, aliases });

export const COLUMNS: Record<ImportKind, Column[]> = {
  sites: [
    col('site_id', true, 'id', 'site', 'sito', 'id_sito'),
    col('name', true, 'nome', 'site_name'),
    col('area', true, 'town', 'city', 'comune', 'citta', 'località', 'localita'),
    col('kind', false, 'type', 'tipo', 'site_type'),
    col('lat', false, 'latitude', 'latitudine'),
    col('lon', false, 'lng', 'long', 'longitude', 'longitudine'),
    col('uplink', false, 'uplink_id', 'parent', 'fed_by', 'upstream', 'padre', 'alimentato_da'),
  ],
  subscribers: [
    col('contract_id', true, 'contract', 'contratto', 'id_contratto', 'codice_contratto', 'customer_id'),
    col('name', true, 'nome', 'full_name', 'customer_name', 'ragione_sociale', 'nominativo'),
    col('phones', true, 'phone', 'mobile', 'mobiles', 'cellulare', 'cellulari', 'telefono', 'msisdn'),
    col('email', false, 'e_mail', 'mail'),
    col('language', false, 'lang', 'lingua'),
    col('site_id', true, 'site', 'sito', 'access_point', 'ap', 'ap_id'),
    col('segment', false, 'customer_type', 'tipo_cliente', 'segmento'),
    col('sms_alerts', false, 'sms_option', 'sms_alert', 'opzione_sms', 'avvisi_sms'),
    col('sms_alerts_since', false, 'sms_since', 'sms_alerts_from', 'sms_dal'),
    col('sms_alerts_until', false, 'sms_until', 'sms_alerts_to', 'sms_al'),
    col('opted_out', false, 'opt_out', 'optout'),
    col('quiet_hours', false, 'non_disturbare', 'do_not_disturb'),
  ],
};

/** `Contract ID`, `contract-id`, `contractId` → `contract_id`. */
export function headerKey(raw: string): string {
  return raw
    .replace(/^\uFEFF/, '')
    .trim()
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[\s\-.]+/g, '_')
    .replace(/[^\p{L}\p{N}_]/gu, '');
}

/** Maps header keys to column names; unknown keys map to undefined. */
export function columnResolver(kind: ImportKind): (key: string) => string | undefined {
  const names = new Map<string, string>();
  for (const c of COLUMNS[kind]) for (const n of [c.name, ...c.aliases]) names.set(headerKey(n), c.name);
  return (key) => names.get(headerKey(key));
}
