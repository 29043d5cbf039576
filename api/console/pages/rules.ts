/**
 * Rules: the version in force, and the rule tools from the browser (editing stays in files):
 * check a rule file's text, explain the decision for one subscriber on a site, simulate an
 * incident on a site with its real subscribers. The same RuleSet calls as /v1/rules/*; like
 * those routes, the tools need an operator (they read subscribers' facts).
 */
import path from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import type { ConsoleDeps } from '../index';
import { html, type SafeHtml } from '../html';
import { formatTime } from '../i18n';
import { sendHtml } from '../components';
import { ConsoleError, requireRole } from '../session';
import { page, viewOf, type View } from '../view';
import { checkRulesHere } from '../../../rules/escalation-check';
import { staffChannelsFromEnv } from '../../../config';
import { formatProblem, type IncidentFacts, type RulesHolder, type SubscriberFacts } from '../../../rules';
import { resolveAudience } from '../../../store/audience';
import { listContacts } from '../../../store/contacts';
import { subscriberFacts } from '../../../activities/notices';
import type { Store } from '../../../store/db';

const SEVERITIES = ['minor', 'major', 'critical'] as const;

function overview(v: View, holder: RulesHolder | undefined): SafeHtml {
  const { t } = v;
  if (!holder) return html`<p class="note">—</p>`;
  const r = holder.current();
  return html`<table id="rules-in-force"><tbody>
<tr><th>${t.version}</th><td data-version>${r.version}</td></tr>
<tr><th>${t.loaded}</th><td>${formatTime(r.loadedAt, v.lang)}</td></tr>
<tr><th>${t.files}</th><td>${r.files.map((f) => f.name).join(', ')}</td></tr>
<tr><th>${t.rules}</th><td>${r.ruleNames.join(', ')}</td></tr>
<tr><th>${t.warnings}</th><td>${r.warnings.length ? r.warnings.map((w) => formatProblem(w)).join('\n') : '0'}</td></tr>
</tbody></table>`;
}

function tools(v: View, result?: SafeHtml): SafeHtml {
  const { t } = v;
  if (!v.may('operator')) return html``;
  const incidentFields = html`<label>${t.site} <input name="siteId" required></label>
<label>${t.kind} <select name="kind"><option>outage</option><option>maintenance</option></select></label>
<label>${t.severity} <select name="severity">${SEVERITIES.map((s) => html`<option${s === 'major' ? html` selected` : ''}>${s}</option>`)}</select></label>`;
  return html`${result ? html`<section class="card" id="result">${result}</section>` : ''}
<form method="post" action="/console/rules/check" class="card">${v.csrfField()}<h2>${t.check}</h2><p>${t.checkHelp}</p>
  <textarea name="yaml" rows="8" cols="90" required></textarea><br><button type="submit">${t.check}</button></form>
<form method="post" action="/console/rules/explain" class="card">${v.csrfField()}<h2>${t.explain}</h2>${incidentFields}
  <label>${t.contract} <input name="contract" required></label><button type="submit">${t.run}</button></form>
<form method="post" action="/console/rules/simulate" class="card">${v.csrfField()}<h2>${t.simulate}</h2>${incidentFields}<button type="submit">${t.run}</button></form>`;
}

async function incidentOn(
  store: Store,
  body: Record<string, string | undefined>,
): Promise<{ facts: IncidentFacts; siteIds: string[] }> {
  const siteId = String(body.siteId ?? '').trim();
  const audience = await resolveAudience(store, [siteId], { at: new Date() });
  if (audience.unknownSiteIds.length) throw new ConsoleError(422, 'unknown_site', `No site ${siteId}.`);
  const kind = body.kind === 'maintenance' ? 'maintenance' : 'outage';
  const now = new Date();
  return {
    siteIds: audience.siteIds,
    facts: {
      kind,
      severity: SEVERITIES.find((s) => s === body.severity) ?? 'major',
      siteIds: audience.siteIds,
      areas: audience.areas,
      source: 'console',
      openedAt: now.toISOString(),
      ...(kind === 'maintenance'
        ? {
            startsAt: new Date(now.getTime() + 86_400_000).toISOString(),
            estimatedEnd: new Date(now.getTime() + 90_000_000).toISOString(),
          }
        : {}),
    },
  };
}

