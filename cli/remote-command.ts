/**
 * What `avviso incidents` and `avviso maintenances` share: parsing the options, the API client,
 * and turning every failure into one line on stderr with an exit code (2: a usage mistake or
 * missing setting, 1: the API refused or could not be reached).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ApiCallError, apiClientFromEnv, CliUsageError, type ApiClient } from './api-client';

export interface CommandIo {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
}

export const consoleIo: CommandIo = { out: (l) => console.log(l), err: (l) => console.error(l), env: process.env };

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export type Handler = (api: ApiClient, args: Parsed, io: CommandIo) => Promise<number>;

export async function runRemoteCommand(
  group: string,
  help: string,
  options: NonNullable<ParseArgsConfig['options']>,
  handlers: Record<string, Handler>,
  args: string[],
  io: CommandIo,
): Promise<number> {
  const [command, ...rest] = args;
  if (!command || ['help', '--help', '-h'].includes(command)) {
    (command ? io.out : io.err)(help);
    return command ? 0 : 2;
  }
  const handler = handlers[command];
  if (!handler) {
    io.err(`avviso ${group}: unknown command ${JSON.stringify(command)}\n\n${help}`);
    return 2;
  }
  let parsed: Parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: { ...options, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }) as Parsed;
  } catch (e) {
    io.err(`avviso ${group} ${command}: ${(e as Error).message}\n\n${help}`);
    return 2;
  }
  if (parsed.values.help) {
    io.out(help);
    return 0;
  }
  try {
    return await handler(apiClientFromEnv(io.env), parsed, io);
  } catch (e) {
    if (e instanceof CliUsageError) {
      io.err(`avviso ${group} ${command}: ${e.message}`);
      return 2;
    }
    if (e instanceof ApiCallError) {
      io.err(`avviso ${group} ${command}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

/** The one positional id a command needs, checked against the id's shape. */
export function idArg(args: Parsed, prefix: 'inc' | 'mnt', example: string): string {
  const id = args.positionals[0];
  const noun = prefix === 'inc' ? 'incident' : 'maintenance';
  if (!id) throw new CliUsageError(`which ${noun}? e.g. ${example} (the list command shows the ids)`);
  if (!new RegExp(`^${prefix}_[a-z0-9]{16}$`).test(id))
    throw new CliUsageError(
      `${JSON.stringify(id)} is not ${noun === 'incident' ? 'an incident' : 'a maintenance'} id (${prefix}_ and 16 letters or digits)`,
    );
  return id;
}

export function str(v: Parsed['values'][string]): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function limitArg(v: Parsed['values'][string], max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new CliUsageError(`--limit takes a whole number from 1 to ${max}`);
  return n;
}

export function printJson(io: CommandIo, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}
