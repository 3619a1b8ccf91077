#!/usr/bin/env node
// clang-format over the CUDA/C++ sources, with the binary the `clang-format` npm package ships (so that CI needs no
// system LLVM) and the style in .clang-format. Usage: node scripts/clang-format.mjs --write | --check
//   --write: formats the files in place;  --check: changes nothing, lists the files that would change, exits 1 then.
// Files: runtime/*.cuh and *.h, runtime/torch/qgen_torch/csrc/*, harness/runner/*.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const FOLDERS = ['runtime', 'runtime/torch/qgen_torch/csrc', 'harness/runner'];
const CXX = /\.(cuh|cu|h|hpp|cpp|cc)$/;

export function cxxSources() {
  return FOLDERS.flatMap((dir) =>
    readdirSync(path.join(root, dir))
      .filter((f) => CXX.test(f))
      .sort()
      .map((f) => path.join(dir, f)),
  );
}

const mode = process.argv[2];
if (mode !== '--write' && mode !== '--check') {
  console.error('usage: node scripts/clang-format.mjs --write | --check');
  process.exit(2);
}
const binary = path.join(
  path.dirname(createRequire(import.meta.url).resolve('clang-format/package.json')),
  'bin',
  `${process.platform}_${process.arch}`,
  process.platform === 'win32' ? 'clang-format.exe' : 'clang-format',
);
const files = cxxSources();
const args =
  mode === '--write' ? ['-i', '--style=file', ...files] : ['--dry-run', '--Werror', '--style=file', ...files];
const r = spawnSync(binary, args, { cwd: root, encoding: 'utf8' });
if (r.error) {
  console.error(`clang-format: cannot run ${binary}: ${r.error.message}`);
  process.exit(2);
}
if (r.status !== 0) {
  const changed = [...new Set([...(r.stderr ?? '').matchAll(/^(\S+?):\d+:\d+: error/gm)].map((m) => m[1]))];
  console.error(
    changed.length
      ? `clang-format: ${changed.length} file(s) not formatted (npm run format):\n  ` + changed.join('\n  ')
      : r.stderr,
  );
  process.exit(1);
}
if (mode === '--check') console.log(`clang-format: ${files.length} C++/CUDA files formatted`);
