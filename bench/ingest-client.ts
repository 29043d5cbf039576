/**
 * The load generator of bench/ingest.ts, in a process of its own: posting and timing the requests
 * on the API's event loop would slow the API down and count the client's work as the API's.
 * Started by bench/ingest.ts (child_process.fork); each message is one storm to post, answered
 * with its latencies, statuses, wall time and this process's CPU time.
 *
 * Plain node:http with a keep-alive agent of `concurrency` sockets: one connection per in-flight
 * request, reused, as Alertmanager's own HTTP client does.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface StormRequest {
  url: string;
  token: string;
  concurrency: number;
  bodies: string[];
}

export interface StormResult {
  latencies: number[];
  statuses: Record<string, number>;
  wallMs: number;
  /** CPU time of this (client) process during the storm, user + system. */
  clientCpuMs: number;
}

function post(agent: http.Agent, url: URL, token: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${token}`,
        },
      },
      (res) => {
        res.on('data', () => undefined);
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function storm({ url, token, concurrency, bodies }: StormRequest): Promise<StormResult> {
  const target = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, bodies.length) }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        const t0 = performance.now();
        const status = await post(agent, target, token, body);
        latencies.push(performance.now() - t0);
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }),
  );
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  agent.destroy();
  return { latencies, statuses, wallMs, clientCpuMs: (used.user + used.system) / 1000 };
}

process.on('message', (msg: StormRequest) => {
  storm(msg).then(
    (result) => process.send!({ result }),
    (err: unknown) => process.send!({ error: String(err instanceof Error ? (err.stack ?? err.message) : err) }),
  );
});
