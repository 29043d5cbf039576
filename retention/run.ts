/**
 * The steps of a retention run, in order, over a set of activities: the workflow runs them on
 * proxied activities (workflows/retention.ts), `avviso retention run --dry-run` on the activities
 * themselves. Deterministic: it only calls `acts` and adds up their answers.
 */
import type { AgedKind } from '../store/retention';
import type { RetentionActivities, RetentionPlan } from '../activities/retention';

export type Stage = 'incidents' | AgedKind | 'ledger';
const STAGES: readonly Stage[] = ['incidents', 'alertEvents', 'rejectedPayloads', 'inbound', 'auditLog', 'ledger'];

export interface RetentionTotals {
  incidents: number;
  deliveries: number;
  receipts: number;
  sendClaims: number;
  alertEvents: number;
  /** Alert events old enough but kept: their incident is not billed yet. */
  alertEventsKept: number;
  rejectedPayloads: number;
  inbound: number;
  auditLog: number;
  ledgerEntries: number;
  billingRuns: number;
}

/** Where a run got to: what continue-as-new carries. */
export interface RetentionProgress {
  plan: RetentionPlan;
  stage: Stage;
  after?: string;
  totals: RetentionTotals;
}

export function emptyTotals(): RetentionTotals {
  return {
    incidents: 0,
    deliveries: 0,
    receipts: 0,
    sendClaims: 0,
    alertEvents: 0,
    alertEventsKept: 0,
    rejectedPayloads: 0,
    inbound: 0,
    auditLog: 0,
    ledgerEntries: 0,
    billingRuns: 0,
  };
}

type Acts = Pick<RetentionActivities, 'purgeBilledIncidentsPage' | 'purgeAgedPage' | 'purgeLedger'>;

/**
 * Runs from `progress` to the end, or until `pause()` says to stop between two pages (the workflow
 * continues as new then): returns the progress when it paused, undefined when it finished.
 */
export async function runRetentionSteps(
  acts: Acts,
  progress: RetentionProgress,
  dryRun: boolean,
  pause: () => boolean = () => false,
): Promise<RetentionProgress | undefined> {
  const { cutoffs } = progress.plan;
  const t = progress.totals;
  for (let i = STAGES.indexOf(progress.stage); i < STAGES.length; i++) {
    const stage = STAGES[i]!;
    let after = stage === progress.stage ? progress.after : undefined;
    const cutoff = stage === 'auditLog' ? cutoffs.audit : stage === 'ledger' ? cutoffs.ledgerBefore : cutoffs.records;
    if (!cutoff) continue; // kept forever
    for (;;) {
      if (pause()) return { plan: progress.plan, stage, after, totals: t };
      let next: string | undefined;
      if (stage === 'incidents') {
        const r = await acts.purgeBilledIncidentsPage({ cutoff, after, dryRun });
        t.incidents += r.incidents;
        t.deliveries += r.deliveries;
        t.receipts += r.receipts;
        t.sendClaims += r.sendClaims;
        next = r.next;
      } else if (stage === 'ledger') {
        const r = await acts.purgeLedger({ beforeMonth: cutoff, dryRun });
        t.ledgerEntries += r.entries;
        t.billingRuns += r.billingRuns;
      } else {
        const r = await acts.purgeAgedPage({ kind: stage, cutoff, after, dryRun });
        t[stage] += r.deleted;
        if (stage === 'alertEvents') t.alertEventsKept += r.kept;
        next = r.next;
      }
      if (next === undefined) break;
      after = next;
    }
  }
  return undefined;
}
