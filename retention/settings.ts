/**
 * Retention configuration, as read by config/index.ts from the RETENTION_* variables, and the
 * cut-off dates a run derives from it. Pure: the retention workflow imports it.
 */
import { monthOf } from '../billing/month';

export interface RetentionSettings {
  /**
   * Months that delivery records, receipts, alert events, webhook bodies and received SMS are kept
   * (an incident's own records: counted from when it was billed, and never before it is). 0: forever.
   */
  recordsMonths: number;
  /** Months the audit log is kept. 0: forever. */
  auditMonths: number;
  /** Years the billing ledger (invoice lines, incident costs) and the months' runs are kept. 0: forever. */
  ledgerYears: number;
}

export const DEFAULT_RETENTION: RetentionSettings = { recordsMonths: 13, auditMonths: 24, ledgerYears: 10 };

/** What a run deletes: records older than these (ISO times), ledger months before `ledgerBefore`; absent: kept forever. */
export interface RetentionCutoffs {
  records?: string;
  audit?: string;
  /** YYYY-MM (Italian time): ledger entries of earlier months go. */
  ledgerBefore?: string;
}

/** `months` calendar months before `now` (UTC), clamped to the month's last day (31 March - 1 month = 28/29 February). */
export function monthsBefore(now: Date, months: number): Date {
  const d = new Date(now.getTime());
  const day = d.getUTCDate();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() - months);
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  d.setUTCDate(Math.min(day, last));
  return d;
}

export function retentionCutoffs(settings: RetentionSettings, now: Date): RetentionCutoffs {
  return {
    ...(settings.recordsMonths > 0 ? { records: monthsBefore(now, settings.recordsMonths).toISOString() } : {}),
    ...(settings.auditMonths > 0 ? { audit: monthsBefore(now, settings.auditMonths).toISOString() } : {}),
    ...(settings.ledgerYears > 0 ? { ledgerBefore: monthOf(monthsBefore(now, settings.ledgerYears * 12)) } : {}),
  };
}
