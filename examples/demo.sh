#!/usr/bin/env bash
# demo.sh — the whole ufo flow on real data, minutes not hours (make demo):
#   fetch (Debian packages) -> import -> multi-task train (one Task-MoE supernet on
#   Fashion-MNIST + digits) -> route (table, sharing, heatmap PNG) -> extract each task's
#   sub-network -> infer -> bench; then One-for-All on the fashion sub-network: elastic
#   training -> sampling table (latency, FLOPs, accuracy on a validation split) -> GP-NAS
#   predictor (ufo-search eval, fit) -> the most accurate sub-network within half the largest's
#   latency (ufo-search select) -> extract it -> infer, bench; deploy: the fashion sub-network
#   exported to ONNX (ufo-export) and run by ONNX Runtime on the test split; summary tables.
# Outputs go to demo-out/ (UFO_DEMO_OUT overrides).
# Knobs: DEMO_STEPS (default 900), DEMO_ELASTIC_STEPS (default 300), DEMO_SAMPLES (default 22),
# DEMO_THREADS (default: all cores). The long version is examples/one-for-all.sh.
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
SAMPLES=${DEMO_SAMPLES:-22}
mkdir -p "$OUT"
say() { printf '\n== %s\n' "$*" >&2; }
start=$(date +%s)

say "fetch and import the datasets (Fashion-MNIST from dataset-fashion-mnist, digits from opencv-doc)"
UFO_BIN=$BIN UFO_DATA_DIR=$DATA "$ROOT/scripts/fetch-data"
for f in fashion-train fashion-test digits-train digits-test; do
  "$BIN/ufo-data" info --json "$DATA/$f.h5" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print("  ", d["file"], d["count"], "images", d["shape"], d["num_classes"], "classes", file=sys.stderr)'
done

# 5000 training images held out: the One-for-All stage chooses on them, the test split reports.
"$BIN/ufo-data" split "$DATA/fashion-train.h5" --count 55000,5000 --seed 1 \
    -o "$OUT/fashion-train.h5" -o "$OUT/fashion-val.h5" >/dev/null

say "multi-task train: one supernet on fashion (batch 128) + digits (batch 64), $STEPS steps, $T threads"
say "  routes are learned with Gumbel-softmax until step $(( STEPS * 6 / 10 )), then frozen"
t0=$(date +%s)
"$BIN/ufo-train" --task "fashion=$OUT/fashion-train.h5,$DATA/fashion-test.h5" \
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
"$BIN/ufo-train" "$OUT/fashion-train.h5" --init "$OUT/fashion.h5" --elastic --elastic-depth 4,5,6 \
    --elastic-heads 1,2,3 --elastic-mlp-ratio 1,1.5,2 --steps "$ELASTIC_STEPS" --lr 5e-4 --crop-pad 2 --seed 1 \
    -t "$T" --log-every "$ELASTIC_STEPS" -o "$OUT/elastic.h5" > "$OUT/elastic-train.tsv"
say "sampling table: the largest, the smallest and $SAMPLES random sub-networks, timed here (2 rounds), accuracy on the validation split"
"$BIN/ufo-bench" -m "$OUT/elastic.h5" --sample "$SAMPLES" --seed 1 --eval "$OUT/fashion-val.h5" -b 64 -t "$T" \
    --rounds 2 > "$OUT/elastic-table.tsv"
say "ufo-search: k-fold check of the GP-NAS predictor, fit, and the most accurate sub-network within half the largest's latency"
"$BIN/ufo-search" eval "$OUT/elastic-table.tsv" -m "$OUT/elastic.h5" --folds 5 > "$OUT/search-eval.tsv"
"$BIN/ufo-search" fit "$OUT/elastic-table.tsv" -m "$OUT/elastic.h5" -o "$OUT/predictor.h5" > "$OUT/search-fit.tsv"
budget=$(awk -F'\t' 'NR == 2 { printf "%.4f", $7 / 2 }' "$OUT/elastic-table.tsv")
"$BIN/ufo-search" select "$OUT/predictor.h5" --budget "latency=${budget}ms" --json > "$OUT/search-select.json"
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["arch"])' "$OUT/search-select.json" |
    "$BIN/ufo-extract" "$OUT/elastic.h5" --arch - -o "$OUT/fashion-chip.h5" --json > "$OUT/fashion-chip-extract.json"
"$BIN/ufo-infer" -m "$OUT/fashion-chip.h5" "$DATA/fashion-test.h5" -t "$T" --summary-only --json > "$OUT/fashion-chip-summary.json"
"$BIN/ufo-infer" -m "$OUT/fashion-chip.h5" "$OUT/fashion-val.h5" -t "$T" --summary-only --json > "$OUT/fashion-chip-val.json"
: > "$OUT/fashion-chip-bench.jsonl"
for round in 1 2 3; do
  "$BIN/ufo-bench" -m "$OUT/fashion-chip.h5" -b 1 -t "$T" --reps 100 --warmup 10 -o jsonl >> "$OUT/fashion-chip-bench.jsonl"
