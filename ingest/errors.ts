/**
 * Why a delivery is refused. Each error carries the HTTP status the route answers with and, for a
 * malformed payload, the path of the field that is wrong (`body.alerts[2].status`), so whoever
 * set up the sending tool can fix it from the message alone.
 */

export type IngestErrorCode =
  | 'malformed_payload'
  | 'unsupported_media_type'
  | 'unknown_integration'
  | 'bad_token'
  | 'bad_signature'
  | 'unknown_site';

const STATUS: Record<IngestErrorCode, number> = {
  malformed_payload: 400,
  unsupported_media_type: 415,
  bad_token: 401,
  bad_signature: 403,
  unknown_integration: 404,
  unknown_site: 422,
};

export class IngestError extends Error {
  readonly statusCode: number;
  constructor(
    readonly code: IngestErrorCode,
    message: string,
    readonly field?: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'IngestError';
    this.statusCode = STATUS[code];
  }
}

/** A payload field that is missing or wrong: the message starts with the field's path. */
export function malformed(field: string, problem: string): IngestError {
  return new IngestError('malformed_payload', `${field} ${problem}`, field);
}
