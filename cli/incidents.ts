/**
 * `avviso incidents list|show|open|update|resolve|cancel`: incidents over the HTTP API
 * (AVVISO_URL, AVVISO_API_KEY), as a table or, with --json, the API's own answer.
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

const HELP = `usage: avviso incidents <command> [options]

Commands:
  list [--all] [--limit N]       open outages, newest first (--all: closed ones too)
  show ID                        one incident: sites, timeline, messages by channel and state
  open SITE... [--severity minor|major|critical] [--title TEXT] [--key KEY]
                                 open an outage on these sites (the same --key reaches the same incident)
  update ID [--text TEXT] [--eta TIME]
                                 a word for the status page, a new estimated restoration time, or both
  resolve ID [--note TEXT]       service is back: restoration notices go out
  cancel ID [--reason TEXT]      a false alarm: whoever was told is told so
  ack ID                         take the staff escalation: its repeats stop, the incident shows you took it

Every command takes --json (the API's answer as is). TIME is ISO 8601 or +30m, +2h, +1d.
Needs AVVISO_API_KEY (a viewer key lists and shows; opening and changing need operator) and
AVVISO_URL (default http://127.0.0.1:3000, where avviso dev serves the API).`;

interface Summary {
  id: string;
  phase: string;
  severity: string;
  title?: string;
  siteIds: string[];
  affectedSiteIds?: string[];
  areas?: string[];
  openedAt: string;
  source?: string;
}

interface Detail extends Summary {
  timeline?: { at: string; phase: string; note?: string }[];
  deliveries?: Record<string, Record<string, Record<string, number>>>;
  live?: { phase: string; recipients: number } | null;
  acknowledged?: { by: string; at: string; via: string };
  escalationProblems?: { at: string; round: number; problem: string }[];
}

const list: Handler = async (api, { values }, io) => {
  const limit = limitArg(values.limit, 200) ?? 50;
  const r = await api.request<{ items: Summary[]; next: string | null }>(
    'GET',
    `/v1/incidents?limit=${limit}${values.all ? '' : '&status=open'}`,
  );
  if (values.json) return (printJson(io, r), 0);
  if (!r.items.length) {
    io.out(values.all ? 'No incidents.' : 'No open incidents (--all lists closed ones too).');
    return 0;
  }
  io.out(
    table(
      ['ID', 'PHASE', 'SEVERITY', 'OPENED (UTC)', 'SITES', 'TITLE'],
      r.items.map((i) => [i.id, i.phase, i.severity, shortTime(i.openedAt), i.siteIds.join(','), i.title]),
    ),
  );
  if (r.next) io.out(`(only the newest ${limit}: --limit takes up to 200)`);
  return 0;
};

const show: Handler = async (api, args, io) => {
  const id = idArg(args, 'inc', 'avviso incidents show inc_0123456789abcdef');
  const i = await api.request<Detail>('GET', `/v1/incidents/${id}`);
  if (args.values.json) return (printJson(io, i), 0);
  io.out(`${i.id}  ${i.phase}  ${i.severity}${i.title ? `  ${i.title}` : ''}`);
  io.out(`opened ${shortTime(i.openedAt)} UTC by ${i.source ?? '-'}`);
  io.out(
    `sites: ${i.siteIds.join(', ')}${i.affectedSiteIds && i.affectedSiteIds.length > i.siteIds.length ? ` (${i.affectedSiteIds.length} with those they feed)` : ''}`,
  );
  if (i.areas?.length) io.out(`areas: ${i.areas.join(', ')}`);
  if (i.live) io.out(`live: ${i.live.phase}, ${i.live.recipients} recipients`);
  if (i.acknowledged) io.out(acknowledgedLine(i.acknowledged));
  for (const p of i.escalationProblems ?? []) io.out(`escalation #${p.round} NOT SENT as planned: ${p.problem}`);
  io.out('messages:');
  for (const l of deliveryLines(i.deliveries)) io.out(l);
  io.out('timeline:');
  for (const t of i.timeline ?? []) io.out(`  ${shortTime(t.at)}  ${t.phase}${t.note ? `  ${t.note}` : ''}`);
  return 0;
};

const open: Handler = async (api, { values, positionals }, io) => {
  if (!positionals.length)
    throw new CliUsageError(
      'name the sites that are down, e.g. avviso incidents open tower-lodi-1 [--title "Fibre cut"]',
    );
  const severity = str(values.severity);
  if (severity && !['minor', 'major', 'critical'].includes(severity))
    throw new CliUsageError('--severity is minor, major or critical');
  const body = {
    siteIds: [...new Set(positionals)],
    ...(severity ? { severity } : {}),
    ...(str(values.title) ? { title: str(values.title) } : {}),
    ...(str(values.key) ? { key: str(values.key) } : {}),
    source: 'cli',
  };
  const i = await api.request<Summary>('POST', '/v1/incidents', body);
  if (values.json) return (printJson(io, i), 0);
  io.out(
    `${i.id}  ${i.phase}  on ${i.siteIds.join(', ')}${i.affectedSiteIds && i.affectedSiteIds.length > i.siteIds.length ? ` (+${i.affectedSiteIds.length - i.siteIds.length} downstream)` : ''}`,
  );
  io.out(`follow it with: avviso incidents show ${i.id}`);
  return 0;
};

const action =
  (verb: 'update' | 'resolve' | 'cancel'): Handler =>
  async (api, args, io) => {
    const id = idArg(args, 'inc', `avviso incidents ${verb} inc_0123456789abcdef`);
    const v = args.values;
    let path: string;
    let body: Record<string, string>;
    if (verb === 'update') {
      const text = str(v.text);
      const eta = str(v.eta);
      if (!text && !eta)
        throw new CliUsageError('give --text, --eta or both, e.g. --text "Technicians on site" --eta +2h');
      path = 'updates';
      body = { ...(text ? { text } : {}), ...(eta ? { estimatedEnd: parseWhen(eta, '--eta') } : {}) };
    } else if (verb === 'resolve') {
      path = 'resolve';
      body = str(v.note) ? { note: str(v.note)! } : {};
    } else {
      path = 'cancel';
      body = str(v.reason) ? { reason: str(v.reason)! } : {};
    }
    const r = await api.request<{ phase?: string; estimatedEnd?: string }>('POST', `/v1/incidents/${id}/${path}`, body);
    if (v.json) return (printJson(io, r), 0);
    const done = {
      update: 'update posted',
      resolve: 'resolve requested: restoration notices follow',
      cancel: 'cancelled: whoever was told is told it was a false alarm',
    }[verb];
    io.out(
      `${id}: ${done} (phase ${r.phase ?? '-'}${r.estimatedEnd ? `, estimate ${shortTime(r.estimatedEnd)} UTC` : ''})`,
    );
    return 0;
  };

const ack = acknowledgeHandler('incidents', 'inc');

export function incidentsCommand(args: string[], io: CommandIo = consoleIo): Promise<number> {
  return runRemoteCommand(
    'incidents',
    HELP,
    {
      all: { type: 'boolean' },
      limit: { type: 'string' },
      severity: { type: 'string' },
      title: { type: 'string' },
      key: { type: 'string' },
      text: { type: 'string' },
      eta: { type: 'string' },
      note: { type: 'string' },
      reason: { type: 'string' },
    },
    { list, show, open, update: action('update'), resolve: action('resolve'), cancel: action('cancel'), ack },
    args,
    io,
  );
}
