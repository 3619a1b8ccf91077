#!/usr/bin/env bash
# The training comparison at one commit: bf16 / quartet2 / nvidia / tetrajet-v2 x SEEDS, up to P train.py processes
# at once on the one GPU (the model is small, so several fit), every run writing its own file under $TRAIN_DIR
# (qgen-provenance/1 from .device/provenance.json: run `npm run gpu:bundle` on the host first). Then the report.
#   OUT=/tmp/out bash bench/train/run_all.sh [SEEDS=0,1,2,3,4] [P=5] [STEPS=600] [QGEN_PATH=dir of qgen_torch]
#   runs go to TRAIN_DIR (default $OUT/train), logs to LOG_DIR (default a temporary folder), the plot to SVG
# Tokens/s of concurrent runs are not comparable (the report says so); losses are unaffected.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${TRAIN_DIR:=${OUT:?set OUT (runs go to \$OUT/train) or TRAIN_DIR}/train}"
export TRAIN_DIR
LOG_DIR=${LOG_DIR:-$(mktemp -d)}   # logs stay out of the results folder (every results file carries provenance)
export LOG_DIR
SEEDS=${SEEDS:-0,1,2,3,4}
P=${P:-5}
STEPS=${STEPS:-600}
RECIPES=${RECIPES:-bf16,quartet2,nvidia,tetrajet-v2}
if [ ! -s .device/provenance.json ]; then
  echo "run_all: .device/provenance.json missing (npm run gpu:bundle on the host)"; exit 2
fi
mkdir -p "$TRAIN_DIR"
export QGEN_CONCURRENT_RUNS=$P
jobs_file=$(mktemp)
for s in ${SEEDS//,/ }; do for r in ${RECIPES//,/ }; do echo "$r $s" >> "$jobs_file"; done; done
echo "run_all: $(wc -l < "$jobs_file") runs, $P at a time, $STEPS steps -> $TRAIN_DIR"
# xargs keeps P processes running; each run logs to its own file.
xargs -P "$P" -L 1 sh -c 'python bench/train/train.py --recipe "$0" --seed "$1" --steps '"$STEPS"' \
  ${QGEN_PATH:+--qgen-path "$QGEN_PATH"} --out "$TRAIN_DIR" > "$LOG_DIR/log-$0-seed$1-$$.txt" 2>&1 \
  && echo "done $0 seed $1" || echo "FAILED $0 seed $1 (see $LOG_DIR/log-$0-seed$1-*.txt)"' < "$jobs_file"
rm -f "$jobs_file"
if command -v node >/dev/null || [ -x /tmp/node ]; then
  "$(command -v node || echo /tmp/node)" bench/train/report.mjs --in "$TRAIN_DIR" \
    --svg "${SVG:-$LOG_DIR/train_curves.svg}" | tail -25
else
  echo "run_all: no node here; on the host: node bench/train/report.mjs --in <fetched>/train"
fi
