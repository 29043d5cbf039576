'use strict';
/**
 * Bundles the workflow code (webpack) and hands it to the parent over IPC: run by worker/worker.ts
 * bundleWorkflows in a process of its own, because webpack's memory stays with the process that ran it
 * (about 110 MB of the worker's RSS for as long as it ran). Plain JavaScript: no TypeScript loader
 * needed here; webpack compiles the workflows itself.
 */
const { bundleWorkflowCode } = require('@temporalio/worker');

const noop = () => undefined;
const quiet = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  log: noop,
  error: (m, meta) => console.error(m, meta),
};

bundleWorkflowCode({ workflowsPath: process.argv[2], logger: quiet }).then(
  ({ code }) => process.send({ code }, () => process.exit(0)),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
