/**
 * The walking skeleton end to end: an operator opens an incident on a tower through the API,
 * the workflow finds the paying subscribers of that tower and of every site it feeds, Plivo (the
 * simulator, through the real SDK) receives one outage SMS each; resolving sends each of them
 * one restoration SMS, after the outage one; nobody else receives anything.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDemoDataIfEmpty, DEMO_SUBSCRIBERS } from '../../store/demo';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';

describe('walking skeleton: incident to SMS', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack(__filename, {
      deliveryPolicy: { deliveryTimeoutMs: 10_000, maxAttempts: 3, sweepEveryMs: 200 },
    });
    await loadDemoDataIfEmpty(stack.store);
  });
  after(async () => stack?.stop());

  const phonesOf = (ids: string[]) =>
    DEMO_SUBSCRIBERS.filter((s) => ids.includes(s._id))
      .flatMap((s) => s.phones)
      .sort();

  test('an outage on tower-lodi-02 reaches exactly its paying subscribers and those downstream, then the restoration follows', async () => {
    const opened = await call(stack, 'POST', '/v1/incidents', {
      siteIds: ['tower-lodi-02'],
      title: 'Traliccio senza corrente',
    });
    assert.equal(opened.status, 202, JSON.stringify(opened.body));
    const id: string = opened.body.id;
    assert.match(id, /^inc_[a-z0-9]{16}$/);
    assert.equal(opened.headers.get('location'), `/v1/incidents/${id}`);

    const notified = await eventually('the incident to be notified', async () => {
      const r = await call(stack, 'GET', `/v1/incidents/${id}`);
      return r.body.phase === 'notified' ? r.body : undefined;
    });
    // tower-lodi-02 feeds ap-lodi-02-a: C-1005 and C-1007 pay; C-1006 pays but opted out.
    const expected = phonesOf(['C-1005', 'C-1007']);
    assert.deepEqual(notified.affectedSiteIds, ['ap-lodi-02-a', 'tower-lodi-02']);
    assert.deepEqual(notified.areas, ['Lodi Vecchio']);
    assert.equal(notified.deliveries.sms.outage.planned ?? 0, 0);
    assert.match(notified.rulesVersion, /^[0-9a-f]{12}$/, 'the incident pinned its rules');

    let inbox = await stack.inbox();
    assert.deepEqual(Object.keys(inbox).sort(), expected, 'only the affected paying subscribers get an SMS');
    for (const phone of expected) {
      assert.equal(inbox[phone]!.length, 1);
      assert.match(inbox[phone]![0]!.text, /guasto.*Lodi Vecchio/);
      assert.equal(inbox[phone]![0]!.from, 'Avviso');
    }

    const resolved = await call(stack, 'POST', `/v1/incidents/${id}/resolve`, { note: 'Corrente tornata' });
    assert.equal(resolved.status, 202, JSON.stringify(resolved.body));
    assert.equal(resolved.body.resolveRequested, true);

    const done = await eventually('the incident to be resolved', async () => {
      const r = await call(stack, 'GET', `/v1/incidents/${id}`);
      return r.body.phase === 'billed' ? r.body : undefined;
    });
    assert.deepEqual(
      done.timeline.map((t: { phase: string }) => t.phase),
      ['detected', 'notifying', 'notified', 'resolving', 'resolved', 'billed'],
    );
    assert.ok(done.resolvedAt);

    inbox = await stack.inbox();
    assert.deepEqual(Object.keys(inbox).sort(), expected);
    for (const phone of expected) {
      const texts = inbox[phone]!.map((m) => m.text);
      assert.equal(texts.length, 2, `${phone} gets exactly two messages`);
      assert.match(texts[0]!, /guasto/);
      assert.match(texts[1]!, /ripristinato.*Lodi Vecchio/);
    }

    // The simulator's signed receipts reach the API and move each record to delivered.
    const counts = await eventually('delivery receipts', async () => {
      const r = await call(stack, 'GET', `/v1/incidents/${id}`);
      const d = r.body.deliveries;
      return d.sms?.outage?.delivered === 2 && d.sms?.restored?.delivered === 2 ? d : undefined;
    });
    assert.deepEqual(counts.sms, { outage: { delivered: 2 }, restored: { delivered: 2 } });
    // Each receipt came to the URL of its send request (signed with it), and names that request.
    const records = await stack.store.deliveries.find({ incidentId: id, channel: 'sms' }).toArray();
    const batches = await stack.store.receiptBatches.find({}).toArray();
    for (const d of records) {
      const named = batches.flatMap((b) => b.receipts).filter((r) => r.messageUuid === d.providerMessageId);
      assert.ok(named.length > 0, `receipts of ${d._id}`);
      for (const r of named)
        assert.match(r.request ?? '', new RegExp(`^${id}\\|${d.kind}/sms\\|`), `${d._id}'s request`);
    }
    // The free public channel: the status feed got the outage and the restoration, in both languages.
    assert.deepEqual(counts.status, { outage: { delivered: 2 }, restored: { delivered: 2 } });

    // Resolving again is harmless and sends nothing more.
    const again = await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    assert.equal(again.status, 202);
    assert.equal(again.body.phase, 'billed');
  });

  test('an English-speaking subscriber upstream gets English; the same key opens the same incident once', async () => {
    const body = { siteIds: ['tower-lodi-01'], key: 'alertmanager:5e1c0a3b9f27d4c2:1' };
    const first = await call(stack, 'POST', '/v1/incidents', body);
    assert.equal(first.status, 202);
    const second = await call(stack, 'POST', '/v1/incidents', body);
    assert.equal(second.status, 200, 'a repeated trigger finds the existing incident');
    assert.equal(second.body.id, first.body.id);
    const byHeader = await call(
      stack,
      'POST',
      '/v1/incidents',
      { siteIds: ['tower-lodi-01'] },
      { 'idempotency-key': body.key },
    );
    assert.equal(byHeader.body.id, first.body.id);

    await eventually('notified', async () =>
      (await call(stack, 'GET', `/v1/incidents/${first.body.id}`)).body.phase === 'notified' ? true : undefined,
    );
    const inbox = await stack.inbox();
    const english = DEMO_SUBSCRIBERS.find((s) => s._id === 'C-1004')!.phones[0]!;
    const outage = inbox[english]!.filter((m) => /^Outage: internet is down in Lodi/.test(m.text));
    assert.equal(outage.length, 1, 'one outage SMS, in English, despite three triggers');
    // tower-lodi-01 feeds everything in Lodi: C-1001, C-1002 (ap-lodi-01-a), C-1004, and Lodi
    // Vecchio's payers; each text names the reader's own area.
    const told = async () =>
      (await stack.store.deliveries.find({ incidentId: first.body.id, channel: 'sms', kind: 'outage' }).toArray())
        .map((d) => d.subscriberId)
        .sort();
    assert.deepEqual(await told(), ['C-1001', 'C-1002', 'C-1004', 'C-1005', 'C-1007']);
    for (const phone of phonesOf(['C-1001', 'C-1002']))
      assert.ok(
        inbox[phone]!.some((m) => /guasto: internet interrotto a Lodi dalle/.test(m.text)),
        `${phone} told of the Lodi outage`,
      );
    for (const phone of phonesOf(['C-1005', 'C-1007']))
      assert.equal(inbox[phone]!.filter((m) => /guasto/.test(m.text)).length, 2, `${phone}: one notice per incident`);
    for (const phone of phonesOf(['C-1003', 'C-1006', 'C-2001', 'C-2002', 'C-2003'])) {
      assert.ok(!inbox[phone]?.some((m) => /guasto/.test(m.text)), `${phone} must not be told`);
    }
    await call(stack, 'POST', `/v1/incidents/${first.body.id}/resolve`, {});
  });

  test('bad requests get a 4xx that names what is wrong', async () => {
    const unknown = await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-nowhere'] });
    assert.equal(unknown.status, 422);
    assert.equal(unknown.body.error.code, 'unknown_site');
    assert.match(unknown.body.error.message, /tower-nowhere/);

    const noSites = await call(stack, 'POST', '/v1/incidents', { siteIds: [] });
    assert.equal(noSites.status, 400);
    assert.equal(noSites.body.error.code, 'invalid_request');
    assert.match(noSites.body.error.message, /body\.siteIds/);

    const badKind = await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-lodi-01'], kind: 'earthquake' });
    assert.equal(badKind.status, 400);
    assert.match(badKind.body.error.message, /body\.kind/);

    const missing = await call(stack, 'GET', '/v1/incidents/inc_0000000000000000');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'incident_not_found');
  });

  test('receipts without a valid Plivo signature are refused', async () => {
    const res = await fetch(`${stack.apiUrl}/v1/plivo/status`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-plivo-signature-v2': 'bm9wZQ==',
        'x-plivo-signature-v2-nonce': '123',
      },
      body: 'MessageUUID=abc&Status=delivered',
    });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'bad_signature');
  });

  test('the OpenAPI document describes the incident routes and the docs page is served', async () => {
    const doc = await call(stack, 'GET', '/openapi.json');
    assert.equal(doc.status, 200);
    assert.ok(doc.body.paths['/v1/incidents'].post.requestBody);
    assert.ok(doc.body.paths['/v1/incidents/{id}/resolve'].post);
    const docs = await fetch(`${stack.apiUrl}/docs/`);
    assert.equal(docs.status, 200);
    const ready = await call(stack, 'GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.body.mongodb, 'ok');
    assert.equal(ready.body.temporal, 'ok');
  });
});
