/**
 * The e-mail channel against a real SMTP server (the `smtp-server` package) on a free port, which
 * keeps what it receives and refuses the recipients each test names.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { SMTPServer } from 'smtp-server';
import { ChannelError, type OutboundMessage } from '../../channels/channel';
import {
  isPlainEmailAddress,
  maskEmail,
  messageIdFor,
  SmtpEmailChannel,
  type SmtpEmailSettings,
} from '../../channels/email-smtp';
import { freePort } from '../../dev/process';

interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  user?: string;
}

const inbox: ReceivedMail[] = [];
/** RCPT TO answers by address: 550 refuses for good, 450 for now. */
const refusals = new Map<string, number>();
let server: SMTPServer;
let port: number;

before(async () => {
  port = await freePort();
  server = new SMTPServer({
    // Plain SMTP on loopback: STARTTLS would need a certificate the client trusts.
    disabledCommands: ['STARTTLS'],
    authOptional: true,
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === 'avviso' && auth.password === 'relay-password') callback(null, { user: auth.username });
      else callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onRcptTo(address, _session, callback) {
      const code = refusals.get(address.address);
      if (code) callback(Object.assign(new Error(`mailbox ${address.address} unavailable`), { responseCode: code }));
      else callback();
    },
    onData(stream, session, callback) {
      let raw = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (raw += chunk));
      stream.on('end', () => {
        inbox.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          user: session.user as string | undefined,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  inbox.length = 0;
  refusals.clear();
});

const settings: SmtpEmailSettings = {
  host: '127.0.0.1',
  port: 0,
  secure: false,
  from: 'Avviso <avvisi@isp.example>',
  timeoutMs: 5000,
};

function channel(extra: Partial<SmtpEmailSettings> = {}): SmtpEmailChannel {
  return new SmtpEmailChannel({ ...settings, port, ...extra });
}

function message(to: string, n = 1): OutboundMessage {
  return {
    deliveryId: `inc_1|outage|sub_${n}|${to}`,
    to,
    subject: 'Guasto nella zona di Lodi',
    text: 'Avviso guasto: servizio internet interrotto nella zona di Lodi. Vi avviseremo al ripristino.',
    language: 'it',
  };
}

/** Unfolds headers and decodes quoted-printable well enough to read the body in assertions. */
function header(raw: string, name: string): string | undefined {
  const head = raw.split(/\r\n\r\n/)[0]!.replace(/\r\n[ \t]+/g, ' ');
  return new RegExp(`^${name}: (.*)$`, 'im').exec(head)?.[1];
}
function body(raw: string): string {
  return raw
    .slice(raw.indexOf('\r\n\r\n') + 4)
    .replace(/=\r\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

test('sends a plain-text mail with the subject, the delivery header and a Message-ID made from the delivery', async () => {
  const c = channel();
  try {
    const outcomes = await c.send([message('mario.rossi@example.it')]);
    assert.equal(outcomes.length, 1);
    const o = outcomes[0]!;
    assert.equal(o.outcome, 'accepted');
    const expectedId = messageIdFor('inc_1|outage|sub_1|mario.rossi@example.it', 'isp.example');
    assert.equal(o.outcome === 'accepted' && o.providerMessageId, expectedId);

    assert.equal(inbox.length, 1);
    const mail = inbox[0]!;
    assert.equal(mail.from, 'avvisi@isp.example');
    assert.deepEqual(mail.to, ['mario.rossi@example.it']);
    assert.equal(header(mail.raw, 'Subject'), 'Guasto nella zona di Lodi');
    assert.equal(header(mail.raw, 'X-Avviso-Delivery'), 'inc_1|outage|sub_1|mario.rossi@example.it');
    assert.equal(header(mail.raw, 'Message-ID'), expectedId);
    assert.match(header(mail.raw, 'Content-Type') ?? '', /^text\/plain/);
    assert.match(body(mail.raw), /servizio internet interrotto nella zona di Lodi/);
  } finally {
    await c.close();
  }
});

test('a retry of the same delivery is the same mail to the reader: same Message-ID', async () => {
  const c = channel();
  try {
    await c.send([message('anna@example.it')]);
    await c.send([message('anna@example.it')]);
    assert.equal(inbox.length, 2);
    assert.equal(header(inbox[0]!.raw, 'Message-ID'), header(inbox[1]!.raw, 'Message-ID'));
    assert.doesNotMatch(header(inbox[0]!.raw, 'Message-ID')!, /anna/, 'the Message-ID does not reveal the address');
  } finally {
    await c.close();
  }
});

test('an address refused for good (5xx) or malformed is invalid; the others in the batch still go', async () => {
  refusals.set('nobody@example.it', 550);
  const c = channel();
  try {
    const outcomes = await c.send([
      message('nobody@example.it', 1),
      message('not an address', 2),
      message('luca@example.it', 3),
      message('x@y.it\r\nBcc: z@evil.example', 4),
    ]);
    assert.deepEqual(
      outcomes.map((o) => o.outcome),
      ['invalid', 'invalid', 'accepted', 'invalid'],
    );
    const refused = outcomes[0] as { error: string };
    assert.match(refused.error, /refused n\*\*\*@example\.it \(RCPT TO 550\)/);
    assert.doesNotMatch(refused.error, /nobody/, 'the address is masked');
    assert.deepEqual(
      inbox.map((m) => m.to),
      [['luca@example.it']],
    );
  } finally {
    await c.close();
  }
});

test('a temporary refusal (4xx) is a retryable failure of the batch', async () => {
  refusals.set('busy@example.it', 450);
  const c = channel();
  try {
    await assert.rejects(c.send([message('busy@example.it')]), (err: unknown) => {
      assert.ok(err instanceof ChannelError);
      assert.equal(err.retryable, true);
      assert.equal(err.status, 450);
      return true;
    });
  } finally {
    await c.close();
  }
});

test('logs in with the configured credentials; wrong ones are retried slowly, loudly', async () => {
  const good = channel({ user: 'avviso', pass: 'relay-password' });
  const bad = channel({ user: 'avviso', pass: 'wrong' });
  try {
    await good.send([message('giulia@example.it')]);
    assert.equal(inbox[0]?.user, 'avviso');
    await assert.rejects(bad.send([message('giulia@example.it')]), (err: ChannelError) => {
      assert.equal(err.retryable, true);
      assert.equal(err.retryAfterMs, 60_000);
      assert.match(err.message, /check SMTP_USER and SMTP_PASS/);
      assert.doesNotMatch(err.message, /wrong/);
      return true;
    });
  } finally {
    await good.close();
    await bad.close();
  }
});

test('no relay listening is a retryable failure', async () => {
  const c = channel({ port: await freePort(), timeoutMs: 2000 });
  try {
    await assert.rejects(
      c.send([message('mario@example.it')]),
      (err: ChannelError) => err.retryable && /ECONNREFUSED|ECONNECTION/.test(err.message),
    );
  } finally {
    await c.close();
  }
});

test('addresses are checked strictly and masked for logs', () => {
  assert.equal(isPlainEmailAddress('mario.rossi+avvisi@example.co.uk'), true);
  assert.equal(isPlainEmailAddress('Mario <mario@example.it>'), false);
  assert.equal(isPlainEmailAddress('mario@localhost'), false);
  assert.equal(isPlainEmailAddress('a@b.it\nBcc: c@d.it'), false);
  assert.equal(maskEmail('mario.rossi@example.it'), 'm***@example.it');
  assert.equal(maskEmail('nonsense'), '***');
});
