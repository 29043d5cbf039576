/**
 * Subscriber: find one by phone number or contract; their site, SMS option, opt-out state, and
 * every message they were sent (or were to be sent, with why not).
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ConsoleDeps } from '../index';
import { html, type SafeHtml } from '../html';
import { formatTime } from '../i18n';
import { subscriberMessages, whyNotSent } from '../queries';
import { sendHtml } from '../components';
import { requireRole } from '../session';
import { page, viewOf, type View } from '../view';
import { findSubscribers } from '../../../store/subscribers';
import { smsAlertsInForce } from '../../../store/audience';
import { RecordError } from '../../../store/errors';
import type { Subscriber } from '../../../domain/types';
import type { Store } from '../../../store/db';

async function find(store: Store, q: string): Promise<Subscriber[]> {
  const text = q.trim();
  if (!text) return [];
  const byContract = await findSubscribers(store, { contract: text, limit: 1 });
  if (byContract.items.length || !/^[+\d][\d\s().-]{6,}$/.test(text)) return byContract.items;
  try {
    return (await findSubscribers(store, { phone: text, limit: 20 })).items;
  } catch (err) {
    if (err instanceof RecordError) return [];
    throw err;
  }
}

async function card(store: Store, v: View, s: Subscriber): Promise<SafeHtml> {
  const { t } = v;
  const option = s.smsAlerts.active
    ? `${smsAlertsInForce(s, new Date()) ? t.yes : t.no}${s.smsAlerts.since ? ` (${formatTime(s.smsAlerts.since, v.lang)}` : ' ('}–${s.smsAlerts.until ? formatTime(s.smsAlerts.until, v.lang) : ''})`
    : t.no;
  const messages = await subscriberMessages(store, s._id);
  return html`<section class="card" data-subscriber="${s._id}"><h2>${s._id} · ${s.name}</h2>
<p>${t.site}: <a href="/console/network#site-${s.siteId}">${s.siteId}</a> · ${t.option}: <b data-option>${option}</b> · ${t.optedOut}: <b data-opted-out>${s.optedOut ? `${t.yes}${s.optedOutAt ? ` (${formatTime(s.optedOutAt, v.lang)})` : ''}` : t.no}</b> · ${t.language}: ${s.language} · ${t.segment}: ${s.segment} · ${s.phones.join(', ')}</p>
<h3>${t.messagesSent} (${messages.length})</h3>
${
  messages.length
    ? html`<table><thead><tr><th>${t.opened}</th><th>${t.incidents}</th><th>${t.kind}</th><th>${t.channel}</th><th>${t.recipient}</th><th>${t.state}</th><th>${t.whyNot}</th></tr></thead><tbody>
${messages.map((d) => html`<tr><td>${formatTime(d.createdAt, v.lang)}</td><td><a href="/console/${d.incidentId.startsWith('mnt_') ? 'maintenances' : 'incidents'}/${d.incidentId}">${d.incidentId}</a></td><td>${d.kind}</td><td>${d.channel}</td><td>${d.to}</td><td>${d.state}</td><td>${whyNotSent(d) ?? ''}</td></tr>`)}
</tbody></table>`
    : html`<p>${t.noDeliveries}</p>`
}</section>`;
}

export const subscriberPage: FastifyPluginAsync<ConsoleDeps> = async (app, { store }) => {
  // The form posts: a phone number typed in it stays out of URLs, hence out of request logs and
  // browser history. GET takes a contract (the links from message lists).
  app.route<{ Querystring: { q?: string }; Body: { q?: string } }>({
    method: ['GET', 'POST'],
    url: '/subscribers',
    config: { consoleAudit: false },
    handler: async (req, reply) => {
      requireRole(req, 'viewer');
      const v = viewOf(req, reply);
      const { t } = v;
      const q = String((req.method === 'POST' ? req.body?.q : req.query.q) ?? '');
      const found = await find(store, q);
      const body = html`<h1>${t.findSubscriber}</h1>
<form method="post" action="/console/subscribers" class="card">${v.csrfField()}<label>${t.phoneOrContract} <input type="search" name="q" value="${q}" required></label><button type="submit">${t.search}</button></form>
${q.trim() && !found.length ? html`<p>${t.noSubscriber}</p>` : ''}
${await Promise.all(found.map((s) => card(store, v, s)))}`;
      return sendHtml(reply, page(v, { title: t.subscribers, section: 'subscribers', body }));
    },
  });
};
