/**
 * Access control for the whole API, in one place: route files declare no access of their own.
 *
 * Each request's route (its pattern, `request.routeOptions.url`) and method are looked up in
 * POLICY, first match wins; a route may override with `config: { access: '...' }`. What a route
 * needs is one of:
 *   public    no key (status page, health, documentation);
 *   signed    no key: the route checks Plivo's signature itself;
 *   ingest    the integration's own token (checked by the route), or an `ingest` API key bound to
 *             that integration (checked here; the route then accepts it instead of the token);
 *   viewer, operator, admin   an API key of that role or above (admin > operator > viewer).
 * Anything not in the table needs admin: a new route is closed until someone opens it here.
 * Unknown URLs are not routes and get the usual 404.
 *
 * Keys come as `Authorization: Bearer avk_<id>_<secret>` or `X-Api-Key: avk_...`. A missing,
 * unknown or revoked key gets 401, a key of too low a role 403, in the shared error shape.
 * Also here: the per-key rate limit (@fastify/rate-limit, per key id, across all routes), a cap
 * on failed key attempts per address, smaller body limits for some routes, and the audit log of
 * every request that may change something (store/audit-log.ts).
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { ApiError } from '../errors';
import type { Store } from '../../store/db';
import { touchApiKey, verifyApiKey, type ApiKeyPrincipal } from '../../store/api-keys';
import { createAuditWriter, summarizeBody, summarizeParams, type AuditEntry } from '../../store/audit-log';
import { presentedApiKey, roleAllows } from '../../domain/api-keys';

export type Access = 'public' | 'signed' | 'ingest' | 'viewer' | 'operator' | 'admin';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified API key of this request, or null (public and signed routes, integration tokens). */
    apiKey: ApiKeyPrincipal | null;
    /** What this request's route needs, from the policy; null for unknown URLs. */
    access: Access | null;
    /** What a route wants the audit log to keep about what it did (e.g. the id of a key it made). */
    auditOutcome: Record<string, unknown> | null;
  }
  interface FastifyReply {
    /** The error code of a refused change, for the audit log. */
    auditError: string | null;
  }
  interface FastifyContextConfig {
    /** Overrides the policy table for this route. */
    access?: Access;
  }
}

const READ = ['GET', 'HEAD'] as const;
const WRITE = ['POST', 'PUT', 'PATCH', 'DELETE'] as const;
const ANY = [...READ, ...WRITE, 'OPTIONS'] as const;

export interface PolicyRule {
  methods: readonly string[];
  /** A route pattern as registered (`/v1/incidents/:id`); a trailing `*` matches any rest. */
  pattern: string;
  access: Access;
  /** A body limit for these routes below the global one, in bytes. */
  bodyLimit?: number;
}

const KiB = 1024;

/** Who may call what. First match wins; no match: admin. */
export const POLICY: readonly PolicyRule[] = [
  { methods: READ, pattern: '/healthz', access: 'public' },
  { methods: READ, pattern: '/readyz', access: 'public' },
  { methods: READ, pattern: '/status*', access: 'public' },
  { methods: READ, pattern: '/docs*', access: 'public' },
  { methods: READ, pattern: '/openapi.json', access: 'public' },
  { methods: ANY, pattern: '/v1/plivo/*', access: 'signed', bodyLimit: 64 * KiB },
  { methods: ANY, pattern: '/v1/voice/*', access: 'signed', bodyLimit: 64 * KiB },
  { methods: ['POST'], pattern: '/v1/ingest/:source/:integration', access: 'ingest' },
  { methods: READ, pattern: '/metrics', access: 'viewer' },
  { methods: ANY, pattern: '/v1/keys*', access: 'admin', bodyLimit: 16 * KiB },
  { methods: ANY, pattern: '/v1/audit*', access: 'admin' },
  { methods: WRITE, pattern: '/v1/rules/reload', access: 'admin' },
  // Dry runs: they change nothing, and "who would get what if tower X went down" is an operator's question.
  { methods: ['POST'], pattern: '/v1/rules/check', access: 'operator' },
  { methods: ['POST'], pattern: '/v1/rules/explain', access: 'operator' },
  { methods: ['POST'], pattern: '/v1/rules/simulate', access: 'operator' },
  // A subscriber's whole file (right of access) is handed out by someone who may act on it.
  { methods: READ, pattern: '/v1/subscribers/:id/export', access: 'operator' },
  { methods: READ, pattern: '/v1/*', access: 'viewer' },
  { methods: WRITE, pattern: '/v1/incidents*', access: 'operator', bodyLimit: 256 * KiB },
  { methods: WRITE, pattern: '/v1/maintenances*', access: 'operator', bodyLimit: 256 * KiB },
  { methods: WRITE, pattern: '/v1/sites*', access: 'operator' },
  { methods: WRITE, pattern: '/v1/subscribers*', access: 'operator' },
  { methods: WRITE, pattern: '/v1/contacts*', access: 'operator' },
  { methods: WRITE, pattern: '/v1/import*', access: 'operator' },
];

