/**
 * The network API against FerretDB: sites, subscribers and contacts made, read, changed and
 * deleted; searches; the outage preview; imports over HTTP; a subscriber's data exported and
 * erased; and all of it in the OpenAPI document.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../api/app';
import { createApiKey } from '../../store/api-keys';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import type { Delivery } from '../../domain/types';

describe('network API', () => {
  let env: IsolatedEnv;
  let app: FastifyInstance;
  const keys: Record<'admin' | 'operator' | 'viewer', string> = { admin: '', operator: '', viewer: '' };

  async function call(
    method: string,
    url: string,
    body?: unknown,
    as: keyof typeof keys = 'operator',
    headers: Record<string, string> = {},
  ) {
    const res = await app.inject({
      method: method as 'GET',
      url,
      headers: {
        authorization: `Bearer ${keys[as]}`,
        ...(body !== undefined && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined, headers: res.headers };
  }

  before(async () => {
    env = await isolatedEnv(__filename);
    app = await buildApp({
      store: env.store,
      temporal: env.temporal,
      taskQueue: env.taskQueue,
      publicUrl: 'http://127.0.0.1:1',
      plivoAuthToken: 'test-token',
      applyReceiptsEveryMs: 0,
    });
    for (const role of ['admin', 'operator', 'viewer'] as const)
      keys[role] = (await createApiKey(env.store, { name: `network ${role}`, role, createdBy: 'test' })).key;
  });
  after(async () => {
    await app?.close();
    await env?.close();
  });

  test('sites: create, read, list, change; loops, unknown uplinks and deleting a site in use are refused', async () => {
    const root = await call('POST', '/v1/sites', {
      id: 'bh-1',
      name: 'Backhaul',
      area: 'Lodi',
      kind: 'tower',
      location: { lat: 45.31, lon: 9.5 },
    });
    assert.equal(root.status, 201, JSON.stringify(root.body));
    assert.equal(root.headers.location, '/v1/sites/bh-1');
    assert.deepEqual(
      { id: root.body.id, uplink: root.body.uplink, kind: root.body.kind },
      { id: 'bh-1', uplink: null, kind: 'tower' },
    );
    assert.equal(root.body.contentHash, undefined, 'no internal bookkeeping');
    assert.equal(
      (await call('POST', '/v1/sites', { id: 'tw-2', name: 'Torre 2', area: 'Lodi Vecchio', uplink: 'bh-1' })).status,
      201,
    );
    assert.equal(
      (
        await call('POST', '/v1/sites', {
          id: 'ap-2a',
          name: 'AP 2a',
          area: 'Lodi Vecchio',
          kind: 'access_point',
          uplink: 'tw-2',
        })
      ).status,
      201,
    );

    const dup = await call('POST', '/v1/sites', { id: 'bh-1', name: 'Again', area: 'Lodi' });
    assert.deepEqual([dup.status, dup.body.error.code], [409, 'site_exists']);
    const orphan = await call('POST', '/v1/sites', { id: 'x', name: 'X', area: 'Lodi', uplink: 'nowhere' });
    assert.deepEqual([orphan.status, orphan.body.error.code], [422, 'unknown_uplink']);
    const loop = await call('PATCH', '/v1/sites/bh-1', { uplink: 'ap-2a' });
    assert.deepEqual([loop.status, loop.body.error.code], [422, 'site_cycle']);
    assert.match(loop.body.error.message, /bh-1 → ap-2a → tw-2 → bh-1/);
    const badBody = await call('POST', '/v1/sites', { id: 'y', name: 'Y' });
    assert.equal(badBody.status, 400);
    assert.match(badBody.body.error.message, /body must have required property 'area'/);

    const renamed = await call('PATCH', '/v1/sites/tw-2', {
      name: 'Torre Lodi Vecchio',
      location: { lat: 45.3, lon: 9.41 },
    });
    assert.equal(renamed.status, 200);
    assert.equal(renamed.body.name, 'Torre Lodi Vecchio');
    assert.equal(renamed.body.uplink, 'bh-1');
    assert.equal((await call('GET', '/v1/sites/tw-2', undefined, 'viewer')).body.location.lat, 45.3);
    const list = await call('GET', '/v1/sites?area=Lodi%20Vecchio&limit=1', undefined, 'viewer');
    assert.deepEqual(
      list.body.items.map((s: { id: string }) => s.id),
      ['ap-2a'],
    );
    assert.equal(list.body.next, 'ap-2a');
    assert.deepEqual(
      (await call('GET', '/v1/sites?uplink=bh-1', undefined, 'viewer')).body.items.map((s: { id: string }) => s.id),
      ['tw-2'],
    );

    const inUse = await call('DELETE', '/v1/sites/tw-2');
    assert.deepEqual([inUse.status, inUse.body.error.code], [409, 'site_in_use']);
    assert.equal((await call('GET', '/v1/sites/nope', undefined, 'viewer')).status, 404);
    assert.equal(
      (await call('POST', '/v1/sites', { id: 'gone', name: 'Gone', area: 'Lodi', uplink: 'bh-1' })).status,
      201,
    );
    assert.equal((await call('DELETE', '/v1/sites/gone')).status, 204);
    assert.equal((await call('GET', '/v1/sites/gone', undefined, 'viewer')).status, 404);
    assert.equal(
      (await call('POST', '/v1/sites', { id: 'z', name: 'Z', area: 'Lodi' }, 'viewer')).status,
      403,
      'viewers read only',
    );
  });

  test('subscribers: numbers normalized, bad ones refused with the reason, search by contract or any spelling of a number, change, delete', async () => {
    const bad = await call('POST', '/v1/subscribers', {
      id: 'C-9',
      name: 'Fisso',
      phones: ['0371 123456'],
      siteId: 'ap-2a',
    });
    assert.deepEqual([bad.status, bad.body.error.code], [422, 'invalid_value']);
    assert.match(bad.body.error.message, /^body\.phones: 03\*+456 is a fixed line number/);
    const noSite = await call('POST', '/v1/subscribers', {
      id: 'C-9',
      name: 'Nessuno',
      phones: ['3471000009'],
      siteId: 'ap-nowhere',
    });
    assert.deepEqual([noSite.status, noSite.body.error.code], [422, 'unknown_site']);

    const created = await call('POST', '/v1/subscribers', {
      id: 'C-1',
      name: 'Maria Rossi',
      phones: ['347 100 0001', '+39 328 123 4567'],
      email: 'maria@example.it',
      siteId: 'ap-2a',
      language: 'en',
      smsAlerts: { active: true, since: '2026-01-01T00:00:00Z' },
      quietHours: '22:00-07:00',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(created.body.phones, ['+393471000001', '+393281234567']);
    assert.equal(created.body.smsAlerts.since, '2026-01-01T00:00:00.000Z');
    assert.equal(
      (await call('POST', '/v1/subscribers', { id: 'C-2', name: 'Luca', phones: ['3471000002'], siteId: 'tw-2' }))
        .status,
      201,
    );
    assert.equal(
      (await call('POST', '/v1/subscribers', { id: 'C-1', name: 'Again', phones: ['3471000003'], siteId: 'tw-2' })).body
        .error.code,
      'subscriber_exists',
    );

    const byPhone = await call(
      'GET',
      `/v1/subscribers?phone=${encodeURIComponent('328 123 4567')}`,
      undefined,
      'viewer',
    );
    assert.deepEqual(
      byPhone.body.items.map((s: { id: string }) => s.id),
      ['C-1'],
    );
    assert.deepEqual(
      (await call('GET', '/v1/subscribers?contract=C-2', undefined, 'viewer')).body.items.map(
        (s: { id: string }) => s.id,
      ),
      ['C-2'],
    );
    assert.deepEqual((await call('GET', '/v1/subscribers?contract=C-404', undefined, 'viewer')).body.items, []);
    assert.deepEqual(
      (await call('GET', '/v1/subscribers?siteId=tw-2', undefined, 'viewer')).body.items.map(
        (s: { id: string }) => s.id,
      ),
      ['C-2'],
    );
    const badPhone = await call('GET', '/v1/subscribers?phone=12', undefined, 'viewer');
    assert.deepEqual([badPhone.status, badPhone.body.error.code], [422, 'invalid_phone']);

    const out = await call('PATCH', '/v1/subscribers/C-1', {
      optedOut: true,
      email: null,
      smsAlerts: { until: '2026-12-31T23:00:00Z' },
    });
    assert.equal(out.status, 200, JSON.stringify(out.body));
    assert.equal(out.body.optedOut, true);
    assert.ok(out.body.optedOutAt);
    assert.equal(out.body.email, undefined);
    assert.deepEqual(out.body.smsAlerts, {
      active: true,
      since: '2026-01-01T00:00:00.000Z',
      until: '2026-12-31T23:00:00.000Z',
    });
    const backIn = await call('PATCH', '/v1/subscribers/C-1', { optedOut: false });
    assert.equal(backIn.body.optedOut, false);
    assert.equal(backIn.body.optedOutAt, undefined);
    const wrongDates = await call('PATCH', '/v1/subscribers/C-1', { smsAlerts: { since: '2027-01-01T00:00:00Z' } });
    assert.equal(wrongDates.status, 422);
    assert.match(wrongDates.body.error.message, /smsAlerts\.until: ends .* before it starts/);
    assert.equal((await call('PATCH', '/v1/subscribers/C-1', { quietHours: '7-8' })).status, 422);

    assert.equal((await call('DELETE', '/v1/subscribers/C-2')).status, 204);
    assert.equal((await call('GET', '/v1/subscribers/C-2', undefined, 'viewer')).status, 404);
    assert.equal((await call('DELETE', '/v1/subscribers/C-2')).status, 404);
  });

  test('contacts: people and teams; a team lists people we know; a member cannot be deleted', async () => {
    const mario = await call('POST', '/v1/contacts', {
      id: 'mario',
      name: 'Mario Bianchi',
      phones: ['347 555 0001'],
      email: 'mario@isp.example',
      onCall: true,
      areas: ['Lodi'],
    });
    assert.equal(mario.status, 201, JSON.stringify(mario.body));
    assert.deepEqual(mario.body.phones, ['+393475550001']);
    const unreachable = await call('POST', '/v1/contacts', { id: 'ghost', name: 'Nessun recapito' });
    assert.equal(unreachable.status, 422);
    const badTeam = await call('POST', '/v1/contacts', {
      id: 'noc',
      name: 'NOC',
      kind: 'team',
      email: 'noc@isp.example',
      members: ['mario', 'luigi'],
    });
    assert.deepEqual([badTeam.status, badTeam.body.error.code], [422, 'unknown_member']);
    const noc = await call('POST', '/v1/contacts', {
      id: 'noc',
      name: 'NOC',
      kind: 'team',
      email: 'noc@isp.example',
      members: ['mario'],
    });
    assert.equal(noc.status, 201);
    assert.deepEqual(
      (await call('GET', '/v1/contacts?onCall=true', undefined, 'viewer')).body.items.map((c: { id: string }) => c.id),
      ['mario'],
    );
    assert.deepEqual(
      (await call('GET', '/v1/contacts?area=Crema', undefined, 'viewer')).body.items.map((c: { id: string }) => c.id),
      ['noc'],
    );
    const off = await call('PATCH', '/v1/contacts/mario', { onCall: false, areas: null });
    assert.deepEqual([off.body.onCall, off.body.areas], [false, undefined]);
    assert.equal((await call('DELETE', '/v1/contacts/mario')).body.error.code, 'contact_in_use');
    assert.equal((await call('PATCH', '/v1/contacts/noc', { members: [] })).status, 200);
    assert.equal((await call('DELETE', '/v1/contacts/mario')).status, 204);
    assert.equal((await call('GET', '/v1/contacts/mario', undefined, 'viewer')).status, 404);
  });

  test('GET /v1/sites/{id}/affected previews the downstream sites and who would be told', async () => {
    await call('POST', '/v1/subscribers', {
      id: 'C-3',
      name: 'Anna',
      phones: ['3471000003'],
      siteId: 'tw-2',
      smsAlerts: { active: true },
    });
    await call('POST', '/v1/subscribers', {
      id: 'C-4',
      name: 'Paolo',
      phones: ['3471000004'],
      siteId: 'bh-1',
      smsAlerts: { active: false },
    });
    const r = await call('GET', '/v1/sites/bh-1/affected?at=2026-06-01T00:00:00Z', undefined, 'viewer');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(
      r.body.sites.map((s: { id: string; depth: number }) => [s.id, s.depth]),
      [
        ['ap-2a', 2],
        ['bh-1', 0],
        ['tw-2', 1],
      ],
    );
    assert.deepEqual(r.body.areas, ['Lodi', 'Lodi Vecchio']);
    assert.equal(r.body.counts.subscribers, 3);
    assert.deepEqual(r.body.counts.byAlertOption, { paid: 2, unpaid: 1 });
    assert.deepEqual(r.body.counts.smsNotice, { subscribers: 2, phones: 3 });
    assert.equal(r.body.at, '2026-06-01T00:00:00.000Z');
    const leaf = await call('GET', '/v1/sites/ap-2a/affected', undefined, 'viewer');
    assert.deepEqual(
      leaf.body.sites.map((s: { id: string }) => s.id),
      ['ap-2a'],
    );
    assert.equal((await call('GET', '/v1/sites/nope/affected', undefined, 'viewer')).status, 404);
  });

  test('imports over HTTP: CSV and NDJSON bodies, dry run, the report; a wrong body is refused with what to send', async () => {
    const sites =
      'site_id;name;area;uplink\nimp-root;Radice;Crema;\nimp-ap;AP;Crema;imp-root\nimp-bad;Loop;Crema;imp-bad\n';
    const dry = await call('POST', '/v1/import/sites?dryRun=true', sites, 'operator', { 'content-type': 'text/csv' });
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.deepEqual(
      { dryRun: dry.body.dryRun, created: dry.body.created, rejected: dry.body.rejected },
      { dryRun: true, created: 2, rejected: 1 },
    );
    assert.equal((await call('GET', '/v1/sites/imp-root', undefined, 'viewer')).status, 404);
    const real = await call('POST', '/v1/import/sites', sites, 'operator', {
      'content-type': 'text/csv; charset=utf-8',
    });
    assert.equal(real.body.created, 2);
    assert.deepEqual(real.body.rejections, [{ line: 4, id: 'imp-bad', reason: 'uplink: a site cannot feed itself' }]);

    const ndjson = [
      { contract_id: 'I-1', name: 'Uno', phones: ['3471000061'], site_id: 'imp-ap', sms_alerts: true },
      { contract_id: 'I-2', name: 'Due', phones: ['1'], site_id: 'imp-ap' },
    ]
      .map((o) => JSON.stringify(o))
      .join('\n');
    const subs = await call('POST', '/v1/import/subscribers', ndjson, 'operator', {
      'content-type': 'application/x-ndjson',
    });
    assert.deepEqual(
      { created: subs.body.created, rejected: subs.body.rejected, format: subs.body.format },
      { created: 1, rejected: 1, format: 'ndjson' },
    );
    assert.equal(subs.body.rejections[0].line, 2);
    const again = await call('POST', '/v1/import/subscribers', ndjson, 'operator', {
      'content-type': 'application/x-ndjson',
    });
    assert.equal(again.body.unchanged, 1);

    const json = await call('POST', '/v1/import/subscribers', { contract_id: 'I-3' });
    assert.deepEqual([json.status, json.body.error.code], [415, 'unsupported_media_type']);
    const missing = await call('POST', '/v1/import/subscribers', 'contract_id,name\nI-4,Quattro\n', 'operator', {
      'content-type': 'text/csv',
    });
    assert.deepEqual([missing.status, missing.body.error.code], [422, 'unreadable_file']);
    assert.match(missing.body.error.message, /Missing columns phones, site_id/);
    assert.equal((await call('POST', '/v1/import/sites', sites, 'viewer', { 'content-type': 'text/csv' })).status, 403);
  });

  test("a subscriber's data: exported whole; erased, with sent messages kept anonymous and pending ones removed; only an admin may erase", async () => {
    await call('POST', '/v1/subscribers', {
      id: 'G-1',
      name: 'Giulia Ricci',
      phones: ['3471000071'],
      email: 'giulia@example.it',
      siteId: 'ap-2a',
      smsAlerts: { active: true },
    });
    const now = new Date();
    const delivery = (kind: Delivery['kind'], state: Delivery['state']): Delivery => ({
      _id: `inc_test|${kind}|G-1|sms:+393471000071`,
      incidentId: 'inc_test',
      kind,
      subscriberId: 'G-1',
      channel: 'sms',
      to: '+393471000071',
      language: 'it',
      state,
      text: 'Avviso guasto',
      attempts: 1,
      history: [{ at: now, state, note: 'accepted by the provider' }],
      createdAt: now,
      updatedAt: now,
      units: 1,
      cost: '0.0065',
      currency: 'EUR',
    });
    await env.store.deliveries.insertMany([delivery('outage', 'delivered'), delivery('restored', 'planned')]);
    await env.store.inbound.insertOne({
      messageUuid: 'in-1',
      from: '+393471000071',
      to: 'Avviso',
      text: 'STOP',
      receivedAt: now,
      action: 'stop',
      subscriberIds: ['G-1'],
    });

    const exported = await call('GET', '/v1/subscribers/G-1/export');
    assert.equal(exported.status, 200, JSON.stringify(exported.body));
    assert.equal(exported.body.subscriber.id, 'G-1');
    assert.equal(exported.body.subscriber.email, 'giulia@example.it');
    assert.equal(exported.body.messages.length, 2);
    assert.deepEqual(
      exported.body.received.map((m: { text: string }) => m.text),
      ['STOP'],
    );
    assert.equal((await call('GET', '/v1/subscribers/G-1/export', undefined, 'viewer')).status, 403);

    assert.equal(
      (await call('POST', '/v1/subscribers/G-1/erase', undefined, 'operator')).status,
      403,
      'erasure is for admins',
    );
    const erased = await call('POST', '/v1/subscribers/G-1/erase', undefined, 'admin');
    assert.equal(erased.status, 200, JSON.stringify(erased.body));
    assert.deepEqual(erased.body, {
      contract: 'G-1',
      subscriberDeleted: true,
      pendingMessagesDeleted: 1,
      messagesAnonymized: 1,
      receivedDeleted: 1,
      billingEntriesKept: 0,
    });
    assert.equal(await env.store.subscribers.findOne({ _id: 'G-1' }), null);
    const left = await env.store.deliveries.find({ incidentId: 'inc_test' }).toArray();
    assert.equal(left.length, 1);
    assert.equal(left[0]!.state, 'delivered');
    assert.equal(left[0]!.units, 1, 'what it cost is kept');
    assert.equal(left[0]!.text, undefined);
    assert.doesNotMatch(JSON.stringify(left[0]), /G-1|3471000071|giulia/);
    const again = await call('POST', '/v1/subscribers/G-1/erase', undefined, 'admin');
    assert.deepEqual([again.status, again.body.messagesAnonymized, again.body.subscriberDeleted], [200, 0, false]);
    assert.equal((await call('GET', '/v1/subscribers/G-1/export')).status, 404);
  });

  test('every network route is in the OpenAPI document, imports with their media types', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<
        string,
        Record<string, { requestBody?: { content: Record<string, unknown> }; parameters?: unknown[] }>
      >;
    };
    for (const [p, methods] of Object.entries({
      '/v1/sites': ['get', 'post'],
      '/v1/sites/{id}': ['get', 'patch', 'delete'],
      '/v1/sites/{id}/affected': ['get'],
      '/v1/subscribers': ['get', 'post'],
      '/v1/subscribers/{id}': ['get', 'patch', 'delete'],
      '/v1/subscribers/{id}/export': ['get'],
      '/v1/subscribers/{id}/erase': ['post'],
      '/v1/contacts': ['get', 'post'],
      '/v1/contacts/{id}': ['get', 'patch', 'delete'],
      '/v1/import/sites': ['post'],
      '/v1/import/subscribers': ['post'],
    })) {
      for (const m of methods) assert.ok(doc.paths[p]?.[m], `${m.toUpperCase()} ${p} is documented`);
    }
    assert.deepEqual(Object.keys(doc.paths['/v1/import/subscribers']!.post!.requestBody!.content).sort(), [
      'application/x-ndjson',
      'text/csv',
    ]);
    assert.ok(doc.paths['/v1/subscribers']!.post!.requestBody!.content['application/json']);
  });
});
