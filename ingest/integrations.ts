/**
 * The integrations file: which monitoring endpoints exist, with their token, time zone and how
 * their payloads name a site. YAML, checked as a whole at start: every problem is reported at
 * once as `file:line:column: message`, like the rule files. Secrets come from the environment
 * (`token_env`, `hmac_secret_env`); a literal `token` in an operator's own file is accepted with a
 * warning. The repository's example tokens (`dev-token-<tool>`, public to anyone who read it) are
 * refused unless the caller says it is a development stack (`avviso dev`, the tests).
 *
 *   defaults: { time_zone: Europe/Rome, min_severity: minor }
 *   integrations:
 *     - name: noc                    # POST /v1/ingest/alertmanager/noc
 *       source: alertmanager
 *       token_env: AVVISO_TOKEN_NOC
 *       site: { label: device }      # or { field: host } | { lookup: { by: ip, table: {...} } } | { static: tower-x }
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { IANAZone } from 'luxon';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { ALERT_SEVERITIES, ALERT_SOURCES, type AlertSeverity } from './alert-event';
import { exampleSecret } from '../config/example-secrets';

export type IngestSource = (typeof ALERT_SOURCES)[number];

/** One way to find the site ids of an alert; an integration tries its mappings in order. */
export type SiteMapping =
  | { label: string }
  | { field: 'device' | 'site' | 'ip' | 'service' }
  | { lookup: { by: 'ip' | 'hostname'; table: Record<string, string[]> } }
  | { static: string[] };

export interface GrafanaSignature {
  secret: string;
  /** Lower-cased header names. */
  signatureHeader: string;
  timestampHeader?: string;
  /** With a timestamp header: how old a signed request may be. */
  maxSkewSeconds: number;
}

export interface Integration {
  name: string;
  source: IngestSource;
  token: string;
  timeZone: string;
  site: SiteMapping[];
  /** Firing alerts below this severity are recorded without opening an incident. */
  minSeverity: AlertSeverity;
  signature?: GrafanaSignature;
}

export interface IntegrationSet {
  file: string;
  integrations: Integration[];
  /** Things that work but should not go to production (a literal token...). */
  warnings: string[];
  find(source: string, name: string): Integration | undefined;
}

export class IntegrationConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `the integrations file has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  ${p}`).join('\n')}`,
    );
    this.name = 'IntegrationConfigError';
  }
}

/** The file used when AVVISO_INTEGRATIONS is not set: a development set, one integration per tool. */
export const DEFAULT_INTEGRATIONS_FILE = path.resolve(__dirname, '..', 'rules', 'integrations.yaml');

/**
 * Where the integrations file is. The only reader of AVVISO_INTEGRATIONS until config/index.ts
 * validates it with the other variables; callers pass the result to loadIntegrations.
 */
export function integrationsPathFromEnv(env: NodeJS.ProcessEnv): string {
  return env.AVVISO_INTEGRATIONS?.trim() || DEFAULT_INTEGRATIONS_FILE;
}

export interface IntegrationsOptions {
  /** Accept the repository's example secrets (`avviso dev`, the tests); refused by default. */
  development?: boolean;
}

export async function loadIntegrations(
  file: string,
  env: NodeJS.ProcessEnv,
  options: IntegrationsOptions = {},
): Promise<IntegrationSet> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new IntegrationConfigError([
      `${file}:1:1: cannot read the integrations file: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    ]);
  }
  return parseIntegrations(text, file, env, options);
}

const NEEDS_TIME_ZONE: IngestSource[] = ['zabbix', 'librenms', 'prtg'];
const FIELDS = ['device', 'host', 'site', 'ip', 'service'] as const;
const KEYS = [
  'name',
  'source',
  'token',
  'token_env',
  'time_zone',
  'site',
  'min_severity',
  'hmac_secret',
  'hmac_secret_env',
  'signature_header',
  'timestamp_header',
  'max_skew_seconds',
];
const NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const MIN_SECRET_LENGTH = 8;

type Path = (string | number)[];

