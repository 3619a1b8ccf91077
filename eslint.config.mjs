// ESLint flat config (`npm run lint`): @eslint/js and typescript-eslint recommended rules (no type information), a
// few relaxed where the code base uses the construct on purpose. The plugins come from the tools/lint workspace.
import { js, tseslint } from './tools/lint/index.mjs';

export default tseslint.config(
  { ignores: ['node_modules/', 'tools/lint/node_modules/', 'generated/', '.device/', '.cache/', 'out/', 'kernels/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.{ts,mjs,js}'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        performance: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        structuredClone: 'readonly',
        fetch: 'readonly',
        AbortController: 'readonly',
        queueMicrotask: 'readonly',
        globalThis: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // ANSI colour codes (\x1b) are stripped from tool output on purpose.
      'no-control-regex': 'off',
    },
  },
  // Tests build malformed specs and read untyped JSON on purpose.
  { files: ['test/**/*.ts'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
);
