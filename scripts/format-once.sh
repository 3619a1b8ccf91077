#!/usr/bin/env bash
# Formats the whole tree once and turns the format and lint gates on (issue 14): prettier over the TypeScript and
# JavaScript sources, clang-format over the CUDA/C++ ones (runtime/, runtime/torch csrc, harness/runner), then
# `npm run generate` (generated/ carries copies of the runtime headers, so their new layout lands there too; the
# kernels' code does not change), then adds 'format:check' and 'lint' to the GATES of scripts/test.mjs so that
# `npm test` (and CI) fails on an unformatted or lint-failing tree. Run from a clean tree after `npm ci`; it stops
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
npm run --silent format:check
npm run --silent lint
echo "format-once: formatted, generated/ regenerated, gates on; now: git diff --stat && npm test"