/** Positions in the YAML text, for messages. */
class Positions {
  private readonly lines = new LineCounter();
  readonly doc: Document.Parsed;
  constructor(
    readonly file: string,
    text: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
  }
  /** `file:line:column` of the value at `p`, or of its nearest existing parent. */
  at(p: Path): string {
    for (let n = p.length; n >= 0; n--) {
      const node = this.doc.getIn(p.slice(0, n), true) as Node | undefined;
      if (node && typeof node === 'object' && node.range) return this.offset(node.range[0]);
    }
    return `${this.file}:1:1`;
  }
  /** `file:line:column` of the key at `p` (for unknown keys), else of its value. */
  keyAt(p: Path): string {
    const parent = this.doc.getIn(p.slice(0, -1), true);
    const pair = isMap(parent)
      ? parent.items.find((i) => isScalar(i.key) && i.key.value === p[p.length - 1])
      : undefined;
    const range = (pair?.key as Node | undefined)?.range;
    return range ? this.offset(range[0]) : this.at(p);
  }
  offset(offset: number): string {
    const { line, col } = this.lines.linePos(offset);
    return `${this.file}:${line}:${col}`;
  }
}

export function parseIntegrations(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv,
  options: IntegrationsOptions = {},
): IntegrationSet {
  const pos = new Positions(file, text);
  const problems: string[] = [];
  const warnings: string[] = [];
  const literals: string[] = [];
  for (const err of pos.doc.errors) problems.push(`${pos.offset(err.pos[0])}: YAML: ${err.message.split('\n')[0]}`);
  if (problems.length > 0) throw new IntegrationConfigError(problems);

  const problem = (p: Path, message: string) => problems.push(`${pos.at(p)}: ${message}`);
  const keyProblem = (p: Path, message: string) => problems.push(`${pos.keyAt(p)}: ${message}`);
  const root = (pos.doc.contents === null ? {} : pos.doc.toJS()) as unknown;
  if (!isMap(pos.doc.contents) && pos.doc.contents !== null) {
    problem([], 'must be a mapping with an `integrations:` list');
    throw new IntegrationConfigError(problems);
  }
  const top = (root ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(top))
    if (key !== 'integrations' && key !== 'defaults')
      keyProblem([key], `unknown key "${key}" (known: defaults, integrations)`);

  const defaults = (top.defaults ?? {}) as Record<string, unknown>;
  const defaultZone = checkZone(defaults.time_zone, ['defaults', 'time_zone'], problem);
  const defaultMin = checkSeverity(defaults.min_severity, ['defaults', 'min_severity'], problem) ?? 'minor';

  const list = top.integrations;
  if (!isSeq(pos.doc.get('integrations', true))) {
    problem(['integrations'], 'must be a list of integrations (each with name, source, token_env, site)');
    throw new IntegrationConfigError(problems);
  }
  const integrations: Integration[] = [];
  const seen = new Map<string, string>();
  (list as unknown[]).forEach((raw, i) => {
    const at = (...p: Path): Path => ['integrations', i, ...p];
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      return problem(at(), 'must be a mapping (name, source, token_env, site...)');
    const entry = raw as Record<string, unknown>;
    for (const key of Object.keys(entry))
      if (!KEYS.includes(key)) keyProblem(at(key), `unknown key "${key}" (known: ${KEYS.join(', ')})`);

    const name = typeof entry.name === 'string' && NAME.test(entry.name) ? entry.name : undefined;
    if (!name)
      problem(at('name'), 'name is required: lower-case letters, digits, - and _ (it is the last part of the URL)');
    const source = ALERT_SOURCES.find((s) => s === entry.source);
    if (!source) problem(at('source'), `source must be one of ${ALERT_SOURCES.join(', ')}`);
    if (name && source) {
      const key = `${source}/${name}`;
      if (seen.has(key)) problem(at('name'), `${key} is already defined at ${seen.get(key)}`);
      seen.set(key, pos.at(at('name')));
    }

    const secrets = { env, problem, literals, development: options.development === true };
    const token = secret(entry, 'token', 'token_env', at, secrets, `${source ?? '?'}/${name ?? '?'}`);
    const zone = checkZone(entry.time_zone, at('time_zone'), problem) ?? defaultZone;
    if (!zone && defaults.time_zone === undefined && source && NEEDS_TIME_ZONE.includes(source))
      problem(
        at('source'),
        `time_zone is required for ${source}, which sends local times without a zone (e.g. time_zone: Europe/Rome, here or under defaults)`,
      );
    const minSeverity = checkSeverity(entry.min_severity, at('min_severity'), problem) ?? defaultMin;
    const site = siteMappings(entry.site, at('site'), problem);

    let signature: GrafanaSignature | undefined;
    const signatureKey = [
      'hmac_secret',
      'hmac_secret_env',
      'signature_header',
      'timestamp_header',
      'max_skew_seconds',
    ].find((k) => k in entry);
    const wantsSignature = signatureKey !== undefined;
    if (wantsSignature && source !== 'grafana')
      keyProblem(
        at(signatureKey),
        "HMAC signatures are Grafana's: only a grafana integration takes hmac_secret_env, signature_header, timestamp_header",
      );
    else if (wantsSignature) {
      const hmac = secret(entry, 'hmac_secret', 'hmac_secret_env', at, secrets, `grafana/${name ?? '?'}`);
      const header = (k: string, fallback?: string) => {
        const v = entry[k] ?? fallback;
        if (v === undefined) return undefined;
        if (typeof v !== 'string' || !/^[A-Za-z0-9-]+$/.test(v))
          return void problem(at(k), `${k} must be an HTTP header name`);
        return v.toLowerCase();
      };
      const skew = entry.max_skew_seconds ?? 300;
      if (typeof skew !== 'number' || !Number.isInteger(skew) || skew < 1)
        problem(at('max_skew_seconds'), 'max_skew_seconds must be a whole number of seconds, at least 1');
      const signatureHeader = header('signature_header', 'X-Grafana-Alerting-Signature');
      const timestampHeader = header('timestamp_header');
      if (hmac && signatureHeader)
        signature = {
          secret: hmac,
          signatureHeader,
          ...(timestampHeader ? { timestampHeader } : {}),
          maxSkewSeconds: Number(skew),
        };
    }
    if (name && source && token && site)
      integrations.push({
        name,
        source,
        token,
        timeZone: zone ?? 'UTC',
        site,
        minSeverity,
        ...(signature ? { signature } : {}),
      });
  });

  if (problems.length > 0) throw new IntegrationConfigError(problems);
  if (literals.length > 0)
    warnings.push(
      `${file}: literal secrets for ${literals.join(', ')}: fine for development; in production use token_env / hmac_secret_env so secrets stay out of the file`,
    );
  const byKey = new Map(integrations.map((i) => [`${i.source}/${i.name}`, i]));
  return { file, integrations, warnings, find: (source, name) => byKey.get(`${source}/${name}`) };
}

