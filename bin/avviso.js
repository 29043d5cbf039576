#!/usr/bin/env node
'use strict';
// The `avviso` command. TypeScript is compiled as it loads (tsx), so there is no build step.
require('tsx/cjs');
require('../cli/main.ts')
  .main(process.argv.slice(2))
  .then((code) => {
    if (typeof code === 'number') process.exitCode = code;
  })
  .catch((err) => {
    console.error(err && err.name === 'ConfigError' ? err.message : err);
    process.exit(1);
  });
