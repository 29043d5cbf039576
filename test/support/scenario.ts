/**
 * What the end-to-end and escalation tests start from: rules of their own over the shipped contacts
 * and templates, a stack with a quick delivery policy and the demo network, and a wait for an
 * incident's phase.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadDemoDataIfEmpty } from '../../store/demo';
import { eventually, sharedServers } from './env';
import { call, startTestStack, type TestStack, type TestStackOptions } from './stack';

const DEFAULT_RULES = path.join(__dirname, '..', '..', 'rules', 'default');

/** Receipts awaited 10 s, three attempts, overdue ones looked for every 200 ms: a test sees retries quickly. */
export const QUICK_DELIVERY = { deliveryTimeoutMs: 10_000, maxAttempts: 3, sweepEveryMs: 200 };

/**
 * A rules folder of its own (`rules-<name>-<pid>`) including the shipped contacts and templates, with
 * the defaults every test shares (Rome, sender Avviso, Italian and English, SMS); `rest` goes on from
 * there: the test's own lines under `defaults:` (indented), then its `rules:`.
 */
export function writeTestRules(name: string, rest: string): string {
  const dir = path.join(sharedServers().tmpDir, `rules-${name}-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'avviso.yaml'),
    `version: 1
include:
  - ${path.join(DEFAULT_RULES, 'contacts.yaml')}
  - ${path.join(DEFAULT_RULES, 'templates')}/
defaults:
  timeZone: Europe/Rome
  senderId: Avviso
  language: it
  languages: [it, en]
  template: sms
${rest}`,
  );
  return dir;
}

/** A stack on these rules with the quick delivery policy (unless `options` says otherwise) and the demo network. */
export async function startDemoStack(
  testFile: string,
  rulesPath: string,
  options: TestStackOptions = {},
): Promise<TestStack> {
  const stack = await startTestStack(testFile, { deliveryPolicy: QUICK_DELIVERY, rulesPath, ...options });
  await loadDemoDataIfEmpty(stack.store);
  return stack;
}

/** The incident once it reaches `phase`; failing, the error shows the last one seen. */
export async function phaseOf(stack: TestStack, id: string, phase: string) {
  let last: unknown;
  return eventually(`phase ${phase}`, async () => {
    const r = (await call(stack, 'GET', `/v1/incidents/${id}`)).body;
    last = r;
    return r.phase === phase ? r : undefined;
  }).catch((err: Error) => {
    throw new Error(`${err.message}; last seen: ${JSON.stringify(last)}`);
  });
}
