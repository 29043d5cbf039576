/**
 * The public status page, free and without sign-up: the state of each area, what is down now,
 * the planned maintenance, then what happened in the last 30 days, from the posts the status
 * channel writes (channels/status-feed.ts). It shows areas, titles and the public texts only — no
 * subscriber, no site id, no phone number (a number typed into a text is hidden as well).
 * - `GET /status`: a self-contained HTML page (no scripts, no external assets);
 * - `GET /status.json`: the same, for programs;
 * - `GET /status/feed.atom`, `GET /status/feed.rss`: one entry per update, for feed readers.
 * Italian by default, English with `?lang=en`; each text falls back to the other language.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Collection } from 'mongodb';
import { Feed } from 'feed';
import type { StatusPost, StatusUpdate } from '../../channels/status-feed';
import type { Language } from '../../domain/types';
import { replacePhoneNumbers } from '../../domain/phone';

export interface StatusPageOptions {
  feed: { readonly posts: Collection<StatusPost> };
  /** Our public address: feeds need absolute links. */
  publicUrl: string;
  /** Who the page speaks for, e.g. the ISP's name (default "Avviso"). */
  siteName?: string;
  /** Times are shown in this zone (default Europe/Rome). */
  timeZone?: string;
  /** How far back resolved incidents are shown (default 30 days). */
  days?: number;
  /** Every area of the network, so the page can say which are fine too (default: only the affected ones). */
  areas?: () => Promise<string[]>;
}

const WORDS = {
  it: {
    title: 'Stato del servizio',
    current: 'Disservizi in corso',
    noneCurrent: 'Tutti i servizi funzionano regolarmente.',
    recent: (days: number) => `Ultimi ${days} giorni`,
    noneRecent: (days: number) => `Nessun disservizio negli ultimi ${days} giorni.`,
    open: 'In corso',
    resolved: 'Risolto',
    planned: 'Programmata',
    byArea: 'Stato per zona',
    areaState: { outage: 'Disservizio in corso', maintenance: 'Manutenzione programmata', ok: 'Regolare' } as Record<
      AreaState,
      string
    >,
    maintenance: 'Manutenzioni programmate',
    noneMaintenance: 'Nessuna manutenzione programmata.',
    hidden: '[numero nascosto]',
    areas: 'Zone',
    updated: 'Pagina aggiornata',
    times: (tz: string) => `Orari nel fuso ${tz}.`,
    other: 'English',
    kinds: {
      outage: 'Disservizio',
      update: 'Aggiornamento',
      restored: 'Servizio ripristinato',
      maintenance: 'Manutenzione',
      started: 'Manutenzione iniziata',
      rescheduled: 'Manutenzione spostata',
      cancelled: 'Manutenzione annullata',
      completed: 'Manutenzione completata',
    } as Record<string, string>,
  },
  en: {
    title: 'Service status',
    current: 'Current incidents',
    noneCurrent: 'All services are operating normally.',
    recent: (days: number) => `Last ${days} days`,
    noneRecent: (days: number) => `No incidents in the last ${days} days.`,
    open: 'Ongoing',
    resolved: 'Resolved',
    planned: 'Planned',
    byArea: 'Status by area',
    areaState: { outage: 'Outage', maintenance: 'Planned maintenance', ok: 'Operational' } as Record<AreaState, string>,
    maintenance: 'Planned maintenance',
    noneMaintenance: 'No maintenance planned.',
    hidden: '[number hidden]',
    areas: 'Areas',
    updated: 'Page updated',
    times: (tz: string) => `Times in ${tz}.`,
    other: 'Italiano',
    kinds: {
      outage: 'Outage',
      update: 'Update',
      restored: 'Service restored',
      maintenance: 'Maintenance',
      started: 'Maintenance started',
      rescheduled: 'Maintenance rescheduled',
      cancelled: 'Maintenance cancelled',
      completed: 'Maintenance completed',
    } as Record<string, string>,
  },
} as const;

