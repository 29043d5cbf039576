/**
 * What went wrong in a call of the plivo SDK, and whether trying again can help.
 *
 * The SDK does not reject uniformly (see shared/reference/platform.md): 400/401/404/405/406/500
 * reject with an Error carrying `.status` or a JSON body as message; 429, 502 and 503 reject
 * with a plain Error whose message ends in "status code NNN"; a network error (refused, reset,
 * timeout) rejects with a *string*, the stack of the underlying error. Nor does it expose
 * response headers, so `installRetryAfterCapture` copies Retry-After into the error message.
 */
import { ChannelError } from './channel';

const NETWORK =
  /ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|EAI_AGAIN|ENOTFOUND|socket hang up|timeout of \d+ms exceeded|Network Error|aborted/i;

export function classifyPlivoError(err: unknown): ChannelError {
  const message = typeof err === 'string' ? err.split('\n')[0]! : err instanceof Error ? err.message : String(err);
  const statusProp =
    typeof err === 'object' && err !== null && 'status' in err
      ? Number((err as { status: unknown }).status)
      : undefined;
  const statusInText = /status code (\d{3})/.exec(message)?.[1];
  const status = statusProp || (statusInText ? Number(statusInText) : undefined) || statusFromSdkClass(err);
  const retryAfter = /\[retry-after=(\d+(?:\.\d+)?)\]/.exec(message)?.[1];
  const retryAfterMs = retryAfter ? Math.round(Number(retryAfter) * 1000) : undefined;

  if (status === 429) return new ChannelError(`Plivo rate limit (429): ${message}`, true, retryAfterMs ?? 5000, 429);
  if (status !== undefined && status >= 500)
    return new ChannelError(`Plivo server error (${status}): ${message}`, true, retryAfterMs, status);
  // Wrong credentials: retrying cannot help until someone fixes the configuration, but giving up
  // would break the promise; retry slowly and say loudly what is wrong.
  if (status === 401 || status === 403)
    return new ChannelError(
      `Plivo refused the credentials (${status}): check PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN`,
      true,
      60_000,
      status,
    );
  if (status !== undefined && status >= 400)
    return new ChannelError(`Plivo rejected the request (${status}): ${message}`, false, undefined, status);
  if (NETWORK.test(message))
    return new ChannelError(`network error talking to Plivo: ${message}`, true, undefined, undefined);
  return new ChannelError(`unexpected error from the Plivo SDK: ${message}`, true);
}

function statusFromSdkClass(err: unknown): number | undefined {
  const name = err instanceof Error ? err.constructor.name : '';
  return (
    {
      InvalidRequestError: 400,
      AuthenticationError: 401,
      ResourceNotFoundError: 404,
      NotAcceptableError: 406,
      ServerError: 500,
    } as Record<string, number>
  )[name];
}

/**
 * How many numbers a refused send named as invalid (`invalid_number` of Plivo's 400 answer when no
 * destination was valid), as `installRetryAfterCapture` noted it; undefined when it did not say.
 */
export function invalidNumbersIn(err: unknown): number | undefined {
  const message = typeof err === 'string' ? err : err instanceof Error ? err.message : String(err);
  const n = /\[invalid-numbers=(\d+)\]/.exec(message)?.[1];
  return n === undefined ? undefined : Number(n);
}

/** True when the request may have reached Plivo and been accepted although we saw no answer. */
export function mayHaveBeenAccepted(err: ChannelError): boolean {
  return err.status === undefined;
}

let installed = false;
/**
 * The SDK turns an HTTP error into `new Error(axiosError)`, keeping only the message. This adds
 * an interceptor to the axios instance the SDK uses that appends `[retry-after=N]` to that
 * message, so that a 429's Retry-After reaches `classifyPlivoError`, and `[invalid-numbers=N]`
 * when the answer listed invalid numbers (their count only: messages are logged, numbers must not
 * be), so that a send whose every number is invalid is told apart from a malformed request.
 */
export function installRetryAfterCapture(): void {
  if (installed) return;
  installed = true;
  const axiosPath = require.resolve('axios', { paths: [require.resolve('plivo')] });
  const axios = require(axiosPath) as { default?: AxiosLike } & AxiosLike;
  const instance = axios.default ?? axios;
  instance.interceptors.response.use(
    undefined,
    (error: { message?: string; response?: { headers?: Record<string, unknown>; data?: unknown } }) => {
      const retryAfter = error?.response?.headers?.['retry-after'];
      if (retryAfter !== undefined && error.message && !error.message.includes('[retry-after=')) {
        const seconds = Number(retryAfter);
        const value = Number.isFinite(seconds)
          ? seconds
          : Math.max(0, (Date.parse(String(retryAfter)) - Date.now()) / 1000);
        error.message += ` [retry-after=${value}]`;
      }
      // A 400 becomes the SDK's PlivoRestError, whose message is the body's `error`: mark it there too.
      const data = error?.response?.data as { invalid_number?: unknown; error?: unknown } | undefined;
      const invalid = typeof data === 'object' && data !== null ? data.invalid_number : undefined;
      if (Array.isArray(invalid)) {
        const mark = ` [invalid-numbers=${invalid.length}]`;
        if (error.message && !error.message.includes('[invalid-numbers=')) error.message += mark;
        if (typeof data!.error === 'string' && !data!.error.includes('[invalid-numbers=')) data!.error += mark;
      }
      return Promise.reject(error);
    },
  );
}

interface AxiosLike {
  interceptors: { response: { use(onOk: undefined, onError: (e: never) => Promise<never>): number } };
}
