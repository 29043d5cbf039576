/**
 * What every page is drawn with: the request's language and words, who is signed in, a CSRF
 * token for its forms, and the page shell (header, navigation, htmx from our own server).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { html, type SafeHtml } from './html';
import { langOf, words, type Lang, type Words } from './i18n';
import { can, type ConsoleRole, type ConsoleUser } from './session';

/** A link back into the console from a URL (a Referer, a `next`), or undefined: never to another site or scheme. */
export function consolePath(url: string): string | undefined {
  try {
    const u = new URL(url, 'http://console.invalid');
    return u.pathname.startsWith('/console/') ? u.pathname + u.search : undefined;
  } catch {
    return undefined;
  }
}

export interface View {
  lang: Lang;
  t: Words;
  user: ConsoleUser | null;
  /** Whether the signed-in key may do what needs this role (buttons are drawn only then). */
  may(role: ConsoleRole): boolean;
  /** A hidden CSRF field for a form that changes something. */
  csrfField(): SafeHtml;
  csrfToken(): string;
}

export function viewOf(req: FastifyRequest, reply: FastifyReply): View {
  const lang = langOf(req);
  let token: string | undefined;
  const csrfToken = () => (token ??= reply.generateCsrf());
  return {
    lang,
    t: words(lang),
    user: req.consoleUser,
    may: (role) => can(req.consoleUser, role),
    csrfToken,
    csrfField: () => html`<input type="hidden" name="_csrf" value="${csrfToken()}">`,
  };
}

type Section = 'now' | 'network' | 'maintenance' | 'subscribers' | 'rules' | 'billing' | 'keys' | 'login' | 'error';

export function page(
  v: View,
  opts: { title: string; section: Section; body: SafeHtml; flash?: { kind: 'ok' | 'error'; text: string } },
): string {
  const { t } = v;
  const links: [Section, string, string][] = [
    ['now', '/console/now', t.now],
    ['network', '/console/network', t.network],
    ['maintenance', '/console/maintenances', t.maintenance],
    ['subscribers', '/console/subscribers', t.subscribers],
    ['rules', '/console/rules', t.rules],
    ['billing', '/console/billing', t.billing],
    ...(v.may('admin') ? ([['keys', '/console/keys', t.keys]] as [Section, string, string][]) : []),
  ];
  const other: Lang = v.lang === 'it' ? 'en' : 'it';
  return html`<!doctype html>
<html lang="${v.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}'>
<title>${opts.title} · ${t.appTitle}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/htmx.min.js" defer></script>
</head>
<body>
<header>
  <strong class="brand">Avviso</strong>
  ${v.user ? html`<nav>${links.map(([s, href, label]) => html`<a href="${href}"${s === opts.section ? html` aria-current="page"` : ''}>${label}</a>`)}</nav>` : ''}
  <span class="who">
    <a href="/console/lang?to=${other}" hreflang="${other}">${other.toUpperCase()}</a>
    ${
      v.user
        ? html`${t.signedInAs} <b>${v.user.name}</b> (<span class="role">${v.user.role}</span>)
    <form method="post" action="/console/logout" class="inline">${v.csrfField()}<button type="submit">${t.signOut}</button></form>`
        : ''
    }
  </span>
</header>
<main>
${opts.flash ? html`<p class="flash ${opts.flash.kind}" role="status">${opts.flash.text}</p>` : ''}
${v.user && !v.may('operator') && opts.section !== 'error' ? html`<p class="note">${t.viewerNote}</p>` : ''}
${opts.body}
</main>
</body>
</html>`.value;
}
