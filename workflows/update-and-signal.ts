/**
 * One request, two ways in: an Update for callers that wait for the answer (its validator refuses
 * with a reason), a signal for those that cannot wait for a worker (an SMS reply, a queued request:
 * one the workflow would refuse is ignored). Registering handlers issues no command, so a workflow's
 * history is the same whichever way they are declared.
 */
import { setHandler } from '@temporalio/workflow';
import type { SignalDefinition, UpdateDefinition } from '@temporalio/common';

export function setUpdateAndSignal<A, R>(
  update: UpdateDefinition<R, [A]>,
  signal: SignalDefinition<[A]>,
  handler: { apply: (a: A) => void; validate: (a: A) => void; status: () => R },
): void {
  const { apply, validate, status } = handler;
  setHandler(update, (a) => (apply(a), status()), { validator: validate });
  setHandler(signal, (a) => {
    try {
      validate(a);
    } catch {
      return;
    }
    apply(a);
  });
}
