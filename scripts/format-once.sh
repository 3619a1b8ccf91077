#!/usr/bin/env bash
# Formats the whole tree once and turns the format and lint gates on (issue 14): prettier over the TypeScript and
# JavaScript sources, clang-format over the CUDA/C++ ones (runtime/, runtime/torch csrc, harness/runner), then
# `npm run generate` (generated/ carries copies of the runtime headers, so their new layout lands there too; the
# kernels' code does not change), then adds 'format:check' and 'lint' to the GATES of scripts/test.mjs so that
# `npm test` (and CI) fails on an unformatted or lint-failing tree, and shortens test/long-lines.txt to the files
# that still hold lines over 120 columns. Run from a clean tree after `npm ci`; it stops
# at the first failure. Afterwards: `git diff --stat`, `npm test`, commit as "format once".
set -euo pipefail
cd "$(dirname "$0")/.."
if ! git diff --quiet HEAD; then
  echo "format-once: the tree has uncommitted changes; commit or stash them first" >&2
  exit 2
fi
npm run --silent format
npm run --silent generate
node - <<'JS'
const fs = require('node:fs');
const file = 'scripts/test.mjs';
const text = fs.readFileSync(file, 'utf8');
const before = "const GATES = ['typecheck'];";
if (!text.includes(before)) throw new Error(`${file}: no line ${before}`);
fs.writeFileSync(file, text.replace(before, "const GATES = ['typecheck', 'format:check', 'lint'];"));
JS
# The files that still hold lines over 120 columns after formatting (string literals), for test/architecture.test.ts.
{
  sed -n '1,2p' test/long-lines.txt
  git ls-files --cached --others --exclude-standard -- '*.ts' '*.mjs' '*.hbs' 'runtime/*.cuh' 'runtime/*.h' \
      'runtime/torch/qgen_torch/csrc/' 'harness/runner/' | grep -v -e '^generated/' -e 'node_modules/' \
    | xargs awk 'length > 120 { print FILENAME; nextfile }' | sort
} > test/long-lines.txt.new
mv test/long-lines.txt.new test/long-lines.txt
npm run --silent format:check
npm run --silent lint
echo "format-once: formatted, generated/ regenerated, gates on; now: git diff --stat && npm test"
