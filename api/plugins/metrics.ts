/**
 * `GET /metrics`: Prometheus metrics (prom-client), for a key with role viewer or above.
 *
 * Counted by this process as it answers:
 *   avviso_http_requests_total{method,route,status}, avviso_http_request_duration_seconds{method,route}
 *   avviso_webhook_requests_total{source,result}   result: accepted, repeat, or the refusal's code
 *   avviso_webhook_alerts_total{source,action}     opened, already_open, resolved, recorded, repeat...
 * Read from MongoDB when scraped (at most every 10 s), so they cover every process:
 *   avviso_incidents{kind,phase}, avviso_messages{channel,state}
 * Found in the delivery records' histories, from the start of this process (store/metrics.ts):
 *   avviso_delivery_latency_seconds{channel}       accepted by the provider -> delivered
 *   avviso_provider_errors_total{channel,stage}    stage send: an attempt failed; delivery: undelivered/failed
 * These two lag by about 30 s, and every API process reports the whole system's: with several API
 * processes, scrape one, or aggregate with max() rather than sum().
 * Plus Node's own (process_*, nodejs_*).
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Store } from '../../store/db';
import { DeliveryEventScanner, incidentsByPhase, messagesByChannelAndState, type CountRow } from '../../store/metrics';
import { ALERT_SOURCES } from '../../ingest/alert-event';

export interface MetricsOptions {
  store: Store;
  /** How long counts read from MongoDB are reused (default 10 s). */
  cacheMs?: number;
  /** Delivery events more recent than this are read on a later scrape (default 30 s). */
  settleMs?: number;
}

const INGEST_ROUTE = '/v1/ingest/:source/:integration';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the ingest route on an answered webhook: each alert's outcome, for the webhook counters. */
    webhookOutcomes: readonly { action?: string; duplicate?: boolean }[] | null;
  }
}