type Report = (p: Path, message: string) => void;

function checkZone(v: unknown, p: Path, problem: Report): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !IANAZone.isValidZone(v))
    return void problem(p, `time_zone must be an IANA time zone such as Europe/Rome, got ${JSON.stringify(v)}`);
  return v;
}

function checkSeverity(v: unknown, p: Path, problem: Report): AlertSeverity | undefined {
  if (v === undefined) return undefined;
  const found = ALERT_SEVERITIES.find((s) => s === v && s !== 'unknown');
  if (!found) problem(p, `min_severity must be one of ${ALERT_SEVERITIES.filter((s) => s !== 'unknown').join(', ')}`);
  return found;
}

interface SecretContext {
  env: NodeJS.ProcessEnv;
  problem: Report;
  /** Literal secrets found, for the warning. */
  literals: string[];
  /** Accept the repository's example secrets. */
  development: boolean;
}

/** The variable a literal secret should move to, e.g. AVVISO_TOKEN_ALERTMANAGER_NOC. */
function suggestedVariable(literal: string, who: string): string {
  const prefix = literal === 'token' ? 'AVVISO_TOKEN' : 'AVVISO_HMAC_SECRET';
  return `${prefix}_${who.replace(/[^A-Za-z0-9]+/g, '_').toUpperCase()}`;
}

