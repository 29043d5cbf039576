/**
 * Local stand-ins for the two social APIs the status feed posts to, for the tests (and anyone
 * trying the feature without an account): X's `POST /2/tweets` and Mastodon's
 * `POST /api/v1/statuses`. Each checks its credentials as the real one does (X: the OAuth 1.0a
 * signature of the request; Mastodon: the bearer token), enforces the text limit, and keeps what
 * was posted. X refuses a text it already has (403, duplicate content); Mastodon answers a
 * repeated `Idempotency-Key` with the status made the first time.
 *
 * Faults on demand: `failNext(status, times)` answers the next requests with that status without
 * posting; `loseNextAnswers(times)` posts, then answers 503 as if the answer had been lost.
 */
import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import OAuth from 'oauth-1.0a';
import { LINK_WEIGHT, MASTODON_LIMIT, X_LIMIT, weightOf, type TextLimit } from '../channels/social/text';

export interface StandInPost {
  id: string;
  text: string;
  at: string;
  language?: string;
  idempotencyKey?: string;
}

export interface SocialStandIn {
  url: string;
  /** What was posted, oldest first. */
  posts: StandInPost[];
  /** Every request, answered or not: its status. */
  requests: { status: number }[];
  failNext(status: number, times?: number, headers?: Record<string, string>): void;
  loseNextAnswers(times?: number): void;
  /** Drops the faults not yet used. */
  clearFaults(): void;
  close(): Promise<void>;
}

export interface XStandInOptions {
  apiKey: string;
  apiKeySecret: string;
  accessToken: string;
  accessTokenSecret: string;
}

interface Faults {
  failures: { status: number; headers: Record<string, string> }[];
  lose: number;
}

async function listen(
  app: FastifyInstance,
  posts: StandInPost[],
  requests: { status: number }[],
  faults: Faults,
): Promise<SocialStandIn> {
  app.addHook('onResponse', async (_req, reply) => void requests.push({ status: reply.statusCode }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    posts,
    requests,
    failNext: (status, times = 1, headers = {}) =>
      faults.failures.push(...Array.from({ length: times }, () => ({ status, headers }))),
    loseNextAnswers: (times = 1) => void (faults.lose += times),
    clearFaults: () => {
      faults.failures.length = 0;
      faults.lose = 0;
    },
    close: () => app.close(),
  };
}

/** A fault due now, answered; true when the request was answered by it. */
function injectedFailure(faults: Faults, reply: FastifyReply, body: (status: number) => unknown): boolean {
  const f = faults.failures.shift();
  if (!f) return false;
  void reply.status(f.status).headers(f.headers).send(body(f.status));
  return true;
}

/** The weight of a post as the networks count it: each link 23, the rest by the network's rule. */
function postWeight(text: string, limit: TextLimit): number {
  const links = text.match(/https?:\/\/\S+/g) ?? [];
  return weightOf(text.replace(/https?:\/\/\S+/g, ''), limit) + links.length * LINK_WEIGHT;
}

/** Reads `OAuth k="v", ...` into its fields. */
function oauthFields(header: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const m of header.replace(/^OAuth\s+/i, '').matchAll(/([a-z_]+)="([^"]*)"/g))
    fields[m[1]!] = decodeURIComponent(m[2]!);
  return fields;
}

