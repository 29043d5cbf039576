/**
 * Network: the backhaul tree (each site under the one that feeds it), each site's state (normal,
 * down: an open outage covers it, under maintenance: work under way) and its paying subscribers,
 * on the site and on it and everything below. An operator opens an incident on a site from here.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import type { ConsoleDeps } from '../index';
import { html, type SafeHtml } from '../html';
import { networkTree, type SiteNode } from '../queries';
import { sendHtml } from '../components';
import { requireRole } from '../session';
import { page, viewOf, type View } from '../view';
import { createIncidentService } from '../../../services/incidents';

const SEVERITIES = ['minor', 'major', 'critical'] as const;

function node(v: View, n: SiteNode): SafeHtml {
  const { t } = v;
  const label = { normal: t.normal, down: t.down, maintenance: t.underMaintenance }[n.state];
  return html`<li id="site-${n.site._id}" data-site="${n.site._id}" data-state="${n.state}">
<span class="state-${n.state}">● ${label}</span> <b>${n.site._id}</b> ${n.site.name} <small>(${n.site.area}${n.site.kind ? `, ${n.site.kind}` : ''})</small>
· ${t.paying}: <span data-paying="${n.paying}">${n.paying}</span>, ${t.payingBelow}: <span data-paying-below="${n.payingBelow}">${n.payingBelow}</span>
${n.causes.map((id) => html` <a href="/console/${id.startsWith('mnt_') ? 'maintenances' : 'incidents'}/${id}">${id}</a>`)}
${
  v.may('operator') && n.state !== 'down'
    ? html`<details><summary>${t.openIncidentOn}</summary>
<form method="post" action="/console/network/open" class="card">${v.csrfField()}<input type="hidden" name="siteId" value="${n.site._id}"><input type="hidden" name="formId" value="${randomUUID()}">
<label>${t.title} <input name="title" maxlength="200" size="40"></label>
<label>${t.severity} <select name="severity">${SEVERITIES.map((s) => html`<option${s === 'major' ? html` selected` : ''}>${s}</option>`)}</select></label>
<button type="submit">${t.open}</button></form></details>`
    : ''
}
${n.children.length ? html`<ul class="tree">${n.children.map((c) => node(v, c))}</ul>` : ''}
</li>`;
}

export const networkPage: FastifyPluginAsync<ConsoleDeps> = async (app, deps) => {
  const incidents = createIncidentService(deps);

  app.get('/network', async (req, reply) => {
    requireRole(req, 'viewer');
    const v = viewOf(req, reply);
    const { roots, total } = await networkTree(deps.store);
    return sendHtml(
      reply,
      page(v, {
        title: v.t.network,
        section: 'network',
        body: html`<h1>${v.t.network} <small>(${total} ${v.t.sites.toLowerCase()})</small></h1><ul class="tree" id="network">${roots.map((r) => node(v, r))}</ul>`,
      }),
    );
  });

  app.post<{ Body: { siteId?: string; title?: string; severity?: string; formId?: string } }>(
    '/network/open',
    async (req, reply) => {
      requireRole(req, 'operator');
      const siteId = String(req.body?.siteId ?? '').trim();
      const severity = SEVERITIES.find((s) => s === req.body?.severity) ?? 'major';
      const title = String(req.body?.title ?? '')
        .trim()
        .slice(0, 200);
      // The form's own id is the key: sending it twice (a double click, a retry) opens one incident.
      const formId = /^[0-9a-f-]{36}$/.test(String(req.body?.formId)) ? String(req.body!.formId) : undefined;
      const { incident, created } = await incidents.open({
        siteIds: [siteId],
        severity,
        ...(title ? { title } : {}),
        source: 'console',
        ...(formId ? { key: `console:${formId}` } : {}),
      });
      req.auditOutcome = { incidentId: incident._id, created };
      return reply.redirect(`/console/incidents/${incident._id}?done=opened`, 303);
    },
  );
};
