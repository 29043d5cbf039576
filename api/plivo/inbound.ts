/**
 * `POST /v1/plivo/inbound`: SMS that subscribers send to our number, signed like receipts.
 * STOP, ARRESTA or STOP ALL end the alert service for that number; START or ATTIVA bring it back;
 * INFO or STATO reply with the state of the subscriber's area. Each message is stored before we
 * answer; replies go out in the subscriber's language. A staff contact's "OK 123456" acknowledges
 * the escalation whose message carried that code (services/acknowledge-by-sms.ts).
 */
import type { FastifyPluginAsync } from 'fastify';
import { MongoServerError } from 'mongodb';
import type { AppDeps } from '../app';
import { verifyPlivoRequest } from './verify';
import { maskPhone } from '../../domain/phone';
import type { Language, Subscriber } from '../../domain/types';
import { interpretKeyword, replyText, siteStatus, type InboundAction, type SiteStatus } from '../../domain/inbound';
import { upstreamSiteIds } from '../../store/network';
import { dropPlannedTo } from '../../store/deliveries';
import { setOptedOut } from '../../store/subscribers';
import { acknowledgementReply } from '../../domain/acknowledgement';
import { createIncidentService } from '../../services/incidents';
import { createMaintenanceService } from '../../services/maintenances';
import { acknowledgeBySms, acknowledgementReplyText, staffContactByPhone } from '../../services/acknowledge-by-sms';

interface InboundBody {
  From: string;
  To: string;
  Text?: string;
  MessageUUID: string;
  Type?: string;
}

export const plivoInboundRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const { store } = deps;
  const acknowledging = { incidents: createIncidentService(deps), maintenances: createMaintenanceService(deps) };

  async function answer(from: string, text: string, log: { warn: (o: object, m: string) => void }): Promise<void> {
    if (!deps.replySms) return;
    try {
      await deps.replySms(from, text);
    } catch (err) {
      // What the message asked for is stored; a lost confirmation must not make Plivo resend it.
      log.warn({ from: maskPhone(from), err: (err as Error).message }, 'could not send the reply to an inbound SMS');
    }
  }

  /** The state of the first subscriber's site (a number on several contracts gets the answer for the first). */
  async function areaStatus(subscribers: Subscriber[], now: Date): Promise<SiteStatus> {
    const chain = await upstreamSiteIds(store, subscribers[0]!.siteId);
    // On the site or above it (named when opened), or on it as snapshot (affected when planned).
    const covering = await store.incidents
      .find(
        {
          $or: [{ siteIds: { $in: chain } }, { affectedSiteIds: subscribers[0]!.siteId }],
          phase: { $nin: ['resolved', 'cancelled', 'completed', 'billed'] },
        },
        { projection: { kind: 1, phase: 1, areas: 1, estimatedEnd: 1, window: 1 } },
      )
      .toArray();
    return siteStatus(covering, now);
  }

  async function apply(action: InboundAction, subscribers: Subscriber[], from: string, now: Date): Promise<void> {
    const ids = subscribers.map((s) => s._id);
    if (action === 'stop') {
      await setOptedOut(store, ids, true, now);
      // STOP means stop: what is still planned to this number goes nowhere (the confirmation below is the last SMS).
      const dropped = await dropPlannedTo(store, from, now, 'not sent: the subscriber opted out (STOP)');
      if (dropped)
        app.log.info({ from: maskPhone(from), dropped }, 'planned messages to a number that opted out were given up');
    }
    if (action === 'start') await setOptedOut(store, ids, false, now);
  }

  app.post<{ Body: InboundBody }>(
    '/v1/plivo/inbound',
    {
      schema: {
        tags: ['plivo'],
        summary: 'Inbound SMS from subscribers (STOP/ARRESTA, START/ATTIVA, INFO/STATO), signed with signature V2',
        body: {
          type: 'object',
          required: ['From', 'To', 'MessageUUID'],
          properties: {
            From: { type: 'string', minLength: 1 },
            To: { type: 'string' },
            Text: { type: 'string' },
            MessageUUID: { type: 'string', minLength: 1 },
            Type: { type: 'string' },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { ok: { type: 'boolean' }, action: { type: 'string' }, duplicate: { type: 'boolean' } },
          },
          403: { $ref: 'Error#' },
        },
      },
    },
    async (req, reply) => {
      verifyPlivoRequest(req, deps);
      const from = `+${req.body.From.replace(/^\+/, '')}`;
      const text = req.body.Text ?? '';
      const ackCode = acknowledgementReply(text);
      const staff = ackCode ? await staffContactByPhone(store, from, deps.rules?.current().contacts) : null;
      const keyword = interpretKeyword(text);
      const action = staff ? 'acknowledge' : keyword;
      const now = new Date();
      try {
        await store.inbound.insertOne({
          messageUuid: req.body.MessageUUID,
          from,
          to: req.body.To,
          text,
          receivedAt: now,
          action,
        });
      } catch (err) {
        // Plivo may deliver the same inbound message twice: act on it once.
        if (err instanceof MongoServerError && err.code === 11000)
          return reply.send({ ok: true, action, duplicate: true });
        throw err;
      }
      if (staff && ackCode) {
        const r = await acknowledgeBySms(store, acknowledging, staff, ackCode);
        await store.inbound.updateOne(
          { messageUuid: req.body.MessageUUID },
          { $set: { contactId: staff._id, ...(r.incidentId ? { incidentId: r.incidentId } : {}) } },
        );
        await answer(from, acknowledgementReplyText(r, ackCode, staff.language), req.log);
        req.log.info(
          { from: maskPhone(from), contactId: staff._id, incidentId: r.incidentId, outcome: r.outcome },
          'escalation acknowledgement by SMS',
        );
        return reply.send({ ok: true, action });
      }
      const subscribers = await store.subscribers.find({ phones: from }).toArray();
      await store.inbound.updateOne(
        { messageUuid: req.body.MessageUUID },
        { $set: { subscriberIds: subscribers.map((s) => s._id) } },
      );
      if (subscribers.length === 0) {
        req.log.info({ from: maskPhone(from), action }, 'inbound SMS from an unknown number: no reply');
        return reply.send({ ok: true, action });
      }
      await apply(keyword, subscribers, from, now);
      const language: Language = subscribers[0]!.language;
      const status = keyword === 'info' ? await areaStatus(subscribers, now) : undefined;
      await answer(from, replyText(keyword, language, status), req.log);
      req.log.info({ from: maskPhone(from), action, subscribers: subscribers.length }, 'inbound SMS handled');
      return reply.send({ ok: true, action });
    },
  );
};
