// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [
  'fs',
  'fs/promises',
  'path',
  'os',
  'crypto',
  'http',
  'https',
  'net',
  'child_process',
  'stream',
  'zlib',
  'readline',
  'timers',
  'worker_threads',
  'util',
  'url',
  'dns',
  'events',
  'process',
  'cluster',
  'buffer',
];

// Development tools (the simulator, the sample generator) stay out of the product's code paths.
const devtoolsImports = {
  regex: '(^|/)devtools(/|$)',
  message:
    'src/devtools is development tooling: only its own commands (recording-system, demo), tests and bench import it',
};

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      '.temporal/**',
      '.image-sync/**',
      'dist/**',
      'coverage/**',
      'test-results/**',
      'bench/results/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: {
        projectService: { allowDefaultProject: ['*.mjs', 'bin/*.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowNullish: true },
      ],
      '@typescript-eslint/only-throw-error': 'off',
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-unsafe-enum-comparison': 'off',
      // Input validation deliberately matches control characters.
      'no-control-regex': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/devtools/**', 'src/cli/commands/recording-system.ts', 'src/cli/commands/demo.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [devtoolsImports] }] },
  },
  {
    // Workflow code is deterministic and bundled apart: no Node modules, nothing with I/O.
    // (This rule's options replace those of the block above, so they repeat devtoolsImports.)
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.flatMap((name) => [
            { name, message: 'workflow code must not use Node modules' },
            { name: `node:${name}`, message: 'workflow code must not use Node modules' },
          ]),
          patterns: [
            {
              group: [
                '../activities',
                '../activities/*',
                '../ledger/*',
                '../recording-system/*',
                '../source/*',
                '../config/*',
                // The policy's bounds are plain data, shared with the CLI.
                '!../config/policy-bounds',
              ],
              allowTypeImports: true,
              message: 'workflows import activities and adapters as types only',
            },
            {
              group: ['@temporalio/client', '@temporalio/worker', '@temporalio/activity'],
              message: 'workflows use @temporalio/workflow only',
            },
            devtoolsImports,
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        // Date is safe: the workflow sandbox gives it the deterministic time of the workflow task.
        { name: 'setTimeout', message: 'use sleep() from @temporalio/workflow' },
        { name: 'setInterval', message: 'use sleep() from @temporalio/workflow' },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['bin/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
