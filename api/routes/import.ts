/**
 * Imports over HTTP: `POST /v1/import/sites` and `POST /v1/import/subscribers` take the file
 * itself as the body (CSV or NDJSON, docs/import-formats.md) and answer with the import report.
 * The body is streamed into the importer as it arrives, never held whole.
 *
 * The CSV/NDJSON parsers are registered in this plugin only: elsewhere those types stay refused.
 * The parser hands the raw stream over on `request.importSource` and gives the validator an
 * empty string, so that the body schema (which documents the media types in /openapi.json) holds.
 */
import type { Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app';
import { ApiError } from '../errors';
import {
  IMPORT_KINDS,
  ImportFileError,
  runImport,
  type ImportFormat,
  type ImportKind,
  type TextEncoding,
} from '../../import';
import { errors } from './network-common';

declare module 'fastify' {
  interface FastifyRequest {
    /** The body of an import request, unread. */
    importSource: Readable | null;
  }
}

/** Far above a real export (100,000 subscribers are about 12 MB of CSV). */
export const IMPORT_MAX_BYTES = 256 * 1024 * 1024;

const FORMAT_OF: Record<string, ImportFormat> = {
  'text/csv': 'csv',
  'application/csv': 'csv',
  'application/x-ndjson': 'ndjson',
  'application/ndjson': 'ndjson',
  'application/jsonl': 'ndjson',
};

const fileBody = (what: string) => ({
  content: {
    'text/csv': {
      schema: {
        type: 'string',
        description: `The ${what} file: a header line, then one row per line; comma, semicolon or tab separated`,
      },
    },
    'application/x-ndjson': {
      schema: { type: 'string', description: `The ${what} file: one JSON object per line, keys as the CSV columns` },
    },
  },
});

const reportSchema = {
  type: 'object',
  properties: {
    kind: { type: 'string', enum: [...IMPORT_KINDS] },
    format: { type: 'string', enum: ['csv', 'ndjson'] },
    dryRun: { type: 'boolean', description: 'Nothing was written: the counts say what an import would do' },
    rows: { type: 'integer' },
    created: { type: 'integer' },
    updated: { type: 'integer' },
    unchanged: { type: 'integer' },
    rejected: { type: 'integer' },
    rejections: {
      type: 'array',
      items: {
        type: 'object',
        properties: { line: { type: 'integer' }, id: { type: 'string' }, reason: { type: 'string' } },
      },
    },
    rejectionsTruncated: { type: 'boolean', description: 'More rows were rejected than are listed' },
    ignoredColumns: {
      type: 'array',
      items: { type: 'string' },
      description: 'Columns that match none we know: ignored (misspelt?)',
    },
    durationMs: { type: 'integer' },
    rowsPerSecond: { type: 'integer' },
  },
} as const;

interface ImportQuery {
  format?: ImportFormat;
  dryRun: boolean;
  encoding: TextEncoding;
}

export const importRoutes: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.decorateRequest('importSource', null);
  app.addContentTypeParser(Object.keys(FORMAT_OF), (req, payload, done) => {
    req.importSource = payload as unknown as Readable;
    done(null, '');
  });

  for (const kind of IMPORT_KINDS) {
    app.post<{ Querystring: ImportQuery }>(
      `/v1/import/${kind}`,
      {
        bodyLimit: IMPORT_MAX_BYTES,
        schema: {
          tags: ['network'],
          summary: `Import ${kind} from a CSV or NDJSON file`,
          description: `Creates and updates ${kind} (never deletes); importing the same file again changes nothing. Rows that cannot be imported are listed with their line and the reason; the others are imported. ${kind === 'subscribers' ? 'Sites must be imported first.' : 'Uplinks may refer to sites stored already or further down the file; loops are refused.'} Columns: docs/import-formats.md.`,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              format: { type: 'string', enum: ['csv', 'ndjson'], description: 'Default: from the Content-Type' },
              dryRun: { type: 'boolean', default: false, description: 'Check every row and report, writing nothing' },
              encoding: {
                type: 'string',
                enum: ['utf8', 'latin1'],
                default: 'utf8',
                description: 'latin1 for older Windows exports',
              },
            },
          },
          body: fileBody(kind),
          response: { 200: reportSchema, ...errors(400, 413, 415, 422) },
        },
      },
      async (req) => {
        const source = req.importSource;
        const mediaType = String(req.headers['content-type'] ?? '')
          .split(';')[0]!
          .trim()
          .toLowerCase();
        if (!source)
          throw new ApiError(
            415,
            'unsupported_media_type',
            `Send the file itself as the body, with Content-Type text/csv or application/x-ndjson (got ${mediaType || 'none'}).`,
          );
        const format = req.query.format ?? FORMAT_OF[mediaType] ?? 'csv';
        try {
          const report = await runImport(deps.store, kind as ImportKind, source, {
            format,
            dryRun: req.query.dryRun,
            encoding: req.query.encoding,
            maxBytes: IMPORT_MAX_BYTES,
          });
          req.log.info(
            {
              kind,
              format,
              dryRun: report.dryRun,
              rows: report.rows,
              created: report.created,
              updated: report.updated,
              unchanged: report.unchanged,
              rejected: report.rejected,
              ms: report.durationMs,
            },
            'import done',
          );
          req.auditOutcome = {
            kind,
            dryRun: report.dryRun,
            rows: report.rows,
            created: report.created,
            updated: report.updated,
            rejected: report.rejected,
          };
          return report;
        } catch (err) {
          if (err instanceof ImportFileError)
            throw new ApiError(err.message.includes('larger than') ? 413 : 422, 'unreadable_file', err.message);
          throw err;
        }
      },
    );
  }
};
