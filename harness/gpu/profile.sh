#!/usr/bin/env bash
# Nsight Compute profile of generated kernels, for bench/NOTES.md ("profile before optimizing").
# Runs on the GPU machine from the repo root, after `npm run gpu:bundle` here (no Node needed there):
#   bash harness/gpu/profile.sh OUTDIR KERNEL [KERNEL ...]      e.g. ... /tmp/prof fwd_x_fourSix gemm_nvfp4_bf16
# For each catalog kernel it runs the harness benchmark of that kernel alone (first shape: 8192x8192 for quantizers,
# 8192^3 for GEMMs) under ncu and captures the first launches after the warm-up: every pass of a multi-pass
# quantizer (amax / pass A / pass B), or one GEMM launch. One text report per kernel: OUTDIR/ncu-KERNEL.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 2 ] || { echo "usage: bash harness/gpu/profile.sh OUTDIR KERNEL [KERNEL ...]" >&2; exit 2; }
out=$1; shift
mkdir -p "$out"
command -v ncu >/dev/null || { echo "profile: ncu not found on PATH" >&2; exit 2; }
NODE=${QGEN_NODE:-/tmp/node}
if [ ! -x "$NODE" ]; then
  xz -dc .device/node.xz > "$NODE" && chmod +x "$NODE"
fi
sections=(--section SpeedOfLight --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis
  --section SchedulerStats --section WarpStateStats --section Occupancy --section LaunchStats
  --section InstructionStats)
for kernel in "$@"; do
  # Build (and warm the compile cache) outside the profiler, so ncu only sees the benchmark itself.
  "$NODE" .device/qgen-gpu.mjs bench --only "^${kernel}\$" --reps 1 --gemm-reps 1 >/dev/null 2>&1 || true
  case "$kernel" in
    gemm_*) count=1; skip=3 ;;   # three warm-up launches per shape in the runner
    *) count=3; skip=6 ;;        # up to three passes; skip the warm-up rounds of the first shape
  esac
  echo "profile: $kernel" >&2
  ncu --target-processes all --kernel-name-base demangled -k "regex:qgen_${kernel}_impl::" \
    --launch-skip "$skip" --launch-count "$count" "${sections[@]}" \
    "$NODE" .device/qgen-gpu.mjs bench --only "^${kernel}\$" --reps 3 --gemm-reps 3 \
    > "$out/ncu-${kernel}.txt" 2> "$out/ncu-${kernel}.err" || echo "profile: ncu failed for $kernel" >&2
done
