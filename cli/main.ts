/**
 * `avviso <command>`: one entry point for every process of the system.
 * Each command's module is loaded only when it runs, so `avviso help` starts fast. (`require`, not
 * `import()`: bin/avviso.js registers TypeScript for CommonJS loading only.)
 */
const COMMANDS: Record<string, { summary: string; run: (args: string[]) => Promise<number | void> }> = {
  dev: {
    summary:
      "start the whole stack on 127.0.0.1 (Temporal, FerretDB, Plivo simulator, worker, API); --verbose shows FerretDB's warnings",
    run: async (args) => (require('../dev/stack') as typeof import('../dev/stack')).runDevStack(args),
  },
  api: {
    summary: 'serve the HTTP API (needs TEMPORAL_ADDRESS, MONGODB_URI, PLIVO_*)',
    run: async () => (require('../api/main') as typeof import('../api/main')).runApi(),
  },
  worker: {
    summary: 'run a Temporal worker for the incident workflows and their activities',
    run: async () => (require('../worker/main') as typeof import('../worker/main')).runWorker(),
  },
  sim: {
    summary: 'run the Plivo simulator alone (SIM_HOST, SIM_PORT, SIM_DATA_FILE)',
    run: async () => {
      await (require('../sim/main') as typeof import('../sim/main')).main();
    },
  },
  rules: {
    summary: 'check, explain and simulate the notification rules (no database needed; avviso rules --help)',
    run: async (args) => (require('./rules') as typeof import('./rules')).rulesCommand(args),
  },
  keys: {
    summary: 'create, list and revoke API keys (needs MONGODB_URI only; avviso keys --help)',
    run: async (args) => (require('./keys') as typeof import('./keys')).keysCommand(args),
  },
  incidents: {
    summary:
      'list, show, open, update, resolve and cancel incidents over the API (AVVISO_URL, AVVISO_API_KEY; avviso incidents --help)',
    run: async (args) => (require('./incidents') as typeof import('./incidents')).incidentsCommand(args),
  },
  maintenances: {
    summary:
      'list, show, schedule, reschedule, complete and cancel maintenances over the API (avviso maintenances --help)',
    run: async (args) => (require('./maintenances') as typeof import('./maintenances')).maintenancesCommand(args),
  },
  billing: {
    summary: 'bill a month by hand, export its invoice lines, billing reports (avviso billing --help)',
    run: async (args) => (require('./billing') as typeof import('./billing')).billingCommand(args),
  },
  retention: {
    summary: 'delete records past their age, or count them with --dry-run (avviso retention --help)',
    run: async (args) => (require('./retention') as typeof import('./retention')).retentionCommand(args),
  },
  import: {
    summary: 'import sites or subscribers from a CSV or NDJSON export (needs MONGODB_URI only; avviso import --help)',
    run: async (args) => (require('./import') as typeof import('./import')).importCommand(args),
  },
  'check-config': {
    summary: 'validate the environment and print the configuration (secrets masked)',
    run: async () => (require('./check-config') as typeof import('./check-config')).checkConfig(),
  },
  test: {
    summary:
      'run the test suite against a Temporal dev server and a FerretDB it starts, then the store and delivery tests on mongo-java-server (--engine; npm test adds lint and type check)',
    run: async (args) => (require('../test/support/run') as typeof import('../test/support/run')).runTests(args),
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    'usage: avviso <command>',
    '',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

/**
 * A process started by `avviso dev` ends itself when `avviso dev` is gone (even killed with
 * SIGKILL, which it cannot forward), so that no worker or API is left behind.
 */
function exitWithParent(): void {
  const parent = Number(process.env.AVVISO_PARENT_PID);
  if (!parent) return;
  setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      process.exit(1);
    }
  }, 1000).unref();
}

export async function main(argv: string[]): Promise<number | void> {
  exitWithParent();
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    console.log(usage());
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`avviso: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  return command.run(rest);
}
