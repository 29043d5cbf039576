/**
 * The operator console against the whole stack (API, worker, FerretDB, Plivo simulator), as a
 * browser drives it over HTTP: signing in with a key, what each role sees and may do, forms
 * refused without their CSRF token, every action in the audit log, and an incident opened from
 * the network page, watched until its messages are delivered, found by phone, and resolved.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDemoDataIfEmpty } from '../../store/demo';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';
import { Browser } from './browser-session';

describe('the operator console', () => {
  let stack: TestStack;
  let operatorKey: string;
  let viewerKey: string;

  before(async () => {
    stack = await startTestStack(__filename);
    await loadDemoDataIfEmpty(stack.store);
    // A site whose name would be markup if it were not escaped.
    await stack.store.sites.insertOne({
      _id: 'tower-evil',
      name: '<script>alert(1)</script>',
      area: 'Lodi "&" <b>',
      uplink: null,
    });
    operatorKey = await stack.createKey('operator', { name: 'noc-night' });
    viewerKey = await stack.createKey('viewer', { name: 'support-desk' });
  });
  after(async () => stack?.stop());

  test('signing in: a page needs a session; a wrong key is refused; the cookie is signed, HttpOnly and holds no key', async () => {
    const b = new Browser(stack.apiUrl);
    const first = await b.get('/console/now');
    assert.equal(first.status, 303);
    assert.equal(first.location, '/console/login?next=%2Fconsole%2Fnow');
    const login = await b.get('/console/login');
    assert.equal(login.status, 200);
    assert.match(login.text, /<input type="password" name="key"/);

    const wrong = await b.post('/console/login', { key: `${operatorKey}x` });
    assert.equal(wrong.status, 401);
    assert.match(wrong.text, /unknown key or wrong secret/);
    const ingest = await stack.createKey('ingest', { integration: 'alertmanager/noc' });
    assert.match((await b.post('/console/login', { key: ingest })).text, /role ingest cannot use the console/);

    const ok = await b.post('/console/login', { key: operatorKey, next: '/console/network' });
    assert.equal(ok.status, 303);
    assert.equal(ok.location, '/console/network');
    const setCookie = ok.headers.getSetCookie().find((c) => c.startsWith('avviso_session='))!;
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /Path=\/console/);
    assert.match(setCookie, /SameSite=Lax/);
    assert.ok(!setCookie.includes(operatorKey.split('_').slice(2).join('_')), 'the secret is not in the cookie');

    const now = await b.get('/console/now');
    assert.equal(now.status, 200);
    assert.match(now.text, /noc-night/);
    assert.match(now.headers.get('content-security-policy')!, /script-src 'self'/);

    // A tampered cookie is no session.
    const forged = new Browser(stack.apiUrl);
    const session = b.cookies.get('avviso_session')!;
    forged.cookies.set(
      'avviso_session',
      session.replace(/^[A-Za-z0-9]/, (c) => (c === 'a' ? 'b' : 'a')),
    );
    assert.equal((await forged.get('/console/now')).status, 303);

    // Signing out ends it.
    await b.get('/console/now');
    assert.equal((await b.post('/console/logout')).status, 303);
    assert.equal((await b.get('/console/now')).status, 303);
  });

  test('every page renders, in Italian or English, with htmx served from npm and data escaped', async () => {
    const b = new Browser(stack.apiUrl, { 'accept-language': 'en-GB,en;q=0.9' });
    await b.signIn(stack.adminKey);
    const pages: [string, RegExp][] = [
      ['/console/now', /hx-get="\/console\/now\/panel" hx-trigger="every 5s"[\s\S]*Open incidents \(\d+\)/],
      [
        '/console/network',
        /<li id="site-tower-lodi-01" data-site="tower-lodi-01" data-state="normal">[\s\S]*<ul class="tree"><li id="site-ap-lodi-01-a"/,
      ],
      ['/console/maintenances', /Schedule maintenance/],
      ['/console/subscribers?q=C-2001', /data-subscriber="C-2001"[\s\S]*SMS option: <b data-option>yes/],
      ['/console/rules', /<td data-version>[^<]+<\/td>/],
      ['/console/billing?month=2026-10', /This month has not been billed yet/],
      ['/console/keys', /<tr data-key="[^"]+"><td>[^<]+<\/td><td>noc-night<\/td><td>operator/],
    ];
    for (const [path, expected] of pages) {
      const p = await b.get(path);
      assert.equal(p.status, 200, `${path}: ${p.text.slice(0, 300)}`);
      assert.match(p.text, /<script src="\/console\/assets\/htmx.min.js" defer><\/script>/, path);
      assert.match(p.text, expected, path);
    }
    await b.get('/console/subscribers');
    const byPhone = await b.post('/console/subscribers', { q: '+39 347 1000101' });
    assert.match(byPhone.text, /data-subscriber="C-2001"[\s\S]*\+393471000101/);
    assert.equal(
      await stack.store.auditLog.countDocuments({ 'action.route': '/console/subscribers' }),
      0,
      'a search is not an action',
    );
    const network = (await b.get('/console/network')).text;
    assert.match(
      network,
      /<li id="site-tower-lodi-01"[\s\S]*?data-paying="1"[\s\S]*?data-paying-below="6"/,
      'paying on the tower, and on it and below',
    );
    assert.ok(!network.includes('<script>alert(1)</script>'), 'a site name is text, not markup');
    assert.match(network, /&lt;script&gt;alert\(1\)&lt;\/script&gt; <small>\(Lodi &quot;&amp;&quot; &lt;b&gt;/);

    const htmx = await b.get('/console/assets/htmx.min.js');
    assert.equal(htmx.status, 200);
    assert.match(htmx.headers.get('content-type')!, /javascript/);
    assert.match(htmx.text, /htmx/);

    const italian = new Browser(stack.apiUrl);
    await italian.signIn(stack.adminKey);
    assert.match((await italian.get('/console/now')).text, /Incidenti aperti/);
    assert.equal((await italian.get('/console/lang?to=en')).status, 303);
    assert.match((await italian.get('/console/now')).text, /Open incidents/);

    const simulated = await b.post('/console/rules/simulate', {
      siteId: 'tower-crema-01',
      kind: 'outage',
      severity: 'major',
    });
    assert.equal(simulated.status, 200, simulated.text.slice(0, 500));
    assert.match(simulated.text, /<h2 id="simulation">Simulate an incident on a site: 2 \/ 3<\/h2>/);
    await b.get('/console/rules');
    const explained = await b.post('/console/rules/explain', {
      siteId: 'tower-crema-01',
      kind: 'outage',
      severity: 'major',
      contract: 'C-2002',
    });
    assert.equal(explained.status, 200, explained.text.slice(0, 500));
    assert.match(
      explained.text,
      /<h2>C-2002 · tower-crema-01<\/h2><pre id="explanation">[\s\S]*subscriber\.paidSms = false[\s\S]*this subscriber gets:\n {2}nothing/,
    );
    await b.get('/console/rules');
    const checked = await b.post('/console/rules/check', { yaml: 'version: 1\nrules: [' });
    assert.match(checked.text, /<h2 data-ok="false">Errors: 1<\/h2><pre>avviso\.yaml:2:\d+: error: YAML: /);
  });

  test('an incident opened from the network page, watched until delivered, searched, resolved; each step audited', async () => {
    const b = new Browser(stack.apiUrl);
    await b.signIn(operatorKey);
    const network = await b.get('/console/network');
    const formId = /name="siteId" value="tower-crema-01"><input type="hidden" name="formId" value="([^"]+)"/.exec(
      network.text,
    )?.[1];
    assert.ok(formId, 'an operator gets the open-incident form on each site');
    const opened = await b.post('/console/network/open', {
      siteId: 'tower-crema-01',
      title: 'Fibra tagliata',
      severity: 'critical',
      formId,
    });
    assert.equal(opened.status, 303, opened.text.slice(0, 500));
    const id = /^\/console\/incidents\/(inc_[a-z0-9]{16})\?done=opened$/.exec(opened.location!)?.[1];
    assert.ok(id, opened.location!);
    const again = await b.post('/console/network/open', {
      siteId: 'tower-crema-01',
      title: 'Fibra tagliata',
      severity: 'critical',
      formId,
    });
    assert.equal(again.location, opened.location, 'the same form sent twice opens one incident');

    const page = await b.get(`/console/incidents/${id}?done=opened`);
    assert.equal(page.status, 200);
    assert.match(page.text, /Fibra tagliata/);
    assert.match(page.text, /id="resolve-form"/);

    const delivered = await eventually('both outage SMS delivered, as the Now panel shows', async () => {
      const panel = (await b.get('/console/now/panel')).text;
      // This incident's row (up to the next row or the maintenance heading), then its SMS line.
      const row = panel
        .split('<tr data-incident="')
        .find((r) => r.startsWith(`${id}"`))
        ?.split('<h2>')[0];
      const sms = row && /<tr data-channel="sms">[\s\S]*?<\/tr>/.exec(row)?.[0];
      return sms && sms.includes('<span data-state="delivered">2</span>') ? row : undefined;
    });
    assert.match(delivered, /tower-crema-01/);
    assert.match(delivered, /Crema/);

    await b.get(`/console/incidents/${id}`);
    // Posted, so that the number stays out of the URL and the request log.
    const byPhone = await b.post(`/console/incidents/${id}/deliveries`, { q: '+39 347 1000103' });
    assert.match(
      byPhone.text,
      /<tr data-delivery-state="delivered"><td><a href="\/console\/subscribers\?q=C-2003">C-2003<\/a><\/td><td>\+393471000103<\/td><td>sms<\/td><td>outage<\/td>/,
    );
    assert.doesNotMatch(byPhone.text, /C-2001/);
    const byContract = await b.get(`/console/incidents/${id}/deliveries?q=C-2001`);
    assert.match(byContract.text, /\+393471000101/);

    await b.get(`/console/incidents/${id}`);
    const updated = await b.post(`/console/incidents/${id}/update`, { text: 'Tecnici sul posto', estimatedEnd: '' });
    assert.equal(updated.status, 303, updated.text.slice(0, 500));
    await b.get(`/console/incidents/${id}`);
    const resolved = await b.post(`/console/incidents/${id}/resolve`, { note: 'giunta rifatta' });
    assert.equal(resolved.status, 303, resolved.text.slice(0, 500));
    assert.equal(resolved.location, `/console/incidents/${id}?done=resolve`);
    await eventually('resolved', async () =>
      ['resolved', 'billed'].includes((await call(stack, 'GET', `/v1/incidents/${id}`)).body.phase) ? true : undefined,
    );
    assert.match((await b.get(`/console/incidents/${id}`)).text, /<b class="phase">(resolved|billed)<\/b>/);
    assert.doesNotMatch((await b.get('/console/now/panel')).text, new RegExp(id), 'a resolved incident leaves Now');

    const audit = await stack.store.auditLog
      .find({ 'actor.keyName': 'noc-night', 'action.route': { $regex: '^/console/' } })
      .sort({ at: 1 })
      .toArray();
    const steps = audit.map((e) => `${e.action.route} ${e.result.status}`);
    assert.deepEqual(
      steps.filter((s) => !/^\/console\/log(in|out) /.test(s)),
      [
        '/console/network/open 303',
        '/console/network/open 303',
        '/console/incidents/:id/:action 303',
        '/console/incidents/:id/:action 303',
      ],
    );
    const resolveEntry = audit.at(-1)!;
    assert.deepEqual(resolveEntry.action.params, { id, action: 'resolve' });
    assert.equal(resolveEntry.actor.role, 'operator');
    assert.equal((resolveEntry.action.body as Record<string, unknown>)._csrf, undefined, 'no token in the log');
  });

  test("a viewer sees everything and no action; a viewer's post is refused, audited, and changes nothing", async () => {
    const opened = await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-lodi-02'], title: 'Traliccio giù' });
    const id = opened.body.id as string;
    const b = new Browser(stack.apiUrl);
    await b.signIn(viewerKey);
    const page = await b.get(`/console/incidents/${id}`);
    assert.equal(page.status, 200);
    assert.match(page.text, /Traliccio giù/);
    assert.doesNotMatch(
      page.text,
      /action="\/console\/incidents\/inc_[a-z0-9]{16}\/(update|escalate|resolve|cancel)"/,
      'no action forms',
    );
    assert.match(page.text, /action="\/console\/incidents\/inc_[a-z0-9]{16}\/deliveries"/, 'but the search');
    assert.doesNotMatch((await b.get('/console/network')).text, /network\/open/);
    assert.doesNotMatch((await b.get('/console/maintenances')).text, /schedule-form/);
    assert.equal((await b.get('/console/keys')).status, 403);

    const refused = await b.post(`/console/incidents/${id}/resolve`, {});
    assert.equal(refused.status, 403);
    assert.match(refused.text, /needs a key with role operator or above; key \w+ \(support-desk\) has role viewer/);
    const phase = (await call(stack, 'GET', `/v1/incidents/${id}`)).body.phase;
    assert.ok(!['resolving', 'resolved', 'billed'].includes(phase), `still open (${phase})`);
    await eventually(
      'the refusal audited',
      async () =>
        (await stack.store.auditLog.findOne({
          'actor.keyName': 'support-desk',
          'result.status': 403,
          'result.error': 'forbidden',
        })) ?? undefined,
    );
  });

  test("a form without its CSRF token, or with another browser's, is refused and changes nothing", async () => {
    const opened = await call(stack, 'POST', '/v1/incidents', { siteIds: ['ap-lodi-01-a'], title: 'AP nord' });
    const id = opened.body.id as string;
    const victim = new Browser(stack.apiUrl);
    await victim.signIn(operatorKey);
    await victim.get(`/console/incidents/${id}`);

    const none = await victim.post(`/console/incidents/${id}/resolve`, { _csrf: null });
    assert.equal(none.status, 403);
    assert.match(none.text, /data-code="csrf_refused"/);

    const attacker = new Browser(stack.apiUrl);
    await attacker.get('/console/login');
    const forged = await victim.post(`/console/incidents/${id}/resolve`, { _csrf: attacker.csrf! });
    assert.equal(forged.status, 403, 'a token made for another browser');
    const garbage = await victim.post(`/console/incidents/${id}/cancel`, { _csrf: 'x'.repeat(40) });
    assert.equal(garbage.status, 403);

    const phase = (await call(stack, 'GET', `/v1/incidents/${id}`)).body.phase;
    assert.ok(!['resolving', 'resolved', 'cancelled', 'billed'].includes(phase), `still open (${phase})`);
    await eventually('the refusals audited', async () =>
      (await stack.store.auditLog.countDocuments({ 'action.params.id': id, 'result.error': 'csrf_refused' })) === 3
        ? true
        : undefined,
    );
  });

  test('maintenance scheduled, previewed, rescheduled and called off from the console, in Italian time', async () => {
    const b = new Browser(stack.apiUrl);
    await b.signIn(operatorKey);
    const list = await b.get('/console/maintenances');
    const formId =
      /id="schedule-form"><input type="hidden" name="_csrf" value="[^"]+"><input type="hidden" name="formId" value="([^"]+)"/.exec(
        list.text,
      )?.[1];
    assert.ok(formId, 'an operator gets the schedule form');
    const day = new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 10);
    const made = await b.post('/console/maintenances', {
      formId,
      siteIds: 'tower-lodi-02, ',
      title: 'Sostituzione <antenna>',
      description: '',
      startsAt: `${day}T02:00`,
      endsAt: `${day}T04:00`,
      severity: 'minor',
    });
    assert.equal(made.status, 303, made.text.slice(0, 500));
    const id = /^\/console\/maintenances\/(mnt_[a-z0-9]{16})\?done=scheduled$/.exec(made.location!)?.[1];
    assert.ok(id, made.location!);
    const stored = (await call(stack, 'GET', `/v1/maintenances/${id}`)).body;
    // 02:00 in Rome in winter is 01:00 UTC.
    assert.equal(stored.startsAt, `${day}T01:00:00.000Z`);
    assert.equal(stored.endsAt, `${day}T03:00:00.000Z`);

    const page = await b.get(`/console/maintenances/${id}`);
    assert.match(page.text, /Sostituzione &lt;antenna&gt;/);
    assert.match(
      page.text,
      /<p id="preview">Sarà avvisato per SMS chi ha l&#39;opzione in vigore all&#39;inizio: 2 abbonati \(2 numeri\) su 3 serviti da 2 siti\.<\/p>/,
    );
    assert.match(page.text, new RegExp(`name="startsAt" value="${day}T02:00"`));

    const moved = await b.post(`/console/maintenances/${id}/reschedule`, {
      startsAt: `${day}T03:00`,
      endsAt: `${day}T05:00`,
      reason: 'gru in ritardo',
    });
    assert.equal(moved.status, 303, moved.text.slice(0, 500));
    await eventually('rescheduled', async () =>
      (await call(stack, 'GET', `/v1/maintenances/${id}`)).body.startsAt === `${day}T02:00:00.000Z` ? true : undefined,
    );
    await b.get(`/console/maintenances/${id}`);
    const badWindow = await b.post(`/console/maintenances/${id}/reschedule`, { endsAt: 'soon' });
    assert.equal(badWindow.status, 422);
    assert.match(badWindow.text, /End: give a date and time/);
    await b.get(`/console/maintenances/${id}`);
    assert.equal((await b.post(`/console/maintenances/${id}/cancel`, { reason: 'annullata' })).status, 303);
    await eventually('called off', async () =>
      ['cancelled', 'billed'].includes((await call(stack, 'GET', `/v1/maintenances/${id}`)).body.phase)
        ? true
        : undefined,
    );
    const audited = await stack.store.auditLog.countDocuments({
      'action.route': { $regex: '^/console/maintenances' },
      'actor.keyName': 'noc-night',
    });
    assert.equal(audited, 4, 'schedule, reschedule, the refused reschedule, cancel');
  });

  test('a revoked key ends its sessions at once', async () => {
    const key = await stack.createKey('operator', { name: 'leaver' });
    const b = new Browser(stack.apiUrl);
    assert.equal((await b.signIn(key)).status, 303);
    assert.equal((await b.get('/console/now')).status, 200);
    const admin = new Browser(stack.apiUrl);
    await admin.signIn(stack.adminKey);
    await admin.get('/console/keys');
    const id = key.split('_')[1]!;
    assert.equal((await admin.post(`/console/keys/${id}/revoke`)).status, 303);
    assert.equal((await b.get('/console/now')).status, 303, 'back to the sign-in page');
  });
  // Last: it blocks sign-in from this address for the rest of the minute.
  test('sign-in stops looking keys up after 30 wrong ones a minute from one address', async () => {
    const b = new Browser(stack.apiUrl);
    await b.get('/console/login');
    let last = 0;
    for (let i = 0; i < 31; i++)
      last = (await b.post('/console/login', { key: `avk_nosuchkey_${'x'.repeat(20)}${i}` })).status;
    assert.equal(last, 429);
  });
});
