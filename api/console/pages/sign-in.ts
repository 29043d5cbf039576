/**
 * Signing in with an API key (checked once: store/api-keys.ts verifyApiKey), signing out, and
 * the language switch. An ingest key cannot sign in: it is bound to one integration's webhook.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ConsoleDeps } from '../index';
import { html } from '../html';
import { LANG_COOKIE } from '../i18n';
import { clearSession, isConsoleRole, setSession } from '../session';
import { consolePath, page, viewOf, type View } from '../view';
import { verifyApiKey } from '../../../store/api-keys';

function form(v: View, next: string, error?: string) {
  return page(v, {
    title: v.t.signIn,
    section: 'login',
    ...(error ? { flash: { kind: 'error' as const, text: error } } : {}),
    body: html`<h1>${v.t.signIn}</h1>
<form method="post" action="/console/login" class="card">
  ${v.csrfField()}
  <input type="hidden" name="next" value="${next}">
  <p>${v.t.signInHelp}</p>
  <label>${v.t.apiKey} <input type="password" name="key" autocomplete="current-password" required size="60" placeholder="avk_…"></label>
  <button type="submit">${v.t.signIn}</button>
</form>`,
  });
}

/** Wrong keys per address in the current minute: past the cap, sign-in answers 429 without a look-up. */
const FAILURES_PER_MINUTE = 30;

export const signInRoutes: FastifyPluginAsync<ConsoleDeps> = async (app, deps) => {
  let window = Date.now();
  const failures = new Map<string, number>();
  const blocked = (ip: string) => {
    if (Date.now() - window > 60_000 || failures.size > 10_000) {
      window = Date.now();
      failures.clear();
    }
    return (failures.get(ip) ?? 0) >= FAILURES_PER_MINUTE;
  };

  app.get<{ Querystring: { next?: string } }>('/login', async (req, reply) => {
    const next = consolePath(req.query.next ?? '') ?? '/console/now';
    if (req.consoleUser) return reply.redirect(next, 303);
    return reply.type('text/html; charset=utf-8').send(form(viewOf(req, reply), next));
  });

  app.post<{ Body: { key?: string; next?: string } }>('/login', async (req, reply) => {
    const v = viewOf(req, reply);
    const next = consolePath(req.body?.next ?? '') ?? '/console/now';
    if (blocked(req.ip)) {
      reply.auditError = 'too_many_failed_attempts';
      return reply
        .status(429)
        .type('text/html; charset=utf-8')
        .send(form(v, next, `${v.t.badKey}: too many wrong keys from this address in the last minute; wait a minute.`));
    }
    const check = await verifyApiKey(deps.store, String(req.body?.key ?? '').trim());
    if (!check.ok || !isConsoleRole(check.key.role)) {
      const why = !check.ok
        ? check.reason === 'revoked'
          ? 'revoked'
          : check.reason === 'malformed'
            ? 'not an Avviso key (avk_<id>_<secret>)'
            : 'unknown key or wrong secret'
        : `role ${check.key.role} cannot use the console`;
      failures.set(req.ip, (failures.get(req.ip) ?? 0) + 1);
      reply.auditError = 'bad_api_key';
      return reply
        .status(401)
        .type('text/html; charset=utf-8')
        .send(form(v, next, `${v.t.badKey}: ${why}.`));
    }
    req.consoleUser = { keyId: check.key.id, name: check.key.name, role: check.key.role };
    req.auditOutcome = { signedIn: check.key.id };
    setSession(reply, req, check.key.id);
    return reply.redirect(next, 303);
  });

  app.post('/logout', async (_req, reply) => {
    clearSession(reply);
    return reply.redirect('/console/login', 303);
  });

  app.get<{ Querystring: { to?: string } }>('/lang', async (req, reply) => {
    const to = req.query.to === 'en' ? 'en' : 'it';
    reply.setCookie(LANG_COOKIE, to, { path: '/console', sameSite: 'lax', httpOnly: true, maxAge: 365 * 86400 });
    return reply.redirect(consolePath(String(req.headers.referer ?? '')) ?? '/console/now', 303);
  });
};
