/**
 * The public status page as a person sees it: the whole stack runs, an incident is opened through
 * the API, its status post appears, and the page is loaded in headless Chromium (Debian's
 * `chromium`, driven by playwright-core) on a phone-sized screen, in Italian and in English.
 * Checked: the areas and their state, the ongoing outage, the planned maintenance, the language,
 * that the page fits the screen, and that no phone number or subscriber appears.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { DEMO_SUBSCRIBERS, loadDemoDataIfEmpty } from '../../store/demo';
import { statusFeedCollections, StatusFeedChannel } from '../../channels/status-feed';
import { call, startTestStack, type TestStack } from '../support/stack';
import { eventually } from '../support/env';

/** Debian's chromium (tools/bootstrap.sh installs it), or whatever CHROMIUM_PATH names. */
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

/** What must never be on a public page: subscribers' numbers, names and contract ids. */
const PHONES = DEMO_SUBSCRIBERS.flatMap((s) => s.phones);
const NAMES = DEMO_SUBSCRIBERS.map((s) => s.name);
const CONTRACTS = DEMO_SUBSCRIBERS.map((s) => s._id);

describe('public status page in a browser', { skip: SKIP }, () => {
  let stack: TestStack;
  let browser: Browser;
  let page: Page;

  before(async () => {
    stack = await startTestStack(__filename, {
      deliveryPolicy: { deliveryTimeoutMs: 10_000, maxAttempts: 3, sweepEveryMs: 200 },
    });
    await loadDemoDataIfEmpty(stack.store);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    page = await browser.newPage({
      viewport: { width: 390, height: 844 },
      isMobile: true,
      hasTouch: true,
      deviceScaleFactor: 2,
    });
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test('an outage in Lodi Vecchio and a maintenance in Crema, in Italian then English, on a phone', async () => {
    const opened = await call(stack, 'POST', '/v1/incidents', {
      siteIds: ['tower-lodi-02'],
      title: 'Traliccio senza corrente',
    });
    assert.equal(opened.status, 202, JSON.stringify(opened.body));
    const id: string = opened.body.id;
    const posts = statusFeedCollections(stack.store.db).posts;
    // The worker posts to the status channel as it notifies; should it not (a worker without that
    // channel), the post is written through the channel itself, as the worker would.
    const posted = await eventually(
      'the status post of the outage',
      async () => ((await posts.findOne({ _id: id })) ? true : undefined),
      20_000,
    ).catch(() => false);
    if (!posted) {
      await new StatusFeedChannel(statusFeedCollections(stack.store.db)).send([
        {
          deliveryId: `${id}|outage|status|it`,
          to: '',
          language: 'it',
          subject: 'Guasto a Lodi Vecchio',
          text: 'Internet interrotto a Lodi Vecchio. Stiamo lavorando per ripristinarlo.',
          meta: { incidentId: id, kind: 'outage', areas: ['Lodi Vecchio'] },
        },
        {
          deliveryId: `${id}|outage|status|en`,
          to: '',
          language: 'en',
          subject: 'Outage in Lodi Vecchio',
          text: 'Internet is down in Lodi Vecchio. We are working on it.',
          meta: { incidentId: id, kind: 'outage', areas: ['Lodi Vecchio'] },
        },
      ]);
    }
    // Maintenance is announced on the same channel; one typed in with a phone number in it.
    await new StatusFeedChannel(statusFeedCollections(stack.store.db)).send([
      {
        deliveryId: 'mnt_crema|maintenance|status|it',
        to: '',
        language: 'it',
        subject: 'Manutenzione a Crema',
        text: 'Lavori sul traliccio di Crema domani dalle 02:00 alle 04:00. Info: +39 347 1000101.',
        meta: { incidentId: 'mnt_crema', kind: 'maintenance', areas: ['Crema'] },
      },
      {
        deliveryId: 'mnt_crema|maintenance|status|en',
        to: '',
        language: 'en',
        subject: 'Maintenance in Crema',
        text: 'Work on the Crema tower tomorrow from 02:00 to 04:00.',
        meta: { incidentId: 'mnt_crema', kind: 'maintenance', areas: ['Crema'] },
      },
    ]);

    // Italian, the default.
    const res = await page.goto(`${stack.apiUrl}/status`);
    assert.equal(res?.status(), 200);
    assert.equal(await page.getAttribute('html', 'lang'), 'it');
    assert.match(await page.title(), /Stato del servizio/);
    const zones = await page.$$eval('#areas li', (lis) =>
      lis.map((li) => [li.querySelector('.zone')?.textContent, li.querySelector('.state')?.textContent, li.className]),
    );
    assert.deepEqual(zones, [
      ['Lodi Vecchio', 'Disservizio in corso', 'outage'],
      ['Crema', 'Manutenzione programmata', 'maintenance'],
      ['Lodi', 'Regolare', 'ok'],
    ]);
    const current = page.locator(`#current article#inc-${id}`);
    assert.equal(await current.count(), 1, 'the outage is under "Disservizi in corso"');
    assert.match(await current.locator('.badge').innerText(), /In corso/);
    assert.match(await current.locator('.areas').innerText(), /Lodi Vecchio/);
    assert.match(await page.locator('#current h2').innerText(), /Disservizi in corso/);
    const maintenance = page.locator('#maintenance article#inc-mnt_crema');
    assert.equal(await maintenance.count(), 1, 'the maintenance is under "Manutenzioni programmate"');
    assert.match(await maintenance.locator('.badge').innerText(), /Programmata/);
    assert.match(await maintenance.innerText(), /dalle 02:00 alle 04:00\. Info: \[numero nascosto\]/);
    assert.match(await page.locator('#recent').innerText(), /Nessun disservizio negli ultimi 30 giorni/);

    // Usable on a phone: nothing wider than the screen.
    const widths = (await page.evaluate(
      '({ page: document.documentElement.scrollWidth, screen: window.innerWidth })',
    )) as { page: number; screen: number };
    assert.ok(widths.page <= widths.screen, `the page is ${widths.page}px wide on a ${widths.screen}px screen`);

    const text = await page.innerText('body');
    const html = await page.content();
    for (const phone of PHONES)
      assert.ok(
        !html.includes(phone) && !html.includes(phone.slice(3)),
        `no subscriber number (${phone.slice(0, 4)}…) on the page`,
      );
    assert.doesNotMatch(text, /\+?\d[\d .-]{7,}\d/, 'nothing that looks like a phone number');
    for (const name of NAMES) assert.ok(!text.includes(name), 'no subscriber name');
    for (const contract of CONTRACTS) assert.ok(!text.includes(contract), 'no contract id');
    assert.ok(!html.includes('tower-lodi-02'), 'no internal site id');

    // The language link, as a person would use it.
    await page.click('nav a[hreflang="en"]');
    await page.waitForURL(/lang=en/);
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    assert.match(await page.title(), /Service status/);
    assert.match(await page.locator('#areas h2').innerText(), /Status by area/);
    const zonesEn = await page.$$eval('#areas li .state', (els) => els.map((e) => e.textContent));
    assert.deepEqual(zonesEn, ['Outage', 'Planned maintenance', 'Operational']);
    assert.match(await page.locator(`#current article#inc-${id} .badge`).innerText(), /Ongoing/);
    assert.match(await page.locator('#current h2').innerText(), /Current incidents/);
    assert.match(await page.locator('#maintenance article#inc-mnt_crema').innerText(), /Maintenance in Crema/);
    assert.doesNotMatch(await page.innerText('body'), /\+?\d[\d .-]{7,}\d/);

    // The JSON and the Atom feed say the same, without a key, without personal data.
    const json = (await (await fetch(`${stack.apiUrl}/status.json?lang=en`)).json()) as {
      areas: { name: string; state: string }[];
      current: { id: string }[];
      maintenance: { id: string }[];
    };
    assert.deepEqual(
      json.areas.map((a) => `${a.name}:${a.state}`),
      ['Lodi Vecchio:outage', 'Crema:maintenance', 'Lodi:ok'],
    );
    assert.deepEqual(
      json.current.map((p) => p.id),
      [id],
    );
    assert.deepEqual(
      json.maintenance.map((p) => p.id),
      ['mnt_crema'],
    );
    const atom = await (await fetch(`${stack.apiUrl}/status/feed.atom`)).text();
    assert.match(atom, /<feed xmlns="http:\/\/www.w3.org\/2005\/Atom"/);
    assert.match(atom, /Lodi Vecchio/);
    for (const phone of PHONES) assert.ok(!atom.includes(phone) && !JSON.stringify(json).includes(phone));
  });
});
