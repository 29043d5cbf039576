/**
 * Replay: the recorded histories of real incident and maintenance runs (test/replay/histories/) must replay
 * against the current workflow code without a determinism error. A change to workflow logic that
 * running incidents would trip on fails here: guard it with `patched()` and keep the old history.
 *
 * Recording new histories (after a deliberate, patched change):
 *   AVVISO_RECORD_HISTORIES=1 node bin/avviso.js test test/replay/replay.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TOOL_PATHS } from '../../dev/services';

const run = promisify(execFile);
import { loadDemoDataIfEmpty } from '../../store/demo';
import { eventually, sharedServers } from '../support/env';
import { call, startTestStack } from '../support/stack';

const DIR = path.join(__dirname, 'histories');

test(
  'recorded incident and maintenance histories replay against the current workflow code',
  { skip: !!process.env.AVVISO_RECORD_HISTORIES },
  async () => {
    const files = readdirSync(DIR)
      .filter((f) => f.endsWith('.json'))
      .sort();
    assert.ok(files.length > 0, 'there are recorded histories to replay');
    const histories = files.map((f) => ({
      workflowId: f.replace(/\.json$/, ''),
      history: historyFromJSON(JSON.parse(readFileSync(path.join(DIR, f), 'utf8'))),
    }));
    const failures: string[] = [];
    for await (const r of Worker.runReplayHistories(
      { workflowBundle: { codePath: sharedServers().workflowBundlePath }, replayName: 'avviso-replay' },
      histories,
    )) {
      if (r.error) failures.push(`${r.workflowId}: ${r.error.message}`);
    }
    assert.deepEqual(failures, []);
  },
);

test(
  'record histories of typical incidents and maintenances',
  { skip: !process.env.AVVISO_RECORD_HISTORIES },
  async () => {
    const stack = await startTestStack(__filename, {
      deliveryPolicy: { deliveryTimeoutMs: 10_000, maxAttempts: 3, sweepEveryMs: 200 },
    });
    try {
      await loadDemoDataIfEmpty(stack.store);
      // A history of older code is kept as it is: it is what running incidents of that code replay.
      const record = async (
        name: string,
        siteIds: string[],
        whileOpen: (id: string) => Promise<void> = async () => undefined,
      ) => {
        if (existsSync(path.join(DIR, `${name}.json`))) return;
        const opened = await call(stack, 'POST', '/v1/incidents', { siteIds });
        const id = opened.body.id;
        await eventually('notified', async () =>
          (await call(stack, 'GET', `/v1/incidents/${id}`)).body.phase === 'notified' ? true : undefined,
        );
        await whileOpen(id);
        await call(stack, 'POST', `/v1/incidents/${id}/resolve`, { note: 'recorded' });
        await eventually('over', async () =>
          (await call(stack, 'GET', `/v1/incidents/${id}`)).body.phase === 'billed' ? true : undefined,
        );
        // The CLI's JSON export is the format the Temporal UI downloads and historyFromJSON reads.
        const { stdout } = await run(
          TOOL_PATHS.temporal,
          [
            'workflow',
            'show',
            '--workflow-id',
            `incident:${id}`,
            '--address',
            sharedServers().temporalAddress,
            '--output',
            'json',
          ],
          { maxBuffer: 64 * 1024 * 1024 },
        );
        writeFileSync(path.join(DIR, `${name}.json`), JSON.stringify(JSON.parse(stdout), null, 1));
      };
      await record('incident-open-notify-resolve', ['tower-lodi-02']);
      // Lifecycle v2: a new estimate, an escalation by hand and an added site before the resolution.
      await record('incident-v2-update-escalate-scope-resolve', ['ap-lodi-02-a'], async (id) => {
        await call(stack, 'POST', `/v1/incidents/${id}/updates`, {
          text: 'recorded',
          estimatedEnd: new Date(Date.now() + 3600_000).toISOString(),
        });
        await call(stack, 'POST', `/v1/incidents/${id}/escalate`, { reason: 'recorded' });
        await call(stack, 'POST', `/v1/incidents/${id}/scope`, { siteIds: ['tower-lodi-02'] });
        await eventually('the update and the added site sent', async () => {
          const d = (await call(stack, 'GET', `/v1/incidents/${id}`)).body.deliveries;
          return d.sms?.update && d.sms?.outage?.delivered >= 2 ? true : undefined;
        });
      });
      // Acknowledged escalation (patch 'escalation-ack'): a contact on call texted, then the escalation taken.
      await record('incident-v2-escalate-acknowledge', ['ap-crema-01-a'], async (id) => {
        await call(stack, 'POST', '/v1/contacts', {
          id: 'recorded',
          name: 'Recorded',
          phones: ['+393470009999'],
          onCall: true,
        });
        await call(stack, 'POST', `/v1/incidents/${id}/escalate`, { reason: 'recorded' });
        await eventually('the contact texted', async () =>
          (await stack.inbox())['+393470009999']?.length ? true : undefined,
        );
        await call(stack, 'POST', `/v1/incidents/${id}/acknowledge`, {});
        await eventually('acknowledged in the timeline', async () =>
          (await call(stack, 'GET', `/v1/incidents/${id}`)).body.timeline.some((e: { note?: string }) =>
            /acknowledged/.test(e.note ?? ''),
          )
            ? true
            : undefined,
        );
      });
      // Notices sent while planned (patch 'planning-sends'): the first rounds after the planning and the resolution only watch.
      await record('incident-v3-sent-while-planned', ['tower-lodi-01']);
      await record('incident-v2-cancelled', ['tower-crema-01'], async (id) => {
        await call(stack, 'POST', `/v1/incidents/${id}/cancel`, { reason: 'recorded' });
      });

      // Maintenance: created, rescheduled, started, completed; and one cancelled before it began.
      const recordMaintenance = async (
        name: string,
        siteIds: string[],
        startInSeconds: number,
        steps: (id: string) => Promise<void>,
      ) => {
        if (existsSync(path.join(DIR, `${name}.json`))) return;
        const at = (s: number) => new Date(Date.now() + s * 1000).toISOString();
        const created = await call(stack, 'POST', '/v1/maintenances', {
          siteIds,
          startsAt: at(startInSeconds),
          endsAt: at(3600),
          title: 'recorded',
        });
        const id = created.body.id;
        await eventually('announced', async () =>
          (await call(stack, 'GET', `/v1/maintenances/${id}`)).body.timeline.some(
            (t: { event: string }) => t.event === 'announced',
          )
            ? true
            : undefined,
        );
        await steps(id);
        await eventually('over', async () =>
          (await call(stack, 'GET', `/v1/maintenances/${id}`)).body.phase === 'billed' ? true : undefined,
        );
        const { stdout } = await run(
          TOOL_PATHS.temporal,
          [
            'workflow',
            'show',
            '--workflow-id',
            `maintenance:${id}`,
            '--address',
            sharedServers().temporalAddress,
            '--output',
            'json',
          ],
          { maxBuffer: 64 * 1024 * 1024 },
        );
        writeFileSync(path.join(DIR, `${name}.json`), JSON.stringify(JSON.parse(stdout), null, 1));
      };
      await recordMaintenance('maintenance-reschedule-start-complete', ['tower-lodi-02'], 600, async (id) => {
        await call(stack, 'POST', `/v1/maintenances/${id}/reschedule`, {
          startsAt: new Date(Date.now() + 3000).toISOString(),
          endsAt: new Date(Date.now() + 1800_000).toISOString(),
          reason: 'recorded',
        });
        await eventually('in progress', async () =>
          (await call(stack, 'GET', `/v1/maintenances/${id}`)).body.phase === 'in_progress' ? true : undefined,
        );
        await call(stack, 'POST', `/v1/maintenances/${id}/complete`, { note: 'recorded' });
      });
      await recordMaintenance('maintenance-cancelled', ['tower-crema-01'], 600, async (id) => {
        await call(stack, 'POST', `/v1/maintenances/${id}/cancel`, { reason: 'recorded' });
      });
    } finally {
      await stack.stop();
    }
  },
);
