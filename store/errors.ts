/**
 * Why a store operation on a site, subscriber or contact was refused, in words an operator can
 * act on. The API turns `kind` into a status (404, 409, 422) and keeps `code` and `details`.
 */
export type RecordProblem = 'not_found' | 'conflict' | 'invalid';

export class RecordError extends Error {
  constructor(
    readonly kind: RecordProblem,
    /** Stable and machine-readable, e.g. `site_cycle`. */
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'RecordError';
  }
}
