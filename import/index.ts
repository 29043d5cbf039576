/**
 * Importing sites and subscribers from CSV or NDJSON: the one entry point the CLI
 * (`avviso import`) and the API (`POST /v1/import/...`) share. Formats: docs/import-formats.md.
 */
import type { Store } from '../store/db';
import type { ImportKind } from './columns';
import type { Source } from './rows';
import type { ImportReport } from './report';
import { importSites, type ImportOptions } from './sites';
import { importSubscribers } from './subscribers';

export type { ImportKind } from './columns';
export type { ImportFormat, TextEncoding, Source } from './rows';
export { ImportFileError } from './rows';
export type { ImportReport, Rejection } from './report';
export type { ImportOptions } from './sites';

export const IMPORT_KINDS: readonly ImportKind[] = ['sites', 'subscribers'];

export function runImport(store: Store, kind: ImportKind, source: Source, opts: ImportOptions): Promise<ImportReport> {
  return kind === 'sites' ? importSites(store, source, opts) : importSubscribers(store, source, opts);
}
