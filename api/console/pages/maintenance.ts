/**
 * Maintenance: the planned work (coming, under way, recent), scheduling new work with a preview
 * of who will be told, and on each one: reschedule, complete, cancel, and acknowledge an overrun's
 * staff escalation. Changes go through
 * services/maintenances.ts, the same path as the API's routes.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import type { ConsoleDeps } from '../index';
import { html, type SafeHtml } from '../html';
import { formatTime } from '../i18n';
import {
  escalationView,
  incidentProgress,
  progressView,
  romeLocalTime,
  sendHtml,
  siteLinks,
  toRomeLocalInput,
} from '../components';
import { doneFlash } from '../flash';
import { ConsoleError, requireRole } from '../session';
import { page, viewOf, type View } from '../view';
import { createMaintenanceService, maintenanceEscalated, maintenanceIsOver } from '../../../services/maintenances';
import { listMaintenances } from '../../../store/maintenances';
import { resolveAudience } from '../../../store/audience';
import type { Incident } from '../../../domain/types';
import type { Store } from '../../../store/db';
import { rulesResolver } from '../../../store/rule-versions';
import { previewMaintenance, type MaintenancePreview } from '../../../services/maintenance-preview';

const ID = /^mnt_[a-z0-9]{16}$/;
const SEVERITIES = ['minor', 'major', 'critical'] as const;

async function load(store: Store, id: string): Promise<Incident> {
  const m = ID.test(id) ? await store.incidents.findOne({ _id: id, kind: 'maintenance' }) : null;
  if (!m) throw new ConsoleError(404, 'maintenance_not_found', `No maintenance ${id}.`);
  return m;
}

/** Who the work's notice goes to, counted as the workflow will count them (the paid option in force at the start). */
async function preview(store: Store, v: View, siteIds: string[], at: Date): Promise<SafeHtml> {
  const audience = await resolveAudience(store, siteIds, { at });
  const c = await audience.counts();
  return html`<p id="preview">${
    v.lang === 'it'
      ? `Sarà avvisato per SMS chi ha l'opzione in vigore all'inizio: ${c.smsNotice.subscribers} abbonati (${c.smsNotice.phones} numeri) su ${c.subscribers} serviti da ${audience.siteIds.length} siti.`
      : `The SMS notice goes to those with the option in force at the start: ${c.smsNotice.subscribers} subscribers (${c.smsNotice.phones} phones) of ${c.subscribers} served by ${audience.siteIds.length} sites.`
  }</p>`;
}

const ROUND_NAMES = {
  it: {
    maintenance: 'Avviso',
    reminder: 'Promemoria',
    started: 'Inizio lavori',
    before: 'prima',
    when: 'Invio',
    told: 'abbonati avvisati su',
    none: 'Nessuno sarà avvisato.',
  },
  en: {
    maintenance: 'Notice',
    reminder: 'Reminder',
    started: 'Work begins',
    before: 'before',
    when: 'Sent at',
    told: 'subscribers told of',
    none: 'Nobody will be told.',
  },
} as const;

/** Who will be told and when: each round's send time and its messages per channel, from the rules (services/maintenance-preview.ts). */
function previewTable(v: View, p: MaintenancePreview): SafeHtml {
  const n = ROUND_NAMES[v.lang === 'it' ? 'it' : 'en'];
  const channels = [...new Set(p.rounds.flatMap((r) => Object.keys(r.byChannel)))].sort();
  const hours = (s: number) => (s % 3600 === 0 ? `${s / 3600} h` : `${Math.round(s / 60)} min`);
  return html`<div id="preview"><p>${p.told} ${n.told} ${p.subscribers} (${p.areas.join(', ')}) · ${v.t.rules} ${p.rulesVersion}</p>
${
  p.rounds.length
    ? html`<table id="preview-rounds"><thead><tr><th>${v.t.kind}</th><th>${n.when}</th>${channels.map((c) => html`<th>${c}</th>`)}</tr></thead><tbody>
${p.rounds.map((r) => html`<tr data-round="${r.kind}" class="${r.past ? 'past' : ''}"><td>${n[r.kind]}${r.beforeSeconds ? ` (${hours(r.beforeSeconds)} ${n.before})` : ''}</td><td>${formatTime(new Date(r.sendAt), v.lang)}</td>${channels.map((c) => html`<td data-channel="${c}">${r.byChannel[c] ?? 0}</td>`)}</tr>`)}
</tbody></table>`
    : html`<p>${n.none}</p>`
}</div>`;
}