export const DEFAULT_ACCESS: Access = 'admin';

function matches(pattern: string, route: string): boolean {
  return pattern.endsWith('*') ? route.startsWith(pattern.slice(0, -1)) : route === pattern;
}

/** The policy rule for a method and route pattern (undefined: the default, admin). */
export function policyFor(method: string, route: string): PolicyRule | undefined {
  return POLICY.find((r) => r.methods.includes(method) && matches(r.pattern, route));
}

export function accessFor(method: string, route: string, config?: { access?: Access }): Access {
  return config?.access ?? policyFor(method, route)?.access ?? DEFAULT_ACCESS;
}

export interface AuthOptions {
  store: Store;
  /** Requests per minute per key, unless the key has its own (default 600). */
  rateLimitPerMinute?: number;
  /** Failed key attempts per minute per address before it gets 429 without a look-up (default 60). */
  failedAttemptsPerMinute?: number;
}

const FAILURE_WINDOW_MS = 60_000;

/** Failed attempts per address in the current minute; forgets everything beyond 10,000 addresses. */
class FailureCounter {
  private windowStart = Date.now();
  private counts = new Map<string, number>();
  constructor(private readonly max: number) {}
  private roll(now: number) {
    if (now - this.windowStart >= FAILURE_WINDOW_MS || this.counts.size > 10_000) {
      this.windowStart = now;
      this.counts.clear();
    }
  }
  blocked(ip: string, now = Date.now()): boolean {
    this.roll(now);
    return (this.counts.get(ip) ?? 0) >= this.max;
  }
  add(ip: string, now = Date.now()): void {
    this.roll(now);
    this.counts.set(ip, (this.counts.get(ip) ?? 0) + 1);
  }
}

const NEEDS: Record<'viewer' | 'operator' | 'admin', string> = {
  viewer: 'viewer, operator or admin',
  operator: 'operator or admin',
  admin: 'admin',
};

const HOW =
  'send it as "Authorization: Bearer avk_<id>_<secret>" or "X-Api-Key: avk_<id>_<secret>"; an admin makes keys with `avviso keys create` or POST /v1/keys';

