// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', '.tools/**', '.data/**', 'tools/ferretdb/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no clocks, no randomness, no I/O.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'fetch'],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'Use workflow time (it is replay-safe) or an activity.' },
        {
          object: 'Math',
          property: 'random',
          message: 'Randomness breaks replay; use an activity or uuid4() from @temporalio/workflow.',
        },
      ],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'fs', 'path', 'http', 'https', 'net', 'crypto', 'child_process'],
              message: 'No Node built-ins in workflow code.',
            },
            {
              group: ['mongodb', 'plivo', 'fastify', '../store/*', '../channels/*', '../activities/*'],
              message: 'Workflows reach the outside only through activities (import their types with `import type`).',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
);
