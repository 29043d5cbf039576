/**
 * TLS to the Temporal frontend, from TEMPORAL_TLS* variables: server verification with the system's
 * roots or a CA file, and mutual TLS with a client certificate and key (Temporal Cloud, or a
 * self-hosted cluster with mTLS). The files are read at start, so a wrong path is a ConfigError
 * naming the variable rather than a handshake failure later.
 */
import { readFileSync } from 'node:fs';

export interface TemporalTls {
  serverRootCACertificate?: Buffer;
  clientCertPair?: { crt: Buffer; key: Buffer };
  serverNameOverride?: string;
}

export interface TemporalTlsVariables {
  TEMPORAL_TLS?: 'true' | 'false';
  TEMPORAL_TLS_CA_FILE?: string;
  TEMPORAL_TLS_CERT_FILE?: string;
  TEMPORAL_TLS_KEY_FILE?: string;
  TEMPORAL_TLS_SERVER_NAME?: string;
}

/** The TLS settings (undefined: plain connection), or the problems, one line per variable. */
export function temporalTlsFrom(e: TemporalTlsVariables): { tls?: TemporalTls; problems: string[] } {
  const problems: string[] = [];
  const read = (name: keyof TemporalTlsVariables): Buffer | undefined => {
    const file = e[name];
    if (!file) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      problems.push(
        `${name} is ${JSON.stringify(file)}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
      return undefined;
    }
  };
  const ca = read('TEMPORAL_TLS_CA_FILE');
  const crt = read('TEMPORAL_TLS_CERT_FILE');
  const key = read('TEMPORAL_TLS_KEY_FILE');
  if (!!e.TEMPORAL_TLS_CERT_FILE !== !!e.TEMPORAL_TLS_KEY_FILE) {
    problems.push(
      `${e.TEMPORAL_TLS_CERT_FILE ? 'TEMPORAL_TLS_KEY_FILE' : 'TEMPORAL_TLS_CERT_FILE'} is not set: mutual TLS needs both the client certificate (TEMPORAL_TLS_CERT_FILE) and its key (TEMPORAL_TLS_KEY_FILE)`,
    );
  }
  const anyFile = !!(
    e.TEMPORAL_TLS_CA_FILE ||
    e.TEMPORAL_TLS_CERT_FILE ||
    e.TEMPORAL_TLS_KEY_FILE ||
    e.TEMPORAL_TLS_SERVER_NAME
  );
  if (e.TEMPORAL_TLS === 'false' && anyFile)
    problems.push(
      'TEMPORAL_TLS is "false" but TLS files or a server name are set: remove TEMPORAL_TLS, or the TEMPORAL_TLS_* settings',
    );
  if (problems.length > 0 || (e.TEMPORAL_TLS !== 'true' && !anyFile)) return { problems };
  return {
    problems,
    tls: {
      ...(ca ? { serverRootCACertificate: ca } : {}),
      ...(crt && key ? { clientCertPair: { crt, key } } : {}),
      ...(e.TEMPORAL_TLS_SERVER_NAME ? { serverNameOverride: e.TEMPORAL_TLS_SERVER_NAME } : {}),
    },
  };
}
