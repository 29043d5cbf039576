import { loadConfig, type Config } from '../config';

/** Field names whose values are secrets, wherever they sit in the configuration. */
const SECRET_FIELD = /(pass|password|secret|token|apiKey)$/i;

/**
 * The configuration as `avviso check-config` prints it: every secret masked (the Plivo token, the
 * SMTP password, the webhook and console secrets, the social networks' keys and tokens), a
 * password in the MongoDB URI hidden, the admin key shown by its id only, and the TLS files by
 * what they hold, never by their bytes.
 */
export function shownConfig(config: Config): unknown {
  const tls = config.temporal.tls;
  const withTls = {
    ...config,
    mongo: { ...config.mongo, uri: config.mongo.uri.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@') },
    temporal: {
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
    },
    ...(config.adminKey ? { adminKey: `${config.adminKey.split('_').slice(0, 2).join('_')}_***` } : {}),
  };
  return mask(withTls);
}

function mask(value: unknown, key = ''): unknown {
  if (typeof value === 'string' && SECRET_FIELD.test(key) && key !== 'adminKey') return '***';
  if (Array.isArray(value)) return value.map((v) => mask(v));
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mask(v, k)]));
  }
  return value;
}

/** Prints the configuration the environment gives, with its secrets masked; fails on a bad value. */
export async function checkConfig(): Promise<number> {
  console.log(JSON.stringify(shownConfig(loadConfig()), null, 2));
  return 0;
}
