/**
 * Reads an import file as a stream of rows, one at a time: never the whole file in memory.
 * Each row carries its line number in the file and its fields keyed by column name
 * (./columns.ts). Rows that cannot be read at all (a broken quote, the wrong number of fields,
 * a line that is not JSON) come out as `bad` with the reason, and reading goes on.
 *
 * CSV: the first line is the header; the delimiter (`,` `;` tab or `|`) is the one the header
 * uses most, so exports from Italian spreadsheets (`;`) work as they are. NDJSON: one JSON
 * object per line, keys named like the CSV columns.
 */
import { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { parse } from 'csv-parse';
import { columnResolver, COLUMNS, headerKey, type ImportKind } from './columns';

export type ImportFormat = 'csv' | 'ndjson';
export type TextEncoding = 'utf8' | 'latin1';

export type RowEvent =
  { kind: 'row'; line: number; fields: Record<string, unknown> } | { kind: 'bad'; line: number; problem: string };

/** The file as a whole cannot be imported: no header, a required column missing, too large. */
export class ImportFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportFileError';
  }
}

export interface ReadOptions {
  kind: ImportKind;
  format: ImportFormat;
  /** How the bytes are text: UTF-8 (default) or Latin-1 (older Windows exports). */
  encoding?: TextEncoding;
  /** Stop reading past this many bytes (the API's guard). */
  maxBytes?: number;
  /** Header keys that match no column, reported back so that a misspelt column is noticed. */
  onIgnoredColumns?: (keys: string[]) => void;
}

export type Source = AsyncIterable<Buffer | string>;

/** Counts bytes as they pass and stops at the limit. */
async function* capped(source: Source, maxBytes: number | undefined): AsyncGenerator<Buffer> {
  let total = 0;
  for await (const chunk of source) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    total += buf.length;
    if (maxBytes !== undefined && total > maxBytes)
      throw new ImportFileError(
        `The file is larger than ${Math.round(maxBytes / 1024 / 1024)} MiB; split it, or import it with \`avviso import\`.`,
      );
    yield buf;
  }
}

export function readRows(source: Source, opts: ReadOptions): AsyncGenerator<RowEvent> {
  const bytes = capped(source, opts.maxBytes);
  return opts.format === 'csv' ? readCsv(bytes, opts) : readNdjson(bytes, opts);
}

const DELIMITERS = [',', ';', '\t', '|'];

/** The delimiter the header line uses most (a header has no quoted delimiters in practice). */
function sniffDelimiter(headerLine: string): string {
  let best = ',';
  let most = 0;
  for (const d of DELIMITERS) {
    const n = headerLine.split(d).length - 1;
    if (n > most) [best, most] = [d, n];
  }
  return best;
}

/** Takes chunks until the first line is complete, and gives back that line and every chunk. */
async function firstLine(
  bytes: AsyncIterator<Buffer>,
  encoding: TextEncoding,
): Promise<{ line: string; head: Buffer[] }> {
  const head: Buffer[] = [];
  for (;;) {
    const next = await bytes.next();
    if (next.done) break;
    head.push(next.value);
    if (next.value.includes(0x0a) || head.reduce((n, b) => n + b.length, 0) > 1024 * 1024) break;
  }
  const text = Buffer.concat(head).toString(encoding);
  return { line: text.split(/\r?\n/)[0] ?? '', head };
}

function checkHeader(kind: ImportKind, keys: string[]): { columns: (string | undefined)[]; ignored: string[] } {
  const resolve = columnResolver(kind);
  const columns = keys.map((k) => resolve(k));
  const seen = new Map<string, string>();
  keys.forEach((k, i) => {
    const c = columns[i];
    if (!c) return;
    if (seen.has(c)) throw new ImportFileError(`Columns "${seen.get(c)}" and "${k}" both mean ${c}; keep one.`);
    seen.set(c, k);
  });
  const missing = COLUMNS[kind].filter((c) => c.required && !seen.has(c.name)).map((c) => c.name);
  if (missing.length) {
    throw new ImportFileError(
      `Missing column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (the header has: ${keys.filter(Boolean).join(', ') || 'nothing'}); docs/import-formats.md lists the columns.`,
    );
  }
  return { columns, ignored: keys.filter((k, i) => k !== '' && !columns[i]) };
}

