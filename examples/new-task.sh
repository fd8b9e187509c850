#!/usr/bin/env bash
# new-task.sh — UFO's new-task extension on real data: a new task (OpenCV digits) learned from
# scratch against fine-tuned from the shared branch of a Task-MoE supernet trained on
# Fashion-MNIST only, with 10% and 100% of the digits training split, attention frozen or not.
#
#   1. the supernet: two tasks on the two stratified halves of Fashion-MNIST's training split
#      (fashion-a, fashion-b; ViT preset small), SUPER_STEPS steps, routes frozen at 60%;
#   2. its shared branch: ufo-extract --shared (every block's shared FFN, no head);
#   3. six runs on digits, each STEPS steps at batch 64 with the same schedule and seed:
#      from scratch, fine-tuned (all weights), fine-tuned with attention and embeddings frozen
#      (--freeze attn,embed), each on 10% (400 images) and 100% (4000) of the training split;
#   4. a table of test accuracy (the 1000-image digits test split) and training time.
# Outputs in $OUT (default runs/new-task). Knobs: SUPER_STEPS (1500), STEPS (600), THREADS.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${UFO_BIN:-$ROOT/build}
DATA=${UFO_DATA_DIR:-$ROOT/data}
OUT=${OUT:-$ROOT/runs/new-task}
T=${THREADS:-$(nproc)}
SUPER_STEPS=${SUPER_STEPS:-1500}
STEPS=${STEPS:-600}
mkdir -p "$OUT"
say() { printf '\n== %s\n' "$*" >&2; }
UFO_BIN=$BIN UFO_DATA_DIR=$DATA "$ROOT/scripts/fetch-data"

say "Fashion-MNIST halves and a 10% digits split"
[ -e "$OUT/fashion-a.h5" ] ||
  "$BIN/ufo-data" split "$DATA/fashion-train.h5" --fractions 0.5,0.5 --seed 7 -o "$OUT/fashion-a.h5" -o "$OUT/fashion-b.h5"
[ -e "$OUT/digits-10.h5" ] ||
  "$BIN/ufo-data" split "$DATA/digits-train.h5" --count 400,3600 --seed 7 -o "$OUT/digits-10.h5" -o "$OUT/digits-rest.h5"

if [ ! -e "$OUT/supernet.h5" ]; then
  say "supernet on fashion-a + fashion-b: $SUPER_STEPS steps"
  t0=$(date +%s)
  "$BIN/ufo-train" --task "fashion-a=$OUT/fashion-a.h5" --task "fashion-b=$OUT/fashion-b.h5,$DATA/fashion-test.h5" \
      --task-batch fashion-a=64,fashion-b=64 --preset small --steps "$SUPER_STEPS" --lr 2e-3 --router-lr 0.01 \
      --route-freeze-at $(( SUPER_STEPS * 6 / 10 )) --crop-pad 2 --hflip --seed 1 -t "$T" \
      --log-every $(( SUPER_STEPS / 5 )) -o "$OUT/supernet.h5" > "$OUT/supernet-train.tsv"
  echo $(( $(date +%s) - t0 )) > "$OUT/supernet.seconds"
fi
"$BIN/ufo-extract" --shared "$OUT/supernet.h5" -o "$OUT/shared.h5" > /dev/null

run() {   # NAME TRAIN.h5 [options]
  local name=$1 train=$2 t0
  shift 2
  say "$name"
  t0=$(date +%s)
  "$BIN/ufo-train" "$train" --steps "$STEPS" -b 64 --lr 1e-3 --crop-pad 2 --seed 1 -t "$T" --task-name digits \
      --log-every "$STEPS" -o "$OUT/$name.h5" "$@" > "$OUT/$name-train.tsv"
  echo $(( $(date +%s) - t0 )) > "$OUT/$name.seconds"
  "$BIN/ufo-infer" -m "$OUT/$name.h5" "$DATA/digits-test.h5" -t "$T" --summary-only --json > "$OUT/$name-summary.json"
}
for frac in 10 100; do
  train=$DATA/digits-train.h5
  [ "$frac" = 10 ] && train=$OUT/digits-10.h5
  run "scratch-$frac" "$train" --preset small
  run "finetune-$frac" "$train" --init "$OUT/shared.h5"
  run "frozen-attn-$frac" "$train" --init "$OUT/shared.h5" --freeze attn,embed
done

python3 - "$OUT" "$STEPS" <<'PY'
import json, os, sys
out, steps = sys.argv[1], sys.argv[2]
rows = [("from scratch", "scratch"), ("fine-tuned from the shared branch, all weights", "finetune"),
        ("fine-tuned, attention and embeddings frozen", "frozen-attn")]
print(f"\nnew task: digits (test 1000 images), {steps} steps at batch 64 per run")
print("| start | 10% (400 images) | 100% (4000 images) | time 10% / 100% |")
print("|:--|--:|--:|--:|")
for label, key in rows:
    acc, secs = [], []
    for frac in ("10", "100"):
        s = json.load(open(os.path.join(out, f"{key}-{frac}-summary.json")))["summary"]
        acc.append(f"{100 * s['accuracy']:.2f}%")
        secs.append(open(os.path.join(out, f"{key}-{frac}.seconds")).read().strip() + " s")
    print(f"| {label} | {acc[0]} | {acc[1]} | {secs[0]} / {secs[1]} |")
PY
