/**
 * Keeping a Temporal Schedule in place: every worker calls this at start, so a deploy that changes
 * a Schedule (its time, its task queue) changes it, while its paused state is kept (pausing is how
 * an operator stops it). Billing and retention share it.
 */
import { ScheduleAlreadyRunning, type Client, type ScheduleOptions } from '@temporalio/client';
import { connectTemporal, type TemporalSettings } from './client';

export type ScheduleParts = Pick<ScheduleOptions, 'spec' | 'action' | 'policies'>;

/** Creates the Schedule, or brings an existing one up to date with `parts`. */
export async function ensureSchedule(
  client: Client,
  scheduleId: string,
  parts: ScheduleParts,
): Promise<{ scheduleId: string; created: boolean }> {
  try {
    await client.schedule.create({ scheduleId, ...parts });
    return { scheduleId, created: true };
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  await client.schedule
    .getHandle(scheduleId)
    .update((previous) => ({ ...previous, ...parts, policies: { ...previous.policies, ...parts.policies } }));
  return { scheduleId, created: false };
}

/** For a process that has no Client of its own (the worker): connects, runs `use`, disconnects. */
export async function withTemporalClient<T>(
  settings: TemporalSettings,
  use: (client: Client) => Promise<T>,
): Promise<T> {
  const client = await connectTemporal(settings);
  try {
    return await use(client);
  } finally {
    await client.connection.close();
  }
}
