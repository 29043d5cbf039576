/**
 * `avviso import sites|subscribers FILE`: imports a CSV or NDJSON export straight into MongoDB
 * (needs MONGODB_URI only) and prints the report. The file is streamed: its size does not matter.
 */
import { createReadStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, mongoFromEnv } from '../config';
import { connectStore } from '../store/db';
import {
  IMPORT_KINDS,
  ImportFileError,
  runImport,
  type ImportFormat,
  type ImportKind,
  type ImportReport,
  type TextEncoding,
} from '../import';

const HELP = `usage: avviso import <sites|subscribers> FILE [options]

Imports sites (towers, access points) or subscribers from a CSV or NDJSON export; FILE - reads
standard input. Creates and updates, never deletes; importing the same file again changes
nothing. Rows that cannot be imported are listed with their line and the reason, and the others
are imported. Import sites before the subscribers they serve. Columns: docs/import-formats.md.

Options:
  --format csv|ndjson     default: from the file name (.ndjson, .jsonl), else csv
  --dry-run               check every row and report, writing nothing
  --encoding utf8|latin1  latin1 for older Windows exports (default utf8)
  --json                  print the report as JSON (every rejected row)
  --show N                list at most N rejected rows (default 50)

Exit status: 0 every row imported (or unchanged), 1 some rows rejected, 2 the file or the
command is wrong.

Needs MONGODB_URI (and MONGODB_DB when the URI names no database); e.g. for \`avviso dev\`:
  MONGODB_URI=mongodb://127.0.0.1:27017/avviso avviso import subscribers clienti.csv`;

function formatOf(file: string, given?: string): ImportFormat {
  if (given === 'csv' || given === 'ndjson') return given;
  if (given !== undefined) throw new UsageError(`--format must be csv or ndjson, not ${JSON.stringify(given)}`);
  return /\.(nd)?jsonl?$/i.test(file) ? 'ndjson' : 'csv';
}

class UsageError extends Error {}

export function summary(r: ImportReport, show: number): string[] {
  const lines = [
    `${r.dryRun ? 'dry run: nothing written. ' : ''}${r.kind} from ${r.format}: ${r.rows} rows in ${(r.durationMs / 1000).toFixed(1)} s (${r.rowsPerSecond} rows/s)`,
    `  created    ${r.created}`,
    `  updated    ${r.updated}`,
    `  unchanged  ${r.unchanged}`,
    `  rejected   ${r.rejected}`,
  ];
  if (r.ignoredColumns.length) lines.push(`ignored columns (not ours; misspelt?): ${r.ignoredColumns.join(', ')}`);
  if (r.rejected) {
    lines.push('', 'rejected rows:');
    for (const x of r.rejections.slice(0, show)) lines.push(`  line ${x.line}${x.id ? ` (${x.id})` : ''}: ${x.reason}`);
    const more = r.rejected - Math.min(show, r.rejections.length);
    if (more > 0)
      lines.push(`  ... and ${more} more (--json lists ${r.rejectionsTruncated ? 'the first 10,000' : 'them all'})`);
  }
  return lines;
}

export async function importCommand(
  args: string[],
  out: (line: string) => void = console.log,
  err: (line: string) => void = console.error,
): Promise<number> {
  let kind: ImportKind;
  let file: string;
  let values: {
    format?: string;
    'dry-run'?: boolean;
    encoding?: string;
    json?: boolean;
    show?: string;
    help?: boolean;
  };
  try {
    const parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        format: { type: 'string' },
        'dry-run': { type: 'boolean' },
        encoding: { type: 'string' },
        json: { type: 'boolean' },
        show: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    values = parsed.values;
    if (values.help || parsed.positionals[0] === 'help') {
      out(HELP);
      return 0;
    }
    const [k, f, ...extra] = parsed.positionals;
    if (!k || !IMPORT_KINDS.includes(k as ImportKind))
      throw new UsageError(
        k
          ? `what to import must be sites or subscribers, not ${JSON.stringify(k)}`
          : 'say what to import: sites or subscribers',
      );
    if (!f) throw new UsageError('name the file to import (- for standard input)');
    if (extra.length) throw new UsageError(`one file at a time (extra: ${extra.join(' ')})`);
    if (values.encoding && values.encoding !== 'utf8' && values.encoding !== 'latin1')
      throw new UsageError('--encoding must be utf8 or latin1');
    kind = k as ImportKind;
    file = f;
  } catch (e) {
    err(`avviso import: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }

  let format: ImportFormat;
  try {
    format = formatOf(file, values.format);
  } catch (e) {
    err(`avviso import: ${(e as Error).message}`);
    return 2;
  }
  const show = values.show ? Math.max(0, Number(values.show) || 0) : 50;

  let mongo: { uri: string; db: string };
  try {
    mongo = mongoFromEnv();
  } catch (e) {
    if (e instanceof ConfigError) {
      err(`avviso import: ${e.message}`);
      return 2;
    }
    throw e;
  }

  const source = file === '-' ? process.stdin : createReadStream(file);
  const opened = new Promise<void>((resolve, reject) => {
    if (file === '-') return resolve();
    source.once('open', () => resolve());
    source.once('error', reject);
  });
  try {
    await opened;
  } catch (e) {
    err(`avviso import: cannot read ${file}: ${(e as Error).message}`);
    return 2;
  }

  const store = await connectStore(mongo.uri, mongo.db);
  try {
    const report = await runImport(store, kind, source, {
      format,
      dryRun: values['dry-run'],
      encoding: values.encoding as TextEncoding | undefined,
    });
    if (values.json) out(JSON.stringify(report, null, 2));
    else for (const line of summary(report, show)) out(line);
    return report.rejected > 0 ? 1 : 0;
  } catch (e) {
    if (e instanceof ImportFileError) {
      err(`avviso import: ${file}: ${e.message}`);
      return 2;
    }
    throw e;
  } finally {
    await store.close();
  }
}
