#!/usr/bin/env bash
# demo.sh — the whole ufo flow on real data, minutes not hours (make demo):
#   fetch (Debian packages) -> import -> multi-task train (one Task-MoE supernet on
#   Fashion-MNIST + digits) -> route (table, sharing, heatmap PNG) -> extract each task's
#   sub-network -> infer -> bench; then One-for-All on the fashion sub-network: elastic
#   training -> sampling table (latency, FLOPs, accuracy) -> pick the most accurate sub-network
#   within half the largest's latency -> extract it; summary tables at the end.
# Outputs go to demo-out/ (UFO_DEMO_OUT overrides).
# Knobs: DEMO_STEPS (default 900), DEMO_ELASTIC_STEPS (default 300), DEMO_SAMPLES (default 8),
# DEMO_THREADS (default: all cores).
# The accuracy recipes are examples/fashion-mnist.sh, examples/digits.sh and
# examples/all-in-one.sh (single-task baselines against the supernet).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${UFO_BIN:-$ROOT/build}
OUT=${UFO_DEMO_OUT:-$ROOT/demo-out}
DATA=${UFO_DATA_DIR:-$ROOT/data}
T=${DEMO_THREADS:-$(nproc)}
STEPS=${DEMO_STEPS:-900}
ELASTIC_STEPS=${DEMO_ELASTIC_STEPS:-300}
SAMPLES=${DEMO_SAMPLES:-8}
mkdir -p "$OUT"
say() { printf '\n== %s\n' "$*" >&2; }
start=$(date +%s)

say "fetch and import the datasets (Fashion-MNIST from dataset-fashion-mnist, digits from opencv-doc)"
UFO_BIN=$BIN UFO_DATA_DIR=$DATA "$ROOT/scripts/fetch-data"
for f in fashion-train fashion-test digits-train digits-test; do
  "$BIN/ufo-data" info --json "$DATA/$f.h5" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print("  ", d["file"], d["count"], "images", d["shape"], d["num_classes"], "classes", file=sys.stderr)'
done

say "multi-task train: one supernet on fashion (batch 128) + digits (batch 64), $STEPS steps, $T threads"
say "  routes are learned with Gumbel-softmax until step $(( STEPS * 6 / 10 )), then frozen"
t0=$(date +%s)
"$BIN/ufo-train" --task "fashion=$DATA/fashion-train.h5,$DATA/fashion-test.h5" \
    --task "digits=$DATA/digits-train.h5,$DATA/digits-test.h5" --task-batch fashion=128,digits=64 \
    --preset small --steps "$STEPS" --lr 2e-3 --router-lr 0.01 --route-freeze-at $(( STEPS * 6 / 10 )) \
    --crop-pad 2 --seed 1 -t "$T" --log-every 150 -o "$OUT/supernet.h5" | tee "$OUT/supernet-train.tsv" >&2
echo $(( $(date +%s) - t0 )) > "$OUT/supernet-train.seconds"

say "route: per task and layer p(shared), p(own) and the chosen path; what the tasks share"
"$BIN/ufo-route" "$OUT/supernet.h5" | tee "$OUT/routes.tsv" >&2
"$BIN/ufo-route" --sharing "$OUT/supernet.h5" > "$OUT/sharing.tsv"
if "$BIN/ufo-route" "$OUT/supernet.h5" --plot "$OUT/routes.png" > /dev/null; then
  echo "   heatmap: $OUT/routes.png" >&2
fi

for name in fashion digits; do
  say "extract $name: hardened route -> standalone sub-network"
  "$BIN/ufo-route" --harden "$OUT/supernet.h5" 2>/dev/null |
    "$BIN/ufo-extract" --routes - --task "$name" "$OUT/supernet.h5" -o "$OUT/$name.h5" --json > "$OUT/$name-extract.json"
  say "infer $name on its test split (extracted sub-network, and the supernet with --task)"
  "$BIN/ufo-infer" -m "$OUT/$name.h5" "$DATA/$name-test.h5" -t "$T" > "$OUT/$name-predictions.tsv"
  "$BIN/ufo-infer" -m "$OUT/$name.h5" "$DATA/$name-test.h5" -t "$T" --summary-only --json > "$OUT/$name-summary.json"
  "$BIN/ufo-infer" -m "$OUT/supernet.h5" --task "$name" "$DATA/$name-test.h5" -t "$T" > "$OUT/$name-supernet-predictions.tsv"
  if cmp -s "$OUT/$name-predictions.tsv" "$OUT/$name-supernet-predictions.tsv"; then same=yes; else same=no; fi
  echo "$same" > "$OUT/$name-same.txt"
  say "bench $name: latency at batch 1 and throughput at batch 256, sub-network and supernet --task"
  # Batch 1 takes about a millisecond, and a shared machine has slow spells lasting longer than
  # 100 of them: three interleaved rounds of sub-network and supernet, then the median round.
  "$BIN/ufo-bench" -m "$OUT/$name.h5" -b 256 -t "$T" --reps 5 -o jsonl > "$OUT/$name-bench.jsonl"
  : > "$OUT/$name-supernet-bench.jsonl"
  for round in 1 2 3; do
    "$BIN/ufo-bench" -m "$OUT/$name.h5" -b 1 -t "$T" --reps 100 --warmup 10 -o jsonl >> "$OUT/$name-bench.jsonl"
    "$BIN/ufo-bench" -m "$OUT/supernet.h5" --task "$name" -b 1 -t "$T" --reps 100 --warmup 10 -o jsonl \
        >> "$OUT/$name-supernet-bench.jsonl"
  done
