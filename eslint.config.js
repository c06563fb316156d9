import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/results*.json'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: globals.node },
    rules: {
      'no-console': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-properties': [
        'error',
        { object: 'describe', property: 'only', message: 'no .only left behind' },
        { object: 'it', property: 'only', message: 'no .only left behind' },
        { object: 'test', property: 'only', message: 'no .only left behind' },
      ],
    },
  },
  {
    // The CLI, tests and benchmarks talk to a terminal on purpose.
    files: ['src/cli/**', 'test/**', 'bench/**', 'e2e/**', 'bin/**'],
    rules: { 'no-console': 'off' },
  },
);