type AreaState = 'outage' | 'maintenance' | 'ok';

/** A post as the public sees it: one language, no internal fields. */
export interface PublicPost {
  id: string;
  /** Maintenance when its first update announced one. */
  kind: 'outage' | 'maintenance';
  title: string;
  state: StatusPost['state'];
  areas: string[];
  openedAt: string;
  updatedAt: string;
  resolvedAt?: string;
  /** Newest first. */
  updates: { id: string; at: string; kind: string; label: string; text: string }[];
}

export interface StatusView {
  language: Language;
  generatedAt: string;
  /** Open outages. */
  current: PublicPost[];
  /** Open maintenance (announced, or under way). */
  maintenance: PublicPost[];
  /** Resolved outages and completed maintenance of the last days. */
  recent: PublicPost[];
  /** Each area, the worst first: outage, maintenance, ok. */
  areas: { name: string; state: AreaState }[];
}

function pick(texts: Partial<Record<Language, string>>, lang: Language): string | undefined {
  return texts[lang] ?? texts[lang === 'it' ? 'en' : 'it'];
}

/** Public texts never carry a phone number, even one typed into an incident's title. */
export function hidePhoneNumbers(text: string, lang: Language): string {
  return replacePhoneNumbers(text, WORDS[lang].hidden);
}

function publicPost(p: StatusPost, lang: Language): PublicPost {
  const label = (u: StatusUpdate) => WORDS[lang].kinds[u.kind] ?? u.kind;
  const kind = p.updates[0]?.kind === 'maintenance' ? 'maintenance' : 'outage';
  const fallbackTitle = `${WORDS[lang].kinds[kind]}${p.areas.length ? `: ${p.areas.join(', ')}` : ''}`;
  return {
    id: p._id,
    kind,
    title: hidePhoneNumbers(pick(p.title, lang) ?? fallbackTitle, lang),
    state: p.state,
    areas: p.areas,
    openedAt: p.openedAt.toISOString(),
    updatedAt: p.updatedAt.toISOString(),
    ...(p.resolvedAt ? { resolvedAt: p.resolvedAt.toISOString() } : {}),
    updates: [...p.updates].reverse().map((u) => ({
      id: u.id,
      at: u.at.toISOString(),
      kind: u.kind,
      label: label(u),
      text: hidePhoneNumbers(pick(u.text, lang) ?? '', lang),
    })),
  };
}

/** Open posts of any age, and the others updated within `days`; every known area with its state. */
async function loadView(
  posts: Collection<StatusPost>,
  lang: Language,
  days: number,
  now: Date,
  knownAreas: string[],
): Promise<StatusView> {
  const since = new Date(now.getTime() - days * 86_400_000);
  const found = await posts
    .find({ $or: [{ state: 'open' }, { updatedAt: { $gte: since } }] })
    .sort({ updatedAt: -1 })
    .limit(500)
    .toArray();
  const view = found.map((p) => publicPost(p, lang));
  const current = view.filter((p) => p.state === 'open' && p.kind === 'outage');
  const maintenance = view.filter((p) => p.state === 'open' && p.kind === 'maintenance');
  const state = new Map<string, AreaState>(knownAreas.map((a) => [a, 'ok']));
  for (const p of maintenance) for (const a of p.areas) state.set(a, 'maintenance');
  for (const p of current) for (const a of p.areas) state.set(a, 'outage');
  const rank: Record<AreaState, number> = { outage: 0, maintenance: 1, ok: 2 };
  const areas = [...state]
    .map(([name, s]) => ({ name, state: s }))
    .sort((a, b) => rank[a.state] - rank[b.state] || a.name.localeCompare(b.name, 'it'));
  return {
    language: lang,
    generatedAt: now.toISOString(),
    current,
    maintenance,
    recent: view.filter((p) => p.state !== 'open'),
    areas,
  };
}

