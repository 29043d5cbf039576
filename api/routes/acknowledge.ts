/**
 * Acknowledging a staff escalation over the API, the same for an incident and a maintenance:
 * the key's name is who took it, the service stores the first acknowledgement and tells the
 * workflow, and the audit log records who was answered and whether someone had been first.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Acknowledgement } from '../../domain/acknowledgement';

/** Who took the staff escalation, when, and how. */
export const acknowledgementSchema = {
  type: 'object',
  properties: {
    by: { type: 'string' },
    at: { type: 'string', format: 'date-time' },
    via: { type: 'string', enum: ['api', 'console', 'sms'] },
    contactId: { type: 'string', description: 'via sms: the staff contact whose number replied' },
  },
} as const;

/** The answer to an acknowledgement: the resource's status reply with the acknowledgement that counts. */
export function acknowledgedReplyOf<P extends object>(statusReply: { properties: P }) {
  return {
    type: 'object',
    properties: {
      ...statusReply.properties,
      acknowledged: acknowledgementSchema,
      alreadyAcknowledged: {
        type: 'boolean',
        description: 'true: someone had taken it already; this is their acknowledgement',
      },
    },
  } as const;
}

type Acknowledge = (
  id: string,
  who: Omit<Acknowledgement, 'at'>,
) => Promise<{ acknowledged: Acknowledgement; alreadyAcknowledged: boolean }>;

/**
 * The handler of POST /v1/<resource>/:id/acknowledge: `acknowledge` is the service's,
 * `toApiError` turns its input errors into the resource's API errors.
 */
export function acknowledgeHandler(acknowledge: Acknowledge, toApiError: (err: unknown) => never) {
  return async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const by = req.apiKey ? `${req.apiKey.name} (key ${req.apiKey.id})` : 'API';
    const r = await acknowledge(req.params.id, { by, via: 'api' }).catch(toApiError);
    req.auditOutcome = { acknowledgedBy: r.acknowledged.by, alreadyAcknowledged: r.alreadyAcknowledged };
    return reply.status(202).send(r);
  };
}