export const rulesPage: FastifyPluginAsync<ConsoleDeps> = async (app, { store, rules: holder }) => {
  const show = (req: Parameters<typeof viewOf>[0], reply: Parameters<typeof viewOf>[1], result?: SafeHtml) => {
    const v = viewOf(req, reply);
    return sendHtml(
      reply,
      page(v, {
        title: v.t.rules,
        section: 'rules',
        body: html`<h1>${v.t.rulesInForce}</h1>${overview(v, holder)}${tools(v, result)}`,
      }),
    );
  };
  const ruleSet = () => {
    if (!holder) throw new ConsoleError(404, 'no_rules', 'This server has no rules loaded.');
    return holder.current();
  };

  app.get('/rules', async (req, reply) => {
    requireRole(req, 'viewer');
    return show(req, reply);
  });

  app.post<{ Body: { yaml?: string } }>('/rules/check', async (req, reply) => {
    requireRole(req, 'operator');
    const entry = ruleSet().entry;
    const r = await checkRulesHere(
      entry,
      String(req.body?.yaml ?? ''),
      staffChannelsFromEnv(),
      await listContacts(store, {}),
    );
    // Paths relative to the rules folder: the server's own layout is nobody's business.
    const problems = [...r.errors, ...r.warnings].map((p) => formatProblem(p, path.dirname(entry)));
    return show(
      req,
      reply,
      html`<h2 data-ok="${String(r.ok)}">${r.ok ? `${viewOf(req, reply).t.ok} (${r.version})` : `${viewOf(req, reply).t.errors}: ${r.errors.length}`}</h2>${problems.length ? html`<pre>${problems.join('\n')}</pre>` : ''}`,
    );
  });

  app.post<{ Body: Record<string, string | undefined> }>('/rules/explain', async (req, reply) => {
    requireRole(req, 'operator');
    const contract = String(req.body?.contract ?? '').trim();
    const s = await store.subscribers.findOne({ _id: contract });
    if (!s) throw new ConsoleError(422, 'unknown_subscriber', `No subscriber ${contract}.`);
    const { facts } = await incidentOn(store, req.body ?? {});
    const site = await store.sites.findOne({ _id: s.siteId });
    const rules = ruleSet();
    const explanation = await rules.explain(facts, subscriberFacts(s, site?.area, new Date()));
    return show(
      req,
      reply,
      html`<h2>${s._id} · ${String(req.body?.siteId ?? '')}</h2><pre id="explanation">${rules.formatExplanation(explanation)}</pre>`,
    );
  });

  app.post<{ Body: Record<string, string | undefined> }>('/rules/simulate', async (req, reply) => {
    requireRole(req, 'operator');
    const { facts, siteIds } = await incidentOn(store, req.body ?? {});
    const at = new Date();
    const audience = await resolveAudience(store, siteIds, { at });
    const areas = new Map(audience.sites.map((s) => [s._id, s.area]));
    async function* facts$(): AsyncGenerator<SubscriberFacts> {
      for await (const page of audience.pages('all'))
        for (const s of page) yield subscriberFacts(s, areas.get(s.siteId), at);
    }
    const sim = await ruleSet().simulate(facts, facts$(), { at });
    const v = viewOf(req, reply);
    return show(
      req,
      reply,
      html`<h2 id="simulation">${v.t.simulate}: ${sim.notified} / ${sim.subscribers}</h2>
<p>${sim.totals.messages} messages · ${sim.totals.smsParts} SMS parts · ${sim.totals.cost} ${sim.totals.currency} <small>${sim.totals.note}</small></p>
<table><thead><tr><th>${v.t.channel}</th><th>rule</th><th>${v.t.language}</th><th>${v.t.subscribers}</th><th>send</th><th>text</th></tr></thead><tbody>
${sim.rows.map((r) => html`<tr><td>${r.channel}</td><td>${r.rule}</td><td>${r.language}</td><td>${r.subscribers}</td><td>${formatTime(r.sendAt, v.lang)}${r.heldUntil ? ` → ${formatTime(r.heldUntil, v.lang)}` : ''}</td><td>${r.first.text}</td></tr>`)}
</tbody></table>
${sim.escalations.length ? html`<p>Escalations: ${sim.escalations.map((e) => `${e.contact} (${e.channel}) ${formatTime(e.at, v.lang)}`).join(', ')}</p>` : ''}`,
    );
  });
};
