import type { InboundMessage, SimCall, SimMessage } from './store';

/** Everything one phone exchanged with the simulator, each list oldest first. */
export interface PhoneTimeline {
  phone: string;
  messages: readonly SimMessage[];
  inbound: readonly InboundMessage[];
  calls: readonly SimCall[];
}

export interface InboxSummary {
  messages: number;
  inbound: number;
  calls: number;
  /** The active fault settings, shown as a warning banner. */
  faults?: string;
}

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
.faults{background:#fff3cd;color:#664d03;padding:8px 20px;font-size:13px;font-family:ui-monospace,monospace;word-break:break-all}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:16px;padding:16px 20px}
section{background:#fff;border-radius:10px;box-shadow:0 1px 3px rgba(0,0,0,.12);overflow:hidden}
section h2{font-size:15px;margin:0;padding:10px 14px;background:#e8ebf2;display:flex;justify-content:space-between}
ol{list-style:none;margin:0;padding:8px 10px;max-height:420px;overflow:auto}
li{background:#dcf3e4;border-radius:10px;padding:8px 10px;margin:6px 0;margin-right:28px}
li p{margin:0 0 4px;white-space:pre-wrap;word-break:break-word}
li small{color:#555;font-size:12px}
.badge{display:inline-block;font-size:11px;font-weight:600;text-transform:uppercase;padding:1px 6px;border-radius:8px;background:#1d2330;color:#fff;margin-right:4px}
.status-failed,.status-undelivered{background:#f8dddd}
.status-queued,.status-sent{background:#eef0f4}
.dropped{outline:2px dashed #c77700}
li.inbound{background:#dbe8fb;margin-right:0;margin-left:28px}
li.call{background:#efe3fa}
li.call.call-no-answer,li.call.call-busy,li.call.call-failed{background:#f8dddd}
.empty{padding:40px 20px;color:#666}
`;

function shortTime(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

interface Item {
  at: string;
  html: string;
}

function messageItem(message: SimMessage): Item {
  const meta = [
    `from ${message.from}`,
    shortTime(message.acceptedAt),
    `${message.units} ${message.units === 1 ? 'part' : 'parts'} ${message.encoding}`,
    message.errorCode ? `error ${message.errorCode}` : '',
    message.responseDropped ? 'accepted, answer dropped (fault)' : '',
  ]
    .filter(Boolean)
    .join(' · ');
  const classes = `status-${message.status}${message.responseDropped ? ' dropped' : ''}`;
  return {
    at: message.acceptedAt,
    html: `<li class="${escapeHtml(classes)}"><p>${escapeHtml(message.text)}</p><small><span class="badge">${escapeHtml(message.status)}</span>${escapeHtml(meta)}</small></li>`,
  };
}

function inboundItem(message: InboundMessage): Item {
  const answer =
    message.responseStatus !== undefined
      ? `app answered ${message.responseStatus}`
      : `app unreachable: ${message.error ?? ''}`;
  const meta = [`to ${message.to}`, shortTime(message.receivedAt), answer].join(' · ');
  return {
    at: message.receivedAt,
    html: `<li class="inbound"><p>${escapeHtml(message.text)}</p><small><span class="badge">received</span>${escapeHtml(meta)}</small></li>`,
  };
}

function callItem(call: SimCall): Item {
  const spoken =
    call.spokenText ||
    (call.answerError ? `(${call.answerError})` : call.status === 'completed' ? '(nothing spoken)' : '');
  const meta = [
    `call from ${call.from}`,
    shortTime(call.firedAt),
    call.duration ? `${call.duration} s` : '',
    call.hangupCauseName,
    call.responseDropped ? 'fired, answer dropped (fault)' : '',
  ]
    .filter(Boolean)
    .join(' · ');
  return {
    at: call.firedAt,
    html: `<li class="call call-${escapeHtml(call.status)}${call.responseDropped ? ' dropped' : ''}"><p>&#128222; ${escapeHtml(spoken)}</p><small><span class="badge">${escapeHtml(call.status)}</span>${escapeHtml(meta)}</small></li>`,
  };
}

function renderPhone(timeline: PhoneTimeline): string {
  const items = [
    ...timeline.messages.map(messageItem),
    ...timeline.inbound.map(inboundItem),
    ...timeline.calls.map(callItem),
  ];
  // Newest first; within one millisecond (a bulk send) the later-recorded item first.
  const newestFirst = items
    .map((item, index) => ({ item, index }))
    .sort((a, b) => b.item.at.localeCompare(a.item.at) || b.index - a.index)
    .map(({ item }) => item.html)
    .join('');
  const counts = [
    `${timeline.messages.length} sms`,
    timeline.inbound.length ? `${timeline.inbound.length} in` : '',
    timeline.calls.length ? `${timeline.calls.length} calls` : '',
  ]
    .filter(Boolean)
    .join(' · ');
  return `<section><h2><span>${escapeHtml(timeline.phone)}</span><span>${escapeHtml(counts)}</span></h2><ol>${newestFirst}</ol></section>`;
}

/** Self-contained page (no external assets) that reloads itself every 3 s. */
export function renderInboxPage(timelines: readonly PhoneTimeline[], summary: InboxSummary): string {
  const sections = [...timelines]
    .filter((t) => t.messages.length + t.inbound.length + t.calls.length > 0)
    .sort((a, b) => a.phone.localeCompare(b.phone))
    .map(renderPhone)
    .join('');
  const body = sections === '' ? '<p class="empty">No messages yet.</p>' : `<main>${sections}</main>`;
  const faults = summary.faults ? `<div class="faults">Faults active: ${escapeHtml(summary.faults)}</div>` : '';
  const phones = timelines.filter((t) => t.messages.length + t.inbound.length + t.calls.length > 0).length;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="3">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Plivo simulator inbox</title><style>${STYLE}</style></head>
<body><header><h1>Plivo simulator · inbox</h1><span>${summary.messages} messages · ${summary.inbound} inbound · ${summary.calls} calls · ${phones} phones · refreshes every 3 s</span></header>
${faults}${body}</body></html>`;
}
