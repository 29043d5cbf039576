/**
 * `avviso keys create|list|revoke`: API keys, straight in MongoDB (needs MONGODB_URI only), so
 * that the first admin key can be made before anyone can call the API.
 */
import { parseArgs } from 'node:util';
import { ConfigError, mongoFromEnv } from '../config';
import { connectStore, type Store } from '../store/db';
import { ApiKeyInputError, createApiKey, listApiKeys, revokeApiKey, type ApiKeyInfo } from '../store/api-keys';
import { API_KEY_ROLES } from '../domain/api-keys';

const HELP = `usage: avviso keys <command> [options]

Commands:
  create --name NAME --role ROLE [--integration SOURCE/NAME] [--rate-limit N] [--json]
                 make a key and print it: it is shown this once (only its hash is stored)
  list [--all] [--json]
                 the keys, without secrets (--all: revoked ones too)
  revoke ID      revoke a key at once

Roles: ${API_KEY_ROLES.join(', ')}.
  admin      keys, rules, and everything an operator may do
  operator   incidents, maintenances, sites, subscribers, imports; and what a viewer may do
  viewer     read only (GET /v1/..., /metrics)
  ingest     one monitoring integration's webhook, given with --integration, e.g. alertmanager/noc
             (the tail of its URL /v1/ingest/<source>/<name>)

Needs MONGODB_URI (and MONGODB_DB when the URI names no database); e.g. for \`avviso dev\`:
  MONGODB_URI=mongodb://127.0.0.1:27017/avviso avviso keys create --name me --role admin`;

function table(keys: ApiKeyInfo[]): string {
  const rows = [['ID', 'NAME', 'ROLE', 'INTEGRATION', 'CREATED', 'LAST USED', 'REVOKED']];
  const day = (d?: Date) => (d ? d.toISOString().slice(0, 16).replace('T', ' ') : '-');
  for (const k of keys)
    rows.push([k.id, k.name, k.role, k.integration ?? '-', day(k.createdAt), day(k.lastUsedAt), day(k.revokedAt)]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export async function keysCommand(
  args: string[],
  out: (line: string) => void = console.log,
  err: (line: string) => void = console.error,
): Promise<number> {
  const [command, ...rest] = args;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    out(HELP);
    return command ? 0 : 2;
  }
  if (!['create', 'list', 'revoke'].includes(command)) {
    err(`avviso keys: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
    return 2;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        name: { type: 'string' },
        role: { type: 'string' },
        integration: { type: 'string' },
        'rate-limit': { type: 'string' },
        all: { type: 'boolean' },
        json: { type: 'boolean' },
      },
    });
  } catch (e) {
    err(`avviso keys ${command}: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  const o = parsed.values as {
    name?: string;
    role?: string;
    integration?: string;
    'rate-limit'?: string;
    all?: boolean;
    json?: boolean;
  };

  let mongo: { uri: string; db: string };
  try {
    mongo = mongoFromEnv();
  } catch (e) {
    if (e instanceof ConfigError) {
      err(`avviso keys: ${e.problems.join('; ')}`);
      return 2;
    }
    throw e;
  }
  let store: Store | undefined;
  try {
    store = await connectStore(mongo.uri, mongo.db);
    if (command === 'create') {
      if (!o.name || !o.role) {
        err(
          'avviso keys create: --name and --role are required, e.g. avviso keys create --name noc-scripts --role operator',
        );
        return 2;
      }
      const limit = o['rate-limit'] === undefined ? undefined : Number(o['rate-limit']);
      const { key, info } = await createApiKey(store, {
        name: o.name,
        role: o.role,
        integration: o.integration,
        rateLimitPerMinute: limit,
        createdBy: 'cli',
      });
      if (o.json) out(JSON.stringify({ key, ...info }, null, 2));
      else {
        out(`Created ${info.role} key ${info.id} (${info.name})${info.integration ? ` for ${info.integration}` : ''}.`);
        out(`Key (shown this once; only its hash is stored): ${key}`);
        out(`Use it as: Authorization: Bearer ${key}`);
      }
      return 0;
    }
    if (command === 'list') {
      const keys = await listApiKeys(store, { includeRevoked: o.all });
      out(
        o.json
          ? JSON.stringify(keys, null, 2)
          : keys.length
            ? table(keys)
            : `No ${o.all ? '' : 'active '}keys; make one with: avviso keys create --name NAME --role admin`,
      );
      return 0;
    }
    const id = parsed.positionals[0];
    if (!id) {
      err('avviso keys revoke: which key? avviso keys revoke <id> (avviso keys list shows the ids)');
      return 2;
    }
    const revoked = await revokeApiKey(store, id.replace(/^avk_/, '').split('_')[0]!, 'cli');
    if (!revoked) {
      err(`avviso keys revoke: no key ${id}; avviso keys list shows the ids`);
      return 1;
    }
    out(
      o.json
        ? JSON.stringify(revoked, null, 2)
        : `Revoked key ${revoked.id} (${revoked.name}) at ${revoked.revokedAt!.toISOString()}.`,
    );
    return 0;
  } catch (e) {
    if (e instanceof ApiKeyInputError) {
      err(`avviso keys ${command}: ${e.message}`);
      return 2;
    }
    err(`avviso keys ${command}: ${(e as Error).message}`);
    return 1;
  } finally {
    await store?.close();
  }
}
