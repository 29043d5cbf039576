/**
 * API keys, for admins: the keys without their secrets, making one (its key shown this once)
 * and revoking one, through store/api-keys.ts as /v1/keys does.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ConsoleDeps } from '../index';
import { html, type SafeHtml } from '../html';
import { formatTime } from '../i18n';
import { sendHtml } from '../components';
import { ConsoleError, requireRole } from '../session';
import { page, viewOf } from '../view';
import { ApiKeyInputError, createApiKey, listApiKeys, revokeApiKey } from '../../../store/api-keys';
import { API_KEY_ROLES } from '../../../domain/api-keys';

export const keysPage: FastifyPluginAsync<ConsoleDeps> = async (app, { store }) => {
  const show = async (req: Parameters<typeof viewOf>[0], reply: Parameters<typeof viewOf>[1], made?: SafeHtml) => {
    const v = viewOf(req, reply);
    const { t } = v;
    const keys = await listApiKeys(store, { includeRevoked: true });
    const body = html`<h1>${t.keys}</h1>${made ?? ''}
<table id="keys"><thead><tr><th>ID</th><th>${t.name}</th><th>${t.role}</th><th>${t.created}</th><th>${t.lastUsed}</th><th>${t.revoked}</th><th></th></tr></thead><tbody>
${keys.map(
  (
    k,
  ) => html`<tr data-key="${k.id}"><td>${k.id}</td><td>${k.name}</td><td>${k.role}${k.integration ? ` (${k.integration})` : ''}</td><td>${formatTime(k.createdAt, v.lang)} · ${k.createdBy}</td><td>${formatTime(k.lastUsedAt, v.lang)}</td><td>${formatTime(k.revokedAt, v.lang)}</td>
<td>${k.revokedAt || k.id === v.user?.keyId ? '' : html`<form method="post" action="/console/keys/${k.id}/revoke" class="inline">${v.csrfField()}<button type="submit">${t.revoke}</button></form>`}</td></tr>`,
)}
</tbody></table>
<form method="post" action="/console/keys" class="card">${v.csrfField()}<h2>${t.createKey}</h2>
<label>${t.name} <input name="keyName" required maxlength="100"></label>
<label>${t.role} <select name="role">${API_KEY_ROLES.filter((r) => r !== 'ingest').map((r) => html`<option>${r}</option>`)}</select></label>
<button type="submit">${t.createKey}</button></form>`;
    return sendHtml(reply, page(v, { title: t.keys, section: 'keys', body }));
  };

  app.get('/keys', async (req, reply) => {
    requireRole(req, 'admin');
    return show(req, reply);
  });

  app.post<{ Body: { keyName?: string; role?: string } }>('/keys', async (req, reply) => {
    const admin = requireRole(req, 'admin');
    try {
      const { key, info } = await createApiKey(store, {
        name: String(req.body?.keyName ?? ''),
        role: String(req.body?.role ?? ''),
        createdBy: admin.keyId,
      });
      req.auditOutcome = { keyId: info.id };
      return show(
        req,
        reply,
        html`<p class="flash ok">${viewOf(req, reply).t.keyShownOnce} <code id="new-key">${key}</code></p>`,
      );
    } catch (err) {
      if (err instanceof ApiKeyInputError) throw new ConsoleError(422, err.code, err.message);
      throw err;
    }
  });

  app.post<{ Params: { id: string } }>('/keys/:id/revoke', async (req, reply) => {
    const admin = requireRole(req, 'admin');
    const revoked = await revokeApiKey(store, req.params.id, admin.keyId);
    if (!revoked) throw new ConsoleError(404, 'key_not_found', `No key ${req.params.id}.`);
    req.auditOutcome = { keyId: revoked.id };
    return reply.redirect('/console/keys', 303);
  });
};
