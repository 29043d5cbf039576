/**
 * `POST /v1/plivo/status[/:request]`: Plivo's delivery receipts, with the id of the send request their
 * message went out in when the sender named it (channels/sms-plivo.ts). Unsigned or badly signed calls are refused.
 * Each receipt is stored before the 200 (see ReceiptBuffer); the receipt applier (store/receipts.ts)
 * moves the delivery records forward in grouped updates, only ever forward, so repeated and
 * out-of-order receipts (Plivo's `Sequence`) leave the latest state.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
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

  const schema = (withRequest: boolean) => ({
    tags: ['plivo'],
    summary: withRequest
      ? 'Delivery receipts from Plivo for the messages of one send request (its id in the path)'
      : 'Delivery receipts from Plivo (signed with signature V2, form-encoded)',
    ...(withRequest
      ? {
          params: {
            type: 'object',
            required: ['request'],
            properties: { request: { type: 'string', minLength: 1, maxLength: 200 } },
          },
        }
      : {}),
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
  });

  async function receive(req: FastifyRequest<{ Body: ReceiptBody; Params: { request?: string } }>) {
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
      // Signed with the path: only a hint all the same, a receipt is matched by its message id (store/receipts.ts).
      ...(req.params.request ? { request: req.params.request } : {}),
      receivedAt: new Date(),
    });
    return { ok: true };
  }

  app.post<{ Body: ReceiptBody; Params: { request?: string } }>('/v1/plivo/status', { schema: schema(false) }, receive);
  app.post<{ Body: ReceiptBody; Params: { request?: string } }>(
    '/v1/plivo/status/:request',
    { schema: schema(true) },
    receive,
  );
};
