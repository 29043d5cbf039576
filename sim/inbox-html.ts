import type { SimMessage } from './store';

function escapeHtml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const STYLE = `
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 20px;display:flex;justify-content:space-between;align-items:baseline}
header h1{font-size:18px;margin:0}
header span{font-size:13px;opacity:.8}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:16px;padding:16px 20px}
section{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.12);overflow:hidden}
section h2{font-size:15px;margin:0;padding:10px 14px;background:#e8ebf2;display:flex;justify-content:space-between}
ol{list-style:none;margin:0;padding:8px 10px;max-height:420px;overflow:auto}
li{background:#dcf3e4;border-radius:10px;padding:8px 10px;margin:6px 0}
li p{margin:0 0 4px;white-space:pre-wrap;word-break:break-word}
li small{color:#555;font-size:12px}
.status-failed,.status-undelivered{background:#f8dddd}
.status-queued,.status-sent{background:#eef0f4}
.empty{padding:40px 20px;color:#666}
`;

function renderMessage(message: SimMessage): string {
  const meta = [
    `from ${message.from}`,
    message.acceptedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    message.status,
    `${message.units} ${message.units === 1 ? 'part' : 'parts'} ${message.encoding}`,
  ].join(' · ');
  return `<li class="status-${escapeHtml(message.status)}"><p>${escapeHtml(message.text)}</p><small>${escapeHtml(meta)}</small></li>`;
}

function renderPhone(phone: string, messages: readonly SimMessage[]): string {
  const newestFirst = [...messages].reverse().map(renderMessage).join('');
  return `<section><h2><span>${escapeHtml(phone)}</span><span>${messages.length}</span></h2><ol>${newestFirst}</ol></section>`;
}

/** Self-contained page (no external assets) that reloads itself every 3 s. */
export function renderInboxPage(phones: ReadonlyMap<string, readonly SimMessage[]>, total: number): string {
  const sections = [...phones.entries()]
    .filter(([, messages]) => messages.length > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([phone, messages]) => renderPhone(phone, messages))
    .join('');
  const body = sections === '' ? '<p class="empty">No messages yet.</p>' : `<main>${sections}</main>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="3">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Plivo simulator inbox</title><style>${STYLE}</style></head>
<body><header><h1>Plivo simulator · inbox</h1><span>${total} messages · ${phones.size} phones · refreshes every 3 s</span></header>
${body}</body></html>`;
}