// ---------------------------------------------------------------- HTML

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const STYLE = `
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1c1e21;background:#f5f6f7}
header,main,footer{max-width:46rem;margin:0 auto;padding:1rem}
header{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:baseline;gap:.5rem}
h1{font-size:1.5rem;margin:0} h2{font-size:1.15rem;margin:1.5rem 0 .5rem} h3{font-size:1.05rem;margin:0}
nav{display:flex;flex-wrap:wrap;gap:.75rem} nav a{color:#0b5cad}
.ok{background:#e3f4e8;border-left:4px solid #1e7d3a;padding:.75rem 1rem;border-radius:4px}
.none{color:#5f6368}
article{background:#fff;border-radius:6px;padding:1rem;margin:.75rem 0;box-shadow:0 1px 2px rgba(0,0,0,.08)}
article.open{border-left:4px solid #c5221f} article.resolved{border-left:4px solid #1e7d3a}
.badge{display:inline-block;font-size:.8rem;font-weight:600;padding:0 .5rem;border-radius:1rem;margin-left:.5rem}
.open .badge{background:#fce8e6;color:#a50e0e} .resolved .badge{background:#e6f4ea;color:#137333}
.areas{color:#5f6368;margin:.25rem 0 .5rem}
ul.zones{list-style:none;padding:0;margin:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(14rem,1fr));gap:.5rem}
ul.zones li{background:#fff;border-radius:6px;padding:.5rem .75rem;display:flex;justify-content:space-between;gap:.5rem;box-shadow:0 1px 2px rgba(0,0,0,.08);border-left:4px solid #1e7d3a}
ul.zones li.outage{border-left-color:#c5221f} ul.zones li.maintenance{border-left-color:#b06000}
ul.zones .state{font-size:.85rem;color:#5f6368} ul.zones .outage .state{color:#a50e0e;font-weight:600}
article.maintenance{border-left:4px solid #b06000} .maintenance .badge{background:#fef7e0;color:#8a4b00}
ol{list-style:none;padding:0;margin:0} li{border-top:1px solid #eee;padding:.5rem 0}
time,.label{font-size:.85rem;color:#5f6368} .label{font-weight:600;margin-left:.5rem}
li p{margin:.25rem 0 0}
footer{color:#5f6368;font-size:.85rem}`;

function renderPost(p: PublicPost, lang: Language, when: (iso: string) => string): string {
  const w = WORDS[lang];
  const updates = p.updates
    .map(
      (u) =>
        `<li><time datetime="${u.at}">${escapeHtml(when(u.at))}</time><span class="label">${escapeHtml(u.label)}</span><p>${escapeHtml(u.text)}</p></li>`,
    )
    .join('');
  const planned = p.state === 'open' && p.kind === 'maintenance';
  return `<article id="inc-${escapeHtml(p.id)}" class="${planned ? 'maintenance' : p.state}" data-state="${p.state}">
<h3>${escapeHtml(p.title)}<span class="badge">${planned ? w.planned : p.state === 'open' ? w.open : w.resolved}</span></h3>
${p.areas.length ? `<p class="areas">${w.areas}: ${escapeHtml(p.areas.join(', '))}</p>` : ''}
<ol>${updates}</ol>
</article>`;
}

