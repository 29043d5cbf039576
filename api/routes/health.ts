import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app';
import { pingStore } from '../../store/db';

/** How long a readiness check waits for each dependency. */
const CHECK_TIMEOUT_MS = 2000;

const checks = {
  type: 'object',
  properties: { ok: { type: 'boolean' }, mongodb: { type: 'string' }, temporal: { type: 'string' } },
} as const;

/**
 * - `GET /healthz` (liveness): 200 as long as this process answers HTTP. It checks nothing else on
 *   purpose: restarting the API cannot fix MongoDB or Temporal, so an orchestrator watching it
 *   should not restart us when they are down.
 * - `GET /readyz` (readiness): 200 when MongoDB and Temporal both answer within 2 s, else 503
 *   naming the one that does not. Take the API out of a load balancer on it; `avviso dev` waits on it.
 */
export const healthRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness: the process answers (dependencies are /readyz)',
        response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } },
      },
    },
    async () => ({ ok: true }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: MongoDB and Temporal answer',
        response: { 200: checks, 503: checks },
      },
    },
    async (_req, reply) => {
      const check = async (f: () => Promise<unknown>) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            f(),
            new Promise(
              (_, reject) =>
                (timer = setTimeout(
                  () => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)),
                  CHECK_TIMEOUT_MS,
                )),
            ),
          ]);
          return 'ok';
        } catch (err) {
          return `down: ${(err as Error).message}`;
        } finally {
          clearTimeout(timer);
        }
      };
      const [mongodb, temporal] = await Promise.all([
        check(() => pingStore(deps.store)),
        check(() => deps.temporal.workflowService.getSystemInfo({})),
      ]);
      const ok = mongodb === 'ok' && temporal === 'ok';
      return reply
        .status(ok ? 200 : 503)
        .header('cache-control', 'no-store')
        .send({ ok, mongodb, temporal });
    },
  );
};
