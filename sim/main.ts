/**
 * Runs the Plivo simulator on its own: `avviso sim` (which calls `main`) or `npx tsx sim/main.ts`.
 * Configuration: SIM_HOST (127.0.0.1), SIM_PORT (8090), PLIVO_AUTH_ID, PLIVO_AUTH_TOKEN, SIM_DATA_FILE.
 */
import { startSimulator } from './plivo-simulator';

/** Starts the simulator and returns once it listens; SIGINT/SIGTERM close it and end the process. */
export async function main(): Promise<void> {
  const authId = process.env.PLIVO_AUTH_ID || 'MADEVSIMULATOR0000000';
  const sim = await startSimulator({
    host: process.env.SIM_HOST || '127.0.0.1',
    port: Number(process.env.SIM_PORT || 8090),
    authId,
    authToken: process.env.PLIVO_AUTH_TOKEN || 'dev-simulator-token',
    dataFile: process.env.SIM_DATA_FILE || undefined,
    logger: true,
  });
  console.log(`Plivo simulator on ${sim.url} (API base ${sim.url}/v1/Account/${authId}, inbox ${sim.url}/inbox)`);

  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    console.log(`${signal}: closing the simulator`);
    sim.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

// Started directly (not imported by the CLI).
if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
