/**
 * Now: open outages and maintenance under way or coming, each with its sites, areas, phase, age
 * and message progress. The panel reloads itself every 5 seconds (htmx polling of /now/panel).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ConsoleDeps } from '../index';
import { html } from '../html';
import { formatAge, formatTime } from '../i18n';
import { openOutages, pendingMaintenances } from '../queries';
import { incidentProgress, progressView, sendHtml, siteLinks } from '../components';
import { requireRole } from '../session';
import { page, viewOf, type View } from '../view';
import type { Store } from '../../../store/db';

async function panel(store: Store, v: View) {
  const [outages, maintenances] = await Promise.all([openOutages(store), pendingMaintenances(store)]);
  const progress = new Map(
    await Promise.all(
      [...outages, ...maintenances].map(async (i) => [i._id, await incidentProgress(store, i._id)] as const),
    ),
  );
  const { t } = v;
  return html`<div id="now-panel" hx-get="/console/now/panel" hx-trigger="every 5s" hx-swap="outerHTML">
<h2>${t.openIncidents} (${outages.length})</h2>
${
  outages.length
    ? html`<table id="open-incidents"><thead><tr><th>${t.title}</th><th>${t.severity}</th><th>${t.phase}</th><th>${t.sites}</th><th>${t.areas}</th><th>${t.age}</th><th>${t.progress}</th></tr></thead><tbody>
${outages.map(
  (
    i,
  ) => html`<tr data-incident="${i._id}"><td><a href="/console/incidents/${i._id}">${i.title || i._id}</a><br><small>${i._id}</small></td><td>${i.severity}</td><td class="phase">${i.phase}</td>
<td>${siteLinks(i.siteIds)}${(i.affectedSiteIds?.length ?? 0) > i.siteIds.length ? html` <small>(+${i.affectedSiteIds!.length - i.siteIds.length})</small>` : ''}</td><td>${i.areas.join(', ')}</td>
<td title="${formatTime(i.openedAt, v.lang)}">${formatAge(i.openedAt)}</td><td>${progressView(v, progress.get(i._id)!)}</td></tr>`,
)}
</tbody></table>`
    : html`<p>${t.noOpenIncidents}</p>`
}
<h2>${t.maintenances} (${maintenances.length})</h2>
${
  maintenances.length
    ? html`<table id="maintenances"><thead><tr><th>${t.title}</th><th>${t.phase}</th><th>${t.window}</th><th>${t.sites}</th><th>${t.areas}</th><th>${t.progress}</th></tr></thead><tbody>
${maintenances.map(
  (
    m,
  ) => html`<tr data-maintenance="${m._id}"><td><a href="/console/maintenances/${m._id}">${m.title}</a><br><small>${m._id}</small></td><td class="phase">${m.phase}</td>
<td>${formatTime(m.window?.startsAt, v.lang)} – ${formatTime(m.window?.endsAt, v.lang)}</td><td>${siteLinks(m.siteIds)}</td><td>${m.areas.join(', ')}</td><td>${progressView(v, progress.get(m._id)!)}</td></tr>`,
)}
</tbody></table>`
    : html`<p>${t.noMaintenances}</p>`
}
<p class="note">${t.updatedEvery} ${formatTime(new Date(), v.lang)}</p>
</div>`;
}

export const nowPage: FastifyPluginAsync<ConsoleDeps> = async (app, { store }) => {
  app.get('/now', async (req, reply) => {
    requireRole(req, 'viewer');
    const v = viewOf(req, reply);
    return sendHtml(
      reply,
      page(v, { title: v.t.now, section: 'now', body: html`<h1>${v.t.now}</h1>${await panel(store, v)}` }),
    );
  });
  app.get('/now/panel', async (req, reply) => {
    requireRole(req, 'viewer');
    return sendHtml(reply, await panel(store, viewOf(req, reply)));
  });
};
