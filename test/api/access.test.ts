/**
 * Access control on the real API (test stack): every role against every group of routes, keys
 * made, listed and revoked over HTTP, rate limits per key, body limits, request ids, and the
 * audit log of every change.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDemoDataIfEmpty } from '../../store/demo';
import { call, startTestStack, type TestStack } from '../support/stack';
import { eventually } from '../support/env';
import { plivoSignatureV2 } from '../../api/plivo/signature';
import { accessFor } from '../../api/plugins/auth';

type Who = 'none' | 'ingest' | 'viewer' | 'operator' | 'admin' | 'revoked' | 'wrong-secret' | 'not-a-key';

/** One route per group; `ok` is the status a caller allowed in gets (the request itself is harmless or wrong on purpose). */
interface Probe {
  group: 'public' | 'viewer' | 'operator' | 'admin';
  method: string;
  path: string;
  body?: unknown;
}

const PROBES: Probe[] = [
  { group: 'public', method: 'GET', path: '/healthz' },
  { group: 'public', method: 'GET', path: '/readyz' },
  { group: 'public', method: 'GET', path: '/status' },
  { group: 'public', method: 'GET', path: '/status.json' },
  { group: 'public', method: 'GET', path: '/status/feed.atom' },
  { group: 'public', method: 'GET', path: '/openapi.json' },
  { group: 'public', method: 'GET', path: '/docs/' },
  { group: 'viewer', method: 'GET', path: '/v1/sites' },
  { group: 'viewer', method: 'GET', path: '/v1/incidents/inc_0000000000000000' },
  { group: 'viewer', method: 'GET', path: '/v1/incidents' },
  { group: 'viewer', method: 'GET', path: '/v1/incidents/inc_0000000000000000/deliveries' },
  { group: 'viewer', method: 'GET', path: '/v1/maintenances' },
  { group: 'viewer', method: 'GET', path: '/v1/subscribers' },
  { group: 'viewer', method: 'GET', path: '/v1/rules' },
  { group: 'viewer', method: 'GET', path: '/metrics' },
  { group: 'operator', method: 'POST', path: '/v1/incidents', body: { siteIds: ['tower-nowhere'] } },
  { group: 'operator', method: 'POST', path: '/v1/incidents/inc_0000000000000000/resolve', body: {} },
  { group: 'operator', method: 'POST', path: '/v1/incidents/inc_0000000000000000/updates', body: { text: 'probe' } },
  { group: 'operator', method: 'POST', path: '/v1/incidents/inc_0000000000000000/cancel', body: {} },
  {
    group: 'operator',
    method: 'POST',
    path: '/v1/maintenances',
    body: {
      siteIds: ['tower-nowhere'],
      startsAt: '2030-01-01T02:00:00Z',
      endsAt: '2030-01-01T04:00:00Z',
      title: 'probe',
    },
  },
  {
    group: 'operator',
    method: 'POST',
    path: '/v1/rules/simulate',
    body: { incident: { kind: 'outage', severity: 'major', siteIds: ['tower-lodi-01'] }, population: { count: 10 } },
  },
  { group: 'admin', method: 'GET', path: '/v1/keys' },
  { group: 'admin', method: 'POST', path: '/v1/keys', body: { name: 'probe', role: 'nobody' } },
  { group: 'admin', method: 'DELETE', path: '/v1/keys/nosuchkey' },
  { group: 'admin', method: 'POST', path: '/v1/rules/reload' },
  { group: 'admin', method: 'GET', path: '/v1/audit' },
];

const RANK: Record<string, number> = { none: -1, ingest: 0, viewer: 1, operator: 2, admin: 3 };
const GROUP_RANK: Record<Probe['group'], number> = { public: -1, viewer: 1, operator: 2, admin: 3 };