const authPlugin: FastifyPluginAsync<AuthOptions> = async (app, opts) => {
  const { store } = opts;
  const writeAudit = createAuditWriter(store);
  const perMinute = opts.rateLimitPerMinute ?? 600;
  const failures = new FailureCounter(opts.failedAttemptsPerMinute ?? 60);
  const lastTouched = new Map<string, number>();

  app.decorateRequest('apiKey', null);
  app.decorateRequest('access', null);
  app.decorateRequest('auditOutcome', null);
  app.decorateReply('auditError', null);

  // Smaller body limits where the policy says so (a route's own bodyLimit wins).
  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.bodyLimit !== undefined) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const limits = methods.map((m) => policyFor(m, route.url)?.bodyLimit).filter((l): l is number => l !== undefined);
    if (limits.length) route.bodyLimit = Math.max(...limits);
  });

  async function authenticate(req: FastifyRequest): Promise<ApiKeyPrincipal> {
    const presented = presentedApiKey(req.headers);
    if (!presented)
      throw new ApiError(401, 'api_key_required', `${req.method} ${req.routeOptions.url} needs an API key: ${HOW}.`);
    if (failures.blocked(req.ip))
      throw new ApiError(
        429,
        'too_many_failed_attempts',
        'Too many wrong API keys from this address in the last minute; wait a minute and check the key.',
      );
    const check = await verifyApiKey(store, presented);
    if (!check.ok) {
      failures.add(req.ip);
      if (check.reason === 'malformed')
        throw new ApiError(
          401,
          'bad_api_key',
          `That is not an Avviso API key (they look like avk_<id>_<secret>): ${HOW}.`,
        );
      if (check.reason === 'revoked')
        throw new ApiError(
          401,
          'api_key_revoked',
          `API key ${check.id} was revoked on ${check.revokedAt!.toISOString()}; ask an admin for a new one.`,
        );
      throw new ApiError(
        401,
        'bad_api_key',
        'Unknown API key, or a wrong secret for it: check the whole key was copied.',
      );
    }
    const now = Date.now();
    if (now - (lastTouched.get(check.key.id) ?? 0) > 60_000) {
      lastTouched.set(check.key.id, now);
      touchApiKey(store, check.key.id, new Date(now)).catch((err) =>
        req.log.warn({ err: (err as Error).message }, 'could not record when an API key was used'),
      );
    }
    return check.key;
  }

  /** What the onRequest hook does for a request that presents a key: verify it, and check what it may do. */
  async function checkKey(req: FastifyRequest, route: string, access: Exclude<Access, 'public' | 'signed'>) {
    if (access === 'ingest') {
      // The integration's own token is the route's business; an API key is ours.
      const key = await authenticate(req);
      const params = req.params as { source?: string; integration?: string };
      const integration = `${params.source}/${params.integration}`;
      if (key.role !== 'ingest' || key.integration !== integration) {
        const has = key.role === 'ingest' ? `is bound to ${key.integration}` : `has role ${key.role}`;
        throw new ApiError(
          403,
          'forbidden',
          `${req.method} ${req.url.split('?')[0]} takes the integration's own token or an ingest key bound to ${integration}; key ${key.id} (${key.name}) ${has}.`,
        );
      }
      req.apiKey = key;
      return;
    }

    const key = await authenticate(req);
    req.apiKey = key;
    if (!roleAllows(key.role, access)) {
      throw new ApiError(
        403,
        'forbidden',
        `${req.method} ${route} needs a key with role ${NEEDS[access]}; key ${key.id} (${key.name}) has role ${key.role}.`,
      );
    }
  }

  // Synchronous unless there is a key to verify: a webhook posted with its integration's token
  // (every request of an alert storm) costs no promise here.
  app.addHook('onRequest', (req, _reply, done) => {
    const route = req.routeOptions.url;
    if (!route) return done(); // not a route: the 404 handler answers
    const access = accessFor(req.method, route, req.routeOptions.config);
    req.access = access;
    if (access === 'public' || access === 'signed') return done();
    // The integration's own token is the route's business; an API key is ours.
    if (access === 'ingest' && !presentedApiKey(req.headers)?.startsWith('avk_')) return done();
    checkKey(req, route, access).then(() => done(), done);
  });

  // Per key, across every route; requests without a key (public, signed, integration tokens) are not limited here.
  await app.register(rateLimit, {
    global: true,
    max: (req) => req.apiKey?.rateLimitPerMinute ?? perMinute,
    timeWindow: 60_000,
    keyGenerator: (req) => `key:${req.apiKey?.id ?? req.ip}`,
    allowList: (req) => !req.apiKey,
    errorResponseBuilder: (req, ctx) =>
      new ApiError(
        429,
        'rate_limited',
        `API key ${req.apiKey?.id} may make ${ctx.max} requests a minute; try again in ${ctx.after}.`,
      ),
  });

  // The error code of a refused change, for the audit log. Synchronous: every webhook passes here.
  app.addHook('onSend', (req, reply, payload, done) => {
    if (reply.statusCode >= 400 && mayChange(req) && typeof payload === 'string') {
      try {
        const code = (JSON.parse(payload) as { error?: { code?: unknown } }).error?.code;
        if (typeof code === 'string') reply.auditError = code;
      } catch {
        // not JSON: no code to keep
      }
    }
    done(null, payload);
  });

  // Synchronous: the entry is queued for the next grouped insert, a failure logged (the answer has gone).
  app.addHook('onResponse', (req, reply, done) => {
    if (mayChange(req) && reply.statusCode !== 429) audit(req, reply);
    done();
  });

  function audit(req: FastifyRequest, reply: FastifyReply): void {
    const params = req.params as { source?: string; integration?: string };
    const byToken = req.access === 'ingest' && !req.apiKey;
    // Once each: every webhook of a storm passes here.
    const auditedParams = summarizeParams(req.params);
    const body = summarizeBody(req.body);
    const entry: AuditEntry = {
      at: new Date(),
      requestId: String(req.id),
      actor: {
        via: req.apiKey ? 'api-key' : byToken ? 'integration-token' : 'none',
        ...(req.apiKey ? { keyId: req.apiKey.id, keyName: req.apiKey.name, role: req.apiKey.role } : {}),
        ...(req.access === 'ingest' ? { integration: `${params.source}/${params.integration}` } : {}),
        ip: req.ip,
      },
      action: {
        method: req.method,
        route: req.routeOptions.url!,
        ...(auditedParams ? { params: auditedParams } : {}),
        ...(body !== undefined ? { body } : {}),
        ...(req.auditOutcome ? { outcome: req.auditOutcome } : {}),
      },
      result: {
        status: reply.statusCode,
        ...(reply.auditError ? { error: reply.auditError } : {}),
        ms: Math.round(reply.elapsedTime),
      },
    };
    writeAudit(entry).catch((err: unknown) =>
      req.log.error(
        { err: (err as Error).message, audit: { route: entry.action.route, status: entry.result.status } },
        'could not write the audit log entry',
      ),
    );
  }
};

/** Requests the audit log keeps: anything but a read, on a route that needs a key or a token. */
function mayChange(req: FastifyRequest): boolean {
  return (
    !['GET', 'HEAD', 'OPTIONS'].includes(req.method) &&
    req.access !== null &&
    req.access !== 'public' &&
    req.access !== 'signed'
  );
}

// Not encapsulated: its hooks and decorators apply to every route of the app (what fastify-plugin does).
(authPlugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
(authPlugin as unknown as Record<symbol, string>)[Symbol.for('fastify.display-name')] = 'avviso-auth';

export { authPlugin };
