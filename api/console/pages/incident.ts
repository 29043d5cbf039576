/**
 * Incident: what happened (timeline), where (affected sites), how far the messages got (live,
 * by channel), each message with why it was not sent (search by phone or contract), and the
 * operator's actions: post an update or a new estimate, escalate, acknowledge the escalation,
 * resolve, cancel; who took the escalation, and what of it could not be sent. Actions go
 * through services/incidents.ts, the same path as the API's routes.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ConsoleDeps } from '../index';
import { html, type SafeHtml } from '../html';
import { formatAge, formatTime } from '../i18n';
import { doneFlash } from '../flash';
import { searchDeliveries, whyNotSent } from '../queries';
import { escalationView, incidentProgress, progressView, romeLocalTime, sendHtml, siteLinks } from '../components';
import { ConsoleError, requireRole } from '../session';
import { page, viewOf, type View } from '../view';
import { createIncidentService } from '../../../services/incidents';
import { mobileNumber } from '../../../store/normalize';
import type { Incident } from '../../../domain/types';
import type { Store } from '../../../store/db';
import { checkedText, OperatorTextError, previewMessage, smsPolicyOf } from '../../../services/operator-messages';
import { TargetError, targetSites } from '../../../store/operator-audience';
import { operatorMessageDeps } from '../../operator-sms';

const ID = /^inc_[a-z0-9]{16}$/;
const CLOSED = ['resolved', 'cancelled', 'billed'];

async function load(store: Store, id: string): Promise<Incident> {
  const incident = ID.test(id)
    ? await store.incidents.findOne({ _id: id, kind: { $in: ['outage', 'announcement'] } })
    : null;
  if (!incident) throw new ConsoleError(404, 'incident_not_found', `No incident ${id}.`);
  return incident;
}

/** A search box's text as a phone number (normalized as the store does) or else a contract id. */
function searchTerms(q: string): { phone?: string; contract?: string } {
  const text = q.trim();
  if (!text) return {};
  if (/^[+\d][\d\s().-]{6,}$/.test(text)) {
    try {
      return { phone: mobileNumber(text, 'q') };
    } catch {
      // not a mobile number: a contract id made of digits
    }
  }
  return { contract: text };
}

