/**
 * `avviso incidents` and `avviso maintenances` against the real stack (API, worker, FerretDB,
 * the Plivo simulator): each command as an operator types it, its table and its --json, and the
 * mistakes it names (no key, a viewer acting, an unknown site, an id of the wrong shape).
 * Commands run in this process with their own environment; one runs as a real `avviso` process.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { PROJECT_ROOT } from '../../dev/services';
import { loadDemoDataIfEmpty } from '../../store/demo';
import { incidentsCommand } from '../../cli/incidents';
import { maintenancesCommand } from '../../cli/maintenances';
import { eventually } from '../support/env';
import { call, startTestStack, type TestStack } from '../support/stack';

/** Once over, incidents and maintenances are billed soon after: either phase means it is done. */
async function reaches(
  stack: TestStack,
  what: 'incidents' | 'maintenances',
  id: string,
  phases: string[],
): Promise<void> {
  await eventually(`${id} ${phases.join(' or ')}`, async () =>
    phases.includes((await call(stack, 'GET', `/v1/${what}/${id}`)).body.phase) ? true : undefined,
  );
}

type Command = typeof incidentsCommand;

describe('avviso incidents and maintenances over the API', () => {
  let stack: TestStack;
  let operator: string;
  let viewer: string;

  before(async () => {
    stack = await startTestStack(__filename);
    await loadDemoDataIfEmpty(stack.store);
    operator = await stack.createKey('operator');
    viewer = await stack.createKey('viewer');
  });
  after(async () => stack?.stop());

  async function run(command: Command, args: string[], key: string | null = operator) {
    const out: string[] = [];
    const err: string[] = [];
    const env = { AVVISO_URL: stack.apiUrl, ...(key ? { AVVISO_API_KEY: key } : {}) };
    const code = await command(args, { out: (l) => out.push(l), err: (l) => err.push(l), env });
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  test('open, list, show, update, resolve an incident; cancel another', async () => {
    const opened = await run(incidentsCommand, [
      'open',
      'tower-crema-01',
      '--title',
      'Fibre cut Crema',
      '--severity',
      'critical',
      '--json',
    ]);
    assert.equal(opened.code, 0, opened.err);
    const id = JSON.parse(opened.out).id as string;
    assert.match(id, /^inc_[a-z0-9]{16}$/);

    const list = await run(incidentsCommand, ['list'], viewer);
    assert.equal(list.code, 0, list.err);
    assert.match(list.out, /^ID\s+PHASE\s+SEVERITY\s+OPENED \(UTC\)\s+SITES\s+TITLE/);
    assert.match(
      list.out,
      new RegExp(
        `${id}\\s+\\w+\\s+critical\\s+\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}\\s+tower-crema-01\\s+Fibre cut Crema`,
      ),
    );
    const listed = JSON.parse((await run(incidentsCommand, ['list', '--json'], viewer)).out);
    assert.ok(listed.items.some((i: { id: string }) => i.id === id));

    await eventually('the outage SMS delivered', async () =>
      (await call(stack, 'GET', `/v1/incidents/${id}`)).body.deliveries?.sms?.outage?.delivered === 2
        ? true
        : undefined,
    );
    const shown = await run(incidentsCommand, ['show', id], viewer);
    assert.equal(shown.code, 0, shown.err);
    assert.match(shown.out, new RegExp(`^${id}\\s+\\w+\\s+critical\\s+Fibre cut Crema`));
    assert.match(shown.out, /sites: tower-crema-01 \(2 with those they feed\)/);
    assert.match(shown.out, /sms outage: 2 delivered/);
    assert.match(shown.out, /timeline:\n\s+\d{4}-\d{2}-\d{2} \d{2}:\d{2}\s+detected/);

    const updated = await run(incidentsCommand, ['update', id, '--text', 'Technicians on site', '--eta', '+2h']);
    assert.equal(updated.code, 0, updated.err);
    assert.match(
      updated.out,
      new RegExp(`${id}: update posted \\(phase \\w+, estimate \\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2} UTC\\)`),
    );

    const acked = await run(incidentsCommand, ['ack', id]);
    assert.equal(acked.code, 0, acked.err);
    assert.match(
      acked.out,
      new RegExp(
        `${id}: acknowledged by test operator \\(key \\w+\\) at \\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2} UTC: the escalation stops`,
      ),
    );
    assert.match(
      (await run(incidentsCommand, ['ack', id])).out,
      new RegExp(`${id}: already acknowledged by test operator`),
    );
    assert.equal((await run(incidentsCommand, ['ack', id], viewer)).code, 1, 'a viewer cannot acknowledge');
    assert.match(
      (await run(incidentsCommand, ['show', id], viewer)).out,
      /acknowledged by test operator .* UTC \(api\)/,
    );

    const resolved = await run(incidentsCommand, ['resolve', id, '--note', 'spliced']);
    assert.equal(resolved.code, 0, resolved.err);
    assert.match(resolved.out, /resolve requested/);
    await reaches(stack, 'incidents', id, ['resolved', 'billed']);
    assert.doesNotMatch(
      (await run(incidentsCommand, ['list'])).out,
      new RegExp(id),
      'a resolved incident leaves the open list',
    );
    assert.match((await run(incidentsCommand, ['list', '--all'])).out, new RegExp(`${id}\\s+(resolved|billed)`));

    const other = JSON.parse((await run(incidentsCommand, ['open', 'tower-lodi-02', '--json'])).out).id as string;
    const cancelled = await run(incidentsCommand, ['cancel', other, '--reason', 'false alarm']);
    assert.equal(cancelled.code, 0, cancelled.err);
    assert.match(cancelled.out, /cancelled: whoever was told is told it was a false alarm/);
    await reaches(stack, 'incidents', other, ['cancelled', 'billed']);
  });

  test('schedule, list, show, reschedule, cancel a maintenance; complete one under way', async () => {
    const start = new Date(Date.now() + 86_400_000).toISOString();
    const end = new Date(Date.now() + 86_400_000 + 7_200_000).toISOString();
    const made = await run(maintenancesCommand, [
      'schedule',
      'tower-lodi-02',
      '--start',
      start,
      '--end',
      end,
      '--title',
      'Antenna swap',
      '--json',
    ]);
    assert.equal(made.code, 0, made.err);
    const id = JSON.parse(made.out).id as string;
    assert.match(id, /^mnt_[a-z0-9]{16}$/);

    const list = await run(maintenancesCommand, ['list'], viewer);
    assert.equal(list.code, 0, list.err);
    assert.match(
      list.out,
      new RegExp(
        `${id}\\s+scheduled\\s+${start.slice(0, 16).replace('T', ' ')}\\s+${end.slice(0, 16).replace('T', ' ')}\\s+tower-lodi-02\\s+Antenna swap`,
      ),
    );
    const shown = await run(maintenancesCommand, ['show', id], viewer);
    assert.equal(shown.code, 0, shown.err);
    assert.match(shown.out, /window: .* UTC/);
    assert.match(shown.out, /sites: tower-lodi-02 \(2 with those they feed\)/);

    const moved = await run(maintenancesCommand, [
      'reschedule',
      id,
      '--start',
      '+2d',
      '--end',
      '+50h',
      '--reason',
      'crane late',
    ]);
    assert.equal(moved.code, 0, moved.err);
    assert.match(moved.out, /rescheduled \(phase scheduled, window .* UTC\)/);
    await eventually('rescheduled', async () =>
      (await call(stack, 'GET', `/v1/maintenances/${id}`)).body.reschedules === 1 ? true : undefined,
    );

    const cancelled = await run(maintenancesCommand, ['cancel', id]);
    assert.equal(cancelled.code, 0, cancelled.err);
    await reaches(stack, 'maintenances', id, ['cancelled', 'billed']);
    assert.doesNotMatch((await run(maintenancesCommand, ['list'])).out, new RegExp(id));
    assert.match(
      (await run(maintenancesCommand, ['list', '--state', 'cancelled', '--state', 'billed'])).out,
      new RegExp(`${id}\\s+(cancelled|billed)`),
    );

    const now = JSON.parse(
      (
        await run(maintenancesCommand, [
          'schedule',
          'ap-lodi-01-a',
          '--start',
          new Date(Date.now() - 1000).toISOString(),
          '--end',
          '+1h',
          '--title',
          'Now',
          '--json',
        ])
      ).out,
    ).id as string;
    await reaches(stack, 'maintenances', now, ['in_progress']);
    const completed = await run(maintenancesCommand, ['complete', now, '--note', 'done early']);
    assert.equal(completed.code, 0, completed.err);
    await reaches(stack, 'maintenances', now, ['completed', 'billed']);
  });

  test('mistakes are named: no key, a viewer acting, an unknown site, a bad id or time, the API down', async () => {
    const noKey = await run(incidentsCommand, ['list'], null);
    assert.equal(noKey.code, 2);
    assert.match(noKey.err, /AVVISO_API_KEY is not set/);
    const asViewer = await run(incidentsCommand, ['open', 'tower-crema-01'], viewer);
    assert.equal(asViewer.code, 1);
    assert.match(
      asViewer.err,
      /avviso incidents open: POST \/v1\/incidents: 403 forbidden: .*needs a key with role operator or admin/,
    );
    const unknown = await run(incidentsCommand, ['open', 'tower-atlantis']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /422 unknown_site: .*tower-atlantis/);
    const missing = await run(incidentsCommand, ['show', 'inc_ffffffffffffffff']);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /404 incident_not_found: No incident inc_ffffffffffffffff/);
    assert.match((await run(incidentsCommand, ['resolve', 'nope'])).err, /"nope" is not an incident id/);
    assert.match((await run(incidentsCommand, ['update', 'inc_ffffffffffffffff'])).err, /give --text, --eta or both/);
    assert.match(
      (
        await run(maintenancesCommand, [
          'schedule',
          'tower-crema-01',
          '--start',
          'tomorrow',
          '--end',
          '+1h',
          '--title',
          'x',
        ])
      ).err,
      /--start takes an ISO time/,
    );
    assert.match((await run(maintenancesCommand, ['frobnicate'])).err, /unknown command "frobnicate"/);
    const down = await maintenancesCommand(['list'], {
      out: () => {},
      err: (l) => assert.match(l, /cannot reach the API at http:\/\/127\.0\.0\.1:9 /),
      env: { AVVISO_URL: 'http://127.0.0.1:9', AVVISO_API_KEY: viewer },
    });
    assert.equal(down, 1);
  });

  test('as a real process: avviso incidents list', async () => {
    const clean = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !/^(TEMPORAL_|MONGODB_|PLIVO_|AVVISO_)/.test(k)),
    );
    // Not spawnSync: the API it calls runs in this process and must keep answering.
    const r = await promisify(execFile)(
      process.execPath,
      [path.join(PROJECT_ROOT, 'bin', 'avviso.js'), 'incidents', 'list', '--all'],
      {
        env: { ...clean, AVVISO_URL: stack.apiUrl, AVVISO_API_KEY: viewer },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    assert.match(r.stdout, /^ID\s+PHASE/);
  });
});
