#!/usr/bin/env bash
# Data-parallel runs of train.py (issue 18), from the repo root on the GPU machine, qgen_torch importable
# (pip-installed, or QGEN_TORCH_PATH=DIR). Results: $OUT/train-dist/<mode>/*.json and one log per mode.
#   bash bench/train/dist.sh smoke      one GPU, world_size 1: DDP, FSDP2, FSDP2 + NVFP4 gather, 20 steps each (~1 min)
#   bash bench/train/dist.sh N [STEPS]  N GPUs (2 or 8): single-GPU baseline, then DDP, FSDP2, FSDP2 + NVFP4 gather
#                                       under torchrun, quartet2 and bf16, the same global batch (--batch 16)
# Then on a machine with Node: node bench/train/plot_dist.mjs $OUT/train-dist > bench/results/train-dist.svg
set -euo pipefail
what=${1:?usage: dist.sh smoke | N [STEPS]}
out=${OUT:-/tmp}/train-dist
mkdir -p "$out"
if [ "$what" = smoke ]; then
  common=(--recipes quartet2 --steps 20 --batch 8 --seq 256 --eval-every 10 --eval-batches 2 --log-every 10)
  for mode in ddp fsdp2 fsdp2+nvfp4; do
    flags=(--dist "${mode%+nvfp4}"); [ "$mode" = fsdp2+nvfp4 ] && flags+=(--nvfp4-gather)
    torchrun --standalone --nproc-per-node 1 bench/train/train.py "${flags[@]}" "${common[@]}" \
      --out "$out/smoke-$mode" 2>&1 | tee "$out/smoke-$mode.log" | grep -E 'RESULT|ALLGATHER|Error|error'
  done
  exit 0
fi
n=$what
steps=${2:-300}
common=(--recipes bf16,quartet2 --seeds 0 --steps "$steps" --batch 16 --seq 512 --eval-every 50)
python bench/train/train.py "${common[@]}" --out "$out/single" 2>&1 | tee "$out/single.log" | grep -E 'RESULT'
for mode in ddp fsdp2 fsdp2+nvfp4; do
  flags=(--dist "${mode%+nvfp4}"); [ "$mode" = fsdp2+nvfp4 ] && flags+=(--nvfp4-gather)
  torchrun --standalone --nproc-per-node "$n" bench/train/train.py "${flags[@]}" "${common[@]}" \
    --out "$out/$mode-x$n" 2>&1 | tee "$out/$mode-x$n.log" | grep -E 'RESULT|ALLGATHER'
done
