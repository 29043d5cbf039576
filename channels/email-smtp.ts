/**
 * The e-mail channel: one plain-text mail per message, through an SMTP relay (nodemailer, pooled
 * connections). Every mail carries its delivery id in `X-Avviso-Delivery`, and a Message-ID made
 * from it, so that a retried send is recognisably the same mail to the relay and the reader's client.
 */
import { createHash } from 'node:crypto';
import nodemailer, { type Transporter } from 'nodemailer';
import { ChannelError, type Channel, type OutboundMessage, type SendOutcome } from './channel';
import { sendEach, type RecipientResult } from './per-recipient';

export interface SmtpEmailSettings {
  host: string;
  port: number;
  /** True for TLS from the first byte (port 465); false for plain SMTP upgraded with STARTTLS when offered. */
  secure: boolean;
  /** With `secure` false: refuse to send unless STARTTLS succeeds. */
  requireTls?: boolean;
  /** Credentials, when the relay wants them. */
  user?: string;
  pass?: string;
  /** The sender, `avvisi@isp.example` or `Avviso <avvisi@isp.example>`. Its domain also names the Message-IDs. */
  from: string;
  /** Connections to the relay, and so mails in flight (default 3). */
  concurrency?: number;
  /** Connection, greeting and socket timeouts (default 20 s). */
  timeoutMs?: number;
}

/** Keeps the first character of the local part and the domain: enough to tell addresses apart in a log. */
export function maskEmail(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 1) return '***';
  return `${address[0]}***${address.slice(at)}`;
}

/**
 * A bare address, nothing else: no display name, no spaces or line breaks (which could inject
 * headers), one @, a dotted domain. Stricter than RFC 5322 on purpose.
 */
export function isPlainEmailAddress(value: string): boolean {
  return (
    value.length <= 254 &&
    /^[^\s@<>()[\],;:"\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/.test(
      value,
    )
  );
}

/** Same delivery, same Message-ID. Hashed: delivery ids may contain the address itself. */
export function messageIdFor(deliveryId: string, domain: string): string {
  return `<avviso.${createHash('sha256').update(deliveryId).digest('hex').slice(0, 32)}@${domain}>`;
}

function domainOf(from: string): string {
  const address = /<([^>]+)>/.exec(from)?.[1] ?? from;
  return address.slice(address.lastIndexOf('@') + 1).trim() || 'avviso.invalid';
}

/** How long to wait after the relay refused our login: someone has to fix it first. */
const CREDENTIALS_RETRY_MS = 60_000;

/** What nodemailer puts on the errors it rejects with. */
interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
  command?: string;
}

export class SmtpEmailChannel implements Channel {
  readonly name = 'email' as const;
  readonly maxBatch = 50;
  private readonly transport: Transporter;
  private readonly messageIdDomain: string;

  constructor(private readonly settings: SmtpEmailSettings) {
    const timeout = settings.timeoutMs ?? 20_000;
    const concurrency = settings.concurrency ?? 3;
    this.transport = nodemailer.createTransport({
      pool: true,
      maxConnections: concurrency,
      host: settings.host,
      port: settings.port,
      secure: settings.secure,
      requireTLS: settings.requireTls ?? false,
      auth: settings.user ? { user: settings.user, pass: settings.pass ?? '' } : undefined,
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout,
    });
    this.messageIdDomain = domainOf(settings.from);
  }

  send(batch: OutboundMessage[]): Promise<SendOutcome[]> {
    // One relay for every mail: when it is in trouble, stop giving it more.
    return sendEach(batch, { concurrency: this.settings.concurrency ?? 3, stopOnFailure: true }, (m) => this.mail(m));
  }

  /** Closes the pooled connections; call it when the process stops. */
  async close(): Promise<void> {
    this.transport.close();
  }

  private async mail(message: OutboundMessage): Promise<RecipientResult> {
    if (!isPlainEmailAddress(message.to))
      return { kind: 'invalid', error: `not an e-mail address: ${maskEmail(message.to)}` };
    try {
      const info = await this.transport.sendMail({
        from: this.settings.from,
        to: message.to,
        subject: message.subject ?? firstLine(message.text),
        text: message.text,
        messageId: messageIdFor(message.deliveryId, this.messageIdDomain),
        headers: { 'X-Avviso-Delivery': message.deliveryId },
      });
      return { kind: 'accepted', providerMessageId: info.messageId };
    } catch (err) {
      return classify(err as SmtpError, maskEmail(message.to));
    }
  }
}

function classify(err: SmtpError, who: string): RecipientResult {
  const code = err.responseCode;
  // With an SMTP code, only the command and code: the server's text may quote the address.
  // Without one it is a connection error, whose message names the host and the reason.
  const smtp = code ? `${err.command ?? 'SMTP'} ${code}` : `${err.code ?? 'error'}: ${err.message}`;
  // A permanent refusal of this recipient, or of the mail once addressed to it: another channel must reach them.
  if (code && code >= 500 && (err.command === 'RCPT TO' || err.command === 'DATA')) {
    return { kind: 'invalid', error: `the mail server refused ${who} (${smtp})` };
  }
  // A refused login: as for Plivo's credentials, retry slowly and loudly until someone fixes them.
  if (err.code === 'EAUTH') {
    return {
      kind: 'failed',
      error: new ChannelError(
        `the SMTP relay refused our login (${smtp}); check SMTP_USER and SMTP_PASS`,
        true,
        CREDENTIALS_RETRY_MS,
        code,
      ),
    };
  }
  // A refused sender (MAIL FROM 5xx): nothing gets through until the settings change.
  if (code && code >= 500) {
    return {
      kind: 'failed',
      error: new ChannelError(`the SMTP relay refused us (${smtp}); check SMTP_FROM`, false, undefined, code),
    };
  }
  // 4xx (greylisting, full queue, rate limit) and connection trouble: later can work.
  return { kind: 'failed', error: new ChannelError(`SMTP relay: ${smtp}`, true, undefined, code) };
}

function firstLine(text: string): string {
  const line = text.split('\n', 1)[0]!.trim();
  return line.length > 78 ? `${line.slice(0, 77)}…` : line;
}
