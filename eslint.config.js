// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.convsim/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': ['error', { selector: 'TSEnumDeclaration[const=true]', message: 'const enum breaks per-file compilers' }],
    },
  },
  {
    // The pure core: the same logic runs on threads and under a deterministic scheduler.
    files: ['src/core/**/*.ts', 'src/actors/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: ['worker_threads', 'node:worker_threads', 'node:timers', 'timers'] }],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'randomness comes from a seeded source' }],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'setImmediate'],
    },
  },
);
