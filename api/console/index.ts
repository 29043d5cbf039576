/**
 * The operator console, served under /console: server-rendered pages in Italian and English,
 * htmx (from npm, served here) for the parts that refresh themselves. One plugin; each page is a
 * sub-plugin in pages/.
 *
 * Access: the API-key check of api/plugins/auth.ts steps aside for these routes (they are marked
 * `public` to it); instead one signs in with an API key once and gets a signed, HttpOnly session
 * cookie (session.ts), and the key's role decides what is drawn and allowed. Every form that
 * changes something carries a CSRF token (@fastify/csrf-protection, checked before any handler),
 * and every such request is written to the audit log, as the API writes its own.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyError, FastifyPluginAsync, FastifyRequest, RouteOptions } from 'fastify';
import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import type { AppDeps } from '../app';
import { summarizeBody, writeAuditEntry, type AuditEntry } from '../../store/audit-log';
import { IncidentInputError } from '../../services/incidents';
import { MaintenanceInputError } from '../../services/maintenances';
import { consoleAssets } from './assets';
import { html } from './html';
import { ConsoleError, sessionUser } from './session';
import { consolePath, page, viewOf } from './view';
import { signInRoutes } from './pages/sign-in';
import { nowPage } from './pages/now';
import { networkPage } from './pages/network';
import { incidentPage } from './pages/incident';
import { maintenancePage } from './pages/maintenance';
import { subscriberPage } from './pages/subscriber';
import { rulesPage } from './pages/rules';
import { billingPage } from './pages/billing';
import { keysPage } from './pages/keys';

export type ConsoleDeps = AppDeps;

/**
 * The key that signs session and CSRF cookies: AVVISO_CONSOLE_SECRET through config/ (32
 * characters or more; every API process behind one address must share it), else a random one for
 * this process, whose sessions end when it restarts.
 */
function cookieSecret(given: string | undefined, log: { warn: (msg: string) => void }): string {
  if (given) return given;
  log.warn(
    'AVVISO_CONSOLE_SECRET is not set: console sessions are signed with a random key and end when this process restarts',
  );
  return randomBytes(32).toString('hex');
}

const CHANGES = (method: string) => !['GET', 'HEAD', 'OPTIONS'].includes(method);

/** What the audit log keeps of a console form: no CSRF token, no API key (the sign-in form). */
function auditedBody(body: unknown): unknown {
  if (!body || typeof body !== 'object') return summarizeBody(body);
  const { _csrf: _token, key: _key, ...rest } = body as Record<string, unknown>;
  return summarizeBody(Object.keys(rest).length ? rest : undefined);
}

function errorStatus(err: unknown): { status: number; code: string } {
  if (err instanceof ConsoleError) return { status: err.statusCode, code: err.code };
  if (err instanceof IncidentInputError)
    return {
      status: { unknown_site: 422, incident_not_found: 404, incident_closed: 409, incident_rejected: 409 }[err.code],
      code: err.code,
    };
  if (err instanceof MaintenanceInputError)
    return {
      status: {
        unknown_site: 422,
        invalid_window: 422,
        maintenance_not_found: 404,
        maintenance_closed: 409,
        maintenance_rejected: 409,
      }[err.code],
      code: err.code,
    };
  const fe = err as FastifyError;
  if (fe.code?.startsWith('FST_CSRF')) return { status: 403, code: 'csrf_refused' };
  if (fe.validation) return { status: 400, code: 'invalid_request' };
  return {
    status: fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500 ? fe.statusCode : 500,
    code: fe.code ?? 'internal',
  };
}

