/**
 * `avviso maintenances list|show|schedule|reschedule|complete|cancel|ack`: planned work over the HTTP
 * API (AVVISO_URL, AVVISO_API_KEY), as a table or, with --json, the API's own answer.
 */
import { deliveryLines, parseWhen, shortTime, table, CliUsageError } from './api-client';
import {
  consoleIo,
  idArg,
  limitArg,
  printJson,
  runRemoteCommand,
  str,
  type CommandIo,
  type Handler,
} from './remote-command';
import { acknowledgedLine, acknowledgeHandler } from './acknowledge';

const HELP = `usage: avviso maintenances <command> [options]

Commands:
  list [--state PHASE]... [--site SITE] [--all] [--limit N]
                      by start time; scheduled, in progress and overrun ones unless --all or --state
  show ID             one maintenance: window, sites, timeline, messages by channel and state
  schedule SITE... --start TIME --end TIME --title TEXT [--description TEXT] [--severity S] [--key KEY]
                      plan work on these sites: notices, reminders, start and completion messages follow
  reschedule ID --end TIME [--start TIME] [--reason TEXT]
                      move the window (once under way, only its end)
  complete ID [--note TEXT]    the work is done
  cancel ID [--reason TEXT]    call it off (only before it has begun)
  ack ID                       take the overrun's staff escalation: its repeats stop, the maintenance shows you took it

Every command takes --json (the API's answer as is). TIME is ISO 8601 or +30m, +2h, +1d.
PHASE: scheduled, in_progress, overrun, completed, cancelled, billed.
Needs AVVISO_API_KEY (viewer to list and show, operator to change) and AVVISO_URL
(default http://127.0.0.1:3000).`;

const OPEN_PHASES = ['scheduled', 'in_progress', 'overrun'];

interface Summary {
  id: string;
  phase: string;
  title: string;
  severity: string;
  siteIds: string[];
  affectedSiteIds?: string[];
  startsAt: string;
  endsAt: string;
  reschedules?: number;
}

interface Detail extends Summary {
  description?: string;
  acknowledged?: { by: string; at: string; via: string };
  timeline?: { at: string; phase: string; event?: string; note?: string }[];
  deliveries?: Record<string, Record<string, Record<string, number>>>;
}

const list: Handler = async (api, { values }, io) => {
  const limit = limitArg(values.limit, 500) ?? 50;
  const states = (values.state as string[] | undefined) ?? (values.all ? [] : OPEN_PHASES);
  const qs = [
    `limit=${limit}`,
    ...states.map((s) => `state=${encodeURIComponent(s)}`),
    ...(str(values.site) ? [`site=${encodeURIComponent(str(values.site)!)}`] : []),
  ].join('&');
  const r = await api.request<{ items: Summary[]; next: string | null }>('GET', `/v1/maintenances?${qs}`);
  if (values.json) return (printJson(io, r), 0);
  if (!r.items.length) {
    io.out(
      values.all || values.state
        ? 'No maintenances.'
        : 'No maintenance scheduled or under way (--all lists past ones too).',
    );
    return 0;
  }
  io.out(
    table(
      ['ID', 'PHASE', 'STARTS (UTC)', 'ENDS (UTC)', 'SITES', 'TITLE'],
      r.items.map((m) => [m.id, m.phase, shortTime(m.startsAt), shortTime(m.endsAt), m.siteIds.join(','), m.title]),
    ),
  );
  if (r.next) io.out(`(only the first ${limit}: --limit takes up to 500)`);
  return 0;
};

const show: Handler = async (api, args, io) => {
  const id = idArg(args, 'mnt', 'avviso maintenances show mnt_0123456789abcdef');
  const m = await api.request<Detail>('GET', `/v1/maintenances/${id}`);
  if (args.values.json) return (printJson(io, m), 0);
  io.out(`${m.id}  ${m.phase}  ${m.severity}  ${m.title}`);
  io.out(
    `window: ${shortTime(m.startsAt)} to ${shortTime(m.endsAt)} UTC${m.reschedules ? ` (rescheduled ${m.reschedules}x)` : ''}`,
  );
  io.out(
    `sites: ${m.siteIds.join(', ')}${m.affectedSiteIds && m.affectedSiteIds.length > m.siteIds.length ? ` (${m.affectedSiteIds.length} with those they feed)` : ''}`,
  );
  if (m.description) io.out(`description: ${m.description}`);
  if (m.acknowledged) io.out(acknowledgedLine(m.acknowledged));
  io.out('messages:');
  for (const l of deliveryLines(m.deliveries)) io.out(l);
  io.out('timeline:');
  for (const t of m.timeline ?? []) io.out(`  ${shortTime(t.at)}  ${t.event ?? t.phase}${t.note ? `  ${t.note}` : ''}`);
  return 0;
};

