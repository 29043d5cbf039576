/**
 * The webhook channel: one JSON POST per message to the URL in `to`, for chat tools and the
 * customers' own systems. Slack, Mattermost and Teams incoming webhooks read `text` and ignore
 * the rest; the other fields let a program act on the notice and deduplicate it by `deliveryId`.
 * With a secret configured, each body is signed: `X-Avviso-Signature: sha256=<hex HMAC of the raw body>`.
 */
import { createHmac } from 'node:crypto';
import { ChannelError, type Channel, type OutboundMessage, type SendOutcome } from './channel';
import { describeError, isRetryableStatus, parseRetryAfter, sendEach, type RecipientResult } from './per-recipient';

export interface WebhookSettings {
  /** Signs every body with HMAC-SHA256 when set; receivers verify it with the same secret. */
  secret?: string;
  /** How long one POST may take, answer included (default 10 s). */
  timeoutMs?: number;
  /** POSTs in flight at once (default 8). */
  concurrency?: number;
}

export const SIGNATURE_HEADER = 'x-avviso-signature';
export const DELIVERY_HEADER = 'x-avviso-delivery';

/** The JSON each webhook receives. */
export interface WebhookPayload {
  text: string;
  deliveryId: string;
  incidentId?: string;
  kind?: string;
  language: string;
  meta: Record<string, unknown>;
}

export function webhookPayload(m: OutboundMessage): WebhookPayload {
  const meta = m.meta ?? {};
  return {
    text: m.text,
    deliveryId: m.deliveryId,
    incidentId: typeof meta.incidentId === 'string' ? meta.incidentId : undefined,
    kind: typeof meta.kind === 'string' ? meta.kind : undefined,
    language: m.language,
    meta,
  };
}

/** `sha256=<hex>`: the form GitHub uses, which most receivers already know how to check. */
export function webhookSignature(rawBody: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`;
}

/** Webhook URLs carry their secret in the path or query (Slack's do): only the origin may be shown. */
export function maskUrl(url: string): string {
  try {
    return `${new URL(url).origin}/…`;
  } catch {
    return '(not a URL)';
  }
}

export class WebhookChannel implements Channel {
  readonly name = 'webhook' as const;
  readonly maxBatch = 50;

  constructor(private readonly settings: WebhookSettings = {}) {}

  send(batch: OutboundMessage[]): Promise<SendOutcome[]> {
    return sendEach(batch, { concurrency: this.settings.concurrency ?? 8, stopOnFailure: false }, (m) => this.post(m));
  }

  private async post(message: OutboundMessage): Promise<RecipientResult> {
    if (!isHttpUrl(message.to)) return { kind: 'invalid', error: 'not an http(s) URL' };
    const where = maskUrl(message.to);
    const body = JSON.stringify(webhookPayload(message));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'Avviso-Webhook/1',
      [DELIVERY_HEADER]: message.deliveryId,
    };
    if (this.settings.secret) headers[SIGNATURE_HEADER] = webhookSignature(body, this.settings.secret);

    let res: Response;
    try {
      res = await fetch(message.to, {
        method: 'POST',
        headers,
        body,
        // A redirect would turn the POST into a GET somewhere else: the URL must be fixed instead.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.settings.timeoutMs ?? 10_000),
      });
      await res.arrayBuffer(); // drain, so the connection goes back to the pool
    } catch (err) {
      // Each URL is a different receiver: one being down says nothing about the others, but we
      // cannot tell a dead host from a passing outage, so it is retried, not dropped.
      return { kind: 'failed', error: new ChannelError(`webhook ${where} unreachable: ${describeError(err)}`, true) };
    }
    if (res.status >= 200 && res.status < 300) return { kind: 'accepted' };
    if (isRetryableStatus(res.status)) {
      return {
        kind: 'failed',
        error: new ChannelError(
          `webhook ${where} answered ${res.status}`,
          true,
          parseRetryAfter(res.headers.get('retry-after')),
          res.status,
        ),
      };
    }
    if (res.status === 404 || res.status === 410)
      return { kind: 'invalid', error: `webhook ${where} is gone (${res.status})` };
    if (res.status >= 300 && res.status < 400)
      return { kind: 'invalid', error: `webhook ${where} redirects (${res.status}); update its URL` };
    // 400, 401, 403...: this receiver refuses us, and will again until someone changes its settings.
    return { kind: 'invalid', error: `webhook ${where} refused the message (${res.status})` };
  }
}

function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}
