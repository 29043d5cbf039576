/**
 * Operators' own words, end to end through the API, the workflow (dev server), FerretDB and the
 * Plivo simulator: an update's text sent by SMS reaches only the chosen area, with the dry run's
 * count and cost matching what the simulator took and charged; a text the policy refuses is a 400
 * naming the field; an announcement reaches an area's paying subscribers and is billed; an
 * estimated end given when opening is in the outage SMS.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RATE_PER_UNIT } from '../../sim/delivery';
import { eventually } from '../support/env';
import { call, type TestStack } from '../support/stack';
import { phaseOf, startDemoStack, writeTestRules } from '../support/scenario';
import { Browser } from '../console/browser-session';

function rulesFile(): string {
  return writeTestRules(
    'operator-sms',
    `  sms: { maxParts: 2, transliterate: true }
  wait: 0
  restoration: true
  updates: { every: off, onEtaChange: true }
rules:
  - name: status-feed
    notify: { channel: feed, template: feed }
    continue: true
  - name: paid-sms
    when:
      subscriber.paidSms: true
      subscriber.onAffectedSite: true
    notify: sms
`,
  );
}

// Paying and not opted out (store/demo.ts): Lodi (tower-lodi-01, ap-lodi-01-a) and Lodi Vecchio below it.
const LODI = ['+393471000001', '+393471000002', '+393471000004'];
const LODI_VECCHIO = ['+393471000005', '+393471000007'];
const OPTED_OUT = '+393471000006'; // Lodi Vecchio, sent STOP
const NOT_PAYING = '+393471000003'; // Lodi
const CREMA = ['+393471000101', '+393471000103'];
const CREMA_NOT_PAYING = '+393471000102';
// What the rate table says a part costs: the simulator's own price, so that estimate and bill can be compared.
const RATE_MICROS = Math.round(RATE_PER_UNIT * 1_000_000);

async function inboxOf(stack: TestStack, phones: string[]) {
  const inbox = await stack.inbox();
  return Object.fromEntries(phones.map((p) => [p, inbox[p] ?? []]));
}

async function received(stack: TestStack, phones: string[], count: number) {
  return eventually(`${count} messages each on ${phones.join(', ')}`, async () => {
    const got = await inboxOf(stack, phones);
    return phones.every((p) => got[p].length >= count) ? got : undefined;
  });
}

describe("operators' own words by SMS", () => {
  let stack: TestStack;
  before(async () => {
    // Read by the API when it prices a dry run (billing/settings.ts).
    process.env.BILLING_SMS_RATE = `sms=${RATE_PER_UNIT}`;
    stack = await startDemoStack(__filename, rulesFile());
  });
  after(async () => {
    delete process.env.BILLING_SMS_RATE;
    await stack?.stop();
  });

  test('an update sent by SMS reaches only the chosen area; the dry run said how many, how many parts and what cost', async () => {
    const eta = new Date(Date.now() + 4 * 3600_000);
    const opened = await call(stack, 'POST', '/v1/incidents', {
      siteIds: ['tower-lodi-01'],
      estimatedEnd: eta.toISOString(),
    });
    assert.equal(opened.status, 202, JSON.stringify(opened.body));
    const id = opened.body.id;
    assert.equal(opened.body.estimatedEnd, eta.toISOString());
    await phaseOf(stack, id, 'notified');
    const first = await received(stack, [...LODI, ...LODI_VECCHIO], 1);
    // The estimate given on opening is in the outage SMS, as a later update's would be.
    for (const p of [...LODI, ...LODI_VECCHIO])
      assert.match(first[p][0].text, /Ripristino previsto|Expected back/, `${p}: ${first[p][0].text}`);

    // Two parts of GSM-7 once the typographic apostrophe and the capital È are transliterated.
    const words =
      'È in corso un intervento sul ponte radio di Lodi Vecchio: l’intervento durerà ancora circa due ore. I tecnici sono sul posto e vi terremo aggiornati su ogni novità. Grazie per la pazienza.';
    const dry = await call(stack, 'POST', `/v1/incidents/${id}/updates`, {
      text: words,
      sms: true,
      dryRun: true,
      areas: ['Lodi Vecchio'],
    });
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.dryRun, true);
    assert.equal(dry.body.encoding, 'GSM');
    assert.equal(dry.body.parts, 2);
    assert.deepEqual(dry.body.transliterated, ['È', '’']);
    assert.equal(dry.body.recipients, 2, 'the two paying numbers of Lodi Vecchio, not the one that sent STOP');
    assert.equal(dry.body.units, 4);
    assert.deepEqual(dry.body.cost, {
      currency: 'USD',
      amountMicros: 4 * RATE_MICROS,
      amount: (4 * RATE_PER_UNIT).toFixed(6),
      unpriced: 0,
    });
    assert.equal(
      (await stack.store.incidents.findOne({ _id: id }))!.updates!.length,
      1,
      'a dry run records nothing (the one entry is the estimate given on opening)',
    );

    const sent = await call(stack, 'POST', `/v1/incidents/${id}/updates`, {
      text: words,
      sms: true,
      areas: ['Lodi Vecchio'],
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    const after = await received(stack, LODI_VECCHIO, 2);
    let units = 0;
    for (const p of LODI_VECCHIO) {
      assert.equal(after[p][1].text, dry.body.text, 'sent as the dry run showed it');
      units += after[p][1].units;
    }
    assert.equal(units, dry.body.units, 'the simulator counted the parts the dry run counted');
    const records = await eventually("the receipts of the operator's message", async () => {
      const items = (await call(stack, 'GET', `/v1/incidents/${id}/deliveries?kind=message`)).body.items as {
        to: string;
        state: string;
        units?: number;
        cost?: string;
      }[];
      return items.length === 2 && items.every((d) => d.state === 'delivered' && d.cost !== undefined)
        ? items
        : undefined;
    });
    assert.deepEqual(records.map((d) => d.to).sort(), LODI_VECCHIO);
    const chargedMicros = records.reduce((sum, d) => sum + Math.round(Number(d.cost) * 1_000_000), 0);
    assert.equal(chargedMicros, dry.body.cost.amountMicros, 'the provider charged what the dry run said');

    // Nobody else got it: not Lodi, not the number that sent STOP, not the one without the option.
    await new Promise((r) => setTimeout(r, 1000));
    const others = await inboxOf(stack, [...LODI, OPTED_OUT, NOT_PAYING]);
    for (const p of LODI)
      assert.deepEqual(
        others[p].map((m) => m.text),
        [first[p][0].text],
        `${p} got only the outage notice`,
      );
    assert.equal(others[OPTED_OUT].length, 0);
    assert.equal(others[NOT_PAYING].length, 0);

    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    const done = await phaseOf(stack, id, 'billed');
    assert.deepEqual(done.deliveries.sms.message, { delivered: 2 });
    const late = await call(stack, 'POST', `/v1/incidents/${id}/updates`, { text: words, sms: true, dryRun: true });
    assert.equal(late.status, 409, 'a closed incident takes no more messages');
  });

  test('a text the policy refuses, or a target outside the incident, is refused naming the field', async () => {
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-crema-01'] })).body.id;
    await phaseOf(stack, id, 'notified');
    const tooLong = await call(stack, 'POST', `/v1/incidents/${id}/updates`, {
      text: 'Lavori in corso. '.repeat(20),
      sms: true,
      dryRun: true,
    });
    assert.equal(tooLong.status, 400, JSON.stringify(tooLong.body));
    assert.equal(tooLong.body.error.details.field, 'body.text');
    assert.match(tooLong.body.error.message, /body\.text takes 3 SMS parts .* at most 2 \(defaults\.sms\.maxParts\)/);
    // An emoji has no GSM-7 look-alike: the text goes as UCS-2, 67 characters a part (this one would be one GSM-7 part without it).
    const ucs2 = await call(stack, 'POST', `/v1/incidents/${id}/updates`, {
      text: `Temporale in arrivo ⛈ ${'resta aggiornato '.repeat(8)}`,
      sms: true,
      dryRun: true,
    });
    assert.equal(ucs2.status, 400);
    assert.match(ucs2.body.error.message, /"⛈" forces UCS-2/);
    const noText = await call(stack, 'POST', `/v1/incidents/${id}/updates`, {
      sms: true,
      estimatedEnd: new Date(Date.now() + 3600_000).toISOString(),
    });
    assert.equal(noText.status, 400);
    assert.equal(noText.body.error.details.field, 'body.text');
    const elsewhere = await call(stack, 'POST', `/v1/incidents/${id}/updates`, {
      text: 'Ci siamo quasi',
      sms: true,
      areas: ['Lodi'],
    });
    assert.equal(elsewhere.status, 422);
    assert.equal(elsewhere.body.error.details.field, 'body.areas');
    const badEta = await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-crema-01'], estimatedEnd: 'tonight' });
    assert.equal(badEta.status, 400);
    assert.match(badEta.body.error.message, /estimatedEnd/);
    const pastEta = await call(stack, 'POST', '/v1/incidents', {
      siteIds: ['tower-crema-01'],
      correlate: false,
      estimatedEnd: '2020-01-01T00:00:00Z',
    });
    assert.equal(pastEta.status, 422);
    assert.equal(pastEta.body.error.details.field, 'body.estimatedEnd');
    // Nothing was sent by any of these.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await stack.store.deliveries.countDocuments({ incidentId: id, kind: 'message' }), 0);
    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    await phaseOf(stack, id, 'billed');
  });

  test('an announcement reaches the paying subscribers of an area, is listed, closed and billed', async () => {
    const before = await inboxOf(stack, [...CREMA, CREMA_NOT_PAYING]);
    const text = 'Allerta meteo a Crema: temporali forti stasera, possibili interruzioni del servizio.';
    const bad = await call(stack, 'POST', '/v1/incidents', {
      kind: 'announcement',
      areas: ['Crema'],
      text: 'x'.repeat(400),
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.details.field, 'body.text');
    const nowhere = await call(stack, 'POST', '/v1/incidents', { kind: 'announcement', areas: ['Atlantide'], text });
    assert.equal(nowhere.status, 422);
    assert.equal(nowhere.body.error.details.field, 'body.areas');

    const dry = await call(stack, 'POST', '/v1/incidents', {
      kind: 'announcement',
      areas: ['Crema'],
      text,
      dryRun: true,
    });
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.recipients, 2);
    assert.equal(dry.body.parts, 1);
    assert.equal(dry.body.cost.amountMicros, 2 * RATE_MICROS);

    const opened = await call(stack, 'POST', '/v1/incidents', { kind: 'announcement', areas: ['Crema'], text });
    assert.equal(opened.status, 202, JSON.stringify(opened.body));
    const id = opened.body.id;
    assert.equal(opened.body.kind, 'announcement');
    assert.deepEqual(opened.body.siteIds, ['ap-crema-01-a', 'tower-crema-01']);
    const got = await received(stack, CREMA, before[CREMA[0]].length + 1);
    for (const p of CREMA) assert.equal(got[p].at(-1)!.text, text);
    await phaseOf(stack, id, 'notified');

    const listed = (await call(stack, 'GET', '/v1/incidents?kind=announcement')).body.items as { id: string }[];
    assert.deepEqual(
      listed.map((i) => i.id),
      [id],
    );
    const escalate = await call(stack, 'POST', `/v1/incidents/${id}/escalate`, {});
    assert.equal(escalate.status, 409);

    assert.equal((await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {})).status, 202);
    const done = await phaseOf(stack, id, 'billed');
    assert.deepEqual(
      done.deliveries.sms,
      { message: { delivered: 2 } },
      'no outage or restoration notice for an announcement',
    );
    const sms = done.cost.channels.find((c: { channel: string }) => c.channel === 'sms');
    assert.equal(sms.messages, 2);
    assert.equal(sms.amountMicros, dry.body.cost.amountMicros, 'billed what the dry run said');
    const after = await inboxOf(stack, [...CREMA, CREMA_NOT_PAYING]);
    for (const p of CREMA) assert.equal(after[p].length, before[p].length + 1, 'one message: the announcement');
    assert.equal(
      after[CREMA_NOT_PAYING].length,
      before[CREMA_NOT_PAYING].length,
      'not to a subscriber without the SMS option',
    );
  });

  test('the console: "also send as SMS" with an area, previewed first, then sent', async () => {
    const id = (await call(stack, 'POST', '/v1/incidents', { siteIds: ['tower-lodi-01'] })).body.id;
    await phaseOf(stack, id, 'notified');
    const before = await received(stack, LODI_VECCHIO, 1);
    const b = new Browser(stack.apiUrl);
    await b.signIn(await stack.createKey('operator', { name: 'noc-console' }));
    const form = (await b.get(`/console/incidents/${id}`)).text;
    assert.match(form, /<input type="checkbox" name="sms" value="1">/);
    assert.match(form, /<input type="checkbox" name="areas" value="Lodi Vecchio">/);

    const words = 'Tecnici al lavoro sul traliccio di Lodi Vecchio, rientro previsto entro le 18.';
    const preview = await b.post(`/console/incidents/${id}/update`, {
      text: words,
      sms: '1',
      areas: 'Lodi Vecchio',
      preview: '1',
      estimatedEnd: '',
    });
    assert.equal(preview.status, 200, preview.text.slice(0, 500));
    assert.match(preview.text, /Recipients: <b>2<\/b> \(Lodi Vecchio\)|Destinatari: <b>2<\/b> \(Lodi Vecchio\)/);
    assert.equal(
      await stack.store.deliveries.countDocuments({ incidentId: id, kind: 'message' }),
      0,
      'a preview sends nothing',
    );

    await b.get(`/console/incidents/${id}`);
    const sent = await b.post(`/console/incidents/${id}/update`, {
      text: words,
      sms: '1',
      areas: 'Lodi Vecchio',
      estimatedEnd: '',
    });
    assert.equal(sent.status, 303, sent.text.slice(0, 500));
    const got = await received(stack, LODI_VECCHIO, before[LODI_VECCHIO[0]].length + 1);
    for (const p of LODI_VECCHIO) assert.equal(got[p].at(-1)!.text, words);
    assert.equal(
      await stack.store.deliveries.countDocuments({ incidentId: id, kind: 'message' }),
      2,
      'Lodi Vecchio only',
    );
    await call(stack, 'POST', `/v1/incidents/${id}/resolve`, {});
    await phaseOf(stack, id, 'billed');
  });
});
