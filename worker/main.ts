/** `avviso worker`: connects to Temporal, MongoDB and Plivo, then runs until SIGINT or SIGTERM. */
import { loadConfig } from '../config';
import { connectStore } from '../store/db';
import { startReceiptApplier } from '../store/receipts';
import { buildDeliveryDeps, configuredChannels } from './delivery-deps';
import { RulesHolder } from '../rules';
import { refusePlaceholderContacts } from '../config/start-checks';
import { rulesResolver } from '../store/rule-versions';
import { createLogger } from '../domain/log';
import { bundleWorkflows, createWorker } from './worker';
import { ensureBillingScheduleWith } from '../billing/schedule';
import { ensureRetentionScheduleWith } from '../retention/schedule';
import { Runtime, makeTelemetryFilterString } from '@temporalio/worker';

export async function runWorker(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('worker', config.logLevel);
  Runtime.install({ telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } } });
  // The rules are checked before any connection: a bad start says what is wrong and touches nothing.
  const rulesHolder = await RulesHolder.open({ path: config.rulesPath, watch: true });
  try {
    refusePlaceholderContacts(config, rulesHolder.current());
  } catch (err) {
    await rulesHolder.close();
    throw err;
  }
  const store = await connectStore(config.mongo.uri, config.mongo.db);
  const workflowBundle = await bundleWorkflows();
  process.on('SIGHUP', () => void rulesHolder.reload());
  const { worker, connection } = await createWorker({
    temporal: config.temporal,
    workflowBundle,
    deps: buildDeliveryDeps({
      store,
      plivo: config.plivo,
      publicUrl: config.http.publicUrl,
      logger,
      otherChannels: configuredChannels(config, store, logger),
      rules: rulesResolver(store, rulesHolder),
    }),
  });
  await ensureBillingScheduleWith(config.temporal, logger);
  await ensureRetentionScheduleWith(config.temporal, logger);
  // Receipts are stored by the API as they come and applied here: the API keeps no loop of its own.
  const applier = startReceiptApplier(
    store,
    (err) => logger.error({ err }, 'applying receipts failed; will retry'),
    config.receiptsEveryMs,
  );
  logger.info({ taskQueue: config.temporal.taskQueue, temporal: config.temporal.address }, 'worker running');
  // Worker.run() shuts down gracefully on SIGINT/SIGTERM (the Runtime installs those handlers).
  try {
    await worker.run();
  } finally {
    await applier.stop();
    await rulesHolder.close();
    await connection.close();
    await store.close();
    logger.info('worker stopped');
  }
}