function scheduleForm(v: View): SafeHtml {
  const { t } = v;
  return html`<h2>${t.schedule}</h2>
<form method="post" action="/console/maintenances" class="card" id="schedule-form">${v.csrfField()}<input type="hidden" name="formId" value="${randomUUID()}">
  <label>${t.sites} (${t.siteIdsHelp}) <input name="siteIds" required size="50"></label>
  <label>${t.title} <input name="title" required maxlength="200" size="50"></label>
  <label>${t.description} <textarea name="description" maxlength="2000" rows="2" cols="60"></textarea></label>
  <label>${t.startsAt} <input type="datetime-local" name="startsAt" required></label>
  <label>${t.endsAt} <input type="datetime-local" name="endsAt" required></label>
  <label>${t.severity} <select name="severity">${SEVERITIES.map((s) => html`<option>${s}</option>`)}</select></label>
  <button type="submit">${t.schedule}</button>
  <button type="button" id="preview-button" hx-post="/console/maintenances/preview" hx-include="#schedule-form" hx-target="#preview" hx-swap="outerHTML">${t.preview}</button></form>
<div id="preview"></div>`;
}

function actions(v: View, m: Incident): SafeHtml {
  const { t } = v;
  if (!v.may('operator') || maintenanceIsOver(m)) return html``;
  const action = (p: string) => `/console/maintenances/${m._id}/${p}`;
  const begun = m.phase !== 'scheduled';
  return html`<h2>${t.actions}</h2>
<form method="post" action="${action('reschedule')}" class="card" id="reschedule-form">${v.csrfField()}
  ${begun ? '' : html`<label>${t.startsAt} <input type="datetime-local" name="startsAt" value="${toRomeLocalInput(m.window?.startsAt)}"></label>`}
  <label>${t.endsAt} <input type="datetime-local" name="endsAt" required value="${toRomeLocalInput(m.window?.endsAt)}"></label>
  <label>${t.reason} <input name="reason" maxlength="500" size="40"></label><button type="submit">${t.reschedule}</button></form>
${
  begun
    ? html`<form method="post" action="${action('complete')}" class="card">${v.csrfField()}<label>${t.note} <input name="note" maxlength="500" size="40"></label><button type="submit">${t.complete}</button></form>`
    : html`<form method="post" action="${action('cancel')}" class="card">${v.csrfField()}<label>${t.reason} <input name="reason" maxlength="500" size="40"></label><button type="submit">${t.cancelMaintenance}</button></form>`
}
${maintenanceEscalated(m) && !m.acknowledged ? html`<form method="post" action="${action('acknowledge')}" class="card" id="ack-form">${v.csrfField()}<button type="submit">${t.acknowledge}</button></form>` : ''}`;
}

const text = (s: unknown, max = 500) => (typeof s === 'string' && s.trim() ? s.trim().slice(0, max) : undefined);

function when(value: unknown, what: string): Date {
  const d = romeLocalTime(text(value));
  if (!d) throw new ConsoleError(422, 'invalid_window', `${what}: give a date and time.`);
  return d;
}