describe('access control', () => {
  let stack: TestStack;
  const keys: Partial<Record<Who, string | null>> = {};

  before(async () => {
    // Many wrong keys on purpose here: the cap on failed attempts per address is tested in auth-plugin.test.ts.
    stack = await startTestStack(__filename, { access: { failedAttemptsPerMinute: 10_000 } });
    await loadDemoDataIfEmpty(stack.store);
    keys.none = null;
    keys.admin = stack.adminKey;
    keys.operator = await stack.createKey('operator');
    keys.viewer = await stack.createKey('viewer');
    keys.ingest = await stack.createKey('ingest', { integration: 'alertmanager/noc' });
    const revoked = await stack.createKey('admin', { name: 'to revoke' });
    const id = revoked.split('_')[1]!;
    assert.equal((await call(stack, 'DELETE', `/v1/keys/${id}`)).status, 200);
    keys.revoked = revoked;
    keys['wrong-secret'] = `${stack.adminKey.slice(0, -4)}AAAA`;
    keys['not-a-key'] = 'dev-token-alertmanager';
  });
  after(async () => stack?.stop());

  test('every role against every group of routes: public for all, then viewer < operator < admin; ingest keys get nothing else', async () => {
    const problems: string[] = [];
    for (const who of Object.keys(keys) as Who[]) {
      for (const p of PROBES) {
        const res = await call(stack, p.method, p.path, p.body, {}, { key: keys[who] ?? null }).catch(async () => {
          // Not JSON (HTML, Atom, Prometheus text): only the status matters here.
          const r = await fetch(stack.apiUrl + p.path, {
            headers: keys[who] ? { authorization: `Bearer ${keys[who]}` } : {},
          });
          await r.arrayBuffer();
          return { status: r.status, body: undefined };
        });
        let expected: 'allowed' | 401 | 403;
        if (p.group === 'public') expected = 'allowed';
        else if (who === 'none' || who === 'revoked' || who === 'wrong-secret' || who === 'not-a-key') expected = 401;
        else expected = RANK[who]! >= GROUP_RANK[p.group] ? 'allowed' : 403;
        const got = res.status === 401 || res.status === 403 ? res.status : 'allowed';
        if (got !== expected)
          problems.push(
            `${who} ${p.method} ${p.path}: expected ${expected}, got ${res.status} ${JSON.stringify(res.body)}`,
          );
        if (typeof expected === 'number' && res.body) {
          assert.equal(typeof res.body.error?.code, 'string', `${who} ${p.path}: the shared error shape`);
          assert.equal(typeof res.body.error?.message, 'string');
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  test('the answers say what is missing: which role a route needs, that a key was revoked', async () => {
    const none = await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-lodi-01'] }, {}, { key: null });
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'api_key_required');
    assert.match(none.body.error.message, /Authorization: Bearer avk_/);

    const viewer = await call(
      stack,
      'POST',
      '/v1/incidents',
      { siteIds: ['tower-lodi-01'] },
      {},
      { key: keys.viewer! },
    );
    assert.equal(viewer.status, 403);
    assert.equal(viewer.body.error.code, 'forbidden');
    assert.match(
      viewer.body.error.message,
      /needs a key with role operator or admin; key [a-z0-9]+ \(test viewer\) has role viewer/,
    );

    const operator = await call(stack, 'GET', '/v1/keys', undefined, {}, { key: keys.operator! });
    assert.equal(operator.status, 403);
    assert.match(operator.body.error.message, /needs a key with role admin/);

    const revoked = await call(stack, 'GET', '/v1/sites', undefined, {}, { key: keys.revoked! });
    assert.equal(revoked.body.error.code, 'api_key_revoked');
    assert.match(revoked.body.error.message, /was revoked on \d{4}-/);

    // X-Api-Key works as well as Authorization.
    const header = await call(stack, 'GET', '/v1/sites', undefined, { 'x-api-key': keys.viewer! }, { key: null });
    assert.equal(header.status, 200);
    // An unknown URL is still a 404, key or not.
    assert.equal((await call(stack, 'GET', '/v1/nothing-here', undefined, {}, { key: null })).status, 404);
  });

  test('Plivo callbacks need no key but their signature; a key does not replace it', async () => {
    const path = '/v1/plivo/status';
    const body = 'MessageUUID=nope&Status=delivered';
    const unsigned = await fetch(stack.apiUrl + path, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${stack.adminKey}` },
      body,
    });
    assert.equal(unsigned.status, 403);
    assert.equal(((await unsigned.json()) as { error: { code: string } }).error.code, 'bad_signature');
    const nonce = '12345678';
    const signed = await fetch(stack.apiUrl + path, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-plivo-signature-v2-nonce': nonce,
        'x-plivo-signature-v2': plivoSignatureV2(stack.apiUrl + path, nonce, 'test-simulator-token'),
      },
      body,
    });
    assert.equal(signed.status, 200);
  });

  test('a webhook takes the integration token or an ingest key bound to that integration, nothing else', async () => {
    const post = (auth: Record<string, string>, integration = 'alertmanager/noc') =>
      fetch(`${stack.apiUrl}/v1/ingest/${integration}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body: JSON.stringify({
          version: '4',
          status: 'firing',
          receiver: 'avviso',
          alerts: [
            {
              status: 'firing',
              labels: { alertname: 'Probe', device: 'tower-nowhere', severity: 'warning' },
              annotations: {},
              startsAt: '2026-05-04T13:02:11Z',
              endsAt: '0001-01-01T00:00:00Z',
              fingerprint: 'aaaabbbbccccdddd',
            },
          ],
        }),
      }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as { error?: { code: string; message: string } },
      }));

    assert.ok(
      [200, 202].includes((await post({ authorization: 'Bearer dev-token-alertmanager' })).status),
      'the integration token',
    );
    assert.ok(
      [200, 202].includes((await post({ authorization: `Bearer ${keys.ingest}` })).status),
      'an ingest key for alertmanager/noc',
    );
    assert.ok([200, 202].includes((await post({ 'x-api-key': keys.ingest! })).status), 'the same key in X-Api-Key');

    const otherIntegration = await post({ authorization: `Bearer ${keys.ingest}` }, 'grafana/noc');
    assert.equal(otherIntegration.status, 403);
    assert.match(otherIntegration.body.error!.message, /bound to alertmanager\/noc/);
    const admin = await post({ authorization: `Bearer ${stack.adminKey}` });
    assert.equal(admin.status, 403, 'an admin key is not a webhook credential');
    assert.equal((await post({ authorization: `Bearer ${keys.revoked}` })).status, 401);
    const nothing = await post({});
    assert.equal(nothing.status, 401);
    assert.equal(nothing.body.error!.code, 'bad_token');
  });

  test('keys over HTTP: the secret is shown once, lists never hold it, a revoked key stops at once', async () => {
    const made = await call(stack, 'POST', '/v1/keys', {
      name: 'grafana-noc',
      role: 'ingest',
      integration: 'grafana/noc',
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.match(made.body.key, /^avk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    assert.equal(made.body.integration, 'grafana/noc');
    const secret = made.body.key.split('_').slice(2).join('_');

    const list = await call(stack, 'GET', '/v1/keys');
    assert.ok(list.body.items.some((k: { id: string }) => k.id === made.body.id));
    assert.ok(!JSON.stringify(list.body).includes(secret), 'no secret in the list');
    assert.ok(!JSON.stringify(list.body).includes('hash'), 'no hash in the list');
    const stored = await stack.store.apiKeys.findOne({ _id: made.body.id });
    assert.ok(stored && !JSON.stringify(stored).includes(secret), 'only a hash is stored');

    const noIntegration = await call(stack, 'POST', '/v1/keys', { name: 'x', role: 'ingest' });
    assert.equal(noIntegration.status, 422);
    assert.equal(noIntegration.body.error.code, 'invalid_integration');

    const temp = await call(stack, 'POST', '/v1/keys', { name: 'temp', role: 'viewer' });
    assert.equal((await call(stack, 'GET', '/v1/sites', undefined, {}, { key: temp.body.key })).status, 200);
    await eventually("the key's last use", async () =>
      (await call(stack, 'GET', '/v1/keys')).body.items.find((k: { id: string }) => k.id === temp.body.id)?.lastUsedAt
        ? true
        : undefined,
    );
    const revoked = await call(stack, 'DELETE', `/v1/keys/${temp.body.id}`);
    assert.equal(revoked.status, 200);
    assert.ok(revoked.body.revokedAt);
    assert.equal((await call(stack, 'GET', '/v1/sites', undefined, {}, { key: temp.body.key })).status, 401);
    assert.equal((await call(stack, 'DELETE', `/v1/keys/${temp.body.id}`)).status, 200, 'revoking twice is harmless');
    assert.equal((await call(stack, 'DELETE', '/v1/keys/nosuchkey')).status, 404);
    const withRevoked = await call(stack, 'GET', '/v1/keys?revoked=true');
    assert.ok(
      withRevoked.body.items.some((k: { id: string; revokedAt?: string }) => k.id === temp.body.id && k.revokedAt),
    );
  });

  test('the audit log keeps who, what, when and the answer of every change, without secrets or phone numbers', async () => {
    const operatorId = keys.operator!.split('_')[1]!;
    const res = await call(
      stack,
      'POST',
      '/v1/incidents',
      { siteIds: ['tower-nowhere'], title: 'Richiamare +39 347 1000001' },
      { 'x-request-id': 'audit-probe-1' },
      { key: keys.operator! },
    );
    assert.equal(res.status, 422);
    await call(
      stack,
      'POST',
      '/v1/keys',
      { name: 'sneaky', role: 'admin' },
      { 'x-request-id': 'audit-probe-2' },
      { key: keys.viewer! },
    );

    const entry = await eventually(
      'the audit entry',
      async () => (await stack.store.auditLog.findOne({ requestId: 'audit-probe-1' })) ?? undefined,
    );
    assert.equal(entry.actor.via, 'api-key');
    assert.equal(entry.actor.keyId, operatorId);
    assert.equal(entry.actor.keyName, 'test operator');
    assert.equal(entry.actor.role, 'operator');
    assert.equal(entry.action.method, 'POST');
    assert.equal(entry.action.route, '/v1/incidents');
    // As stored: the body with the schema's defaults (correlate, dryRun) filled in.
    assert.deepEqual(entry.action.body, {
      siteIds: ['tower-nowhere'],
      title: '[hidden]',
      kind: 'outage',
      dryRun: false,
      severity: 'major',
      source: 'api',
      correlate: true,
    });
    assert.equal(entry.result.status, 422);
    assert.equal(entry.result.error, 'unknown_site');
    assert.ok(entry.at instanceof Date && Date.now() - entry.at.getTime() < 60_000);

    const refused = await eventually(
      'the refused attempt',
      async () => (await stack.store.auditLog.findOne({ requestId: 'audit-probe-2' })) ?? undefined,
    );
    assert.equal(refused.actor.role, 'viewer');
    assert.equal(refused.result.status, 403);
    assert.equal(refused.action.body, undefined, "a refused request's body is never even read");
    assert.equal(refused.result.error, 'forbidden');

    // Made keys are named in the log by id; a webhook by its integration.
    const created = await eventually(
      'a key creation',
      async () =>
        (await stack.store.auditLog.findOne({ 'action.route': '/v1/keys', 'result.status': 201 })) ?? undefined,
    );
    assert.match(String(created.action.outcome?.keyId), /^[a-z0-9]{12}$/);
    // (Several webhooks were logged; which one the store returns first is not defined.)
    const webhooks = await eventually('the alertmanager webhook', async () => {
      const all = await stack.store.auditLog.find({ 'actor.via': 'integration-token' }).toArray();
      return all.some((e) => e.actor.integration === 'alertmanager/noc') ? all : undefined;
    });
    for (const w of webhooks)
      assert.match(String(w.actor.integration), /^[a-z0-9-]+\/[a-z0-9-]+$/, 'each webhook named by its integration');

    // Reads are not logged; nothing in the log is a secret or a phone number.
    assert.equal(await stack.store.auditLog.countDocuments({ 'action.method': 'GET' }), 0);
    const all = JSON.stringify(await stack.store.auditLog.find().toArray());
    for (const k of Object.values(keys))
      if (k && k.startsWith('avk_'))
        assert.ok(!all.includes(k.split('_').slice(2).join('_')), 'no key secret in the audit log');
    assert.doesNotMatch(all, /\+39 ?347|dev-token-alertmanager/);

    const viaApi = await call(stack, 'GET', `/v1/audit?keyId=${operatorId}`);
    assert.equal(viaApi.status, 200);
    assert.ok(
      viaApi.body.items.length >= 1 &&
        viaApi.body.items.every((e: { actor: { keyId: string } }) => e.actor.keyId === operatorId),
    );
  });

  test('rate limit per key: the next request of a key over its limit gets 429, other keys go on', async () => {
    const limited = await stack.createKey('viewer', { name: 'limited', rateLimitPerMinute: 3 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await call(stack, 'GET', '/v1/sites', undefined, {}, { key: limited })).status);
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    const over = await call(stack, 'GET', '/v1/sites', undefined, {}, { key: limited });
    assert.equal(over.body.error.code, 'rate_limited');
    assert.match(over.body.error.message, /may make 3 requests a minute/);
    assert.ok(Number(over.headers.get('retry-after')) > 0);
    assert.equal(
      (await call(stack, 'GET', '/v1/sites', undefined, {}, { key: keys.viewer! })).status,
      200,
      'another key is not limited',
    );
    assert.equal((await fetch(`${stack.apiUrl}/status.json`)).status, 200, 'public pages are not limited by keys');
  });

  test('body limits: smaller on key and incident routes than the global one', async () => {
    const big = (n: number) => JSON.stringify({ name: 'x'.repeat(n), role: 'viewer' });
    const keyRoute = await fetch(`${stack.apiUrl}/v1/keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.adminKey}` },
      body: big(20 * 1024),
    });
    assert.equal(keyRoute.status, 413);
    const incidents = await fetch(`${stack.apiUrl}/v1/incidents`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.adminKey}` },
      body: JSON.stringify({ siteIds: ['a'], title: 'x'.repeat(300 * 1024) }),
    });
    assert.equal(incidents.status, 413);
    // Without a key the body is never read: 401 first.
    const anonymous = await fetch(`${stack.apiUrl}/v1/keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: big(20 * 1024),
    });
    assert.equal(anonymous.status, 401);
  });

  test('request ids: a sane X-Request-Id is kept and echoed, otherwise one is made', async () => {
    const given = await fetch(`${stack.apiUrl}/healthz`, { headers: { 'x-request-id': 'trace-42.abc' } });
    assert.equal(given.headers.get('x-request-id'), 'trace-42.abc');
    const made = await fetch(`${stack.apiUrl}/healthz`, { headers: { 'x-request-id': 'bad id with spaces' } });
    assert.match(made.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const refused = await fetch(`${stack.apiUrl}/v1/sites`);
    assert.equal(refused.status, 401);
    assert.ok(refused.headers.get('x-request-id'), 'errors carry it too');
  });

  test('the policy table: unlisted writes need admin, unlisted reads under /v1 a viewer', () => {
    assert.equal(accessFor('POST', '/v1/something-new'), 'admin');
    assert.equal(accessFor('DELETE', '/v1/something-new/:id'), 'admin');
    assert.equal(accessFor('GET', '/v1/something-new'), 'viewer');
    assert.equal(accessFor('GET', '/internal/thing'), 'admin');
    assert.equal(accessFor('POST', '/v1/maintenances/:id/cancel'), 'operator');
    assert.equal(accessFor('PUT', '/v1/subscribers/:id'), 'operator');
    assert.equal(accessFor('GET', '/v1/subscribers/:id'), 'viewer');
    assert.equal(accessFor('GET', '/v1/subscribers/:id/export'), 'operator');
    assert.equal(accessFor('POST', '/v1/import/subscribers'), 'operator');
    assert.equal(accessFor('POST', '/v1/plivo/inbound'), 'signed');
    assert.equal(accessFor('POST', '/v1/voice/answer/:deliveryId'), 'signed');
    assert.equal(accessFor('GET', '/status/feed.rss'), 'public');
    assert.equal(accessFor('POST', '/v1/incidents', { access: 'admin' }), 'admin', 'a route may override');
  });
});
