/**
 * Importing sites and subscribers from CSV and NDJSON against FerretDB: good files, bad rows
 * (each refused with its line and reason, the rest imported), the same file twice (nothing
 * changes), a changed row (updated), dry runs, encodings, and the command line.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { isolatedEnv, type IsolatedEnv } from '../support/env';
import { runImport, ImportFileError, type ImportFormat, type ImportKind } from '../../import';
import { importCommand } from '../../cli/import';

const SITES = [
  'site_id,name,area,kind,lat,lon,uplink',
  'bh-lodi,Lodi backhaul,Lodi,tower,45.3141,9.5037,',
  'tw-lodi-2,Lodi Vecchio,Lodi Vecchio,tower,45.3019,9.4173,bh-lodi',
  'ap-lodi-2a,Lodi Vecchio AP,Lodi Vecchio,access_point,,,tw-lodi-2',
  'ap-lodi-1a,Lodi AP nord,Lodi,ap,,,bh-lodi',
].join('\n');

const SUBSCRIBERS = [
  'contract_id,name,phones,email,language,site_id,segment,sms_alerts,sms_alerts_since,sms_alerts_until,opted_out,quiet_hours',
  'C-1,Maria Rossi,347 100 0001,maria@Example.IT,it,ap-lodi-1a,residential,yes,2026-01-01,31/12/2026,,22:00-07:00',
  'C-2,"Bianchi, Giuseppe",+39 347 100 0002;328 123 4567,,EN,ap-lodi-2a,business,no,,,,',
  'C-3,Anna Ferrari,3471000003,,,tw-lodi-2,,sì,,,,',
].join('\n');

const from = (text: string | Buffer) => Readable.from([typeof text === 'string' ? Buffer.from(text) : text]);
const at = new Date('2026-03-01T10:00:00Z');

describe('import', () => {
  let env: IsolatedEnv;
  const run = (
    kind: ImportKind,
    text: string | Buffer,
    format: ImportFormat = 'csv',
    extra: { dryRun?: boolean; encoding?: 'utf8' | 'latin1'; now?: Date } = {},
  ) => runImport(env.store, kind, from(text), { format, now: at, ...extra });

  before(async () => {
    env = await isolatedEnv(__filename);
  });
  after(async () => env?.close());

  test('a good sites file creates the sites with their uplinks, kinds and coordinates', async () => {
    const r = await run('sites', SITES);
    assert.deepEqual(
      { rows: r.rows, created: r.created, updated: r.updated, unchanged: r.unchanged, rejected: r.rejected },
      { rows: 4, created: 4, updated: 0, unchanged: 0, rejected: 0 },
    );
    const ap = await env.store.sites.findOne({ _id: 'ap-lodi-1a' });
    assert.equal(ap?.kind, 'access_point');
    assert.equal(ap?.uplink, 'bh-lodi');
    const root = await env.store.sites.findOne({ _id: 'bh-lodi' });
    assert.equal(root?.uplink, null);
    assert.deepEqual(root?.location, { lat: 45.3141, lon: 9.5037 });
  });

  test('a good subscribers file creates subscribers with normalized numbers, dates in Italian time and defaults', async () => {
    const r = await run('subscribers', SUBSCRIBERS);
    assert.deepEqual(
      { created: r.created, rejected: r.rejected, rejections: r.rejections },
      { created: 3, rejected: 0, rejections: [] },
    );
    const maria = await env.store.subscribers.findOne({ _id: 'C-1' });
    assert.deepEqual(maria?.phones, ['+393471000001']);
    assert.equal(maria?.email, 'maria@example.it');
    assert.equal(maria?.quietHours, '22:00-07:00');
    // Since 1 January, Italian midnight; until 31/12 includes the whole 31st.
    assert.deepEqual(maria?.smsAlerts, {
      active: true,
      since: new Date('2025-12-31T23:00:00Z'),
      until: new Date('2026-12-31T23:00:00Z'),
    });
    assert.equal(maria?.optedOut, false);
    const giuseppe = await env.store.subscribers.findOne({ _id: 'C-2' });
    assert.equal(giuseppe?.name, 'Bianchi, Giuseppe');
    assert.deepEqual(giuseppe?.phones, ['+393471000002', '+393281234567']);
    assert.equal(giuseppe?.language, 'en');
    assert.equal(giuseppe?.segment, 'business');
    assert.deepEqual(giuseppe?.smsAlerts, { active: false });
    const anna = await env.store.subscribers.findOne({ _id: 'C-3' });
    assert.equal(anna?.language, 'it');
    assert.equal(anna?.segment, 'residential');
    assert.equal(anna?.smsAlerts.active, true);
  });

  test('importing the same files again changes nothing and rewrites nothing', async () => {
    const later = new Date(at.getTime() + 3600_000);
    const sites = await run('sites', SITES, 'csv', { now: later });
    assert.deepEqual(
      { created: sites.created, updated: sites.updated, unchanged: sites.unchanged },
      { created: 0, updated: 0, unchanged: 4 },
    );
    const subs = await run('subscribers', SUBSCRIBERS, 'csv', { now: later });
    assert.deepEqual(
      { created: subs.created, updated: subs.updated, unchanged: subs.unchanged, rejected: subs.rejected },
      { created: 0, updated: 0, unchanged: 3, rejected: 0 },
    );
    const maria = await env.store.subscribers.findOne({ _id: 'C-1' });
    assert.deepEqual(maria?.updatedAt, at, 'an unchanged row is not written');
  });

  test('a changed row is updated, optional fields it dropped are removed, the rest is unchanged', async () => {
    const changed = SUBSCRIBERS.replace('maria@Example.IT', '')
      .replace('22:00-07:00', '')
      .replace('Anna Ferrari', 'Anna Ferrari Colombo');
    const later = new Date(at.getTime() + 7200_000);
    const r = await run('subscribers', changed, 'csv', { now: later });
    assert.deepEqual(
      { created: r.created, updated: r.updated, unchanged: r.unchanged },
      { created: 0, updated: 2, unchanged: 1 },
    );
    const maria = await env.store.subscribers.findOne({ _id: 'C-1' });
    assert.equal(maria?.email, undefined);
    assert.equal(maria?.quietHours, undefined);
    assert.deepEqual(maria?.createdAt, at);
    assert.deepEqual(maria?.updatedAt, later);
    assert.equal((await env.store.subscribers.findOne({ _id: 'C-3' }))?.name, 'Anna Ferrari Colombo');
    const again = await run('subscribers', changed, 'csv', { now: later });
    assert.equal(again.unchanged, 3);
  });

  test('bad rows are refused with their line and reason, never a whole phone number; good rows in the same file are imported', async () => {
    const file = [
      'contract_id;name;phones;site_id;language;sms_alerts',
      'B-1;Numero corto;12345;ap-lodi-1a;it;yes', // 2
      'B-2;Fisso;0371 123456;ap-lodi-1a;it;yes', // 3
      'B-3;Sito ignoto;3471000010;ap-nowhere;it;yes', // 4
      'B-4;Buono;3471000011;ap-lodi-1a;it;yes', // 5
      'B-4;Doppio;3471000012;ap-lodi-1a;it;yes', // 6
      'B-5;Tedesco;3471000013;ap-lodi-1a;de;yes', // 7
      'B-6;Troppo poco;3471000014', // 8
      'B-10;Bar "Da Mario";+39 328 1234568;tw-lodi-2;en;no', // 9: quotes inside a value are kept
      'B-7;"Citazione mai chiusa;3471000015;ap-lodi-1a;it;yes', // 10: the rest of the file is inside the quote
    ].join('\r\n');
    const r = await run('subscribers', file);
    const byLine = new Map(r.rejections.map((x) => [x.line, x]));
    assert.match(byLine.get(2)!.reason, /^phones: .* is too short$/);
    assert.match(byLine.get(3)!.reason, /^phones: 03\*+456 is a fixed line number; SMS needs a mobile number$/);
    assert.match(byLine.get(4)!.reason, /site_id: "ap-nowhere" is not a known site/);
    assert.match(byLine.get(6)!.reason, /contract B-4 is already on line 5/);
    assert.match(byLine.get(7)!.reason, /language: "de" is not a language we write in/);
    assert.match(byLine.get(8)!.reason, /has 3 fields where the header has 6/);
    assert.match(byLine.get(10)!.reason, /not readable as CSV: .*quote/i);
    assert.equal(byLine.get(2)!.id, 'B-1');
    for (const x of r.rejections) assert.doesNotMatch(x.reason, /\d{7,}/, `no phone number in "${x.reason}"`);
    assert.equal(
      (await env.store.subscribers.findOne({ _id: 'B-4' }))?.name,
      'Buono',
      'good rows are imported; the first row of a contract wins',
    );
    assert.equal((await env.store.subscribers.findOne({ _id: 'B-10' }))?.name, 'Bar "Da Mario"');
    assert.deepEqual([...byLine.keys()], [2, 3, 4, 6, 7, 8, 10]);
    assert.equal(r.rows, r.created + r.updated + r.unchanged + r.rejected);
    assert.equal(r.rows, 9);
  });

  test('dates, flags and empty contracts are checked by column', async () => {
    const file = [
      'contract_id,name,phones,site_id,sms_alerts,sms_alerts_since,sms_alerts_until',
      'D-1,Date,3471000016,ap-lodi-1a,yes,2026-05-01,2026-04-01',
      'D-2,Forse,3471000017,ap-lodi-1a,forse,,',
      ',Senza contratto,3471000018,ap-lodi-1a,,,',
      'D-3,Data strana,3471000019,ap-lodi-1a,yes,domani,',
    ].join('\n');
    const r = await run('subscribers', file);
    assert.deepEqual(
      r.rejections.map((x) => [x.line, x.reason.split(':')[0]]),
      [
        [2, 'sms_alerts_until'],
        [3, 'sms_alerts'],
        [4, 'contract_id'],
        [5, 'sms_alerts_since'],
      ],
    );
    assert.match(r.rejections[3]!.reason, /"domani" is not a date/);
  });

  test('a dry run checks and counts but writes nothing', async () => {
    const file = [
      'contract_id,name,phones,site_id',
      'DRY-1,Prova,3471000020,ap-lodi-1a',
      'C-1,Maria Rossi,3471000001,ap-lodi-1a',
      'DRY-2,Male,1,ap-lodi-1a',
    ].join('\n');
    const before = await env.store.subscribers.findOne({ _id: 'C-1' });
    const dry = await run('subscribers', file, 'csv', { dryRun: true });
    assert.deepEqual(
      { dryRun: dry.dryRun, created: dry.created, updated: dry.updated, rejected: dry.rejected },
      { dryRun: true, created: 1, updated: 1, rejected: 1 },
    );
    assert.equal(await env.store.subscribers.findOne({ _id: 'DRY-1' }), null);
    assert.deepEqual(await env.store.subscribers.findOne({ _id: 'C-1' }), before);
    const sitesDry = await run('sites', 'site_id,name,area,uplink\nnew-site,Nuovo,Crema,\n', 'csv', { dryRun: true });
    assert.equal(sitesDry.created, 1);
    assert.equal(await env.store.sites.findOne({ _id: 'new-site' }), null);
  });

  test('NDJSON: camelCase or snake_case keys, arrays and booleans; a line that is not JSON is refused', async () => {
    const file = [
      JSON.stringify({
        contractId: 'N-1',
        name: 'Luca Colombo',
        phones: ['3471000030', '+39 347 100 0031'],
        siteId: 'ap-lodi-2a',
        smsAlerts: true,
        smsAlertsSince: '2026-02-01T08:00:00Z',
        language: 'en',
      }),
      '',
      '{"contract_id": "N-2", "name": "Rotto"',
      JSON.stringify({
        contract_id: 'N-3',
        name: 'Paola Conti',
        phones: '3471000032',
        site_id: 'ap-lodi-2a',
        opted_out: true,
        colour: 'blue',
      }),
      '[1, 2]',
    ].join('\n');
    const r = await run('subscribers', file, 'ndjson');
    assert.equal(r.created, 2);
    assert.deepEqual(
      r.rejections.map((x) => x.line),
      [3, 5],
    );
    assert.match(r.rejections[0]!.reason, /^not JSON/);
    assert.deepEqual(r.ignoredColumns, ['colour']);
    const luca = await env.store.subscribers.findOne({ _id: 'N-1' });
    assert.deepEqual(luca?.phones, ['+393471000030', '+393471000031']);
    assert.deepEqual(luca?.smsAlerts, { active: true, since: new Date('2026-02-01T08:00:00Z') });
    const paola = await env.store.subscribers.findOne({ _id: 'N-3' });
    assert.equal(paola?.optedOut, true);
    assert.ok(paola?.optedOutAt);
  });

  test('a semicolon-separated Latin-1 export with Italian headers imports as it is', async () => {
    const text =
      'Contratto;Nominativo;Cellulare;Sito;Lingua;Tipo cliente;Opzione SMS\nL-1;Niccolò Brambilla;347 100 0040;ap-lodi-1a;Italiano;Azienda;Sì\n';
    const r = await run('subscribers', Buffer.from(text, 'latin1'), 'csv', { encoding: 'latin1' });
    assert.deepEqual(r.rejections, []);
    const s = await env.store.subscribers.findOne({ _id: 'L-1' });
    assert.equal(s?.name, 'Niccolò Brambilla');
    assert.equal(s?.segment, 'business');
    assert.equal(s?.smsAlerts.active, true);
  });

  test('a file without a required column is refused as a whole, naming it', async () => {
    await assert.rejects(
      run('subscribers', 'contract_id,name\nX,Y\n'),
      (err: Error) => err instanceof ImportFileError && /Missing columns phones, site_id/.test(err.message),
    );
    await assert.rejects(run('sites', ''), (err: Error) => err instanceof ImportFileError && /empty/.test(err.message));
  });

  test('an import never opts anyone back in: a STOP survives a re-import', async () => {
    await env.store.subscribers.updateOne({ _id: 'C-3' }, { $set: { optedOut: true, optedOutAt: new Date() } });
    const file =
      'contract_id,name,phones,site_id,sms_alerts,opted_out\nC-3,Anna Ferrari Colombo,3471000003,tw-lodi-2,yes,no\n';
    await run('subscribers', file);
    assert.equal((await env.store.subscribers.findOne({ _id: 'C-3' }))?.optedOut, true);
    // And an export that says "opted out" opts out.
    await run(
      'subscribers',
      'contract_id,name,phones,site_id,opted_out\nC-2,"Bianchi, Giuseppe",3471000002;3281234567,ap-lodi-2a,yes\n',
    );
    assert.equal((await env.store.subscribers.findOne({ _id: 'C-2' }))?.optedOut, true);
  });

  test('a file larger than one batch: every row is counted once, duplicates across batches are caught', async () => {
    const lines = ['contract_id,name,phones,site_id'];
    for (let i = 0; i < 2500; i++)
      lines.push(`M-${String(i).padStart(5, '0')},Cliente ${i},+39347${String(2000000 + i)},ap-lodi-1a`);
    lines.push('M-00007,Doppio,3479999999,ap-lodi-1a');
    const r = await run('subscribers', lines.join('\n'));
    assert.deepEqual(
      { rows: r.rows, created: r.created, rejected: r.rejected },
      { rows: 2501, created: 2500, rejected: 1 },
    );
    assert.equal(r.rejections[0]!.line, 2502);
    assert.equal(await env.store.subscribers.countDocuments({ _id: { $regex: '^M-' } }), 2500);
    const again = await run('subscribers', lines.join('\n'));
    assert.equal(again.unchanged, 2500);
  });

  test('avviso import: prints the report, lists rejected rows, exits 1 when some were rejected', async () => {
    const dir = mkdtempSync(path.join(env.servers.tmpDir, 'import-cli-'));
    const good = path.join(dir, 'sites.csv');
    writeFileSync(good, 'site_id,name,area,uplink\ncli-root,Radice,Crema,\ncli-ap,AP,Crema,cli-root\n');
    const bad = path.join(dir, 'subscribers.ndjson');
    writeFileSync(
      bad,
      `${JSON.stringify({ contract_id: 'CLI-1', name: 'Uno', phones: '3471000050', site_id: 'cli-ap' })}\n${JSON.stringify({ contract_id: 'CLI-2', name: 'Due', phones: '3471000051', site_id: 'cli-loop' })}\n`,
    );
    process.env.MONGODB_URI = env.servers.mongoUri;
    process.env.MONGODB_DB = env.dbName;
    const out: string[] = [];
    const err: string[] = [];
    assert.equal(
      await importCommand(
        ['sites', good],
        (l) => out.push(l),
        (l) => err.push(l),
      ),
      0,
      err.join('\n'),
    );
    assert.match(out[0]!, /sites from csv: 2 rows/);
    out.length = 0;
    assert.equal(
      await importCommand(
        ['subscribers', bad],
        (l) => out.push(l),
        (l) => err.push(l),
      ),
      1,
    );
    assert.ok(
      out.some((l) => /line 2 \(CLI-2\): site_id: "cli-loop" is not a known site/.test(l)),
      out.join('\n'),
    );
    out.length = 0;
    assert.equal(
      await importCommand(
        ['subscribers', bad, '--json', '--dry-run'],
        (l) => out.push(l),
        (l) => err.push(l),
      ),
      1,
    );
    const report = JSON.parse(out.join('\n'));
    assert.equal(report.dryRun, true);
    assert.equal(report.unchanged, 1);
    assert.equal(
      await importCommand(
        ['subscribers', path.join(dir, 'missing.csv')],
        () => undefined,
        (l) => err.push(l),
      ),
      2,
    );
    assert.match(err.at(-1)!, /cannot read/);
    assert.equal(
      await importCommand(
        ['towers', good],
        () => undefined,
        (l) => err.push(l),
      ),
      2,
    );
  });
});
