/**
 * What an import did, row by row in aggregate: every row of the file is exactly one of created,
 * updated, unchanged or rejected, and each rejected row is listed with its line and the reason.
 */
import type { ImportKind } from './columns';
import type { ImportFormat } from './rows';

export interface Rejection {
  line: number;
  /** The row's id when it could be read. */
  id?: string;
  reason: string;
}

export interface ImportReport {
  kind: ImportKind;
  format: ImportFormat;
  /** Nothing was written: the counts say what an import would do. */
  dryRun: boolean;
  rows: number;
  created: number;
  updated: number;
  unchanged: number;
  rejected: number;
  /** The first `MAX_LISTED` rejections, in file order. */
  rejections: Rejection[];
  rejectionsTruncated: boolean;
  /** Header columns (or NDJSON keys) that match no known column: ignored, probably misspelt. */
  ignoredColumns: string[];
  durationMs: number;
  rowsPerSecond: number;
}

/** Enough to fix a file by; beyond that the count still says how many there are. */
export const MAX_LISTED = 10_000;

export class ReportBuilder {
  private readonly started = performance.now();
  readonly report: ImportReport;

  constructor(kind: ImportKind, format: ImportFormat, dryRun: boolean) {
    this.report = {
      kind,
      format,
      dryRun,
      rows: 0,
      created: 0,
      updated: 0,
      unchanged: 0,
      rejected: 0,
      rejections: [],
      rejectionsTruncated: false,
      ignoredColumns: [],
      durationMs: 0,
      rowsPerSecond: 0,
    };
  }

  reject(line: number, reason: string, id?: string): void {
    this.report.rows++;
    this.report.rejected++;
    if (this.report.rejections.length < MAX_LISTED)
      this.report.rejections.push({ line, ...(id ? { id } : {}), reason });
    else this.report.rejectionsTruncated = true;
  }

  count(outcome: 'created' | 'updated' | 'unchanged', n = 1): void {
    this.report.rows += n;
    this.report[outcome] += n;
  }

  /** A row counted as created whose insert found it already there (written meanwhile by someone else). */
  recount(from: 'created', to: 'updated', n: number): void {
    this.report[from] -= n;
    this.report[to] += n;
  }

  finish(): ImportReport {
    this.report.rejections.sort((a, b) => a.line - b.line);
    this.report.durationMs = Math.round(performance.now() - this.started);
    this.report.rowsPerSecond =
      this.report.durationMs > 0 ? Math.round((this.report.rows / this.report.durationMs) * 1000) : this.report.rows;
    return this.report;
  }
}