/** A secret given as `<literal>` (noted in `literals`) or `<literal>_env` naming a variable (production). */
function secret(
  entry: Record<string, unknown>,
  literal: string,
  fromEnv: string,
  at: (...p: Path) => Path,
  ctx: SecretContext,
  who: string,
): string | undefined {
  const { env, problem, literals } = ctx;
  const hasLiteral = entry[literal] !== undefined;
  const hasEnv = entry[fromEnv] !== undefined;
  if (hasLiteral && hasEnv) return void problem(at(literal), `give ${literal} or ${fromEnv}, not both`);
  if (hasEnv) {
    const name = entry[fromEnv];
    if (typeof name !== 'string' || !/^[A-Z_][A-Z0-9_]*$/.test(name))
      return void problem(at(fromEnv), `${fromEnv} must name an environment variable (upper-case letters, digits, _)`);
    const value = env[name];
    if (!value)
      return void problem(
        at(fromEnv),
        `${fromEnv}: the environment variable ${name} is not set (set it to the secret the sending tool is given)`,
      );
    if (value.length < MIN_SECRET_LENGTH)
      return void problem(at(fromEnv), `${fromEnv}: ${name} must be at least ${MIN_SECRET_LENGTH} characters long`);
    const example = ctx.development ? undefined : exampleSecret(value);
    if (example)
      return void problem(
        at(fromEnv),
        `${fromEnv}: ${name} is ${example}: set ${name} to a random secret of your own, e.g. \`openssl rand -hex 32\`, and give the same to the sending tool`,
      );
    return value;
  }
  if (hasLiteral) {
    const value = entry[literal];
    if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH)
      return void problem(at(literal), `${literal} must be a string of at least ${MIN_SECRET_LENGTH} characters`);
    const example = ctx.development ? undefined : exampleSecret(value);
    if (example) {
      const variable = suggestedVariable(literal, who);
      return void problem(
        at(literal),
        `${literal} of ${who} is ${example}: write \`${fromEnv}: ${variable}\` instead and set ${variable} to a random secret of your own (AVVISO_MODE=development accepts it, for a development stack only)`,
      );
    }
    literals.push(`${who} (${literal})`);
    return value;
  }
  problem(
    at('name'),
    `${fromEnv} is required: the environment variable holding the secret the sending tool presents (or ${literal}, for development)`,
  );
  return undefined;
}

function siteIds(v: unknown): string[] | undefined {
  const list = Array.isArray(v) ? v : [v];
  return list.length > 0 && list.every((x) => typeof x === 'string' && x.trim() !== '')
    ? (list as string[])
    : undefined;
}

function siteMappings(v: unknown, p: Path, problem: Report): SiteMapping[] | undefined {
  const how =
    'site must say how a payload names its site: { label: device }, { field: host }, { lookup: { by: ip, table: {...} } } or { static: <site id> }, or a list of these tried in order';
  if (v === undefined) return void problem(p, `${how}`);
  const list = Array.isArray(v) ? v : [v];
  const out: SiteMapping[] = [];
  list.forEach((m, i) => {
    const at = Array.isArray(v) ? [...p, i] : p;
    if (typeof m !== 'object' || m === null || Object.keys(m).length !== 1) return problem(at, how);
    const [kind, arg] = Object.entries(m as Record<string, unknown>)[0]!;
    if (kind === 'label') {
      if (typeof arg !== 'string' || arg === '')
        return problem([...at, kind], 'label must name the label (or tag) that holds the site id, e.g. label: device');
      out.push({ label: arg });
    } else if (kind === 'field') {
      const field = FIELDS.find((f) => f === arg);
      if (!field)
        return problem([...at, kind], `field must be one of ${FIELDS.join(', ')} (host is the device's name)`);
      out.push({ field: field === 'host' ? 'device' : field });
    } else if (kind === 'static') {
      const ids = siteIds(arg);
      if (!ids) return problem([...at, kind], 'static must be a site id or a list of site ids');
      out.push({ static: ids });
    } else if (kind === 'lookup') {
      const lookup = (arg ?? {}) as Record<string, unknown>;
      if (lookup.by !== 'ip' && lookup.by !== 'hostname')
        return problem([...at, kind, 'by'], 'lookup.by must be ip or hostname');
      const table = lookup.table;
      if (typeof table !== 'object' || table === null || Array.isArray(table) || Object.keys(table).length === 0)
        return problem(
          [...at, kind, 'table'],
          'lookup.table must map each ip or hostname to a site id (or a list of site ids)',
        );
      const clean: Record<string, string[]> = {};
      for (const [key, value] of Object.entries(table)) {
        const ids = siteIds(value);
        if (!ids) problem([...at, kind, 'table', key], `lookup.table.${key} must be a site id or a list of site ids`);
        else clean[lookup.by === 'hostname' ? key.toLowerCase() : key] = ids;
      }
      out.push({ lookup: { by: lookup.by, table: clean } });
    } else {
      problem([...at, kind], `unknown site mapping "${kind}": ${how}`);
    }
  });
  return out.length === list.length ? out : undefined;
}
