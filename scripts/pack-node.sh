#!/usr/bin/env bash
# Packs the node binary of this machine into .device/node.xz (git-ignored) for a GPU machine without Node.js:
# harness/gpu/on-device.sh unpacks it there (to /tmp/node) and runs the bundled harness .device/qgen-gpu.mjs
# (npm run gpu:bundle). A GPU machine that has Node 20+ needs neither: see README, "Running on the GPU".
# Usage (repo root): bash scripts/pack-node.sh      (re-packs when the node binary changed)
set -euo pipefail
cd "$(dirname "$0")/.."
node_bin=$(command -v node) || { echo "pack-node: no node on PATH" >&2; exit 2; }
mkdir -p .device
stamp=".device/node.version"
want="$(node --version) $(uname -m) $(stat -c %s "$node_bin")"
if [ ! -s .device/node.xz ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  xz -T0 -6 -c "$node_bin" > .device/node.xz.tmp
  mv .device/node.xz.tmp .device/node.xz
  echo "$want" > "$stamp"
fi
echo "pack-node: .device/node.xz ($(du -h .device/node.xz | cut -f1), node $(node --version), $(uname -m))"
