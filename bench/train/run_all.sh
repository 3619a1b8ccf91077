#!/usr/bin/env bash
# The training comparison at one commit: bf16 / quartet2 / nvidia / tetrajet-v2 x SEEDS, up to P train.py processes
# at once on the one GPU (the model is small, so several fit), every run writing its own file under $OUT/train
# (qgen-provenance/1 from .device/provenance.json: run `npm run gpu:bundle` on the host first). Then the report.
#   OUT=/tmp/out bash bench/train/run_all.sh [SEEDS=0,1,2,3,4] [P=5] [STEPS=600] [QGEN_PATH=dir of qgen_torch]
# Tokens/s of concurrent runs are not comparable (the report says so); losses are unaffected.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${OUT:?set OUT to the output folder}"
SEEDS=${SEEDS:-0,1,2,3,4}
P=${P:-5}
STEPS=${STEPS:-600}
RECIPES=${RECIPES:-bf16,quartet2,nvidia,tetrajet-v2}
[ -s .device/provenance.json ] || { echo "run_all: .device/provenance.json missing (npm run gpu:bundle on the host)"; exit 2; }
mkdir -p "$OUT/train"
export QGEN_CONCURRENT_RUNS=$P
jobs_file=$(mktemp)
for s in ${SEEDS//,/ }; do for r in ${RECIPES//,/ }; do echo "$r $s" >> "$jobs_file"; done; done
echo "run_all: $(wc -l < "$jobs_file") runs, $P at a time, $STEPS steps -> $OUT/train"
# xargs keeps P processes running; each run's log goes next to its results.
xargs -P "$P" -L 1 sh -c 'python bench/train/train.py --recipe "$0" --seed "$1" --steps '"$STEPS"' \
  ${QGEN_PATH:+--qgen-path "$QGEN_PATH"} --out "$OUT/train" > "$OUT/train/log-$0-seed$1-$$.txt" 2>&1 \
  && echo "done $0 seed $1" || echo "FAILED $0 seed $1 (see $OUT/train/log-$0-seed$1-*.txt)"' < "$jobs_file"
rm -f "$jobs_file"
if command -v node >/dev/null || [ -x /tmp/node ]; then
  "$(command -v node || echo /tmp/node)" bench/train/report.mjs --in "$OUT/train" --svg "$OUT/train/train_curves.svg" | tail -25
else
  echo "run_all: no node here; on the host: node bench/train/report.mjs --in <fetched>/train"
fi