export const maintenancePage: FastifyPluginAsync<ConsoleDeps> = async (app, deps) => {
  const { store } = deps;
  const maintenances = createMaintenanceService(deps);
  const rulesFor = deps.rules ? rulesResolver(store, deps.rules) : undefined;

  app.get('/maintenances', async (req, reply) => {
    requireRole(req, 'viewer');
    const v = viewOf(req, reply);
    const { t } = v;
    const { items } = await listMaintenances(store, { from: new Date(Date.now() - 7 * 86_400_000), limit: 100 });
    const body = html`<h1>${t.maintenance}</h1>
<table id="maintenance-list"><thead><tr><th>${t.title}</th><th>${t.phase}</th><th>${t.starts}</th><th>${t.ends}</th><th>${t.sites}</th></tr></thead><tbody>
${items.map((m) => html`<tr data-maintenance="${m._id}"><td><a href="/console/maintenances/${m._id}">${m.title}</a></td><td>${m.phase}</td><td>${formatTime(m.window?.startsAt, v.lang)}</td><td>${formatTime(m.window?.endsAt, v.lang)}</td><td>${siteLinks(m.siteIds)}</td></tr>`)}
</tbody></table>
${v.may('operator') ? scheduleForm(v) : ''}`;
    return sendHtml(reply, page(v, { title: t.maintenance, section: 'maintenance', body }));
  });

  app.get<{ Params: { id: string }; Querystring: { done?: string } }>('/maintenances/:id', async (req, reply) => {
    requireRole(req, 'viewer');
    const m = await load(store, req.params.id);
    const v = viewOf(req, reply);
    const { t } = v;
    const done = doneFlash(v.lang, 'maintenance', req.query.done);
    const body = html`<h1>${m.title} <small>${m._id}</small></h1>
<p>${t.phase}: <b class="phase">${m.phase}</b> · ${t.window}: ${formatTime(m.window?.startsAt, v.lang)} – ${formatTime(m.window?.endsAt, v.lang)}${m.reschedules ? ` (${m.reschedules}×)` : ''} · ${t.severity}: ${m.severity}</p>
${m.description ? html`<p>${m.description}</p>` : ''}
<h2>${t.affectedSites}</h2><p>${siteLinks(m.affectedSiteIds ?? m.siteIds, 50)} · ${t.areas}: ${m.areas.join(', ')}</p>
${m.phase === 'scheduled' && m.window ? await preview(store, v, m.siteIds, m.window.startsAt) : ''}
${m.phase === 'scheduled' && m.window && rulesFor ? previewTable(v, await previewMaintenance(store, await rulesFor(m.rulesVersion), { id: m._id, siteIds: m.siteIds, ...m.window, title: m.title, severity: m.severity, decidedAt: m.openedAt }, new Date())) : ''}
<h2>${t.progress}</h2>${progressView(v, await incidentProgress(store, m._id))}
${escalationView(v, m)}
${actions(v, m)}
<h2>${t.timeline}</h2>
<table id="timeline"><tbody>${m.timeline.map((e) => html`<tr><td>${formatTime(e.at, v.lang)}</td><td>${e.phase}</td><td>${e.note ?? ''}</td></tr>`)}</tbody></table>`;
    return sendHtml(
      reply,
      page(v, {
        title: m.title,
        section: 'maintenance',
        body,
        ...(done ? { flash: { kind: 'ok' as const, text: done } } : {}),
      }),
    );
  });

  // Changes nothing: not in the audit log.
  app.post<{ Body: Record<string, string | undefined> }>(
    '/maintenances/preview',
    { config: { consoleAudit: false } },
    async (req, reply) => {
      requireRole(req, 'operator');
      const b = req.body ?? {};
      const siteIds = [
        ...new Set(
          String(b.siteIds ?? '')
            .split(/[\s,;]+/)
            .filter(Boolean),
        ),
      ];
      if (!siteIds.length) throw new ConsoleError(422, 'no_sites', 'Name at least one site.');
      if (!rulesFor) throw new ConsoleError(503, 'no_rules', 'No rules are loaded.');
      const startsAt = when(b.startsAt, 'Start');
      const endsAt = when(b.endsAt, 'End');
      if (endsAt <= startsAt) throw new ConsoleError(422, 'invalid_window', 'End must be after start.');
      const now = new Date();
      const p = await previewMaintenance(
        store,
        await rulesFor(),
        { siteIds, startsAt, endsAt, title: text(b.title, 200), decidedAt: now },
        now,
      );
      return sendHtml(reply, previewTable(viewOf(req, reply), p));
    },
  );

  app.post<{ Body: Record<string, string | undefined> }>('/maintenances', async (req, reply) => {
    requireRole(req, 'operator');
    const b = req.body ?? {};
    const siteIds = [
      ...new Set(
        String(b.siteIds ?? '')
          .split(/[\s,;]+/)
          .filter(Boolean),
      ),
    ];
    if (!siteIds.length) throw new ConsoleError(422, 'no_sites', 'Name at least one site.');
    const title = text(b.title, 200);
    if (!title) throw new ConsoleError(422, 'no_title', 'Give the work a title.');
    const formId = /^[0-9a-f-]{36}$/.test(String(b.formId)) ? String(b.formId) : undefined;
    const { maintenance, created } = await maintenances.create({
      siteIds,
      startsAt: when(b.startsAt, 'Start').toISOString(),
      endsAt: when(b.endsAt, 'End').toISOString(),
      title,
      ...(text(b.description, 2000) ? { description: text(b.description, 2000) } : {}),
      severity: SEVERITIES.find((s) => s === b.severity) ?? 'minor',
      source: 'console',
      // The form's own id: sending it twice plans the work once.
      ...(formId ? { key: `console:${formId}` } : {}),
    });
    req.auditOutcome = { maintenanceId: maintenance._id, created };
    return reply.redirect(`/console/maintenances/${maintenance._id}?done=scheduled`, 303);
  });

  app.post<{ Params: { id: string; action: string }; Body: Record<string, string | undefined> }>(
    '/maintenances/:id/:action',
    async (req, reply) => {
      const user = requireRole(req, 'operator');
      const m = await load(store, req.params.id);
      const { action } = req.params;
      const b = req.body ?? {};
      if (action === 'reschedule') {
        const startsAt = text(b.startsAt) ? when(b.startsAt, 'Start').toISOString() : undefined;
        await maintenances.reschedule(m._id, {
          endsAt: when(b.endsAt, 'End').toISOString(),
          ...(startsAt ? { startsAt } : {}),
          ...(text(b.reason) ? { reason: text(b.reason) } : {}),
        });
      } else if (action === 'complete') await maintenances.complete(m._id, text(b.note));
      else if (action === 'cancel') await maintenances.cancel(m._id, text(b.reason));
      else if (action === 'acknowledge')
        await maintenances.acknowledge(m._id, { by: `${user.name} (key ${user.keyId})`, via: 'console' });
      else throw new ConsoleError(404, 'not_found', `No action ${action}.`);
      req.auditOutcome = { maintenanceId: m._id, action };
      return reply.redirect(`/console/maintenances/${m._id}?done=${action}`, 303);
    },
  );
};
