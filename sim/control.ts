/**
 * The control API (JSON, no auth, loopback only): faults and limits on demand, counters,
 * inbound SMS injection. Not part of Plivo; tests and fault drills drive it.
 *
 *   GET    /control/faults    current settings (with the seed in use)
 *   PUT    /control/faults    replace them (body: FaultSettingsInput); restarts the seeded streams
 *   DELETE /control/faults    clear them
 *   GET    /control/stats     counters
 *   DELETE /control/stats     zero the counters (and the request record)
 *   GET    /control/requests  every Plivo API request, oldest first (`?kind=message|call|read`):
 *                             arrival and answer times, status, Retry-After, destinations, text
 *   POST   /control/inbound   { from, to, text, url, method?, messageIntent? }
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { plivoError, type Context } from './context';
import { parseFaultSettings } from './faults';
import { injectInboundHandler } from './inbound';

const LOOPBACK_ADDRESS = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3})$/;

async function loopbackOnly(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const address = request.raw.socket.remoteAddress ?? '';
  if (!LOOPBACK_ADDRESS.test(address)) await plivoError(reply, 403, 'the control API answers loopback clients only');
}

export function registerControl(app: FastifyInstance, ctx: Context): void {
  void app.register(
    async (control) => {
      control.addHook('onRequest', loopbackOnly);

      control.get('/faults', async () => ctx.faults.current());

      control.put('/faults', async (request, reply) => {
        let settings;
        try {
          settings = parseFaultSettings(request.body);
        } catch (err) {
          return plivoError(reply, 400, (err as Error).message);
        }
        ctx.faults.set(settings);
        ctx.requestWindow.reset();
        request.log.warn({ faults: ctx.faults.current() }, 'fault settings replaced');
        return ctx.faults.current();
      });

      control.delete('/faults', async (request) => {
        ctx.faults.clear();
        ctx.requestWindow.reset();
        request.log.info('fault settings cleared');
        return ctx.faults.current();
      });

      control.get('/stats', async () => ctx.stats.snapshot(ctx.store));

      control.delete('/stats', async () => {
        ctx.stats.reset();
        return ctx.stats.snapshot(ctx.store);
      });

      control.get<{ Querystring: { kind?: string } }>('/requests', async (request) => {
        const kind = request.query.kind;
        const all = ctx.stats.requests.list();
        return { requests: kind ? all.filter((r) => r.kind === kind) : all };
      });

      control.post('/inbound', injectInboundHandler(ctx));
    },
    { prefix: '/control' },
  );
}
