import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app';
import { pingStore } from '../../store/db';

/** `GET /healthz`: 200 when MongoDB and Temporal both answer, 503 naming the one that does not. */
export const healthRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.get('/healthz', {
    schema: {
      tags: ['operations'],
      summary: 'Liveness and dependencies',
      response: {
        200: { type: 'object', properties: { ok: { type: 'boolean' }, mongodb: { type: 'string' }, temporal: { type: 'string' } } },
        503: { type: 'object', properties: { ok: { type: 'boolean' }, mongodb: { type: 'string' }, temporal: { type: 'string' } } },
      },
    },
  }, async (_req, reply) => {
    const check = async (f: () => Promise<unknown>) => {
      try {
        await f();
        return 'ok';
      } catch (err) {
        return `down: ${(err as Error).message}`;
      }
    };
    const [mongodb, temporal] = await Promise.all([
      check(() => pingStore(deps.store)),
      check(() => deps.temporal.workflowService.getSystemInfo({})),
    ]);
    const ok = mongodb === 'ok' && temporal === 'ok';
    return reply.status(ok ? 200 : 503).send({ ok, mongodb, temporal });
  });
};
