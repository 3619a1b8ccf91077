#!/usr/bin/env node
// Bundles the GPU harness (harness/gpu/main.ts and everything it imports: DSL, codegen, TS reference,
// fast-check, handlebars) into one ESM file, .device/qgen-gpu.mjs, that runs with a bare `node` on the GPU
// machine (which has no node_modules). The bundle sits one folder below the repo root, like the sources, so
// paths such as new URL('../templates/', import.meta.url) resolve to the same files.
// It also records the host's provenance of the tree (commit, dirty, qgen version, source hash) in
// .device/provenance.json: every GPU results file carries it (harness/provenance.ts), and git is never asked on
// the GPU machine. Bundle again after any change, or the results name the wrong tree.
import { build } from 'esbuild';
import { mkdirSync, writeFileSync } from 'node:fs';
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
  banner: {
    js: "import { createRequire as __qgenCreateRequire } from 'node:module'; const require = __qgenCreateRequire(import.meta.url);",
  },
});
// The provenance module is TypeScript: bundle it to a temporary ESM file and import that.
const helper = path.join(root, '.device/provenance-host.mjs');
await build({
  entryPoints: [path.join(root, 'harness/provenance.ts')],
  outfile: helper,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
});
const { hostProvenance } = await import(helper);
const host = hostProvenance(root);
mkdirSync(path.join(root, '.device'), { recursive: true });
writeFileSync(path.join(root, '.device/provenance.json'), JSON.stringify(host, null, 1) + '\n');
console.log(
  `wrote .device/qgen-gpu.mjs and .device/provenance.json (commit ${host.commit?.slice(0, 7) ?? 'unknown'}` +
    `${host.dirty ? ', DIRTY tree' : ''})`,
);
