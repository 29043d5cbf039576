/**
 * CSV as RFC 4180 has it (comma, CRLF line ends, fields with a comma, quote or line break quoted,
 * quotes doubled), UTF-8 without a byte-order mark, one header row. Written by csv-stringify,
 * streamed: an export of 100,000 lines never sits whole in memory.
 */
import { pipeline, Readable } from 'node:stream';
import { stringify } from 'csv-stringify';

export type Cell = string | number | undefined;

export interface CsvColumn<T> {
  header: string;
  value: (row: T) => Cell;
}

// Any line break is quoted (csv-stringify quotes only the record delimiter itself), and edge spaces, which importers trim.
const OPTIONS = { header: true, record_delimiter: 'windows' as const, quoted_match: [/[\r\n]/, /^\s|\s$/] };

/** The rows as a CSV stream; an error while reading them ends the stream with that error. */
export function csvStream<T>(columns: CsvColumn<T>[], rows: AsyncIterable<T> | Iterable<T>): Readable {
  const out = stringify({ ...OPTIONS, columns: columns.map((c) => c.header) });
  async function* records() {
    for await (const row of rows) yield columns.map((c) => c.value(row) ?? '');
  }
  pipeline(Readable.from(records()), out, () => undefined);
  return out;
}

export async function csvText<T>(columns: CsvColumn<T>[], rows: AsyncIterable<T> | Iterable<T>): Promise<string> {
  let text = '';
  for await (const chunk of csvStream(columns, rows)) text += String(chunk);
  return text;
}
