/**
 * Subscribers over HTTP: search (by contract, phone number or site), create, read, change,
 * delete; and, for data protection requests, export everything held about one contract and
 * erase it (store/privacy.ts). Phone numbers are normalized to E.164 and must be mobile numbers;
 * a refused number is named masked, with the reason.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app';
import { ApiError } from '../errors';
import type { Subscriber } from '../../domain/types';
import {
  createSubscriber,
  deleteSubscriber,
  findSubscribers,
  getSubscriber,
  subscriberFields,
  updateSubscriber,
  type SubscriberInput,
  type SubscriberPatch,
} from '../../store/subscribers';
import { eraseSubscriber, exportSubscriberData } from '../../store/privacy';
import { recordId } from '../../store/normalize';
import { errors, given, idParam, ID_PATTERN, present, storeCall, time } from './network-common';

const smsAlertsOut = { type: 'object', properties: { active: { type: 'boolean' }, since: time, until: time } } as const;

export const subscriberSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'The contract id' },
    name: { type: 'string' },
    phones: { type: 'array', items: { type: 'string' }, description: 'Mobile numbers, E.164' },
    email: { type: 'string' },
    language: { type: 'string', enum: ['it', 'en'] },
    siteId: { type: 'string', description: 'The site or access point that serves them' },
    segment: { type: 'string', enum: ['residential', 'business'] },
    smsAlerts: {
      ...smsAlertsOut,
      description: 'The paid SMS alert option: in force while active and since <= now < until',
    },
    optedOut: { type: 'boolean' },
    optedOutAt: time,
    quietHours: { type: 'string', description: 'HH:MM-HH:MM, Italian time' },
    createdAt: time,
    updatedAt: time,
  },
} as const;

const fieldsBody = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  phones: {
    type: 'array',
    minItems: 1,
    maxItems: 10,
    items: { type: 'string', minLength: 3, maxLength: 40 },
    description: 'Mobile numbers in any usual spelling (347 100 0001, +39 347...); stored as E.164',
  },
  email: { type: 'string', nullable: true, maxLength: 254, description: 'null removes it' },
  language: { type: 'string', enum: ['it', 'en'] },
  siteId: { type: 'string', pattern: ID_PATTERN },
  segment: { type: 'string', enum: ['residential', 'business'] },
  smsAlerts: {
    type: 'object',
    additionalProperties: false,
    properties: {
      active: { type: 'boolean' },
      since: { ...time, nullable: true },
      until: { ...time, nullable: true, description: 'The first moment it is no longer in force' },
    },
  },
  quietHours: {
    type: 'string',
    nullable: true,
    maxLength: 20,
    description: 'HH:MM-HH:MM, Italian time, e.g. 22:00-07:00; null removes it',
  },
} as const;

type DatesAsText<T> = Omit<T, 'smsAlerts'> & {
  smsAlerts?: { active?: boolean; since?: string | null; until?: string | null };
};

function withDates<T extends { smsAlerts?: { active?: boolean; since?: string | null; until?: string | null } }>(
  body: T,
): Omit<T, 'smsAlerts'> & { smsAlerts?: SubscriberInput['smsAlerts'] } {
  if (!body.smsAlerts) return body as Omit<T, 'smsAlerts'>;
  const date = (v: string | null | undefined) => (v === null ? null : v === undefined ? undefined : new Date(v));
  return {
    ...body,
    smsAlerts: { active: body.smsAlerts.active, since: date(body.smsAlerts.since), until: date(body.smsAlerts.until) },
  };
}

const shown = (s: Subscriber) => present(s);

export const subscriberRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const { store } = deps;

  app.get<{ Querystring: { contract?: string; phone?: string; siteId?: string; after?: string; limit: number } }>(
    '/v1/subscribers',
    {
      schema: {
        tags: ['network'],
        summary: 'Find subscribers by contract, phone number or site; paged by contract id',
        description:
          'A phone number may be written any usual way; it is normalized before the search. With no filter, lists everyone.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            contract: { type: 'string', maxLength: 100, description: 'Exact contract id' },
            phone: { type: 'string', maxLength: 40 },
            siteId: {
              type: 'string',
              maxLength: 100,
              description: 'Served by this site (not those downstream: see /v1/sites/{id}/affected)',
            },
            after: { type: 'string', maxLength: 100, description: "The previous page's `next`" },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { items: { type: 'array', items: subscriberSchema }, next: { type: 'string', nullable: true } },
          },
          ...errors(400, 422),
        },
      },
    },
    async (req) => {
      const q = req.query;
      const page = await storeCall(() =>
        findSubscribers(store, {
          contract: given(q.contract),
          phone: given(q.phone),
          siteId: given(q.siteId),
          after: given(q.after),
          limit: q.limit,
        }),
      );
      return { items: page.items.map(shown), next: page.next };
    },
  );

  app.post<{ Body: DatesAsText<SubscriberInput> & { id: string; optedOut?: boolean } }>(
    '/v1/subscribers',
    {
      schema: {
        tags: ['network'],
        summary: 'Add a subscriber',
        body: {
          type: 'object',
          required: ['id', 'name', 'phones', 'siteId'],
          additionalProperties: false,
          properties: {
            id: { type: 'string', pattern: ID_PATTERN, description: 'The contract id' },
            ...fieldsBody,
            optedOut: { type: 'boolean', default: false },
          },
        },
        response: { 201: subscriberSchema, ...errors(400, 409, 422) },
      },
    },
    async (req, reply) => {
      const { id, optedOut, ...body } = withDates(req.body);
      const s = await storeCall(() =>
        createSubscriber(store, recordId(id, 'body.id'), subscriberFields({ ...body, optOut: optedOut }), new Date()),
      );
      return reply
        .status(201)
        .header('location', `/v1/subscribers/${encodeURIComponent(s._id)}`)
        .send(shown(s));
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/subscribers/:id',
    {
      schema: {
        tags: ['network'],
        summary: 'One subscriber',
        params: idParam('contract'),
        response: { 200: subscriberSchema, ...errors(404) },
      },
    },
    async (req) => shown(await storeCall(() => getSubscriber(store, req.params.id))),
  );

  app.patch<{ Params: { id: string }; Body: DatesAsText<SubscriberPatch> }>(
    '/v1/subscribers/:id',
    {
      schema: {
        tags: ['network'],
        summary: 'Change a subscriber',
        description:
          "Fields not given stay as they are; null removes an optional one. `optedOut` records the subscriber's own choice, both ways.",
        params: idParam('contract'),
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: { ...fieldsBody, optedOut: { type: 'boolean' } },
        },
        response: { 200: subscriberSchema, ...errors(400, 404, 422) },
      },
    },
    async (req) =>
      shown(await storeCall(() => updateSubscriber(store, req.params.id, withDates(req.body), new Date()))),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/subscribers/:id',
    {
      schema: {
        tags: ['network'],
        summary: 'Delete a subscriber (contract ended)',
        description:
          'Removes the record only; messages already sent stay in incident history. For a data protection erasure use POST /v1/subscribers/{id}/erase.',
        params: idParam('contract'),
        response: { 204: { type: 'null', description: 'Deleted' }, ...errors(404) },
      },
    },
    async (req, reply) => {
      await storeCall(() => deleteSubscriber(store, req.params.id));
      return reply.status(204).send();
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/subscribers/:id/export',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['network'],
        summary: 'Everything held about a subscriber (data protection access request)',
        description:
          'The record, every message sent to them, the SMS they sent us, and what they were billed for the SMS option. Operator key or above.',
        params: idParam('contract'),
        response: {
          200: {
            type: 'object',
            properties: {
              contract: { type: 'string' },
              exportedAt: time,
              subscriber: { ...subscriberSchema, nullable: true },
              messages: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    incidentId: { type: 'string' },
                    kind: { type: 'string' },
                    channel: { type: 'string' },
                    to: { type: 'string' },
                    language: { type: 'string' },
                    state: { type: 'string' },
                    text: { type: 'string' },
                    createdAt: time,
                    updatedAt: time,
                    history: {
                      type: 'array',
                      items: {
                        type: 'object',
                        properties: { at: time, state: { type: 'string' }, note: { type: 'string' } },
                      },
                    },
                  },
                },
              },
              received: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    from: { type: 'string' },
                    text: { type: 'string' },
                    receivedAt: time,
                    action: { type: 'string' },
                  },
                },
              },
              billing: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    period: { type: 'string' },
                    description: { type: 'string' },
                    grossCents: { type: 'integer' },
                    currency: { type: 'string' },
                    activeFrom: time,
                    activeTo: time,
                  },
                },
              },
            },
          },
          ...errors(404),
        },
      },
    },
    async (req) => {
      const data = await exportSubscriberData(store, req.params.id);
      if (!data.subscriber && data.messages.length === 0 && data.received.length === 0 && data.billing.length === 0) {
        throw new ApiError(404, 'subscriber_not_found', `Nothing is held about contract ${req.params.id}.`);
      }
      return { ...data, subscriber: data.subscriber ? present(data.subscriber) : null };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/subscribers/:id/erase',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['network'],
        summary: "Erase a subscriber's personal data (data protection erasure request)",
        description:
          'Deletes the record, their pending messages and the SMS they sent us; messages already sent stay as anonymous records so that incident counts and costs add up. Billing ledger entries are kept (legal retention). Repeatable. Admin key only. Remove the contract from the billing export too, or the next import brings it back.',
        params: idParam('contract'),
        response: {
          200: {
            type: 'object',
            properties: {
              contract: { type: 'string' },
              subscriberDeleted: { type: 'boolean' },
              pendingMessagesDeleted: { type: 'integer' },
              messagesAnonymized: { type: 'integer' },
              receivedDeleted: { type: 'integer' },
              billingEntriesKept: { type: 'integer' },
            },
          },
          ...errors(404),
        },
      },
    },
    async (req) => {
      const result = await eraseSubscriber(store, req.params.id);
      req.auditOutcome = { erased: result.contract, messagesAnonymized: result.messagesAnonymized };
      return result;
    },
  );
};