async function* readCsv(bytes: AsyncGenerator<Buffer>, opts: ReadOptions): AsyncGenerator<RowEvent> {
  const encoding = opts.encoding ?? 'utf8';
  const iterator = bytes[Symbol.asyncIterator]();
  const { line, head } = await firstLine(iterator, encoding);
  if (line.replace(/^\uFEFF/, '').trim() === '')
    throw new ImportFileError('The file is empty, or its first line (the header) is blank.');

  const skipped: RowEvent[] = [];
  const parser = parse({
    delimiter: sniffDelimiter(line),
    bom: true,
    encoding,
    trim: true,
    info: true,
    relax_column_count: true,
    // `Bar "Da Mario"` in an unquoted value: keep the quotes, as spreadsheets mean them.
    relax_quotes: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    on_skip: (err) => {
      if (err)
        skipped.push({
          kind: 'bad',
          line: Number(err.lines),
          problem: `not readable as CSV: ${err.message.replace(/^[^:]*: /, '')}`,
        });
    },
  });
  const input = Readable.from(
    (async function* () {
      yield* head;
      for (let n = await iterator.next(); !n.done; n = await iterator.next()) yield n.value;
    })(),
  );
  input.on('error', (err) => parser.destroy(err));
  input.pipe(parser);

  let columns: (string | undefined)[] | undefined;
  for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
    while (skipped.length) yield skipped.shift()!;
    // A quoted value may span lines: the row starts where its first line is.
    const start = info.lines - record.reduce((n, v) => n + (v.match(/\n/g)?.length ?? 0), 0);
    if (!columns) {
      const header = checkHeader(opts.kind, record.map(headerKey));
      columns = header.columns;
      if (header.ignored.length) opts.onIgnoredColumns?.(header.ignored);
      continue;
    }
    if (record.every((v) => v === '')) continue; // a row of empty cells, as spreadsheets append
    if (record.length !== columns.length) {
      yield {
        kind: 'bad',
        line: start,
        problem: `has ${record.length} fields where the header has ${columns.length}${record.length > columns.length ? ' (a value with the delimiter in it needs quotes)' : ''}`,
      };
      continue;
    }
    const fields: Record<string, unknown> = {};
    record.forEach((v, i) => {
      const c = columns![i];
      if (c && v !== '') fields[c] = v;
    });
    yield { kind: 'row', line: start, fields };
  }
  while (skipped.length) yield skipped.shift()!;
  if (!columns) throw new ImportFileError('The file has no header line.');
}

async function* readNdjson(bytes: AsyncGenerator<Buffer>, opts: ReadOptions): AsyncGenerator<RowEvent> {
  const input = Readable.from(bytes);
  input.setEncoding(opts.encoding ?? 'utf8');
  const lines = createInterface({ input, crlfDelay: Infinity });
  const resolve = columnResolver(opts.kind);
  const ignored = new Set<string>();
  let n = 0;
  try {
    for await (const raw of lines) {
      n++;
      const text = (n === 1 ? raw.replace(/^\uFEFF/, '') : raw).trim();
      if (text === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        yield { kind: 'bad', line: n, problem: `not JSON: ${(err as Error).message}` };
        continue;
      }
      if (!value || typeof value !== 'object' || Array.isArray(value)) {
        yield { kind: 'bad', line: n, problem: 'is not a JSON object ({"contract_id": ..., ...})' };
        continue;
      }
      const fields: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        const c = resolve(k);
        if (!c) ignored.add(k);
        else if (v !== null && v !== '') fields[c] = typeof v === 'string' ? v.trim() : v;
      }
      yield { kind: 'row', line: n, fields };
    }
  } finally {
    lines.close();
  }
  if (ignored.size) opts.onIgnoredColumns?.([...ignored].sort());
}
