/**
 * `POST /v1/plivo/status`: Plivo's delivery receipts. Unsigned or badly signed calls are refused.
 * Each receipt is stored before the 200 (see ReceiptBuffer); the receipt applier (store/receipts.ts)
 * moves the delivery records forward in grouped updates, only ever forward, so repeated and
 * out-of-order receipts (Plivo's `Sequence`) leave the latest state.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app';
import { ApiError } from '../errors';
import { verifyPlivoRequest } from './verify';
import { PROVIDER_STATES } from '../../store/receipts';
import { ReceiptBuffer } from './receipt-buffer';

interface ReceiptBody {
  MessageUUID: string;
  ParentMessageUUID?: string;
  Status: string;
  To?: string;
  Units?: string;
  TotalAmount?: string;
  ErrorCode?: string;
  Sequence?: string;
}

export const plivoStatusRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const buffer = new ReceiptBuffer(deps.store);
  app.addHook('onClose', async () => buffer.flush());

  app.post<{ Body: ReceiptBody }>(
    '/v1/plivo/status',
    {
      schema: {
        tags: ['plivo'],
        summary: 'Delivery receipts from Plivo (signed with signature V2, form-encoded)',
        body: {
          type: 'object',
          required: ['MessageUUID', 'Status'],
          properties: {
            MessageUUID: { type: 'string', minLength: 1 },
            ParentMessageUUID: { type: 'string' },
            Status: { type: 'string' },
            To: { type: 'string' },
            Units: { type: 'string' },
            TotalAmount: { type: 'string' },
            ErrorCode: { type: 'string' },
            Sequence: { type: 'string' },
          },
        },
        response: {
          200: { type: 'object', properties: { ok: { type: 'boolean' } } },
          400: { $ref: 'Error#' },
          403: { $ref: 'Error#' },
        },
      },
    },
    async (req, reply) => {
      verifyPlivoRequest(req, deps);
      const b = req.body;
      if (!PROVIDER_STATES[b.Status])
        throw new ApiError(
          400,
          'unknown_status',
          `Status ${JSON.stringify(b.Status)} is not one Plivo sends (${Object.keys(PROVIDER_STATES).join(', ')}).`,
          { field: 'body.Status' },
        );
      const num = (v?: string) => (v !== undefined && v !== '' && Number.isFinite(Number(v)) ? Number(v) : undefined);
      await buffer.add({
        messageUuid: b.MessageUUID,
        ...(b.ParentMessageUUID && b.ParentMessageUUID !== b.MessageUUID
          ? { parentMessageUuid: b.ParentMessageUUID }
          : {}),
        status: b.Status,
        sequence: num(b.Sequence),
        units: num(b.Units),
        ...(b.TotalAmount ? { totalAmount: b.TotalAmount } : {}),
        ...(b.ErrorCode ? { errorCode: b.ErrorCode } : {}),
        receivedAt: new Date(),
      });
      return reply.status(200).send({ ok: true });
    },
  );
};
