/**
 * Runs the Plivo simulator on its own: `avviso sim` (which calls `main`) or `npx tsx sim/main.ts`.
 * Configuration: SIM_HOST (127.0.0.1), SIM_PORT (8090), PLIVO_AUTH_ID, PLIVO_AUTH_TOKEN, SIM_DATA_FILE,
 * SIM_FAULTS (JSON, the body of `PUT /control/faults`: faults and limits in force from the start).
 */
import { parseFaultSettings, startSimulator, type FaultSettingsInput } from './plivo-simulator';

/** SIM_FAULTS as settings; throws with a readable message when it is not valid JSON or not valid settings. */
export function faultsFromEnv(raw: string | undefined): FaultSettingsInput | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new Error(`SIM_FAULTS is not valid JSON: ${(err as Error).message}`);
  }
  try {
    parseFaultSettings(value);
  } catch (err) {
    throw new Error(`SIM_FAULTS: ${(err as Error).message}`);
  }
  return value as FaultSettingsInput;
}

/** Starts the simulator and returns once it listens; SIGINT/SIGTERM close it and end the process. */
export async function main(): Promise<void> {
  const authId = process.env.PLIVO_AUTH_ID || 'MADEVSIMULATOR0000000';
  const sim = await startSimulator({
    host: process.env.SIM_HOST || '127.0.0.1',
    port: Number(process.env.SIM_PORT || 8090),
    authId,
    authToken: process.env.PLIVO_AUTH_TOKEN || 'dev-simulator-token',
    dataFile: process.env.SIM_DATA_FILE || undefined,
    faults: faultsFromEnv(process.env.SIM_FAULTS),
    logger: true,
  });
  console.log(
    `Plivo simulator on ${sim.url} (API base ${sim.url}/v1/Account/${authId}, inbox ${sim.url}/inbox, control ${sim.url}/control/faults)`,
  );

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