const metricsPlugin: FastifyPluginAsync<MetricsOptions> = async (app, opts) => {
  app.decorateRequest('webhookOutcomes', null);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const httpRequests = new Counter({
    name: 'avviso_http_requests_total',
    help: 'HTTP requests answered, by route pattern and status',
    labelNames: ['method', 'route', 'status'],
    registers,
  });
  const httpDuration = new Histogram({
    name: 'avviso_http_request_duration_seconds',
    help: 'Time to answer HTTP requests, by route pattern',
    labelNames: ['method', 'route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const webhooks = new Counter({
    name: 'avviso_webhook_requests_total',
    help: 'Monitoring webhook requests, by tool and result (accepted, repeat, or the code of the refusal)',
    labelNames: ['source', 'result'],
    registers,
  });
  const webhookAlerts = new Counter({
    name: 'avviso_webhook_alerts_total',
    help: 'Alerts in accepted monitoring webhooks, by tool and what was done',
    labelNames: ['source', 'action'],
    registers,
  });
  const incidents = new Gauge({
    name: 'avviso_incidents',
    help: 'Incidents by kind and phase (from MongoDB)',
    labelNames: ['kind', 'phase'],
    registers,
  });
  const messages = new Gauge({
    name: 'avviso_messages',
    help: 'Messages (delivery records) by channel and state (from MongoDB)',
    labelNames: ['channel', 'state'],
    registers,
  });
  const latency = new Histogram({
    name: 'avviso_delivery_latency_seconds',
    help: 'Time from the provider accepting a message to its delivery, for messages delivered since this process started',
    labelNames: ['channel'],
    buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 10800],
    registers,
  });
  const providerErrors = new Counter({
    name: 'avviso_provider_errors_total',
    help: 'Provider errors since this process started: send (an attempt failed or was refused) or delivery (reported undelivered or failed)',
    labelNames: ['channel', 'stage'],
    registers,
  });
  const collectErrors = new Counter({
    name: 'avviso_metrics_collect_errors_total',
    help: 'Scrapes that could not read MongoDB (the counts shown are the last ones read)',
    registers,
  });

  const scanner = new DeliveryEventScanner(opts.store, new Date(), { settleMs: opts.settleMs });
  const cacheMs = opts.cacheMs ?? 10_000;
  let refreshed = 0;
  let refreshing: Promise<void> | undefined;

  const setAll = (gauge: Gauge<string>, rows: CountRow[]) => {
    gauge.reset();
    for (const r of rows) gauge.set(r.labels, r.count);
  };

  async function refresh(): Promise<void> {
    const [byPhase, byState, events] = await Promise.all([
      incidentsByPhase(opts.store),
      messagesByChannelAndState(opts.store),
      scanner.scan(),
    ]);
    setAll(incidents, byPhase);
    setAll(messages, byState);
    for (const e of events) {
      if (e.type === 'delivered') latency.observe({ channel: e.channel }, e.latencySeconds);
      else providerErrors.inc({ channel: e.channel, stage: e.stage });
    }
  }

  /** One refresh at a time; scrapes within cacheMs reuse the last one. */
  function refreshOnce(): Promise<void> {
    if (Date.now() - refreshed < cacheMs) return Promise.resolve();
    refreshing ??= refresh()
      .then(() => void (refreshed = Date.now()))
      .catch((err) => {
        collectErrors.inc();
        app.log.warn({ err: (err as Error).message }, 'metrics: could not read MongoDB');
      })
      .finally(() => (refreshing = undefined));
    return refreshing;
  }

  /** The webhook's `source` label: a known tool, or `unknown` (the label's values stay few). */
  const sourceLabel = (req: FastifyRequest) => {
    const given = (req.params as { source?: string }).source ?? '';
    return (ALERT_SOURCES as readonly string[]).includes(given) ? given : 'unknown';
  };

  // Synchronous hooks (no promise per request): every webhook of a storm passes here.
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'no-route';
    httpRequests.inc({ method: req.method, route, status: String(reply.statusCode) });
    httpDuration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
    // An answered webhook: its outcomes as the route left them (api/routes/ingest.ts), not reparsed from the answer.
    const outcomes = req.webhookOutcomes;
    if (outcomes && reply.statusCode < 300) {
      const source = sourceLabel(req);
      webhooks.inc({ source, result: reply.statusCode === 200 ? 'repeat' : 'accepted' });
      for (const r of outcomes)
        webhookAlerts.inc({
          source,
          action: r.duplicate ? 'repeat' : /^[a-z_]{1,30}$/.test(r.action ?? '') ? r.action! : 'other',
        });
    }
    done();
  });

  // A refused webhook (rare): the code of the refusal is read from the error answer itself.
  app.addHook('onSend', (req, reply, payload, done) => {
    if (req.method !== 'POST' || (req.webhookOutcomes && reply.statusCode < 300)) return done(null, payload);
    if (req.routeOptions.url !== INGEST_ROUTE) return done(null, payload);
    let code = '';
    try {
      if (typeof payload === 'string') code = (JSON.parse(payload) as { error?: { code?: string } }).error?.code ?? '';
    } catch {
      // not JSON: counted by status only
    }
    const result =
      reply.statusCode < 300
        ? reply.statusCode === 200
          ? 'repeat'
          : 'accepted'
        : /^[a-z_]{1,40}$/.test(code)
          ? code
          : `http_${reply.statusCode}`;
    webhooks.inc({ source: sourceLabel(req), result });
    done(null, payload);
  });

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics (text exposition format); needs a key with role viewer or above',
        response: {
          200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } },
        },
      },
    },
    async (_req, reply) => {
      await refreshOnce();
      return reply
        .header('cache-control', 'no-store')
        .type(registry.contentType)
        .send(await registry.metrics());
    },
  );
};

// Not encapsulated: its hooks see every route of the app.
(metricsPlugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
(metricsPlugin as unknown as Record<symbol, string>)[Symbol.for('fastify.display-name')] = 'avviso-metrics';

export { metricsPlugin };
