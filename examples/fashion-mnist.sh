#!/usr/bin/env bash
# fashion-mnist.sh — the Fashion-MNIST accuracy recipe (53 minutes on 2 cores; EPOCHS overrides 28).
# ViT "small" preset (28x28x1, patch 4, dim 96, depth 6, 3 heads, MLP x2; 456k parameters),
# AdamW lr 2e-3, batch 128, 28 epochs, 5% warm-up then cosine, label smoothing 0.1,
# random crop (pad 2) and horizontal flips. Prints the training log, then the test summary.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${UFO_BIN:-$ROOT/build}
DATA=${UFO_DATA_DIR:-$ROOT/data}
OUT=${OUT:-$ROOT/runs}
T=${THREADS:-$(nproc)}
mkdir -p "$OUT"
UFO_BIN=$BIN UFO_DATA_DIR=$DATA "$ROOT/scripts/fetch-data"
"$BIN/ufo-train" "$DATA/fashion-train.h5" --val "$DATA/fashion-test.h5" --preset small --epochs "${EPOCHS:-28}" -b 128 \
    --lr 2e-3 --crop-pad 2 --hflip -t "$T" --seed 1 --task-name fashion -o "$OUT/fashion.h5" \
    | tee "$OUT/fashion-train.tsv"
"$BIN/ufo-infer" -m "$OUT/fashion.h5" "$DATA/fashion-test.h5" -t "$T" --summary-only
