/**
 * API keys over HTTP (admin only, see api/plugins/auth.ts): make one (its secret is in this answer
 * and nowhere else), list them without secrets, revoke one. The same as `avviso keys`.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app';
import { ApiError } from '../errors';
import { API_KEY_ROLES } from '../../domain/api-keys';
import { ApiKeyInputError, createApiKey, listApiKeys, revokeApiKey, type ApiKeyInfo } from '../../store/api-keys';
import { readAuditLog } from '../../store/audit-log';

const time = { type: 'string', format: 'date-time' } as const;

const keyInfo = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'The key id: the part between avk_ and the secret' },
    name: { type: 'string' },
    role: { type: 'string', enum: [...API_KEY_ROLES] },
    integration: { type: 'string', description: 'Ingest keys: the integration they may post to, <source>/<name>' },
    rateLimitPerMinute: { type: 'integer' },
    createdAt: time,
    createdBy: { type: 'string' },
    revokedAt: time,
    revokedBy: { type: 'string' },
    lastUsedAt: time,
  },
} as const;

interface CreateBody {
  name: string;
  role: string;
  integration?: string;
  rateLimitPerMinute?: number;
}

function shown(k: ApiKeyInfo) {
  return {
    ...k,
    createdAt: k.createdAt.toISOString(),
    revokedAt: k.revokedAt?.toISOString(),
    lastUsedAt: k.lastUsedAt?.toISOString(),
  };
}

export const keyRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const { store } = deps;

  app.post<{ Body: CreateBody }>(
    '/v1/keys',
    {
      schema: {
        tags: ['access'],
        summary: 'Make an API key (admin); the answer holds its secret, shown this once',
        description:
          'Roles: admin (keys, rules and everything else), operator (incidents, maintenances, sites, subscribers, imports), viewer (read only), ingest (the one integration it is bound to).',
        body: {
          type: 'object',
          required: ['name', 'role'],
          additionalProperties: false,
          properties: {
            name: {
              type: 'string',
              minLength: 1,
              maxLength: 100,
              description: 'Who or what holds it, e.g. noc-grafana',
            },
            role: { type: 'string', enum: [...API_KEY_ROLES] },
            integration: {
              type: 'string',
              maxLength: 100,
              description: 'Required for role ingest: <source>/<name>, as in /v1/ingest/<source>/<name>',
            },
            rateLimitPerMinute: {
              type: 'integer',
              minimum: 1,
              maximum: 1_000_000,
              description: "Default: the server's API_RATE_LIMIT_PER_MINUTE",
            },
          },
        },
        response: {
          201: {
            type: 'object',
            properties: {
              key: { type: 'string', description: 'avk_<id>_<secret>: store it now, it cannot be shown again' },
              ...keyInfo.properties,
            },
          },
          400: { $ref: 'Error#' },
          422: { $ref: 'Error#' },
        },
      },
    },
    async (req, reply) => {
      try {
        const { key, info } = await createApiKey(store, { ...req.body, createdBy: req.apiKey?.id ?? 'api' });
        req.auditOutcome = {
          keyId: info.id,
          role: info.role,
          ...(info.integration ? { integration: info.integration } : {}),
        };
        req.log.info({ keyId: info.id, role: info.role }, 'API key created');
        return reply
          .status(201)
          .header('cache-control', 'no-store')
          .send({ key, ...shown(info) });
      } catch (err) {
        if (err instanceof ApiKeyInputError)
          throw new ApiError(422, err.code, err.message, {
            field: `body.${err.code === 'invalid_rate_limit' ? 'rateLimitPerMinute' : err.code.replace('invalid_', '')}`,
          });
        throw err;
      }
    },
  );

  app.get<{ Querystring: { revoked?: boolean } }>(
    '/v1/keys',
    {
      schema: {
        tags: ['access'],
        summary: 'List API keys, without their secrets (admin)',
        querystring: {
          type: 'object',
          properties: { revoked: { type: 'boolean', default: false, description: 'Include revoked keys' } },
        },
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: keyInfo } } } },
      },
    },
    async (req) => ({ items: (await listApiKeys(store, { includeRevoked: req.query.revoked })).map(shown) }),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/keys/:id',
    {
      schema: {
        tags: ['access'],
        summary: 'Revoke an API key at once (admin); revoking twice is harmless',
        params: {
          type: 'object',
          required: ['id'],
          properties: { id: { type: 'string', pattern: '^[a-z0-9]{3,32}$' } },
        },
        response: { 200: keyInfo, 404: { $ref: 'Error#' } },
      },
    },
    async (req) => {
      const revoked = await revokeApiKey(store, req.params.id, req.apiKey?.id ?? 'api');
      if (!revoked) throw new ApiError(404, 'key_not_found', `No API key ${req.params.id}; GET /v1/keys lists them.`);
      req.log.info({ keyId: revoked.id }, 'API key revoked');
      return shown(revoked);
    },
  );

  app.get<{ Querystring: { keyId?: string; limit: number } }>(
    '/v1/audit',
    {
      schema: {
        tags: ['access'],
        summary: 'The audit log, newest first (admin): who changed what, when, and the answer',
        querystring: {
          type: 'object',
          properties: {
            keyId: { type: 'string', pattern: '^[a-z0-9]{3,32}$' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: { items: { type: 'array', items: { type: 'object', additionalProperties: true } } },
          },
        },
      },
    },
    async (req) => {
      const entries = await readAuditLog(store, { keyId: req.query.keyId, limit: req.query.limit });
      return { items: entries.map(({ _id, ...e }) => ({ id: String(_id), ...e, at: e.at.toISOString() })) };
    },
  );
};
