/**
 * Operators' own words by SMS: an update sent with `sms: true`, and an announcement's message.
 * The words were checked by the API (rules/operator-text.ts) and ride on each record, so the
 * sender sends them as they are. One record per paying number of the chosen part of the audience
 * (store/operator-audience.ts), with an id fixed by the round: planning the same round again (a
 * retried activity) plans nothing new, and the audience is decided as of the request, so a retry
 * hours later decides the same.
 */
import type { Incident, Site } from '../domain/types';
import { planAll, type PlanInput } from '../store/deliveries';
import { operatorRecipients, targetSites, TargetError, type MessageTarget } from '../store/operator-audience';
import type { NoticeDeps } from './notices';

export interface OperatorMessageInput extends MessageTarget {
  incidentId: string;
  /** 0: an announcement's own message; 1, 2...: the incident's updates sent as SMS, in order. */
  round: number;
  text: string;
  /** ISO time of the request: the audience is taken as of then. */
  at: string;
}

/** Plans one SMS of `text` per paying number of the target; a target the incident no longer has plans nothing. */
export async function planOperatorMessage(
  deps: NoticeDeps,
  incident: Incident,
  input: Omit<OperatorMessageInput, 'incidentId'>,
): Promise<{ planned: number; recipients: number }> {
  const { store, logger } = deps;
  let sites: Site[];
  try {
    sites = await targetSites(store, incident, input);
  } catch (err) {
    // The API checked the target; a signal queued without a worker is checked only here: say so, plan nothing.
    if (!(err instanceof TargetError)) throw err;
    logger.warn(
      { incidentId: incident._id, round: input.round, field: err.field, unknown: err.unknown },
      'operator message not planned: its target is not part of the incident',
    );
    return { planned: 0, recipients: 0 };
  }
  async function* inputs(): AsyncIterable<PlanInput> {
    for await (const r of operatorRecipients(store, sites, new Date(input.at))) {
      yield {
        incidentId: incident._id,
        kind: 'message',
        round: input.round,
        subscriberId: r.subscriberId,
        channel: 'sms',
        to: r.phone,
        language: r.language,
        area: r.area,
        text: input.text,
      };
    }
  }
  const r = await planAll(
    store,
    inputs(),
    new Date(),
    input.round === 0 ? 'announcement' : `operator's message #${input.round}`,
  );
  logger.info(
    { incidentId: incident._id, round: input.round, sites: sites.length, recipients: r.recipients, planned: r.planned },
    'operator message planned',
  );
  return r;
}