const SEVERITIES = ['minor', 'major', 'critical'];

const schedule: Handler = async (api, { values, positionals }, io) => {
  const start = str(values.start);
  const end = str(values.end);
  const title = str(values.title);
  if (!positionals.length || !start || !end || !title) {
    throw new CliUsageError(
      'name the sites, --start, --end and --title, e.g. avviso maintenances schedule tower-lodi-1 --start 2026-12-05T02:00:00+01:00 --end 2026-12-05T04:00:00+01:00 --title "Antenna swap"',
    );
  }
  const severity = str(values.severity);
  if (severity && !SEVERITIES.includes(severity)) throw new CliUsageError('--severity is minor, major or critical');
  const body = {
    siteIds: [...new Set(positionals)],
    startsAt: parseWhen(start, '--start'),
    endsAt: parseWhen(end, '--end'),
    title,
    ...(str(values.description) ? { description: str(values.description) } : {}),
    ...(severity ? { severity } : {}),
    ...(str(values.key) ? { key: str(values.key) } : {}),
  };
  const m = await api.request<Summary>('POST', '/v1/maintenances', body);
  if (values.json) return (printJson(io, m), 0);
  io.out(`${m.id}  ${m.phase}  ${shortTime(m.startsAt)} to ${shortTime(m.endsAt)} UTC  on ${m.siteIds.join(', ')}`);
  io.out(`follow it with: avviso maintenances show ${m.id}`);
  return 0;
};

const action =
  (verb: 'reschedule' | 'complete' | 'cancel'): Handler =>
  async (api, args, io) => {
    const id = idArg(args, 'mnt', `avviso maintenances ${verb} mnt_0123456789abcdef`);
    const v = args.values;
    let body: Record<string, string> = {};
    if (verb === 'reschedule') {
      const end = str(v.end);
      if (!end) throw new CliUsageError('give the new --end (and --start to move the start too)');
      body = {
        endsAt: parseWhen(end, '--end'),
        ...(str(v.start) ? { startsAt: parseWhen(str(v.start)!, '--start') } : {}),
        ...(str(v.reason) ? { reason: str(v.reason)! } : {}),
      };
    } else if (verb === 'complete' && str(v.note)) body = { note: str(v.note)! };
    else if (verb === 'cancel' && str(v.reason)) body = { reason: str(v.reason)! };
    const r = await api.request<{ phase?: string; window?: { startsAt: string; endsAt: string } }>(
      'POST',
      `/v1/maintenances/${id}/${verb}`,
      body,
    );
    if (v.json) return (printJson(io, r), 0);
    const done = { reschedule: 'rescheduled', complete: 'completion requested', cancel: 'cancel requested' }[verb];
    io.out(
      `${id}: ${done} (phase ${r.phase ?? '-'}${r.window ? `, window ${shortTime(r.window.startsAt)} to ${shortTime(r.window.endsAt)} UTC` : ''})`,
    );
    return 0;
  };

export function maintenancesCommand(args: string[], io: CommandIo = consoleIo): Promise<number> {
  return runRemoteCommand(
    'maintenances',
    HELP,
    {
      state: { type: 'string', multiple: true },
      site: { type: 'string' },
      all: { type: 'boolean' },
      limit: { type: 'string' },
      start: { type: 'string' },
      end: { type: 'string' },
      title: { type: 'string' },
      description: { type: 'string' },
      severity: { type: 'string' },
      key: { type: 'string' },
      reason: { type: 'string' },
      note: { type: 'string' },
    },
    {
      list,
      show,
      schedule,
      reschedule: action('reschedule'),
      complete: action('complete'),
      cancel: action('cancel'),
      ack: acknowledgeHandler('maintenances', 'mnt'),
    },
    args,
    io,
  );
}
