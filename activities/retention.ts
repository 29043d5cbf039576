/**
 * Retention activities (docs/retention.md): one plans a run (its cut-off dates, from the
 * RETENTION_* settings at the time it runs), the others delete one bounded page each and heartbeat
 * while they work. Every page can be repeated: what is gone stays gone, and what is left is found
 * again.
 */
import { Context } from '@temporalio/activity';
import type { Store } from '../store/db';
import type { Logger } from '../domain/log';
import { retentionSettingsFromEnv } from '../config';
import { retentionCutoffs, type RetentionCutoffs, type RetentionSettings } from '../retention/settings';
import {
  billedIncidentsBefore,
  purgeAgedPage,
  purgeIncidentRecords,
  purgeLedgerBefore,
  purgeReceiptBatchesBefore,
  unbilledIncidentsBefore,
  type AgedKind,
  type AgedPage,
  type IncidentRecordCounts,
  type LedgerPurge,
} from '../store/retention';

export interface RetentionDeps {
  store: Store;
  logger: Logger;
  /** The ages; the RETENTION_* variables when not given. */
  retention?: RetentionSettings;
}

export interface RetentionPlan {
  cutoffs: RetentionCutoffs;
  /** Incidents opened before the records' cut-off and never billed: their records are kept. */
  unbilledIncidents: number;
}

export interface IncidentsPageResult extends IncidentRecordCounts {
  incidents: number;
  next?: string;
}

const EVERY_MS = 10_000;

/** Heartbeats at most every EVERY_MS (a no-op when a test or the CLI calls the function directly). */
function heartbeater(): { beat: () => void; stop: () => void } {
  let context: Context | undefined;
  try {
    context = Context.current();
  } catch {
    return { beat: () => undefined, stop: () => undefined };
  }
  // On a timer too: one query may take longer than the heartbeat timeout on a large collection.
  const timer = setInterval(() => context.heartbeat(), EVERY_MS);
  let last = 0;
  return {
    beat: () => {
      if (Date.now() - last < 1000) return;
      last = Date.now();
      context.heartbeat();
    },
    stop: () => clearInterval(timer),
  };
}

async function beating<T>(f: (progress: () => void) => Promise<T>): Promise<T> {
  const h = heartbeater();
  try {
    return await f(h.beat);
  } finally {
    h.stop();
  }
}

export function createRetentionActivities(deps: RetentionDeps) {
  const { store, logger } = deps;
  const settings = (): RetentionSettings => deps.retention ?? retentionSettingsFromEnv();

  return {
    async planRetention(input: { at?: string } = {}): Promise<RetentionPlan> {
      const cutoffs = retentionCutoffs(settings(), input.at ? new Date(input.at) : new Date());
      const unbilledIncidents = cutoffs.records ? await unbilledIncidentsBefore(store, new Date(cutoffs.records)) : 0;
      logger.info({ cutoffs, unbilledIncidents }, 'retention run');
      return { cutoffs, unbilledIncidents };
    },

    /** The records of up to `limit` billed incidents opened before the cut-off, in id order after `after`, where all of them are older. */
    async purgeBilledIncidentsPage(input: {
      cutoff: string;
      after?: string;
      limit?: number;
      dryRun?: boolean;
    }): Promise<IncidentsPageResult> {
      return beating(async (progress) => {
        // Ten at most: the largest incidents hold 100,000 records, minutes each on FerretDB.
        const limit = input.limit ?? 10;
        const ids = await billedIncidentsBefore(store, new Date(input.cutoff), input.after, limit);
        const result: IncidentsPageResult = { incidents: 0, deliveries: 0, receipts: 0, sendClaims: 0 };
        for (const incidentId of ids) {
          const c = await purgeIncidentRecords(store, incidentId, new Date(input.cutoff), {
            dryRun: input.dryRun,
            progress,
          });
          if (c.young) continue;
          result.incidents++;
          result.deliveries += c.deliveries;
          result.receipts += c.receipts;
          result.sendClaims += c.sendClaims;
          progress();
        }
        if (ids.length >= limit) result.next = ids[ids.length - 1];
        // After the last page of incidents: the receipt batches of the same age, counted with the receipts.
        else result.receipts += await purgeReceiptBatchesBefore(store, new Date(input.cutoff), input.dryRun);
        if (result.incidents)
          logger.info({ ...result, dryRun: Boolean(input.dryRun) }, "retention: incidents' records");
        return result;
      });
    },

    async purgeAgedPage(input: {
      kind: AgedKind;
      cutoff: string;
      after?: string;
      limit?: number;
      dryRun?: boolean;
    }): Promise<AgedPage> {
      return beating(async (progress) => {
        const page = await purgeAgedPage(store, input.kind, new Date(input.cutoff), {
          after: input.after,
          limit: input.limit,
          dryRun: input.dryRun,
          progress,
        });
        if (page.read)
          logger.info(
            {
              kind: input.kind,
              read: page.read,
              deleted: page.deleted,
              kept: page.kept,
              dryRun: Boolean(input.dryRun),
            },
            'retention: by age',
          );
        return page;
      });
    },

    async purgeLedger(input: { beforeMonth: string; dryRun?: boolean }): Promise<LedgerPurge> {
      return beating(async (progress) => {
        const r = await purgeLedgerBefore(store, input.beforeMonth, { dryRun: input.dryRun, progress });
        if (r.entries || r.billingRuns)
          logger.info({ ...r, beforeMonth: input.beforeMonth, dryRun: Boolean(input.dryRun) }, 'retention: ledger');
        return r;
      });
    },
  };
}

export type RetentionActivities = ReturnType<typeof createRetentionActivities>;