async function deliveriesView(store: Store, v: View, id: string, q: string): Promise<SafeHtml> {
  const { t } = v;
  const items = await searchDeliveries(store, id, { ...searchTerms(q), limit: 200 });
  return html`<div id="deliveries">${
    items.length
      ? html`<table><thead><tr><th>${t.contract}</th><th>${t.recipient}</th><th>${t.channel}</th><th>${t.kind}</th><th>${t.state}</th><th>${t.attempts}</th><th>${t.lastChange}</th><th>${t.whyNot}</th></tr></thead><tbody>
${items.map((d) => html`<tr data-delivery-state="${d.state}"><td><a href="/console/subscribers?q=${encodeURIComponent(d.subscriberId)}">${d.subscriberId}</a></td><td>${d.to}</td><td>${d.channel}</td><td>${d.kind}${d.round ? ` #${d.round}` : ''}</td><td>${d.state}</td><td>${d.attempts}</td><td>${formatTime(d.updatedAt, v.lang)}</td><td>${whyNotSent(d) ?? ''}</td></tr>`)}
</tbody></table>${items.length === 200 ? html`<p class="note">200+</p>` : ''}`
      : html`<p>${t.noDeliveries}</p>`
  }</div>`;
}

async function progressPanel(store: Store, v: View, i: Incident): Promise<SafeHtml> {
  const open = !CLOSED.includes(i.phase);
  // Polls while the incident is open; the closed incident's numbers no longer move.
  return html`<div id="progress" ${open ? html`hx-get="/console/incidents/${i._id}/progress" hx-trigger="every 5s" hx-swap="outerHTML"` : ''}>
<p>${v.t.phase}: <b class="phase">${i.phase}</b></p>${progressView(v, await incidentProgress(store, i._id))}</div>`;
}

function actions(v: View, i: Incident): SafeHtml {
  const { t } = v;
  if (!v.may('operator') || CLOSED.includes(i.phase)) return html``;
  const action = (path: string) => `/console/incidents/${i._id}/${path}`;
  return html`<h2>${t.actions}</h2>
<form method="post" action="${action('update')}" class="card" id="update-form">${v.csrfField()}
  <label>${t.updateText} <input name="text" maxlength="500" size="60"></label>
  <label>${t.newEstimate} <input type="datetime-local" name="estimatedEnd"></label>
  <fieldset id="update-sms"><label><input type="checkbox" name="sms" value="1"> ${t.alsoSms}</label>
  ${i.areas.length > 1 ? html`<span>${t.smsAreas}: ${i.areas.map((a) => html`<label><input type="checkbox" name="areas" value="${a}"> ${a}</label> `)}</span>` : ''}
  <button type="submit" name="preview" value="1">${t.smsPreview}</button></fieldset>
  <button type="submit">${t.update}</button></form>
<form method="post" action="${action('escalate')}" class="card">${v.csrfField()}<label>${t.reason} <input name="reason" maxlength="500" size="40"></label><button type="submit">${t.escalate}</button></form>
${i.acknowledged ? '' : html`<form method="post" action="${action('acknowledge')}" class="card" id="ack-form">${v.csrfField()}<button type="submit">${t.acknowledge}</button></form>`}
<form method="post" action="${action('resolve')}" class="card" id="resolve-form">${v.csrfField()}<label>${t.note} <input name="note" maxlength="500" size="40"></label><button type="submit">${t.resolve}</button></form>
<form method="post" action="${action('cancel')}" class="card">${v.csrfField()}<label>${t.reason} <input name="reason" maxlength="500" size="40"></label><button type="submit">${t.cancel}</button></form>`;
}

export const incidentPage: FastifyPluginAsync<ConsoleDeps> = async (app, deps) => {
  const { store } = deps;
  const incidents = createIncidentService(deps);

  app.get<{ Params: { id: string }; Querystring: { q?: string; done?: string } }>(
    '/incidents/:id',
    async (req, reply) => {
      requireRole(req, 'viewer');
      const i = await load(store, req.params.id);
      const v = viewOf(req, reply);
      const { t } = v;
      const q = String(req.query.q ?? '');
      const done = doneFlash(v.lang, 'incident', req.query.done);
      const body = html`<h1>${i.title || i._id} <small>${i._id}</small></h1>
<p>${t.severity}: <b>${i.severity}</b> · ${t.opened}: ${formatTime(i.openedAt, v.lang)} (${formatAge(i.openedAt)}) · ${i.source}${i.estimatedEnd ? html` · ETA ${formatTime(i.estimatedEnd, v.lang)}` : ''}</p>
<h2>${t.affectedSites}</h2><p>${siteLinks(i.affectedSiteIds ?? i.siteIds, 50)} · ${t.areas}: ${i.areas.join(', ')}</p>
<h2>${t.progress}</h2>${await progressPanel(store, v, i)}
${escalationView(v, i)}
${actions(v, i)}
<h2>${t.timeline}</h2>
<table id="timeline"><tbody>${i.timeline.map((e) => html`<tr><td>${formatTime(e.at, v.lang)}</td><td>${e.phase}</td><td>${e.note ?? ''}</td></tr>`)}</tbody></table>
<h2>${t.deliveries}</h2>
<form method="post" action="/console/incidents/${i._id}/deliveries" hx-post="/console/incidents/${i._id}/deliveries" hx-target="#deliveries" hx-swap="outerHTML" class="card">${v.csrfField()}
  <label>${t.search} (${t.searchHelp}) <input type="search" name="q" value="${q}" hx-post="/console/incidents/${i._id}/deliveries" hx-trigger="keyup changed delay:400ms" hx-target="#deliveries" hx-swap="outerHTML"></label>
  <button type="submit">${t.search}</button></form>
${await deliveriesView(store, v, i._id, q)}`;
      return sendHtml(
        reply,
        page(v, {
          title: i.title || i._id,
          section: 'now',
          body,
          ...(done ? { flash: { kind: 'ok' as const, text: done } } : {}),
        }),
      );
    },
  );

  app.get<{ Params: { id: string } }>('/incidents/:id/progress', async (req, reply) => {
    requireRole(req, 'viewer');
    return sendHtml(reply, await progressPanel(store, viewOf(req, reply), await load(store, req.params.id)));
  });

  // A search posts (a phone number stays out of URLs and request logs); GET takes a contract.
  app.route<{ Params: { id: string }; Querystring: { q?: string }; Body: { q?: string } }>({
    method: ['GET', 'POST'],
    url: '/incidents/:id/deliveries',
    config: { consoleAudit: false },
    handler: async (req, reply) => {
      requireRole(req, 'viewer');
      const i = await load(store, req.params.id);
      return sendHtml(
        reply,
        await deliveriesView(
          store,
          viewOf(req, reply),
          i._id,
          String((req.method === 'POST' ? req.body?.q : req.query.q) ?? ''),
        ),
      );
    },
  });

  type ActionBody = {
    text?: string;
    estimatedEnd?: string;
    note?: string;
    reason?: string;
    sms?: string;
    areas?: string | string[];
    preview?: string;
  };
  const messages = operatorMessageDeps(deps);

  /** The update's words by SMS, checked as the API checks them; with `preview`, what sending would take. */
  const smsOf = async (i: Incident, b: ActionBody) => {
    if (!b.sms && !b.preview) return undefined;
    if (!text(b.text)) throw new ConsoleError(422, 'invalid_text', 'Write the text to send by SMS.');
    const areas = (Array.isArray(b.areas) ? b.areas : b.areas ? [b.areas] : []).filter(Boolean);
    try {
      const checked = checkedText(text(b.text)!, smsPolicyOf((await messages.incident(i._id)).rules), 'text');
      if (!b.preview) await targetSites(store, i, { areas });
      const preview = b.preview ? await previewMessage(store, i, { areas }, checked, messages.rates()) : undefined;
      return { checked, areas, preview };
    } catch (err) {
      if (err instanceof OperatorTextError || err instanceof TargetError)
        throw new ConsoleError(422, 'invalid_text', err.message);
      throw err;
    }
  };
  const text = (s: unknown) => (typeof s === 'string' && s.trim() ? s.trim().slice(0, 500) : undefined);

  app.post<{ Params: { id: string; action: string }; Body: ActionBody }>(
    '/incidents/:id/:action',
    async (req, reply) => {
      const user = requireRole(req, 'operator');
      const i = await load(store, req.params.id);
      const action = req.params.action;
      const b = req.body ?? {};
      if (action === 'update') {
        const eta = romeLocalTime(text(b.estimatedEnd));
        if (b.estimatedEnd && !eta)
          throw new ConsoleError(422, 'invalid_estimate', `"${b.estimatedEnd}" is not a date and time.`);
        if (eta && eta.getTime() < Date.now() - 60_000)
          throw new ConsoleError(
            422,
            'estimate_in_past',
            'The new estimate is in the past; give when service is expected back.',
          );
        if (!text(b.text) && !eta)
          throw new ConsoleError(422, 'empty_update', 'Write a text, give a new estimate, or both.');
        const sms = await smsOf(i, b);
        if (sms?.preview) {
          const v = viewOf(req, reply);
          const p = sms.preview;
          return sendHtml(
            reply,
            page(v, {
              title: v.t.smsPreviewTitle,
              section: 'now',
              body: html`<h1>${v.t.smsPreviewTitle}</h1>
<p id="sms-preview">«${p.text}»</p><p>${v.t.smsRecipients}: <b>${p.recipients}</b> (${p.areas.join(', ')}) · ${v.t.smsParts}: <b>${p.parts}</b> (${p.encoding}) · ${v.t.smsCost}: <b>${p.cost.amount} ${p.cost.currency}</b></p>
<p><a href="/console/incidents/${i._id}">${v.t.backToIncident}</a></p>`,
            }),
          );
        }
        await incidents.addUpdate(i._id, {
          text: text(b.text),
          estimatedEnd: eta?.toISOString(),
          ...(sms ? { sms: { text: sms.checked.text, ...(sms.areas.length ? { areas: sms.areas } : {}) } } : {}),
        });
      } else if (action === 'escalate') await incidents.escalate(i._id, text(b.reason));
      else if (action === 'acknowledge')
        await incidents.acknowledge(i._id, { by: `${user.name} (key ${user.keyId})`, via: 'console' });
      else if (action === 'resolve') await incidents.resolve(i._id, text(b.note));
      else if (action === 'cancel') await incidents.cancel(i._id, text(b.reason));
      else throw new ConsoleError(404, 'not_found', `No action ${action}.`);
      req.auditOutcome = { incidentId: i._id, action };
      return reply.redirect(`/console/incidents/${i._id}?done=${action}`, 303);
    },
  );
};
