import { loadConfig } from '../config';

/** Prints the configuration the environment gives, with the auth token masked; fails on a bad value. */
export async function checkConfig(): Promise<number> {
  const config = loadConfig();
  const shown = { ...config, plivo: { ...config.plivo, authToken: '***' }, ...(config.adminKey ? { adminKey: `${config.adminKey.split('_').slice(0, 2).join('_')}_***` } : {}) };
  console.log(JSON.stringify(shown, null, 2));
  return 0;
}
