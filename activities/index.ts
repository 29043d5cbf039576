/**
 * Activities: the only code that the incident workflow's side effects run through. Each is a
 * plain async function with explicit inputs, safe to run more than once (Temporal retries it):
 * the delivery records in MongoDB make a repeat a no-op.
 */
import type { IncidentPhase } from '../domain/types';
import { recordPhase } from '../store/incidents';
import { nextDueAt } from '../store/deliveries';
import type { MessageKind } from '../domain/types';
import { createDeliveryActivities, createDeliverySender, type DeliveryDeps } from './delivery';
import { createNoticeActivities } from './notices';
import { createIncidentActionActivities } from './incident-actions';
import { createBillingActivities } from './billing';
import { createMaintenanceActivities } from './maintenance';
import { keptAlive } from './keep-alive';
import { createRetentionActivities } from './retention';

export type ActivityDeps = DeliveryDeps;

export function createActivities(deps: ActivityDeps) {
  const { store } = deps;
  const sender = createDeliverySender(deps);

  return {
    // These heartbeat while they run, whatever they wait for: a short heartbeat timeout finds a dead worker soon.
    ...keptAlive(createDeliveryActivities(deps, sender)),
    ...keptAlive(createNoticeActivities({ ...deps, whilePlanning: sender.whilePlanning })),
    ...keptAlive(createIncidentActionActivities(deps)),
    ...createBillingActivities(deps),
    ...keptAlive(createMaintenanceActivities(deps)),
    ...createRetentionActivities(deps),

    async recordIncidentPhase(input: {
      incidentId: string;
      phase: IncidentPhase;
      at: string;
      note?: string;
    }): Promise<void> {
      await recordPhase(store, input.incidentId, input.phase, new Date(input.at), input.note);
    },

    /** When the next held or delayed message of these kinds falls due (ISO), or null. */
    async nextDue(input: { incidentId: string; kinds: MessageKind[] }): Promise<string | null> {
      const at = await nextDueAt(store, input.incidentId, input.kinds, new Date());
      return at ? at.toISOString() : null;
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
