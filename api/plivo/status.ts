/**
 * `POST /v1/plivo/status`: Plivo's delivery receipts. Unsigned or badly signed calls are refused.
 * A receipt only moves a delivery forward (accepted -> sent -> delivered/undelivered/failed), so a
 * repeated or late receipt cannot undo a newer one. The delivery issue adds parts, cost and retries.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app';
import { ApiError } from '../errors';
import { isValidPlivoSignatureV2 } from './signature';
import type { DeliveryState } from '../../domain/types';

interface Receipt {
  MessageUUID: string;
  Status: string;
  To?: string;
  ErrorCode?: string;
}

const PROVIDER_STATES: Record<string, DeliveryState> = { queued: 'accepted', sent: 'sent', delivered: 'delivered', undelivered: 'undelivered', failed: 'failed', rejected: 'failed' };
/** The states a receipt of each state may replace. */
const MAY_REPLACE: Partial<Record<DeliveryState, DeliveryState[]>> = {
  accepted: ['sending'],
  sent: ['sending', 'accepted'],
  delivered: ['sending', 'accepted', 'sent', 'undelivered'],
  undelivered: ['sending', 'accepted', 'sent'],
  failed: ['sending', 'accepted', 'sent'],
};

export const plivoStatusRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.post<{ Body: Receipt }>('/v1/plivo/status', {
    schema: {
      tags: ['plivo'],
      summary: 'Delivery receipts from Plivo (signed, form-encoded)',
      body: { type: 'object', required: ['MessageUUID', 'Status'], properties: { MessageUUID: { type: 'string' }, Status: { type: 'string' }, To: { type: 'string' }, ErrorCode: { type: 'string' } } },
    },
  }, async (req, reply) => {
    const url = `${deps.publicUrl}${req.url}`;
    const ok = isValidPlivoSignatureV2(url, req.headers['x-plivo-signature-v2-nonce'] as string | undefined, req.headers['x-plivo-signature-v2'] as string | undefined, deps.plivoAuthToken);
    if (!ok) throw new ApiError(403, 'bad_signature', 'Missing or wrong X-Plivo-Signature-V2 for this URL; check PLIVO_AUTH_TOKEN and AVVISO_PUBLIC_URL.');
    const state = PROVIDER_STATES[req.body.Status];
    if (!state) throw new ApiError(400, 'unknown_status', `Status ${JSON.stringify(req.body.Status)} is not one Plivo sends.`, { field: 'body.Status' });
    await deps.store.deliveries.updateOne(
      { providerMessageId: req.body.MessageUUID, state: { $in: MAY_REPLACE[state] ?? [] } },
      { $set: { state, updatedAt: new Date(), ...(req.body.ErrorCode ? { error: `provider error ${req.body.ErrorCode}` } : {}) } },
    );
    return reply.status(200).send({ ok: true });
  });
};
