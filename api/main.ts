/** `avviso api`: serves the HTTP API until SIGINT or SIGTERM. */
import { loadConfig } from '../config';
import { connectStore } from '../store/db';
import { connectTemporal } from '../temporal/client';
import { buildApp } from './app';
import { PlivoSmsChannel } from '../channels/sms-plivo';
import { RulesHolder } from '../rules';
import { integrationsAtStart, refusePlaceholderContacts } from '../config/start-checks';

export async function runApi(): Promise<void> {
  const config = loadConfig();
  // Every file is checked before any connection: a bad start says what is wrong and touches nothing.
  const integrations = await integrationsAtStart(config, process.env);
  // The rules reload when their files change (and on SIGHUP); a broken file keeps the old rules.
  const rules = await RulesHolder.open({ path: config.rulesPath, watch: true });
  try {
    refusePlaceholderContacts(config, rules.current());
  } catch (err) {
    await rules.close();
    throw err;
  }
  const store = await connectStore(config.mongo.uri, config.mongo.db);
  const temporal = await connectTemporal(config.temporal);
  const sms = new PlivoSmsChannel(config.plivo);
  const app = await buildApp(
    {
      store,
      rules,
      integrations,
      temporal,
      taskQueue: config.temporal.taskQueue,
      publicUrl: config.http.publicUrl,
      plivoAuthToken: config.plivo.authToken,
      access: { rateLimitPerMinute: config.api.rateLimitPerMinute },
      alertSettleSeconds: config.alertSettleSeconds,
      ...(config.consoleSecret ? { consoleSecret: config.consoleSecret } : {}),
      bodyLimit: config.api.bodyLimitBytes,
      statusPage: { siteName: config.statusPage.name, timeZone: config.statusPage.timeZone },
      replySms: async (to, text) => {
        await sms.send([{ deliveryId: `reply:${Date.now()}`, to, text, language: 'it' }]);
      },
    },
    { level: config.logLevel, name: 'api' },
  );
  rules.onReload((outcome) => app.log.info({ outcome }, 'rules reload'));
  process.on('SIGHUP', () => void rules.reload());
  const stop = async () => {
    await rules.close();
    await app.close();
    await temporal.connection.close();
    await store.close();
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  await app.listen({ host: config.http.host, port: config.http.port });
}
