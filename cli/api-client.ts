/**
 * The CLI's way to the HTTP API: AVVISO_URL (default http://127.0.0.1:3000, where `avviso dev`
 * serves it) and AVVISO_API_KEY from the environment, JSON in and out, and errors that say
 * what went wrong in the API's own words.
 */

export class CliUsageError extends Error {}

/** The API answered with an error, or could not be reached. */
export class ApiCallError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

export interface ApiClient {
  baseUrl: string;
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
}

export const DEFAULT_API_URL = 'http://127.0.0.1:3000';

export function apiClientFromEnv(env: NodeJS.ProcessEnv = process.env): ApiClient {
  const key = env.AVVISO_API_KEY?.trim();
  if (!key) {
    throw new CliUsageError(
      'AVVISO_API_KEY is not set: export AVVISO_API_KEY=avk_<id>_<secret> (an admin makes one with `avviso keys create --name me --role operator`)',
    );
  }
  const raw = (env.AVVISO_URL?.trim() || DEFAULT_API_URL).replace(/\/+$/, '');
  let baseUrl: string;
  try {
    const u = new URL(raw);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
    baseUrl = raw;
  } catch {
    throw new CliUsageError(
      `AVVISO_URL must be the API's http(s) address, e.g. ${DEFAULT_API_URL} (not ${JSON.stringify(raw)})`,
    );
  }
  return {
    baseUrl,
    async request<T>(method: string, path: string, body?: unknown): Promise<T> {
      let res: Response;
      try {
        res = await fetch(baseUrl + path, {
          method,
          headers: {
            authorization: `Bearer ${key}`,
            accept: 'application/json',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(30_000),
        });
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
        throw new ApiCallError(
          `cannot reach the API at ${baseUrl} (${cause}); is it running? (AVVISO_URL sets the address)`,
        );
      }
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      if (!res.ok) {
        const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
        const what = error?.message ?? (text.slice(0, 200) || res.statusText);
        throw new ApiCallError(
          `${method} ${path}: ${res.status} ${error?.code ? `${error.code}: ` : ''}${what}`,
          res.status,
          error?.code,
        );
      }
      return parsed as T;
    },
  };
}

/** Rows as aligned columns, the header first; empty cells show as "-". */
export function table(header: string[], rows: (string | number | undefined | null)[][]): string {
  const all = [header, ...rows.map((r) => r.map((c) => (c === undefined || c === null || c === '' ? '-' : String(c))))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** An ISO time as "2026-12-04 06:15" (UTC), for tables. */
export function shortTime(iso: string | undefined): string {
  return iso ? iso.slice(0, 16).replace('T', ' ') : '-';
}

/** A time given on the command line: ISO 8601, or "+90m" / "+2h" / "+1d" from now. */
export function parseWhen(value: string, option: string, now = Date.now()): string {
  const rel = /^\+(\d+)([mhd])$/.exec(value.trim());
  if (rel)
    return new Date(
      now + Number(rel[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 'm' | 'h' | 'd'],
    ).toISOString();
  const t = Date.parse(value);
  if (Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}/.test(value))
    throw new CliUsageError(
      `${option} takes an ISO time (2026-12-04T22:00:00+01:00) or +30m, +2h, +1d (not ${JSON.stringify(value)})`,
    );
  return new Date(t).toISOString();
}

/** Message counts by channel, kind and state (the API's `deliveries`) as "sms outage: 3 delivered, 1 failed" lines. */
export function deliveryLines(
  deliveries: Record<string, Record<string, Record<string, number>>> | undefined,
): string[] {
  const lines: string[] = [];
  for (const [channel, kinds] of Object.entries(deliveries ?? {})) {
    for (const [kind, states] of Object.entries(kinds)) {
      lines.push(
        `  ${channel} ${kind}: ${Object.entries(states)
          .map(([s, n]) => `${n} ${s}`)
          .join(', ')}`,
      );
    }
  }
  return lines.length ? lines : ['  none yet'];
}
