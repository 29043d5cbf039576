import { loadConfig } from '../config';

/** Prints the configuration the environment gives, with the auth token masked; fails on a bad value. */
export async function checkConfig(): Promise<number> {
  const config = loadConfig();
  // The TLS files are shown by what they hold, never by their bytes (the key is a secret).
  const tls = config.temporal.tls;
  const temporal = {
    ...config.temporal,
    ...(tls
      ? {
          tls: {
            ca: !!tls.serverRootCACertificate,
            clientCertificate: !!tls.clientCertPair,
            serverName: tls.serverNameOverride,
          },
        }
      : {}),
  };
  const social = config.social && {
    ...config.social,
    ...(config.social.x
      ? { x: { ...config.social.x, apiKeySecret: '***', accessToken: '***', accessTokenSecret: '***' } }
      : {}),
    ...(config.social.mastodon ? { mastodon: { ...config.social.mastodon, accessToken: '***' } } : {}),
  };
  const shown = {
    ...config,
    temporal,
    plivo: { ...config.plivo, authToken: '***' },
    ...(config.adminKey ? { adminKey: `${config.adminKey.split('_').slice(0, 2).join('_')}_***` } : {}),
    ...(social ? { social } : {}),
  };
  console.log(JSON.stringify(shown, null, 2));
  return 0;
}
