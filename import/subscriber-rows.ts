/** One row of a subscribers file to a contract id and the subscriber's fields, or a FieldError naming the column. */
import { recordId } from '../store/normalize';
import { subscriberFields, type SubscriberFields } from '../store/subscribers';
import { flag, instant, list, text } from './values';

/** Problems are reported with the file's column names, not the stored field names. */
const COLUMN_OF = {
  name: 'name',
  phones: 'phones',
  email: 'email',
  language: 'language',
  siteId: 'site_id',
  segment: 'segment',
  quietHours: 'quiet_hours',
  'smsAlerts.since': 'sms_alerts_since',
  'smsAlerts.until': 'sms_alerts_until',
} as const;

export function subscriberFromRow(fields: Record<string, unknown>): { id: string; subscriber: SubscriberFields } {
  const id = recordId(text(fields.contract_id, 'contract_id') ?? '', 'contract_id');
  const subscriber = subscriberFields(
    {
      name: text(fields.name, 'name'),
      phones: list(fields.phones, 'phones'),
      email: text(fields.email, 'email'),
      language: text(fields.language, 'language'),
      siteId: text(fields.site_id, 'site_id'),
      segment: text(fields.segment, 'segment'),
      smsAlerts: {
        active: flag(fields.sms_alerts, 'sms_alerts') ?? false,
        since: instant(fields.sms_alerts_since, 'sms_alerts_since'),
        until: instant(fields.sms_alerts_until, 'sms_alerts_until', true),
      },
      quietHours: text(fields.quiet_hours, 'quiet_hours'),
      optOut: flag(fields.opted_out, 'opted_out') ?? false,
    },
    COLUMN_OF,
  );
  return { id, subscriber };
}
