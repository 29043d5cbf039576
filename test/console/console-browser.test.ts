/**
 * The console in headless Chromium (Debian's `chromium`, driven by playwright-core) against the
 * whole stack: sign in, open an incident on a tower from the network page, watch the Now page
 * update itself (htmx polling) until the SMS are delivered in the simulator, escalate to the
 * contact on call and acknowledge it, resolve it; a viewer
 * sees no action buttons. Screenshots of each page go to .data/screenshots/console/ (git-ignored).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { loadDemoDataIfEmpty } from '../../store/demo';
import { PROJECT_ROOT } from '../../dev/services';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';

function findChromium(): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  for (const c of candidates) if (c && existsSync(c)) return c;
  try {
    return (
      execFileSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' }).trim() ||
      undefined
    );
  } catch {
    return undefined;
  }
}

const CHROMIUM = findChromium();
const SKIP = CHROMIUM
  ? false
  : 'chromium is not installed (tools/bootstrap.sh installs it with apt-get; set CHROMIUM_PATH to use another build)';
const SHOTS = path.join(PROJECT_ROOT, '.data', 'screenshots', 'console');

describe('the console in a browser', { skip: SKIP }, () => {
  let stack: TestStack;
  let browser: Browser;

  before(async () => {
    stack = await startTestStack(__filename);
    await loadDemoDataIfEmpty(stack.store);
    mkdirSync(SHOTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  async function signedIn(key: string, locale = 'it-IT'): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, locale });
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${stack.apiUrl}/console/now`);
    assert.match(page.url(), /\/console\/login\?next=/);
    await page.fill('input[name=key]', key);
    await Promise.all([page.waitForURL(/\/console\/now$/), page.click('button[type=submit]')]);
    (page as Page & { errors?: string[] }).errors = errors;
    return page;
  }

  test('an operator opens an incident on a tower from the network page, watches it delivered, resolves it', async () => {
    const operator = await stack.createKey('operator', { name: 'turno-notte' });
    const page = await signedIn(operator);
    await page.click('nav a[href="/console/network"]');
    await page.screenshot({ path: path.join(SHOTS, 'network.png'), fullPage: true });
    const site = page.locator('#site-tower-crema-01');
    await site.locator(':scope > details > summary').click();
    await site.locator(':scope > details input[name=title]').fill('Fibra tagliata a Crema');
    await Promise.all([
      page.waitForURL(/\/console\/incidents\/inc_[a-z0-9]{16}\?done=opened$/),
      site.locator(':scope > details button[type=submit]').click(),
    ]);
    const id = /inc_[a-z0-9]{16}/.exec(page.url())![0];
    await page.screenshot({ path: path.join(SHOTS, 'incident.png'), fullPage: true });

    // The Now page updates itself: no reload from here on.
    await page.goto(`${stack.apiUrl}/console/now`);
    const delivered = page.locator(`tr[data-incident="${id}"] tr[data-channel="sms"] [data-state="delivered"]`);
    await eventually(
      '2 SMS delivered on the Now page, by htmx polling',
      async () => ((await delivered.count()) && (await delivered.textContent()) === '2' ? true : undefined),
      40_000,
    );
    await page.screenshot({ path: path.join(SHOTS, 'now.png'), fullPage: true });
    const inbox = await stack.inbox();
    assert.equal(inbox['+393471000101']?.length, 1, 'the simulator got the outage SMS');

    await page.click(`tr[data-incident="${id}"] a[href="/console/incidents/${id}"]`);
    // Escalate to the contact on call, then take it: the page says who took it.
    const onCall = '+393470009101';
    assert.equal(
      (
        await call(stack, 'POST', '/v1/contacts', {
          id: 'reperibile',
          name: 'Reperibile Crema',
          phones: [onCall],
          onCall: true,
        })
      ).status,
      201,
    );
    await Promise.all([page.waitForURL(/done=escalate$/), page.click('form[action$="/escalate"] button[type=submit]')]);
    await eventually('the contact on call texted', async () =>
      (await stack.inbox())[onCall]?.some((m) => /Avviso NOC/.test(m.text)) ? true : undefined,
    );
    await Promise.all([page.waitForURL(/done=acknowledge$/), page.click('#ack-form button[type=submit]')]);
    assert.match((await page.locator('#acknowledged').textContent())!, /turno-notte.*\(console\)/s);
    assert.equal(
      await page.locator('.flash.ok').textContent(),
      'Escalation presa in carico: i solleciti si fermano.',
      'a sentence, not the action',
    );
    assert.equal(await page.locator('#ack-form').count(), 0, 'taken once: no second button');
    assert.match((await call(stack, 'GET', `/v1/incidents/${id}`)).body.acknowledged.by, /turno-notte/);
    await page.screenshot({ path: path.join(SHOTS, 'incident-acknowledged.png'), fullPage: true });

    await page.fill('#resolve-form input[name=note]', 'giunta rifatta');
    await Promise.all([page.waitForURL(/done=resolve$/), page.click('#resolve-form button[type=submit]')]);
    await eventually('resolved', async () =>
      ['resolved', 'billed'].includes((await call(stack, 'GET', `/v1/incidents/${id}`)).body.phase) ? true : undefined,
    );

    // Before scheduling work: who will be told and when, without storing anything.
    await page.goto(`${stack.apiUrl}/console/maintenances`);
    await page.fill('#schedule-form input[name=siteIds]', 'tower-lodi-02');
    await page.fill('#schedule-form input[name=title]', 'Sostituzione antenna');
    const day = new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 10);
    await page.fill('#schedule-form input[name=startsAt]', `${day}T10:00`);
    await page.fill('#schedule-form input[name=endsAt]', `${day}T12:00`);
    await page.click('#preview-button');
    await page.locator('#preview-rounds').waitFor({ timeout: 15_000 });
    assert.deepEqual(
      await page
        .locator('#preview-rounds tr[data-round]')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-round'))),
      ['maintenance', 'reminder', 'reminder', 'started'],
    );
    assert.ok(
      Number(await page.locator('#preview-rounds tr[data-round="started"] td[data-channel="sms"]').textContent()) > 0,
    );
    assert.equal(await stack.store.incidents.countDocuments({ kind: 'maintenance' }), 0, 'a preview schedules nothing');
    await page.screenshot({ path: path.join(SHOTS, 'maintenance-preview.png'), fullPage: true });

    // Work whose window has ended and is not reported done: its escalation can be taken from the console.
    const late = await call(stack, 'POST', '/v1/maintenances', {
      siteIds: ['tower-crema-01'],
      startsAt: new Date(Date.now() + 1000).toISOString(),
      endsAt: new Date(Date.now() + 3000).toISOString(),
      title: 'Riallineamento in ritardo',
    });
    await eventually('overrun', async () =>
      (await call(stack, 'GET', `/v1/maintenances/${late.body.id}`)).body.phase === 'overrun' ? true : undefined,
    );
    await page.goto(`${stack.apiUrl}/console/maintenances/${late.body.id}`);
    await Promise.all([page.waitForURL(/done=acknowledge$/), page.click('#ack-form button[type=submit]')]);
    assert.match((await page.locator('#acknowledged').textContent())!, /turno-notte.*\(console\)/s);
    assert.equal(await page.locator('#ack-form').count(), 0, 'taken once: no second button');
    assert.match((await call(stack, 'GET', `/v1/maintenances/${late.body.id}`)).body.acknowledged.by, /turno-notte/);
    await call(stack, 'POST', `/v1/maintenances/${late.body.id}/complete`, {});

    for (const [name, url] of [
      ['maintenances', '/console/maintenances'],
      ['subscriber', '/console/subscribers?q=C-2001'],
      ['rules', '/console/rules'],
      ['billing', '/console/billing'],
    ]) {
      await page.goto(`${stack.apiUrl}${url}`);
      await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
    }
    assert.deepEqual((page as Page & { errors?: string[] }).errors, [], 'no script errors, no CSP refusals');
  });

  test('a viewer sees the pages, in English, without action buttons', async () => {
    const opened = await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-lodi-02'], title: 'Traliccio giù' });
    const page = await signedIn(await stack.createKey('viewer', { name: 'desk' }), 'en-GB');
    assert.equal(await page.locator('h2').first().textContent(), 'Open incidents (1)');
    await page.goto(`${stack.apiUrl}/console/incidents/${opened.body.id}`);
    assert.equal(
      await page
        .locator('#update-form, #resolve-form, #ack-form, form[action$="/escalate"], form[action$="/cancel"]')
        .count(),
      0,
    );
    // The search shows what is planned when it is typed: wait until the planning has reached this subscriber.
    await eventually('C-1005 planned', async () => {
      const listed = await call(stack, 'GET', `/v1/incidents/${opened.body.id}/deliveries?limit=1000`);
      return (listed.body.items as { subscriberId?: string }[]).some((d) => d.subscriberId === 'C-1005') || undefined;
    });
    await page.fill('input[name=q]', '+39 347 1000005');
    await page.locator('#deliveries td', { hasText: 'C-1005' }).first().waitFor({ timeout: 15_000 });
    await page.goto(`${stack.apiUrl}/console/network`);
    assert.equal(await page.locator('details').count(), 0, 'no open-incident forms');
    await page.screenshot({ path: path.join(SHOTS, 'network-viewer.png'), fullPage: true });
  });
});
