#!/usr/bin/env node
// Bundles the GPU harness (harness/gpu/main.ts and everything it imports: DSL, codegen, TS reference,
// fast-check, handlebars) into one ESM file, .device/qgen-gpu.mjs, that runs with a bare `node` on the GPU
// machine (which has no node_modules). The bundle sits one folder below the repo root, like the sources, so
// paths such as new URL('../templates/', import.meta.url) resolve to the same files.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
await build({
  entryPoints: [path.join(root, 'harness/gpu/main.ts')],
  outfile: path.join(root, '.device/qgen-gpu.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  banner: { js: "import { createRequire as __qgenCreateRequire } from 'node:module'; const require = __qgenCreateRequire(import.meta.url);" },
});
console.log('wrote .device/qgen-gpu.mjs');
