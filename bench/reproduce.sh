#!/usr/bin/env bash
# Reproduces the figures README cites, on a GPU machine, stage by stage. Host first (Node needed there only):
#   bash scripts/pack-node.sh && npm run gpu:bundle                         # .device/node.xz, bundle, provenance
#   node bin/qgen.mjs vendor --target torch --arch sm_90a --out .device/pkg \
#     --tuning tuning/sm_90a-nvidia-h100-80gb-hbm3.json   # the torch package (stage package); the table makes
#                                                         # linear's 'tuned' rows use it (their 'tuning' column)
# then, on the GPU machine, from the repo root (with .device/ copied along):
#   bash bench/reproduce.sh [STAGE ...]      # default: every stage, in this order
# Stages: suite gridcap check sass bench modes stream profile probe package linear train tune vendor (linear and train
# use the package that stage package installs; stream is the probe bench/probes/tma_stream.py; vendor, only when
# named, rewrites .device/pkg here from the tuning table TUNING, default this GPU's tuning/<arch>-<gpu>.json, so that
# `tune vendor package linear` measures the layer with the table the same run tuned). Knobs: ARCH, RUNS
# (suite), SUITE_ONLY, GRIDCAP_ONLY and BENCH_ONLY (kernel-name regexes), SANITIZERS (suite: none or a comma list
# of memcheck, racecheck), CHECK_RUNS, BENCH_REPS and BENCH_GEMM_SHAPES (a GEMM shape label of
# harness/gpu/gemm_bench.ts, e.g. skinny), PROFILE_ONLY (a kernel-name regex for ncu; stage profile is not in the
# default list; per kernel it writes ncu's details page and a summary of its stall samples per SASS instruction),
# LINEAR_GEMM, LINEAR_ARGS (more bench_linear.py options, e.g. --cpu-profile 25),
# SEEDS and P (train), WORKLOAD, BUDGET_S, TUNE_MAX and TUNE_QMAX (tune: at most that many fused tilings, catalog
# first; launch shapes per quantizer).
# Every stage writes a new folder under bench/results/ with qgen-provenance/1; a failing stage is reported and the
# next one runs.
# With $OUT set, the files this run wrote and the stage logs are packed into $OUT/results.tgz after every stage.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCH=${ARCH:-sm_90a}
ALL=(suite gridcap check sass bench modes stream profile probe package linear train tune vendor)
STAGES=("$@")
DEFAULT=(suite gridcap check sass bench modes stream probe package linear train tune)   # profile, vendor when named
[ ${#STAGES[@]} -eq 0 ] && STAGES=("${DEFAULT[@]}")
for s in "${STAGES[@]}"; do
  [[ " ${ALL[*]} " == *" $s "* ]] || { echo "reproduce: stage '$s'; allowed: ${ALL[*]}"; exit 2; }
done
if [ ! -s .device/provenance.json ]; then
  echo "reproduce: .device/provenance.json missing (npm run gpu:bundle on the host)"; exit 2
fi
if [ ! -x /tmp/node ] && [ -s .device/node.xz ]; then xz -dc .device/node.xz > /tmp/node && chmod +x /tmp/node; fi
marker=$(mktemp)
DEST=${OUT:-}   # the results come back packed; the stages themselves write only under bench/results/
unset OUT
LOGS=$(mktemp -d)
C7=$(python3 -c 'import json; print(json.load(open(".device/provenance.json"))["commit"][:7])')
stamp() { echo "$1-$(date -u +%F-%H%M)-$C7"; }   # a new results folder name per run
gpu=(bash harness/gpu/on-device.sh)
status=()

stage() {  # stage NAME COMMAND...: runs it, logs it, records its exit status
  local name=$1; shift
  local start=$SECONDS
  echo "=== reproduce: $name: $*"
  "$@" 2>&1 | tee "$LOGS/reproduce-$name.log" | tail -n 25
  local rc=${PIPESTATUS[0]}
  status+=("$name rc=$rc $((SECONDS - start))s")
  pack
}

pack() {  # with $OUT set: the files this run wrote so far and the logs, in $OUT/results.tgz (a kill keeps them)
  [ -n "$DEST" ] || return 0
  { find bench/results tuning bench/train_curves.svg -newer "$marker" -type f 2>/dev/null; find "$LOGS" -type f; } |
    tar czf "$DEST/results.tgz" -T - 2>/dev/null
}

this_table() {  # tuning/<arch>-<gpu>.json as qgen tune names it for this GPU
  local gpu_name
  gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
  echo "tuning/$ARCH-$(echo "$gpu_name" | tr 'A-Z' 'a-z' | sed -E 's/[^a-z0-9]+/-/g; s/^-|-$//g').json"
}

package_tests() {
  [ -d .device/pkg ] || { echo "no .device/pkg (qgen vendor on the host)"; return 2; }
  (cd .device/pkg && python -m pip install -q --no-build-isolation --no-deps . ) || return 1
  python .device/pkg/tests/run.py --out "bench/results/$(stamp vendor-tests)"
}

for s in "${STAGES[@]}"; do
  case $s in
    suite) stage suite "${gpu[@]}" test --arch "$ARCH" --runs "${RUNS:-8}" ${SUITE_ONLY:+--only "$SUITE_ONLY"} \
      ${SANITIZERS:+--sanitizers "$SANITIZERS"} ;;
    gridcap) stage gridcap "${gpu[@]}" test --arch "$ARCH" --grid-cap 2 --runs 3 --specs catalog \
      ${GRIDCAP_ONLY:+--only "$GRIDCAP_ONLY"} ;;
    check) stage check "${gpu[@]}" check --arch "$ARCH" --no-package --runs "${CHECK_RUNS:-20}" ;;
    sass) stage sass "${gpu[@]}" sass ;;
    bench) stage bench "${gpu[@]}" bench --arch "$ARCH" --reps "${BENCH_REPS:-50}" \
      ${BENCH_ONLY:+--only "$BENCH_ONLY"} ${BENCH_GEMM_SHAPES:+--gemm-shapes "$BENCH_GEMM_SHAPES"} ;;
    modes) stage modes python bench/probes/cublaslt_modes.py --out bench/results ;;   # cuBLASLt pointer modes
    stream) if [ "$ARCH" = sm_90a ]; then stage stream python bench/probes/tma_stream.py --out bench/results   # skinny
      else echo "=== reproduce: stream: skipped (the TMA probe is built for sm_90a; ARCH=$ARCH)"; fi ;;   # weight loads
    profile) stage profile "${gpu[@]}" profile --arch "$ARCH" \
      --only "${PROFILE_ONLY:?PROFILE_ONLY: a kernel-name regex}" ;;
    probe) stage probe "${gpu[@]}" probe-selftest --arch "$ARCH" ;;
    package) stage package package_tests ;;
    linear) stage linear python bench/linear/bench_linear.py --out bench/results \
      --recipes quartet2 --gemm "${LINEAR_GEMM:-tuned,two-pass,fused}" --reps 10 ${LINEAR_ARGS:-} ;;
    train) stage train env TRAIN_DIR="bench/results/$(stamp train)" LOG_DIR="$LOGS" SVG=bench/train_curves.svg \
      SEEDS="${SEEDS:-0,1,2,3,4}" P="${P:-10}" bash bench/train/run_all.sh ;;
    tune) stage tune "${gpu[@]}" tune --arch "$ARCH" --workload "${WORKLOAD:-llama-7b}" --budget-s "${BUDGET_S:-420}" \
      ${TUNE_MAX:+--max-candidates "$TUNE_MAX"} ${TUNE_QMAX:+--max-quantizer-candidates "$TUNE_QMAX"} ;;
    vendor) stage vendor "${gpu[@]}" vendor --arch "$ARCH" --out .device/pkg --force \
      --tuning "${TUNING:-$(this_table)}" ;;
  esac
done
echo "=== reproduce: summary"
printf '  %s\n' "${status[@]}"
if [ -n "$DEST" ]; then
  pack
  echo "reproduce: $(tar tzf "$DEST/results.tgz" | wc -l) files in \$OUT/results.tgz"
fi
rm -f "$marker"