export async function startXStandIn(opts: XStandInOptions): Promise<SocialStandIn> {
  const posts: StandInPost[] = [];
  const requests: { status: number }[] = [];
  const faults: Faults = { failures: [], lose: 0 };
  const oauth = new OAuth({
    consumer: { key: opts.apiKey, secret: opts.apiKeySecret },
    signature_method: 'HMAC-SHA1',
    hash_function: (base, key) => createHmac('sha1', key).update(base).digest('base64'),
  });
  const app = fastify();
  let next = 1_860_000_000_000_000_000n;
  const problem = (status: number, title: string, detail: string) => ({ title, detail, type: 'about:blank', status });

  app.post<{ Body: { text?: unknown } }>('/2/tweets', async (req, reply) => {
    const f = oauthFields(req.headers.authorization ?? '');
    const url = `http://${req.headers.host}${req.url}`;
    const expected =
      f.oauth_signature_method === 'HMAC-SHA1' && f.oauth_nonce && f.oauth_timestamp
        ? oauth.getSignature({ url, method: 'POST' }, opts.accessTokenSecret, {
            oauth_consumer_key: f.oauth_consumer_key!,
            oauth_nonce: f.oauth_nonce,
            oauth_signature_method: 'HMAC-SHA1',
            oauth_timestamp: Number(f.oauth_timestamp),
            oauth_version: f.oauth_version ?? '1.0',
            oauth_token: f.oauth_token,
          })
        : undefined;
    if (
      f.oauth_consumer_key !== opts.apiKey ||
      f.oauth_token !== opts.accessToken ||
      !expected ||
      expected !== f.oauth_signature
    ) {
      return reply.status(401).send(problem(401, 'Unauthorized', 'Unauthorized'));
    }
    if (
      injectedFailure(faults, reply, (s) =>
        problem(s, s === 429 ? 'Too Many Requests' : 'Service Unavailable', 'injected by the stand-in'),
      )
    )
      return reply;
    const text = req.body?.text;
    if (typeof text !== 'string' || !text)
      return reply.status(400).send(problem(400, 'Invalid Request', 'text is required'));
    if (postWeight(text, X_LIMIT) > X_LIMIT.max)
      return reply.status(400).send(problem(400, 'Invalid Request', 'Your Tweet text is too long.'));
    if (posts.some((p) => p.text === text))
      return reply
        .status(403)
        .send(problem(403, 'Forbidden', 'You are not allowed to create a Tweet with duplicate content.'));
    const id = String(next++);
    posts.push({ id, text, at: new Date().toISOString() });
    if (faults.lose > 0) {
      faults.lose--;
      return reply.status(503).send(problem(503, 'Service Unavailable', 'answer lost (injected)'));
    }
    return reply.status(201).send({ data: { id, text, edit_history_tweet_ids: [id] } });
  });
  return listen(app, posts, requests, faults);
}

export async function startMastodonStandIn(opts: {
  accessToken: string;
  maxCharacters?: number;
}): Promise<SocialStandIn> {
  const posts: StandInPost[] = [];
  const requests: { status: number }[] = [];
  const faults: Faults = { failures: [], lose: 0 };
  const byKey = new Map<string, StandInPost>();
  const app = fastify();
  let next = 113_000_000_000_000_000n;
  const max = opts.maxCharacters ?? MASTODON_LIMIT.max;

  app.post<{ Body: { status?: unknown; visibility?: unknown; language?: unknown } }>(
    '/api/v1/statuses',
    async (req, reply) => {
      const origin = `http://${req.headers.host}`;
      const shown = (p: StandInPost) => ({
        id: p.id,
        url: `${origin}/@avviso/${p.id}`,
        content: `<p>${p.text}</p>`,
        visibility: 'public',
        language: p.language ?? null,
        created_at: p.at,
      });
      if (req.headers.authorization !== `Bearer ${opts.accessToken}`)
        return reply.status(401).send({ error: 'The access token is invalid' });
      if (
        injectedFailure(faults, reply, (s) => ({
          error: s === 429 ? 'Too many requests' : 'Service unavailable (injected)',
        }))
      )
        return reply;
      const key = typeof req.headers['idempotency-key'] === 'string' ? req.headers['idempotency-key'] : undefined;
      const earlier = key ? byKey.get(key) : undefined;
      if (earlier) return reply.status(200).send(shown(earlier));
      const text = req.body?.status;
      if (typeof text !== 'string' || !text)
        return reply.status(422).send({ error: "Validation failed: Text can't be blank" });
      if (postWeight(text, MASTODON_LIMIT) > max)
        return reply.status(422).send({ error: `Validation failed: Text character limit of ${max} exceeded` });
      const post: StandInPost = {
        id: String(next++),
        text,
        at: new Date().toISOString(),
        ...(typeof req.body.language === 'string' ? { language: req.body.language } : {}),
        ...(key ? { idempotencyKey: key } : {}),
      };
      posts.push(post);
      if (key) byKey.set(key, post);
      if (faults.lose > 0) {
        faults.lose--;
        return reply.status(503).send({ error: 'answer lost (injected)' });
      }
      return reply.status(200).send(shown(post));
    },
  );
  return listen(app, posts, requests, faults);
}
