/**
 * The request body as the normalizers read it, from the raw bytes and the content type: JSON
 * (any `+json` type, CloudEvents included), form-encoded (PRTG, the Icinga/Nagios curl command),
 * multipart (Uptime Kuma's form option) and text/plain holding JSON (LibreNMS's default).
 */
import { IngestError, malformed } from './errors';

export function mediaTypeOf(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw malformed('body', `is not valid JSON (${(err as Error).message})`);
  }
}

function firstValues(entries: Iterable<[string, unknown]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of entries) if (!(k in out) && typeof v === 'string') out[k] = v;
  return out;
}

/** `text`: the body as UTF-8, when the caller has it already. */
export async function decodeBody(
  raw: Buffer,
  contentType: string | undefined,
  text = raw.toString('utf8'),
): Promise<unknown> {
  const type = mediaTypeOf(contentType);
  if (text.trim() === '') throw malformed('body', 'is empty');
  if (type === 'application/json' || type.endsWith('+json')) return parseJson(text);
  if (type === 'application/x-www-form-urlencoded') return firstValues(new URLSearchParams(text));
  if (type === 'multipart/form-data') {
    try {
      const form = await new Response(new Uint8Array(raw), { headers: { 'content-type': contentType! } }).formData();
      return firstValues(form.entries());
    } catch (err) {
      throw malformed('body', `is not valid multipart/form-data (${(err as Error).message})`);
    }
  }
  if (type === 'text/plain' || type === '') {
    // LibreNMS posts its templated JSON as text/plain unless told otherwise.
    if (/^\s*[[{]/.test(text)) return parseJson(text);
    throw malformed(
      'body',
      `is ${type || 'untyped'} text that is not JSON: post JSON (see docs/monitoring-setup.md for this tool's template)`,
    );
  }
  throw new IngestError(
    'unsupported_media_type',
    `content type ${JSON.stringify(type)} is not one we read: send application/json, application/x-www-form-urlencoded, multipart/form-data, text/plain (JSON) or application/cloudevents+json`,
    'headers.content-type',
  );
}
