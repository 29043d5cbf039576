/**
 * Billing: a month's run and totals, its reports (revenue, costs, most expensive incidents) and
 * the invoice-lines CSV, read from the ledger as /v1/billing/* reads it.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ConsoleDeps } from '../index';
import { html } from '../html';
import { formatTime } from '../i18n';
import { sendHtml } from '../components';
import { ConsoleError, requireRole } from '../session';
import { page, viewOf } from '../view';
import { billingSettingsFromEnv } from '../../../config';
import type { BillingSettings } from '../../../billing/settings';
import { isMonth } from '../../../billing/month';
import { invoiceLinesCsv } from '../../../billing/invoice-lines';
import { loadReport, type ReportName } from '../../../billing/reports';
import { formatCents } from '../../../billing/money';

function previousMonth(now = new Date()): string {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  return d.toISOString().slice(0, 7);
}

export const billingPage: FastifyPluginAsync<ConsoleDeps> = async (app, { store }) => {
  let settings: BillingSettings | undefined;
  const billing = () => (settings ??= billingSettingsFromEnv());

  app.get<{ Querystring: { month?: string } }>('/billing', async (req, reply) => {
    requireRole(req, 'viewer');
    const v = viewOf(req, reply);
    const { t } = v;
    const month = req.query.month && isMonth(req.query.month) ? req.query.month : previousMonth();
    const run = await store.billingRuns.findOne({ _id: month });
    const reports = await Promise.all(
      (['revenue', 'costs', 'incidents'] as ReportName[]).map((name) =>
        loadReport(store, name, billing(), { from: month, to: month, limit: 20 }),
      ),
    );
    const s = run?.completedAt ? run.summary : undefined;
    const body = html`<h1>${t.billing} ${month}</h1>
<form method="get" action="/console/billing" class="card"><label>${t.month} <input type="month" name="month" value="${month}"></label><button type="submit">${t.run}</button></form>
${
  run?.completedAt
    ? html`<p id="billing-run">${formatTime(run.completedAt, v.lang)}${s ? ` · ${s.lines} · net ${formatCents(s.netCents)} + VAT ${formatCents(s.vatCents)} = ${formatCents(s.grossCents)} ${s.currency}` : ''}
· <a href="/console/billing/${month}/invoice-lines.csv" download>${t.invoiceCsv}</a></p>`
    : html`<p id="billing-run">${t.notBilled}</p>`
}
${reports.map(
  (r) =>
    html`<h2>${t.report}: ${r.report}</h2>${
      r.rows.length
        ? html`<table data-report="${r.report}"><thead><tr>${r.columns.map((c) => html`<th>${c.header}</th>`)}</tr></thead><tbody>
${r.rows.map((row) => html`<tr>${r.columns.map((c) => html`<td>${String(c.value(row) ?? '')}</td>`)}</tr>`)}</tbody></table>`
        : html`<p class="note">—</p>`
    }${r.notes.length ? html`<p class="note">${r.notes.join(' ')}</p>` : ''}`,
)}`;
    return sendHtml(reply, page(v, { title: t.billing, section: 'billing', body }));
  });

  app.get<{ Params: { month: string } }>('/billing/:month/invoice-lines.csv', async (req, reply) => {
    requireRole(req, 'viewer');
    const { month } = req.params;
    if (!isMonth(month)) throw new ConsoleError(404, 'not_found', `${month} is not a month (YYYY-MM).`);
    const run = await store.billingRuns.findOne({ _id: month }, { projection: { completedAt: 1 } });
    if (!run?.completedAt)
      throw new ConsoleError(409, 'month_not_billed', `${month} has no completed billing run yet.`);
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="avviso-invoice-lines-${month}.csv"`)
      .send(invoiceLinesCsv(store, month));
  });
};
