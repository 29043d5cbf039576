/**
 * Heartbeats for activities that plan records for a whole audience. Planning 100,000 records takes
 * a minute or two on FerretDB, and an activity that says nothing for its heartbeat timeout (1
 * minute) is taken for one whose worker died: Temporal starts it again beside the live attempt,
 * and again, and the workflow never moves on (a 100,000 fan-out stalled so: prepareResolution took
 * about 100 s and was on its fifth attempt). These activities heartbeat every 10 s while they run.
 * Their repeats are safe because planning is idempotent; they carry no heartbeat details (billing,
 * which resumes from its details, heartbeats by itself).
 */
import { Context } from '@temporalio/activity';

const EVERY_MS = 10_000;

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