done

say "deploy: export the fashion sub-network to ONNX; ONNX Runtime predicts the test split"
"$BIN/ufo-export" "$OUT/fashion.h5" -o "$OUT/fashion.onnx" --json > "$OUT/fashion-export.json"
# ONNX Runtime reads raw pixels: h5dump decodes the compressed test split with ufo's HDF5 plugin.
HDF5_PLUGIN_PATH="$BIN/plugins" h5dump -d /images -b LE -o "$OUT/fashion-test.u8" "$DATA/fashion-test.h5" > /dev/null
"$ROOT/scripts/ort-setup" > /dev/null
"$ROOT/scripts/ort-infer" "$OUT/fashion.onnx" "$OUT/fashion-test.u8" --threads "$T" --logits > "$OUT/fashion-ort.tsv"
"$BIN/ufo-infer" -m "$OUT/fashion.h5" "$DATA/fashion-test.h5" -t "$T" --logits > "$OUT/fashion-logits.tsv"
"$ROOT/scripts/logits-diff" "$OUT/fashion-logits.tsv" "$OUT/fashion-ort.tsv" > "$OUT/fashion-ort-diff.tsv"
rm -f "$OUT/fashion-test.u8"

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
def tsv(path):
    with open(path) as f:
        head = next(f).rstrip("\n").split("\t")
        return [dict(zip(head, l.rstrip("\n").split("\t"))) for l in f if l.strip()]
rows = tsv(f"{out}/elastic-table.tsv")
lat = sorted(float(r["latency_ms"]) for r in rows)
acc = sorted(float(r["accuracy"]) for r in rows)
print("One-for-All on fashion: one elastic model, %d of its sub-networks measured here (latency b1 %.3f to %.3f ms, "
      "validation accuracy %.2f to %.2f %%); GP-NAS predictor, 5-fold cross-validation:" %
      (len(rows), lat[0], lat[-1], acc[0] * 100, acc[-1] * 100))
print()
print("| target | model | Kendall tau | Spearman rho | RMSE |")
print("|---|---|---:|---:|---:|")
for r in tsv(f"{out}/search-eval.tsv"):
    print(f"| {r['target']} | {r['model']} | {r['kendall_tau']} | {r['spearman_rho']} | {r['rmse']} |")
sel = json.load(open(f"{out}/search-select.json"))
chip = json.load(open(f"{out}/fashion-chip-extract.json"))
test = json.load(open(f"{out}/fashion-chip-summary.json"))["summary"]
val = json.load(open(f"{out}/fashion-chip-val.json"))["summary"]
b1 = statistics.median(json.loads(l)["median_ms"] for l in open(f"{out}/fashion-chip-bench.jsonl"))
budget = sel["budget"]["latency_ms"]
print()
print("| latency budget ms | chosen sub-network (ufo-search select, then ufo-extract) | params | val acc % predicted / measured | "
      "test acc % | latency b1 ms predicted / measured | budget held |")
print("|---:|---|---:|---:|---:|---:|:---:|")
print(f"| {budget:.3f} | {sel['arch']} | {chip['subnet_params']:,} | {sel['accuracy'] * 100:.2f} / {val['accuracy'] * 100:.2f} | "
      f"{test['accuracy'] * 100:.2f} | {sel['latency_ms']:.3f} / {b1:.3f} | {'yes' if b1 <= budget else 'no'} |")
ex = json.load(open(f"{out}/fashion-export.json"))
diff = tsv(f"{out}/fashion-ort-diff.tsv")[0]
ufo_rows = {r["index"]: r for r in tsv(f"{out}/fashion-logits.tsv")}
ort_rows = tsv(f"{out}/fashion-ort.tsv")
ort_acc = sum(r["prediction"] == ufo_rows[r["index"]]["label"] for r in ort_rows) / len(ort_rows)
print()
print("Deployment: the fashion sub-network as ONNX (ufo-export), run by ONNX Runtime on the test split:")
print()
print("| ONNX file | opset | nodes | KB | test images | predictions equal to ufo-infer's | max abs logit diff | test acc % (ONNX Runtime) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
print(f"| fashion.onnx | {ex['opset']} | {ex['nodes']} | {ex['bytes'] / 1024:.0f} | {diff['rows']} | {diff['predictions_equal']} | "
      f"{float(diff['max_abs_diff']):.1e} | {ort_acc * 100:.2f} |")
PY
