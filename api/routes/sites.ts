/**
 * Sites (towers and access points) over HTTP: list, create, read, change, delete, and preview
 * what an outage on one would reach. Every change keeps the network a forest: an uplink must
 * exist and must not make a loop (store/topology.ts).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app';
import type { SiteKind } from '../../domain/types';
import { createSite, deleteSite, getSite, listSites, siteFields, updateSite, type SiteInput } from '../../store/sites';
import { depthBelow, resolveAudience } from '../../store/audience';
import { recordId } from '../../store/normalize';
import { errors, given, idParam, ID_PATTERN, present, storeCall, time } from './network-common';

const kind = { type: 'string', enum: ['tower', 'access_point'] } as const;
const location = {
  type: 'object',
  required: ['lat', 'lon'],
  additionalProperties: false,
  properties: {
    lat: { type: 'number', minimum: -90, maximum: 90 },
    lon: { type: 'number', minimum: -180, maximum: 180 },
  },
} as const;

export const siteSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    area: { type: 'string', description: 'The town it serves: what messages name' },
    kind,
    location: { type: 'object', properties: { lat: { type: 'number' }, lon: { type: 'number' } } },
    uplink: { type: 'string', nullable: true, description: 'The site that feeds it; null for a root' },
    createdAt: time,
    updatedAt: time,
  },
} as const;

const siteBody = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  area: { type: 'string', minLength: 1, maxLength: 100 },
  kind,
  location: { ...location, nullable: true },
  uplink: {
    type: 'string',
    nullable: true,
    pattern: ID_PATTERN,
    description: 'The id of the site that feeds this one; null or absent for a root',
  },
} as const;

const countsSchema = {
  type: 'object',
  properties: {
    subscribers: { type: 'integer' },
    byAlertOption: { type: 'object', properties: { paid: { type: 'integer' }, unpaid: { type: 'integer' } } },
    byLanguage: { type: 'object', additionalProperties: { type: 'integer' } },
    bySegment: { type: 'object', additionalProperties: { type: 'integer' } },
    byChannel: {
      type: 'object',
      description: 'Not opted out, by the channels they can be reached on',
      properties: { sms: { type: 'integer' }, email: { type: 'integer' } },
    },
    optedOut: { type: 'integer' },
    smsNotice: {
      type: 'object',
      description: 'Who the outage SMS goes to (paid option in force, not opted out) and how many messages that is',
      properties: { subscribers: { type: 'integer' }, phones: { type: 'integer' } },
    },
  },
} as const;

interface CreateBody extends Omit<SiteInput, 'lat' | 'lon'> {
  id: string;
}

export const siteRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const { store } = deps;

  app.get<{ Querystring: { area?: string; kind?: SiteKind; uplink?: string; limit: number; after?: string } }>(
    '/v1/sites',
    {
      schema: {
        tags: ['network'],
        summary: 'List sites (towers and access points), paged by id',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            area: { type: 'string', maxLength: 100 },
            kind,
            uplink: { type: 'string', maxLength: 100, description: 'Only the sites this one feeds directly' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            after: {
              type: 'string',
              maxLength: 100,
              description: "Return sites whose id sorts after this one (the previous page's `next`)",
            },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { items: { type: 'array', items: siteSchema }, next: { type: 'string', nullable: true } },
          },
          ...errors(400),
        },
      },
    },
    async (req) => {
      const q = req.query;
      const page = await listSites(store, {
        area: given(q.area),
        kind: q.kind,
        uplink: given(q.uplink),
        after: given(q.after),
        limit: q.limit,
      });
      return { items: page.items.map(present), next: page.next };
    },
  );

  app.post<{ Body: CreateBody }>(
    '/v1/sites',
    {
      schema: {
        tags: ['network'],
        summary: 'Add a site',
        description: 'Its uplink must be a site that exists; a tower with no uplink is a root of the network.',
        body: {
          type: 'object',
          required: ['id', 'name', 'area'],
          additionalProperties: false,
          properties: { id: { type: 'string', pattern: ID_PATTERN }, ...siteBody },
        },
        response: { 201: siteSchema, ...errors(400, 409, 422) },
      },
    },
    async (req, reply) => {
      const { id, ...input } = req.body;
      const site = await storeCall(() => createSite(store, recordId(id, 'body.id'), siteFields(input), new Date()));
      return reply
        .status(201)
        .header('location', `/v1/sites/${encodeURIComponent(site._id)}`)
        .send(present(site));
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/sites/:id',
    {
      schema: {
        tags: ['network'],
        summary: 'One site',
        params: idParam('site'),
        response: { 200: siteSchema, ...errors(404) },
      },
    },
    async (req) => present(await storeCall(() => getSite(store, req.params.id))),
  );

  app.patch<{ Params: { id: string }; Body: SiteInput }>(
    '/v1/sites/:id',
    {
      schema: {
        tags: ['network'],
        summary: 'Change a site',
        description:
          'Fields not given stay as they are; `location: null` removes the coordinates, `uplink: null` makes it a root. A new uplink may not make a loop.',
        params: idParam('site'),
        body: { type: 'object', additionalProperties: false, minProperties: 1, properties: siteBody },
        response: { 200: siteSchema, ...errors(400, 404, 422) },
      },
    },
    async (req) => present(await storeCall(() => updateSite(store, req.params.id, req.body, new Date()))),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/sites/:id',
    {
      schema: {
        tags: ['network'],
        summary: 'Delete a site',
        description: 'Refused (409) while it feeds other sites or serves subscribers.',
        params: idParam('site'),
        response: { 204: { type: 'null', description: 'Deleted' }, ...errors(404, 409) },
      },
    },
    async (req, reply) => {
      await storeCall(() => deleteSite(store, req.params.id));
      return reply.status(204).send();
    },
  );

  app.get<{ Params: { id: string }; Querystring: { at?: string } }>(
    '/v1/sites/:id/affected',
    {
      schema: {
        tags: ['network'],
        summary: 'What an outage on this site would reach',
        description:
          'Every site downstream of this one (with how many hops below it is) and the subscribers they serve, counted by alert option, language, segment and channel. Nothing is sent.',
        params: idParam('site'),
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { at: { ...time, description: 'When the paid SMS option must be in force (default: now)' } },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              site: siteSchema,
              at: time,
              areas: { type: 'array', items: { type: 'string' } },
              sites: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    ...siteSchema.properties,
                    depth: { type: 'integer', description: 'Uplink hops below the site asked about' },
                  },
                },
              },
              counts: countsSchema,
            },
          },
          ...errors(400, 404),
        },
      },
    },
    async (req) => {
      const site = await storeCall(() => getSite(store, req.params.id));
      const at = req.query.at ? new Date(req.query.at) : new Date();
      const audience = await resolveAudience(store, [site._id], { at });
      const depth = depthBelow(audience.sites, [site._id]);
      return {
        site: present(site),
        at,
        areas: audience.areas,
        sites: audience.sites.map((s) => ({ ...present(s), depth: depth.get(s._id) ?? 0 })),
        counts: await audience.counts(),
      };
    },
  );
};
