/**
 * Heartbeats for the incident's and maintenance's activities while they run. The heartbeat timeout
 * is how long a killed worker's activity waits before another worker takes it over, so it is short
 * (15 s: workflows/incident.ts); an activity that said nothing for that long, while one query or one
 * Plivo request ran, would be taken for a dead one and started again beside itself (a 100,000
 * fan-out stalled so when planning beat only between its steps). These beat every 3 s from a timer,
 * whatever the activity is waiting for. Their repeats are safe because planning is idempotent and a
 * send is claimed by a unique insert; they carry no heartbeat details (billing, which resumes from
 * its details, heartbeats by itself).
 */
import { Context } from '@temporalio/activity';

const EVERY_MS = 3_000;

/** The activity's context, or undefined when a test calls the function directly. */
function currentContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/** The same activities, each heartbeating every EVERY_MS while it runs. */
export function keptAlive<T extends Record<string, (input: never) => Promise<unknown>>>(activities: T): T {
  const wrapped: Record<string, (input: never) => Promise<unknown>> = {};
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] = async (input: never) => {
      const context = currentContext();
      const beat = context ? setInterval(() => context.heartbeat(), EVERY_MS) : undefined;
      try {
        return await fn(input);
      } finally {
        clearInterval(beat);
      }
    };
  }
  return wrapped as T;
}
