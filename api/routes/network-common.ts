/**
 * What the network routes (sites, subscribers, contacts, imports) share: turning the store's
 * refusals into the API's error shape, the id parameter, and how records are shown (`id`, not
 * `_id`; no internal bookkeeping).
 */
import { ApiError } from '../errors';
import { RecordError } from '../../store/errors';
import { FieldError } from '../../store/normalize';

const STATUS = { not_found: 404, conflict: 409, invalid: 422 } as const;

/** A FieldError or RecordError from the store as an ApiError naming the request field. */
export function asApiError(err: unknown): unknown {
  if (err instanceof RecordError) return new ApiError(STATUS[err.kind], err.code, err.message, err.details);
  if (err instanceof FieldError) {
    const field = /^(body|querystring|params)\./.test(err.field) ? err.field : `body.${err.field}`;
    return new ApiError(422, 'invalid_value', `${field}: ${err.problem}`, { field, problem: err.problem });
  }
  return err;
}

/** Runs a store call, translating its refusals. */
export async function storeCall<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw asApiError(err);
  }
}

export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$';

export const idParam = (what: string) =>
  ({
    type: 'object',
    required: ['id'],
    properties: { id: { type: 'string', pattern: ID_PATTERN, description: `The ${what}'s id` } },
  }) as const;

export const time = { type: 'string', format: 'date-time' } as const;

export const errors = (...codes: (400 | 404 | 409 | 413 | 415 | 422)[]) =>
  Object.fromEntries(codes.map((c) => [c, { $ref: 'Error#' }]));

/** A stored record as the API shows it: `id` for `_id`, without the content digest. */
export function present<T extends { _id: string; contentHash?: string }>(
  doc: T,
): Omit<T, '_id' | 'contentHash'> & { id: string } {
  const { _id, contentHash: _hash, ...rest } = doc;
  return { id: _id, ...rest };
}

/** Query strings give `?x=` as an empty string: treat it as absent. */
export function given(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v;
}
