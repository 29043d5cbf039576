/**
 * Staff contacts for escalation over HTTP: on-call people and teams, with their numbers and
 * addresses. A team lists its members (people in this list); a person in a team cannot be
 * deleted until they are taken out of it.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app';
import type { ContactKind } from '../../domain/types';
import {
  contactFields,
  createContact,
  deleteContact,
  getContact,
  listContacts,
  updateContact,
  type ContactInput,
} from '../../store/contacts';
import { recordId } from '../../store/normalize';
import { errors, given, idParam, ID_PATTERN, present, storeCall, time } from './network-common';

const contactSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    kind: { type: 'string', enum: ['person', 'team'] },
    phones: { type: 'array', items: { type: 'string' } },
    email: { type: 'string' },
    language: { type: 'string', enum: ['it', 'en'] },
    onCall: { type: 'boolean' },
    members: { type: 'array', items: { type: 'string' } },
    areas: { type: 'array', items: { type: 'string' } },
    notes: { type: 'string' },
    createdAt: time,
    updatedAt: time,
  },
} as const;

const fieldsBody = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  kind: { type: 'string', enum: ['person', 'team'] },
  phones: {
    type: 'array',
    maxItems: 10,
    items: { type: 'string', minLength: 3, maxLength: 40 },
    description: 'Mobile numbers, any usual spelling; stored as E.164',
  },
  email: { type: 'string', nullable: true, maxLength: 254 },
  language: { type: 'string', enum: ['it', 'en'] },
  onCall: { type: 'boolean', description: 'Whether escalations go to this contact now' },
  members: {
    type: 'array',
    nullable: true,
    maxItems: 100,
    items: { type: 'string', pattern: ID_PATTERN },
    description: "A team's people: ids of person contacts",
  },
  areas: {
    type: 'array',
    nullable: true,
    maxItems: 200,
    items: { type: 'string', minLength: 1, maxLength: 100 },
    description: 'The areas covered; none means all',
  },
  notes: { type: 'string', nullable: true, maxLength: 1000 },
} as const;

export const contactRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const { store } = deps;

  app.get<{ Querystring: { onCall?: boolean; kind?: ContactKind; area?: string } }>(
    '/v1/contacts',
    {
      schema: {
        tags: ['network'],
        summary: 'List staff contacts, by id',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            onCall: { type: 'boolean' },
            kind: { type: 'string', enum: ['person', 'team'] },
            area: {
              type: 'string',
              maxLength: 100,
              description: 'Those covering this area (and those covering every area)',
            },
          },
        },
        response: {
          200: { type: 'object', properties: { items: { type: 'array', items: contactSchema } } },
          ...errors(400),
        },
      },
    },
    async (req) => ({
      items: (
        await listContacts(store, { onCall: req.query.onCall, kind: req.query.kind, area: given(req.query.area) })
      ).map(present),
    }),
  );

  app.post<{ Body: ContactInput & { id: string } }>(
    '/v1/contacts',
    {
      schema: {
        tags: ['network'],
        summary: 'Add a contact',
        description: 'A contact needs a phone number or an e-mail address.',
        body: {
          type: 'object',
          required: ['id', 'name'],
          additionalProperties: false,
          properties: {
            id: { type: 'string', pattern: ID_PATTERN, description: 'e.g. noc or mario.rossi' },
            ...fieldsBody,
          },
        },
        response: { 201: contactSchema, ...errors(400, 409, 422) },
      },
    },
    async (req, reply) => {
      const { id, ...input } = req.body;
      const c = await storeCall(() => createContact(store, recordId(id, 'body.id'), contactFields(input), new Date()));
      return reply
        .status(201)
        .header('location', `/v1/contacts/${encodeURIComponent(c._id)}`)
        .send(present(c));
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/contacts/:id',
    {
      schema: {
        tags: ['network'],
        summary: 'One contact',
        params: idParam('contact'),
        response: { 200: contactSchema, ...errors(404) },
      },
    },
    async (req) => present(await storeCall(() => getContact(store, req.params.id))),
  );

  app.patch<{ Params: { id: string }; Body: ContactInput }>(
    '/v1/contacts/:id',
    {
      schema: {
        tags: ['network'],
        summary: 'Change a contact (e.g. who is on call)',
        description: 'Fields not given stay as they are; null removes an optional one.',
        params: idParam('contact'),
        body: { type: 'object', additionalProperties: false, minProperties: 1, properties: fieldsBody },
        response: { 200: contactSchema, ...errors(400, 404, 422) },
      },
    },
    async (req) => present(await storeCall(() => updateContact(store, req.params.id, req.body, new Date()))),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/contacts/:id',
    {
      schema: {
        tags: ['network'],
        summary: 'Delete a contact',
        description: 'Refused (409) for a person who is still a member of a team.',
        params: idParam('contact'),
        response: { 204: { type: 'null', description: 'Deleted' }, ...errors(404, 409) },
      },
    },
    async (req, reply) => {
      await storeCall(() => deleteContact(store, req.params.id));
      return reply.status(204).send();
    },
  );
};