done

say "One-for-All: elastic training of the fashion sub-network, $ELASTIC_STEPS steps (largest, smallest, 2 random per step)"
"$BIN/ufo-train" "$DATA/fashion-train.h5" --init "$OUT/fashion.h5" --elastic --elastic-depth 4,5,6 \
    --elastic-heads 1,2,3 --elastic-mlp-ratio 1,1.5,2 --steps "$ELASTIC_STEPS" --lr 5e-4 --crop-pad 2 --seed 1 \
    -t "$T" --log-every "$ELASTIC_STEPS" -o "$OUT/elastic.h5" > "$OUT/elastic-train.tsv"
say "sampling table: the largest, the smallest and $SAMPLES random sub-networks, timed here, accuracy on the test split"
"$BIN/ufo-bench" -m "$OUT/elastic.h5" --sample "$SAMPLES" --seed 1 --eval "$DATA/fashion-test.h5" -b 64 -t "$T" \
    > "$OUT/elastic-table.tsv"
say "pick the most accurate sub-network within half the largest's latency, and cut it out"
awk -F'\t' 'NR == 2 { budget = $7 / 2 } NR > 1 && $7 <= budget && $10 > best { best = $10; spec = $2 } END { print spec }' \
    "$OUT/elastic-table.tsv" > "$OUT/elastic-pick.txt"
[ -s "$OUT/elastic-pick.txt" ] || awk -F'\t' 'NR == 3 { print $2 }' "$OUT/elastic-table.tsv" > "$OUT/elastic-pick.txt"
"$BIN/ufo-extract" "$OUT/elastic.h5" --arch - -o "$OUT/fashion-chip.h5" --json < "$OUT/elastic-pick.txt" \
    > "$OUT/fashion-chip-extract.json"
"$BIN/ufo-infer" -m "$OUT/fashion-chip.h5" "$DATA/fashion-test.h5" -t "$T" --summary-only --json > "$OUT/fashion-chip-summary.json"

say "summary ($(( $(date +%s) - start )) s in all; supernet training $(cat "$OUT/supernet-train.seconds") s)"
python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
routes = {}
with open(f"{out}/routes.tsv") as f:
    next(f)
    for line in f:
        task, layer, ps, po, route = line.rstrip("\n").split("\t")
        routes.setdefault(task, []).append(route)
print("| task | route (per layer) | active params | supernet params | test acc % | sub-network = supernet --task | latency b1 ms, median of 3 rounds (sub / supernet) | infer b256 img/s |")
print("|---|---|---:|---:|---:|:---:|---:|---:|")
for name in ("fashion", "digits"):
    s = json.load(open(f"{out}/{name}-summary.json"))["summary"]
    ex = json.load(open(f"{out}/{name}-extract.json"))
    bench = [json.loads(l) for l in open(f"{out}/{name}-bench.jsonl")]
    sb = [json.loads(l) for l in open(f"{out}/{name}-supernet-bench.jsonl")]
    b1 = statistics.median(b["median_ms"] for b in bench if b["batch"] == 1)
    sb1 = statistics.median(b["median_ms"] for b in sb)
    b256 = next(b for b in bench if b["batch"] == 256)
    same = open(f"{out}/{name}-same.txt").read().strip()
    r = ",".join("own" if x == "own" else "sh" for x in routes[name])
    print(f"| {name} | {r} | {ex['subnet_params']:,} | {ex['supernet_params']:,} | {s['accuracy'] * 100:.2f} | {same} | "
          f"{b1:.2f} / {sb1:.2f} | {b256['img_per_s']:.0f} |")
print()
print("One-for-All on fashion (one elastic model; every row a sub-network of it, timed on this machine):")
print()
print("| sub-network | params | MFLOPs | latency b1 ms | b64 img/s | test acc % |")
print("|---|---:|---:|---:|---:|---:|")
with open(f"{out}/elastic-table.tsv") as f:
    head = next(f).rstrip("\n").split("\t")
    rows = [dict(zip(head, l.rstrip("\n").split("\t"))) for l in f]
for r in sorted(rows, key=lambda r: float(r["latency_ms"])):
    print(f"| {r['arch']} | {int(r['params']):,} | {float(r['mflops']):.1f} | {float(r['latency_ms']):.3f} | "
          f"{float(r['img_per_s']):.0f} | {float(r['accuracy']) * 100:.2f} |")
chip = json.load(open(f"{out}/fashion-chip-extract.json"))
cs = json.load(open(f"{out}/fashion-chip-summary.json"))["summary"]
print()
print(f"Picked (most accurate within half the largest's latency) and extracted: {chip['arch']}: "
      f"{chip['subnet_params']:,} params, test acc {cs['accuracy'] * 100:.2f} %")
PY
