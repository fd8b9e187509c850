#!/usr/bin/env bash
# demo.sh — the whole ufo flow on real data, minutes not hours (make demo):
#   fetch (Debian packages) -> import -> train (Fashion-MNIST, digits) -> infer -> bench
# and a summary table at the end. Outputs go to demo-out/ (UFO_DEMO_OUT overrides).
# Knobs: DEMO_FASHION_EPOCHS (default 2), DEMO_DIGITS_EPOCHS (default 20), DEMO_THREADS.
# The full-accuracy recipes are examples/fashion-mnist.sh and examples/digits.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${UFO_BIN:-$ROOT/build}
OUT=${UFO_DEMO_OUT:-$ROOT/demo-out}
DATA=${UFO_DATA_DIR:-$ROOT/data}
T=${DEMO_THREADS:-$(nproc)}
FE=${DEMO_FASHION_EPOCHS:-2}
DE=${DEMO_DIGITS_EPOCHS:-20}
mkdir -p "$OUT"
say() { printf '\n== %s\n' "$*" >&2; }
start=$(date +%s)

say "fetch and import the datasets (Fashion-MNIST from dataset-fashion-mnist, digits from opencv-doc)"
UFO_BIN=$BIN UFO_DATA_DIR=$DATA "$ROOT/scripts/fetch-data"
for f in fashion-train fashion-test digits-train digits-test; do
  "$BIN/ufo-data" info --json "$DATA/$f.h5" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print("  ", d["file"], d["count"], "images", d["shape"], d["num_classes"], "classes", file=sys.stderr)'
done

train() {   # name train test epochs batch extra...
  local name=$1 tr=$2 te=$3 ep=$4 b=$5; shift 5
  say "train $name: preset small, $ep epochs, batch $b, $T threads"
  local t0=$(date +%s)
  "$BIN/ufo-train" "$tr" --val "$te" --preset small --epochs "$ep" -b "$b" --lr 1e-3 \
      --seed 1 -t "$T" --task-name "$name" -o "$OUT/$name.h5" "$@" | tee "$OUT/$name-train.tsv" >&2
  echo $(( $(date +%s) - t0 )) > "$OUT/$name-train.seconds"
}
train fashion "$DATA/fashion-train.h5" "$DATA/fashion-test.h5" "$FE" 128 --crop-pad 2 --hflip
train digits "$DATA/digits-train.h5" "$DATA/digits-test.h5" "$DE" 64 --crop-pad 2

for name in fashion digits; do
  say "infer $name on its test split"
  "$BIN/ufo-infer" -m "$OUT/$name.h5" "$DATA/$name-test.h5" -t "$T" > "$OUT/$name-predictions.tsv"
  "$BIN/ufo-infer" -m "$OUT/$name.h5" "$DATA/$name-test.h5" -t "$T" --summary-only --json > "$OUT/$name-summary.json"
  say "bench $name: latency at batch 1, throughput at batch 256"
  "$BIN/ufo-bench" -m "$OUT/$name.h5" -b 1,256 -t "$T" --reps 5 -o jsonl > "$OUT/$name-bench.jsonl"
done

say "summary ($(( $(date +%s) - start )) s in all)"
python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
rows = []
for name in ("fashion", "digits"):
    s = json.load(open(f"{out}/{name}-summary.json"))["summary"]
    bench = [json.loads(l) for l in open(f"{out}/{name}-bench.jsonl")]
    b1 = next(b for b in bench if b["batch"] == 1)
    b256 = next(b for b in bench if b["batch"] == 256)
    secs = int(open(f"{out}/{name}-train.seconds").read())
    rows.append((name, b1["params"], secs, s["accuracy"] * 100, b1["median_ms"], b256["img_per_s"]))
print("| task | params | train s | test acc % | latency b1 ms | infer b256 img/s |")
print("|---|---:|---:|---:|---:|---:|")
for r in rows:
    print(f"| {r[0]} | {r[1]:,} | {r[2]} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.0f} |")
PY
