/**
 * The console's static files: htmx from the htmx.org package (so nothing is fetched from a CDN,
 * and its version is the one package-lock.json pins) and a small style sheet.
 */
import { readFileSync } from 'node:fs';
import type { FastifyPluginAsync } from 'fastify';

const HTMX = readFileSync(require.resolve('htmx.org/dist/htmx.min.js'));

const CSS = `
:root { font-family: system-ui, sans-serif; color: #1b1f24; background: #f6f7f9; }
body { margin: 0; }
header { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1rem; background: #16324f; color: #fff; flex-wrap: wrap; }
header a { color: #cfe3ff; text-decoration: none; margin-right: .8rem; }
header a[aria-current=page] { color: #fff; font-weight: bold; border-bottom: 2px solid #fff; }
header .who { margin-left: auto; }
.brand { font-size: 1.2rem; }
main { padding: 1rem; max-width: 1200px; }
table { border-collapse: collapse; width: 100%; background: #fff; margin-bottom: 1rem; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e1e4e8; vertical-align: top; }
th { background: #eef1f4; }
.flash { padding: .5rem .8rem; border-radius: 4px; }
.flash.ok { background: #e3f6e8; } .flash.error { background: #fde8e8; }
.note { color: #5a6470; font-style: italic; }
.state-down { color: #b00020; font-weight: bold; } .state-maintenance { color: #a05a00; font-weight: bold; } .state-normal { color: #2d7a3a; }
.bar { display: inline-block; height: .7rem; background: #2d7a3a; vertical-align: middle; }
form.inline { display: inline; }
form.card, section.card { background: #fff; padding: .8rem; margin: 0 0 1rem; border: 1px solid #e1e4e8; border-radius: 4px; }
label { display: block; margin: .3rem 0; }
input, select, textarea, button { font: inherit; }
button { cursor: pointer; }
ul.tree { list-style: none; padding-left: 1.2rem; } ul.tree > li { margin: .2rem 0; }
pre { background: #fff; padding: .6rem; overflow: auto; border: 1px solid #e1e4e8; }
`;

export const consoleAssets: FastifyPluginAsync = async (app) => {
  app.get('/assets/htmx.min.js', async (_req, reply) =>
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=86400').send(HTMX),
  );
  app.get('/assets/console.css', async (_req, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(CSS),
  );
};