export function renderStatusPage(view: StatusView, opts: { siteName: string; timeZone: string; days: number }): string {
  const lang = view.language;
  const w = WORDS[lang];
  const format = new Intl.DateTimeFormat(lang === 'it' ? 'it-IT' : 'en-GB', {
    timeZone: opts.timeZone,
    dateStyle: 'medium',
    timeStyle: 'short',
  });
  const when = (iso: string) => format.format(new Date(iso));
  const other = lang === 'it' ? 'en' : 'it';
  const title = `${opts.siteName}: ${w.title}`;
  return `<!doctype html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="60">
<title>${escapeHtml(title)}</title>
<link rel="alternate" type="application/atom+xml" title="Atom" href="/status/feed.atom?lang=${lang}">
<link rel="alternate" type="application/rss+xml" title="RSS" href="/status/feed.rss?lang=${lang}">
<style>${STYLE}</style>
</head>
<body>
<header><h1>${escapeHtml(title)}</h1><nav><a href="/status?lang=${other}" hreflang="${other}">${w.other}</a><a href="/status/feed.atom?lang=${lang}">Atom</a><a href="/status/feed.rss?lang=${lang}">RSS</a><a href="/status.json?lang=${lang}">JSON</a></nav></header>
<main>
${
  view.areas.length
    ? `<section id="areas"><h2>${w.byArea}</h2>
<ul class="zones">${view.areas.map((a) => `<li class="${a.state}"><span class="zone">${escapeHtml(a.name)}</span><span class="state">${w.areaState[a.state]}</span></li>`).join('')}</ul>
</section>`
    : ''
}
<section id="current"><h2>${w.current}</h2>
${view.current.length ? view.current.map((p) => renderPost(p, lang, when)).join('\n') : `<p class="ok">${w.noneCurrent}</p>`}
</section>
<section id="maintenance"><h2>${w.maintenance}</h2>
${view.maintenance.length ? view.maintenance.map((p) => renderPost(p, lang, when)).join('\n') : `<p class="none">${w.noneMaintenance}</p>`}
</section>
<section id="recent"><h2>${w.recent(opts.days)}</h2>
${view.recent.length ? view.recent.map((p) => renderPost(p, lang, when)).join('\n') : `<p class="none">${w.noneRecent(opts.days)}</p>`}
</section>
</main>
<footer>${w.updated}: ${escapeHtml(when(view.generatedAt))}. ${escapeHtml(w.times(opts.timeZone))}</footer>
</body>
</html>
`;
}

// ---------------------------------------------------------------- feeds

/** One entry per update, newest first; the `feed` library writes and escapes the XML. */
function buildFeed(view: StatusView, opts: { publicUrl: string; siteName: string }): Feed {
  const lang = view.language;
  const page = `${opts.publicUrl}/status?lang=${lang}`;
  const feed = new Feed({
    id: page,
    link: page,
    title: `${opts.siteName}: ${WORDS[lang].title}`,
    language: lang,
    updated: new Date(view.generatedAt),
    generator: 'Avviso',
    copyright: opts.siteName,
    feedLinks: {
      atom: `${opts.publicUrl}/status/feed.atom?lang=${lang}`,
      rss: `${opts.publicUrl}/status/feed.rss?lang=${lang}`,
    },
  });
  const entries = [...view.current, ...view.maintenance, ...view.recent]
    .flatMap((p) => p.updates.map((u) => ({ p, u })))
    .sort((a, b) => b.u.at.localeCompare(a.u.at))
    .slice(0, 100);
  for (const { p, u } of entries) {
    const link = `${page}#inc-${encodeURIComponent(p.id)}`;
    // The library wraps these in CDATA marked type="html": readers render them as HTML, so our
    // plain texts are escaped as HTML first (which also keeps "]]>" out of the CDATA).
    const text = escapeHtml(u.text);
    feed.addItem({
      title: escapeHtml(`${p.title}: ${u.label}`),
      // Stable per update and language, so readers do not show an entry twice.
      id: `${link}-${encodeURIComponent(u.id)}`,
      link,
      date: new Date(u.at),
      description: text,
      content: text,
    });
  }
  return feed;
}

// ---------------------------------------------------------------- routes

const langQuery = {
  type: 'object',
  properties: { lang: { type: 'string', description: '`en` for English; anything else, or nothing, gives Italian' } },
} as const;

const publicPostSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    kind: { type: 'string', enum: ['outage', 'maintenance'] },
    title: { type: 'string' },
    state: { type: 'string', enum: ['open', 'resolved'] },
    areas: { type: 'array', items: { type: 'string' } },
    openedAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    resolvedAt: { type: 'string', format: 'date-time' },
    updates: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          at: { type: 'string', format: 'date-time' },
          kind: { type: 'string' },
          label: { type: 'string' },
          text: { type: 'string' },
        },
      },
    },
  },
} as const;

function language(q: { lang?: string }): Language {
  return q.lang === 'en' ? 'en' : 'it';
}

export const statusPageRoutes: FastifyPluginAsync<StatusPageOptions> = async (app, opts) => {
  const siteName = opts.siteName ?? 'Avviso';
  const timeZone = opts.timeZone ?? 'Europe/Rome';
  const days = opts.days ?? 30;
  const publicUrl = opts.publicUrl.replace(/\/+$/, '');
  // The network's areas change rarely: read them at most once a minute.
  let known: { at: number; areas: Promise<string[]> } | undefined;
  const knownAreas = (): Promise<string[]> => {
    if (!opts.areas) return Promise.resolve([]);
    if (!known || Date.now() - known.at > 60_000) known = { at: Date.now(), areas: opts.areas().catch(() => []) };
    return known.areas;
  };
  const view = async (q: { lang?: string }) =>
    loadView(opts.feed.posts, language(q), days, new Date(), await knownAreas());

  // Everyone may look, and a flood of readers during an outage should mostly hit caches.
  app.addHook('onSend', async (_req, reply) => {
    if (reply.statusCode === 200) reply.header('cache-control', 'public, max-age=30');
  });

  app.get<{ Querystring: { lang?: string } }>(
    '/status',
    {
      schema: {
        tags: ['status'],
        summary: 'The public status page (HTML)',
        querystring: langQuery,
        response: { 200: { description: 'HTML page', content: { 'text/html': { schema: { type: 'string' } } } } },
      },
    },
    async (req, reply) =>
      reply
        .type('text/html; charset=utf-8')
        .send(renderStatusPage(await view(req.query), { siteName, timeZone, days })),
  );

  app.get<{ Querystring: { lang?: string } }>(
    '/status.json',
    {
      schema: {
        tags: ['status'],
        summary: 'The state of each area, current outages, planned maintenance, and those of the last 30 days',
        querystring: langQuery,
        response: {
          200: {
            type: 'object',
            properties: {
              language: { type: 'string' },
              generatedAt: { type: 'string', format: 'date-time' },
              areas: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    name: { type: 'string' },
                    state: { type: 'string', enum: ['outage', 'maintenance', 'ok'] },
                  },
                },
              },
              current: { type: 'array', items: publicPostSchema },
              maintenance: { type: 'array', items: publicPostSchema },
              recent: { type: 'array', items: publicPostSchema },
            },
          },
        },
      },
    },
    async (req) => view(req.query),
  );

  app.get<{ Querystring: { lang?: string } }>(
    '/status/feed.atom',
    {
      schema: {
        tags: ['status'],
        summary: 'Atom feed of the status updates',
        querystring: langQuery,
        response: {
          200: { description: 'Atom 1.0', content: { 'application/atom+xml': { schema: { type: 'string' } } } },
        },
      },
    },
    async (req, reply) =>
      reply
        .type('application/atom+xml; charset=utf-8')
        .send(buildFeed(await view(req.query), { publicUrl, siteName }).atom1()),
  );

  app.get<{ Querystring: { lang?: string } }>(
    '/status/feed.rss',
    {
      schema: {
        tags: ['status'],
        summary: 'RSS feed of the status updates',
        querystring: langQuery,
        response: {
          200: { description: 'RSS 2.0', content: { 'application/rss+xml': { schema: { type: 'string' } } } },
        },
      },
    },
    async (req, reply) =>
      reply
        .type('application/rss+xml; charset=utf-8')
        .send(buildFeed(await view(req.query), { publicUrl, siteName }).rss2()),
  );
};