export const consolePlugin: FastifyPluginAsync<ConsoleDeps> = async (app, opts) => {
  // The options carry this plugin's own prefix: the pages must not get it again.
  const { prefix: _prefix, ...deps } = opts as ConsoleDeps & { prefix?: string };
  // Every console route answers to the session, not to an API key header; pages are not API (no OpenAPI entry).
  app.addHook('onRoute', (route: RouteOptions) => {
    route.config = { ...(route.config as object | undefined), access: 'public' } as RouteOptions['config'];
    route.schema = { ...route.schema, hide: true } as RouteOptions['schema'];
  });
  await app.register(cookie, { secret: cookieSecret(deps.consoleSecret, app.log), hook: 'onRequest' });
  await app.register(csrf, {
    sessionPlugin: '@fastify/cookie',
    cookieKey: 'avviso_csrf',
    cookieOpts: { signed: true, httpOnly: true, sameSite: 'strict', path: '/console' },
  });

  app.decorateRequest('consoleUser', null);
  app.addHook('onRequest', async (req) => {
    if (req.url.startsWith('/console/assets/')) return;
    req.consoleUser = await sessionUser(req, deps.store);
  });
  // Before any handler of a change: the form's token must match this browser's CSRF cookie.
  app.addHook('preHandler', (req, reply, done) =>
    CHANGES(req.method) ? app.csrfProtection(req, reply, done) : done(),
  );

  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'same-origin');
    reply.header('x-content-type-options', 'nosniff');
    reply.header(
      'content-security-policy',
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    if (!req.url.startsWith('/console/assets/')) reply.header('cache-control', 'no-store');
    return payload;
  });

  // The audit log, as api/plugins/auth.ts writes it for the API: who (the session's key), what, the answer.
  app.addHook('onResponse', async (req: FastifyRequest, reply) => {
    if (!CHANGES(req.method) || !req.routeOptions.url || req.routeOptions.config.consoleAudit === false) return;
    const user = req.consoleUser;
    const params =
      req.params && typeof req.params === 'object' && Object.keys(req.params).length
        ? (req.params as Record<string, string>)
        : undefined;
    const body = auditedBody(req.body);
    const entry: AuditEntry = {
      at: new Date(),
      requestId: String(req.id),
      actor: {
        via: user ? 'api-key' : 'none',
        ...(user ? { keyId: user.keyId, keyName: user.name, role: user.role } : {}),
        ip: req.ip,
      },
      action: {
        method: req.method,
        route: req.routeOptions.url,
        ...(params ? { params } : {}),
        ...(body !== undefined ? { body } : {}),
        outcome: { via: 'console', ...(req.auditOutcome ?? {}) },
      },
      result: {
        status: reply.statusCode,
        ...(reply.auditError ? { error: reply.auditError } : {}),
        ms: Math.round(reply.elapsedTime),
      },
    };
    try {
      await writeAuditEntry(deps.store, entry);
    } catch (err) {
      req.log.error(
        { err: (err as Error).message, audit: { route: entry.action.route, status: entry.result.status } },
        'could not write the audit log entry',
      );
    }
  });

  app.setErrorHandler((err, req, reply) => {
    const { status, code } = errorStatus(err);
    reply.auditError = code;
    // A page polled by htmx when the session has ended: the whole page goes to the sign-in, not the fragment.
    if (status === 401 && req.headers['hx-request'])
      return reply.status(401).header('hx-redirect', '/console/login').send('');
    if (status === 401 && req.method === 'GET')
      return reply.redirect(`/console/login?next=${encodeURIComponent(req.url)}`, 303);
    if (status >= 500) req.log.error({ err }, 'console request failed');
    const v = viewOf(req, reply);
    const text =
      code === 'csrf_refused'
        ? v.t.csrfRefused
        : status >= 500
          ? `Internal error (request ${String(req.id)}).`
          : (err as Error).message;
    const heading =
      status === 403 && code === 'forbidden' ? v.t.forbidden : status === 404 ? v.t.notFound : v.t.refused;
    const backLink = consolePath(String(req.headers.referer ?? '')) ?? '/console/now';
    return reply
      .status(status)
      .type('text/html; charset=utf-8')
      .send(
        page(v, {
          title: heading,
          section: 'error',
          body: html`<h1>${heading}</h1><p class="flash error" data-code="${code}">${text}</p><p><a href="${backLink}">←</a></p>`,
        }),
      );
  });

  app.get('/', async (_req, reply) => reply.redirect('/console/now', 303));
  await app.register(consoleAssets);
  await app.register(signInRoutes, deps);
  await app.register(nowPage, deps);
  await app.register(networkPage, deps);
  await app.register(incidentPage, deps);
  await app.register(maintenancePage, deps);
  await app.register(subscriberPage, deps);
  await app.register(rulesPage, deps);
  await app.register(billingPage, deps);
  await app.register(keysPage, deps);
};
