/**
 * A child process that the dev stack or the test harness owns: its output is prefixed with its
 * name, it can be waited on until healthy, and stopping it escalates from SIGTERM to SIGKILL so
 * that nothing is left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import net from 'node:net';

export interface ManagedProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  /** Resolves with the exit code (or signal name) when the process ends, however it ends. */
  exited: Promise<number | string>;
  isRunning(): boolean;
  /** Its last lines of output (both streams, at most LAST_LINES), kept even when the output is ignored. */
  lastLines(): string[];
  stop(graceMs?: number): Promise<void>;
}

/** Lines of output kept per process, for the error of one that exits before it is healthy. */
const LAST_LINES = 30;

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where its output goes: 'prefix' writes each line to our stderr as `[name] line`. */
  output?: 'prefix' | 'ignore';
  /**
   * 'pipe' gives it a standard input that we hold open and never write to: a child that exits at
   * the end of its input then never outlives us, however we end (even by SIGKILL). Default 'ignore'.
   */
  stdin?: 'ignore' | 'pipe';
  /** Every line also goes to this file (appended), so that what is not shown can still be read. */
  logFile?: string;
  /** With 'prefix': only the lines this accepts reach our stderr (all of them are in `logFile`). */
  show?: (line: string) => boolean;
}

export function spawnManaged(name: string, command: string, args: string[], opts: SpawnOptions = {}): ManagedProcess {
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'],
  });
  child.stdin?.on('error', () => undefined); // EPIPE once it has exited: its exit is reported below
  let running = true;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      running = false;
      resolve(code ?? signal ?? 'unknown');
    });
    child.once('error', (err) => {
      running = false;
      process.stderr.write(`[${name}] could not start ${command}: ${err.message}\n`);
      resolve('spawn-error');
    });
  });
  const log = opts.logFile ? openLog(opts.logFile) : undefined;
  // Read even when ignored: a server that exits before it is healthy (FerretDB once did in CI, with
  // its output ignored by the test run) must say why in the error (waitUntilHealthy).
  const last: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (line) => {
      last.push(line);
      if (last.length > LAST_LINES) last.shift();
      log?.write(`${line}\n`);
      if (opts.output !== 'ignore' && (!opts.show || opts.show(line))) process.stderr.write(`[${name}] ${line}\n`);
    });
  }
  // 'close' comes after the last line of both streams ('exit' may come before them).
  if (log) child.once('close', () => log.end());
  return {
    name,
    pid: child.pid ?? -1,
    child,
    exited,
    isRunning: () => running,
    lastLines: () => [...last],
    async stop(graceMs = 10_000) {
      if (!running) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

function openLog(file: string): WriteStream {
  mkdirSync(path.dirname(file), { recursive: true });
  const stream = createWriteStream(file, { flags: 'a' });
  // A log that cannot be written must not take the stack down: say so once, keep running.
  stream.once('error', (err) => process.stderr.write(`cannot write ${file}: ${err.message}\n`));
  return stream;
}

/** Polls `probe` until it succeeds; fails early, with the reason, if `proc` exits first. */
export async function waitUntilHealthy(
  what: string,
  probe: () => Promise<unknown>,
  opts: { timeoutMs?: number; proc?: ManagedProcess } = {},
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (opts.proc && !opts.proc.isRunning()) {
      const code = await opts.proc.exited;
      // Its streams may still hold its last words when the exit is seen: a moment for them.
      await new Promise((r) => setTimeout(r, 100));
      const lines = opts.proc.lastLines();
      throw new Error(
        `${what} exited (${code}) before it became healthy; ${lines.length ? `its last lines:\n${lines.join('\n')}` : 'it wrote nothing'}`,
      );
    }
    try {
      await probe();
      return;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(
    `${what} was not healthy after ${Math.round((opts.timeoutMs ?? 60_000) / 1000)} s: ${(lastError as Error)?.message ?? lastError}`,
  );
}

/** Throws, naming the service and the variable that moves it, when a port is taken. */
export async function assertPortFree(host: string, port: number, what: string, envVar: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `port ${port} on ${host}, wanted by ${what}, is already in use: stop what uses it (is another \`avviso dev\` running?) or set ${envVar} to another port.`
            : `cannot listen on ${host}:${port} for ${what}: ${err.message}`,
        ),
      ),
    );
    server.listen(port, host, () => server.close(() => resolve()));
  });
}

/** A port the OS says is free now (for tests, which run side by side). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A free port in 20000-32767, below Linux's ephemeral range (32768-60999), for a server that is
 * restarted on the same port: a port the kernel hands out for outgoing connections (as
 * freePort's are) can be taken by one while its server is down.
 */
export async function restartablePort(host = '127.0.0.1'): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port, host, () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
}
