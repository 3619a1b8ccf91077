#!/usr/bin/env bash
# Runs a GPU harness command on the GPU machine, which has no Node.js: unpacks the node binary that
# `bash scripts/pack-node.sh` packed into .device/node.xz, then runs the bundled harness
# (.device/qgen-gpu.mjs, built by `npm run gpu:bundle`). Both travel in the git-ignored .device/ folder.
#   bash harness/gpu/on-device.sh test     # correctness suite: prints a summary line
#   bash harness/gpu/on-device.sh bench    # benchmarks: writes bench/results/ (and $OUT when set)
#   bash harness/gpu/on-device.sh sass     # sm_100a / sm_120a SASS evidence (cuobjdump)
#   bash harness/gpu/on-device.sh check --arch sm_100a   # the whole first-hardware verification
#   bash harness/gpu/on-device.sh probe-selftest         # accumulator probe + classifier proved on this GPU
set -euo pipefail
cd "$(dirname "$0")/../.."
NODE=${QGEN_NODE:-/tmp/node}
if [ ! -x "$NODE" ]; then
  [ -s .device/node.xz ] || { echo "on-device: .device/node.xz missing (run bash scripts/pack-node.sh and carry .device)"; exit 2; }
  xz -dc .device/node.xz > "$NODE" && chmod +x "$NODE"
fi
[ -s .device/qgen-gpu.mjs ] || { echo "on-device: .device/qgen-gpu.mjs missing (run npm run gpu:bundle and carry .device)"; exit 2; }
exec "$NODE" .device/qgen-gpu.mjs "$@"
