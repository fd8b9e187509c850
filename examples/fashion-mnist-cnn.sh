#!/usr/bin/env bash
# fashion-mnist-cnn.sh — the CNN accuracy recipe: preset small (c24,c24,m,c48,c48,m,c80; 72,322
# parameters), Fashion-MNIST 60k/10k, EPOCHS epochs (default 24) at batch 128, AdamW lr 4e-3,
# 5% warm-up then cosine, label smoothing 0.1, random crop (pad 2) and horizontal flips.
# Prints the training log, the test summary, and latency (batch 1) / throughput (batch 256).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${UFO_BIN:-$ROOT/build}
DATA=${UFO_DATA_DIR:-$ROOT/data}
OUT=${OUT:-$ROOT/runs}
T=${THREADS:-$(nproc)}
EPOCHS=${EPOCHS:-24}
mkdir -p "$OUT"
UFO_BIN=$BIN UFO_DATA_DIR=$DATA "$ROOT/scripts/fetch-data"
"$BIN/ufo-train" "$DATA/fashion-train.h5" --val "$DATA/fashion-test.h5" --family cnn --preset small \
    --epochs "$EPOCHS" -b 128 --lr 4e-3 --crop-pad 2 --hflip --seed 1 -t "$T" --task-name fashion \
    -o "$OUT/fashion-cnn.h5" | tee "$OUT/fashion-cnn-train.tsv"
"$BIN/ufo-infer" -m "$OUT/fashion-cnn.h5" "$DATA/fashion-test.h5" -t "$T" --summary-only
"$BIN/ufo-bench" -m "$OUT/fashion-cnn.h5" -b 1 -t "$T" --reps 200 --warmup 20
"$BIN/ufo-bench" -m "$OUT/fashion-cnn.h5" -b 256 -t "$T" --reps 10
