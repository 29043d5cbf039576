/** `avviso api`: serves the HTTP API until SIGINT or SIGTERM. */
import { loadConfig } from '../config';
import { connectStore } from '../store/db';
import { connectTemporal } from '../temporal/client';
import { buildApp } from './app';
import { PlivoSmsChannel } from '../channels/sms-plivo';

export async function runApi(): Promise<void> {
  const config = loadConfig();
  const store = await connectStore(config.mongo.uri, config.mongo.db);
  const temporal = await connectTemporal(config.temporal);
  const sms = new PlivoSmsChannel(config.plivo);
  const app = await buildApp(
    {
      store,
      temporal,
      taskQueue: config.temporal.taskQueue,
      publicUrl: config.http.publicUrl,
      plivoAuthToken: config.plivo.authToken,
      replySms: async (to, text) => {
        await sms.send([{ deliveryId: `reply:${Date.now()}`, to, text, language: 'it' }]);
      },
    },
    { level: config.logLevel, name: 'api' },
  );
  const stop = async () => {
    await app.close();
    await temporal.connection.close();
    await store.close();
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  await app.listen({ host: config.http.host, port: config.http.port });
}
