#!/usr/bin/env bash
# distill.sh — heterogeneous distillation on Fashion-MNIST: a CNN under 100K parameters trained
# alone against the same CNN distilled from a ViT teacher (same steps, augmentation and seed),
# then the compression table: every model of the flow that exists in OUT (task supernet, task
# sub-network, chip sub-network) and the two CNNs, measured on the test split and this machine.
#
# Knobs (environment): TEACHER (a teacher checkpoint; default: train a small-preset ViT for
# TEACHER_EPOCHS (12) into OUT/teacher.h5), SUPERNET, TASK, CHIP (models of the flow to list in
# the table, with TASK_NAME for a supernet, default fashion), STEPS (student steps; default
# EPOCHS (24) epochs of the 55,000 training images at batch 128), ALPHA (0.5), TEMPERATURE (4),
# THREADS (2), OUT (runs/distill). Stages whose output exists are skipped.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${UFO_BIN:-$ROOT/build}
DATA=${UFO_DATA_DIR:-$ROOT/data}
OUT=${OUT:-$ROOT/runs/distill}
T=${THREADS:-2}
EPOCHS=${EPOCHS:-24}
STEPS=${STEPS:-$(( EPOCHS * 55000 / 128 ))}
ALPHA=${ALPHA:-0.5}
TEMPERATURE=${TEMPERATURE:-4}
TASK_NAME=${TASK_NAME:-fashion}
mkdir -p "$OUT"
stage() { echo "== $* ($(date +%T))" >&2; }
UFO_BIN=$BIN UFO_DATA_DIR=$DATA "$ROOT/scripts/fetch-data" >&2
[ -f "$OUT/val.h5" ] || "$BIN/ufo-data" split "$DATA/fashion-train.h5" --count 55000,5000 --seed 1 \
    -o "$OUT/train.h5" -o "$OUT/val.h5" >/dev/null

TEACHER=${TEACHER:-$OUT/teacher.h5}
if [ ! -f "$TEACHER" ]; then
  stage "teacher: small-preset ViT, ${TEACHER_EPOCHS:-12} epochs"
  "$BIN/ufo-train" "$OUT/train.h5" --val "$OUT/val.h5" --preset small --epochs "${TEACHER_EPOCHS:-12}" -b 128 \
      --lr 2e-3 --crop-pad 2 --hflip --seed 1 -t "$T" --task-name "$TASK_NAME" -o "$TEACHER" > "$OUT/teacher.tsv"
fi
STUDENT=(--family cnn --preset small --steps "$STEPS" -b 128 --lr 4e-3 --crop-pad 2 --hflip --seed 1 -t "$T"
         --val "$OUT/val.h5" --log-every 500 --task-name "$TASK_NAME")
stage "CNN alone: $STEPS steps"
[ -f "$OUT/alone.h5" ] || "$BIN/ufo-train" "$OUT/train.h5" "${STUDENT[@]}" -o "$OUT/alone.h5" > "$OUT/alone.tsv"
DIST=$OUT/distilled-alpha$ALPHA-t$TEMPERATURE   # one student per setting
stage "CNN distilled from $TEACHER: $STEPS steps, alpha $ALPHA, temperature $TEMPERATURE"
[ -f "$DIST.h5" ] || "$BIN/ufo-distill" -m "$TEACHER" "$OUT/train.h5" "${STUDENT[@]}" --alpha "$ALPHA" \
    --temperature "$TEMPERATURE" -o "$DIST.h5" > "$DIST.tsv"

stage "compression table on the test split"
rows=()
[ -n "${SUPERNET:-}" ] && rows+=("task supernet|$SUPERNET|--task $TASK_NAME")
[ -n "${TASK:-}" ] && rows+=("task sub-network|$TASK|")
[ -n "${CHIP:-}" ] && rows+=("chip sub-network|$CHIP|")
rows+=("ViT teacher|$TEACHER|" "CNN alone|$OUT/alone.h5|" "CNN distilled (alpha $ALPHA, T $TEMPERATURE)|$DIST.h5|")
{
  printf 'stage\tfile\tparams\tfile_kb\tmflops\tlatency_b1_ms\timg_per_s_b256\ttest_acc\n'
  for r in "${rows[@]}"; do
    IFS='|' read -r name file extra <<< "$r"
    read -r -a ex <<< "$extra"
    acc=$("$BIN/ufo-infer" -m "$file" "${ex[@]}" "$DATA/fashion-test.h5" -t "$T" --summary-only 2>/dev/null |
          awk '$1 == "accuracy" {print $2}')
    b1=$("$BIN/ufo-bench" -m "$file" "${ex[@]}" -b 1 -t "$T" --reps 200 --warmup 20 -o jsonl 2>"$OUT/bench.err")
    mflops=$(sed -n 's/.*; \([0-9.]*\) MFLOP\/img forward.*/\1/p' "$OUT/bench.err" | head -1)
    # Parameters stored in the file (a supernet holds every task's); FLOPs and speed are of what runs.
    params=$(h5dump -a /num_params "$file" | sed -n 's/.*(0): *//p')
    b256=$("$BIN/ufo-bench" -m "$file" "${ex[@]}" -b 256 -t "$T" --reps 5 -o jsonl 2>/dev/null)
    python3 - "$name" "$file" "$b1" "$b256" "$acc" "$(stat -c %s "$file")" "$mflops" "$params" <<'PY'
import json, sys
name, path, b1, b256, acc, size, mflops, params = sys.argv[1:]
b1, b256 = json.loads(b1), json.loads(b256)
print("\t".join([name, path, params, str(int(size) // 1024), mflops,
                 "%.3f" % b1["median_ms"], "%.0f" % b256["img_per_s"], acc]))
PY
  done
} | tee "$OUT/compression.tsv"
