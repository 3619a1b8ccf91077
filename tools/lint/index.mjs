// The lint plugins for the flat config at the repository root (eslint.config.mjs), resolved from this workspace.
// A workspace of its own because typescript-eslint's parser needs the TypeScript 5 compiler API, which the root's
// TypeScript 7 (the native tsc that `npm run typecheck` runs) does not ship: npm installs TypeScript 5 here. Some
// of the parser's helpers (ts-api-utils) are hoisted to the root, where `require('typescript')` would find
// TypeScript 7, so in the lint process every require of 'typescript' resolves to this workspace's copy.
import Module, { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const typescript5 = require.resolve('typescript');
const resolve = Module._resolveFilename;
Module._resolveFilename = function resolveTypescript5(request, ...rest) {
  return request === 'typescript' ? typescript5 : resolve.call(this, request, ...rest);
};

export const { default: js } = await import('@eslint/js');
export const { default: tseslint } = await import('typescript-eslint');
