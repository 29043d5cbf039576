import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app';

/** `GET /v1/sites`: the network, so that an operator can see which ids to name. */
export const siteRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.get<{ Querystring: { area?: string; limit: number; after?: string } }>('/v1/sites', {
    schema: {
      tags: ['network'],
      summary: 'List sites (towers and access points), paged by id',
      querystring: { type: 'object', properties: { area: { type: 'string' }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, after: { type: 'string', description: 'Return sites whose id sorts after this one' } } },
      response: {
        200: {
          type: 'object',
          properties: {
            items: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, area: { type: 'string' }, uplink: { type: 'string', nullable: true } } } },
            next: { type: 'string', nullable: true },
          },
        },
      },
    },
  }, async (req) => {
    const { area, limit, after } = req.query;
    const filter = { ...(area ? { area } : {}), ...(after ? { _id: { $gt: after } } : {}) };
    const sites = await deps.store.sites.find(filter).sort({ _id: 1 }).limit(limit).toArray();
    return { items: sites.map(({ _id, ...s }) => ({ id: _id, ...s })), next: sites.length === limit ? sites[sites.length - 1]!._id : null };
  });
};
