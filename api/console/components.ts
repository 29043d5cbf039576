/** Pieces several pages draw: message progress, phase and state badges, site lists, times. */
import type { FastifyReply } from 'fastify';
import type { Store } from '../../store/db';
import type { Incident } from '../../domain/types';
import { sharedDeliveryCounts, sharedRun } from '../../store/incidents';
import { html, type SafeHtml } from './html';
import { heldByChannel, progressByChannel, type Progress } from './queries';
import type { View } from './view';
import { formatTime } from './i18n';

export async function incidentProgress(store: Store, incidentId: string): Promise<Record<string, Progress>> {
  // Every open page polls this (every 5 s): both reads are shared by the viewers of one incident (sharedRun).
  const [counts, held] = await Promise.all([
    sharedDeliveryCounts(store, incidentId),
    sharedRun(store, `held:${incidentId}`, () => heldByChannel(store, incidentId)),
  ]);
  return progressByChannel(counts, held);
}

/** Per channel: planned / sent / delivered / failed / held, and the delivered share (a <progress>: the CSP allows no inline styles). */
export function progressView(v: View, progress: Record<string, Progress>): SafeHtml {
  const channels = Object.entries(progress);
  if (!channels.length) return html`<span class="note">—</span>`;
  return html`<table class="progress"><tbody>${channels.map(([channel, p]) => {
    const total = p.planned + p.sent + p.delivered + p.failed;
    const share = total ? Math.round((p.delivered / total) * 100) : 0;
    return html`<tr data-channel="${channel}"><th>${channel}</th>
<td><span data-state="planned">${p.planned}</span> ${v.t.planned} · <span data-state="sent">${p.sent}</span> ${v.t.sent} · <span data-state="delivered">${p.delivered}</span> ${v.t.delivered} · <span data-state="failed">${p.failed}</span> ${v.t.failed} · <span data-state="held">${p.held}</span> ${v.t.held}</td>
<td><progress max="100" value="${share}">${share}%</progress> ${share}%</td></tr>`;
  })}</tbody></table>`;
}

export function siteLinks(ids: string[], max = 8): SafeHtml {
  const shown = ids.slice(0, max);
  return html`${shown.map((id, i) => html`${i ? ', ' : ''}<a href="/console/network#site-${id}">${id}</a>`)}${ids.length > max ? ` +${ids.length - max}` : ''}`;
}

export function incidentHref(i: Pick<Incident, '_id' | 'kind'>): string {
  return i.kind === 'maintenance' ? `/console/maintenances/${i._id}` : `/console/incidents/${i._id}`;
}

export function sendHtml(reply: FastifyReply, body: string | SafeHtml, status = 200) {
  return reply.status(status).type('text/html; charset=utf-8').send(String(body));
}

/** A datetime-local input's value ("2026-12-04T22:00"), read as Italian time. */
export function romeLocalTime(value: string | undefined): Date | undefined {
  if (!value) return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(value.trim());
  if (!m) {
    const d = new Date(value);
    return Number.isNaN(d.getTime()) ? undefined : d;
  }
  const [y, mo, d, h, mi] = m.slice(1).map(Number) as [number, number, number, number, number];
  const guess = Date.UTC(y, mo - 1, d, h, mi);
  // Rome's offset at that moment (1 or 2 hours): format the guess in Rome and correct by the difference.
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Europe/Rome',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(new Date(guess));
  const get = (t: string) => Number(parts.find((p) => p.type === t)!.value);
  const shown = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'));
  return new Date(guess - (shown - guess));
}

/** A Date as a datetime-local value in Italian time. */
export function toRomeLocalInput(d: Date | undefined): string {
  if (!d) return '';
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Europe/Rome',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(d);
  const get = (t: string) => parts.find((p) => p.type === t)!.value;
  return `${get('year')}-${get('month')}-${get('day')}T${get('hour')}:${get('minute')}`;
}

/** Who took the escalation, and what of it could not go: for everyone who may see the incident. */
export function escalationView(v: View, i: Incident): SafeHtml {
  const { t } = v;
  return html`${i.acknowledged ? html`<p id="acknowledged" class="card">${t.acknowledgedBy} <b>${i.acknowledged.by}</b>, ${formatTime(i.acknowledged.at, v.lang)} (${i.acknowledged.via})</p>` : ''}
${i.escalationProblems?.length ? html`<div id="escalation-problems" class="card"><h3>${t.escalationProblems}</h3><ul>${i.escalationProblems.map((p) => html`<li>${formatTime(p.at, v.lang)} #${p.round}: ${p.problem}</li>`)}</ul></div>` : ''}`;
}
