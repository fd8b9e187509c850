#!/usr/bin/env bash
# one-for-all.sh — the chip flow end to end on Fashion-MNIST + digits:
#   task supernet (Task-MoE) -> ufo-extract --task fashion -> elastic training (sandwich rule,
#   in-place distillation) -> sampling table (latency here, accuracy on a validation split) ->
#   ufo-search eval (k-fold) and fit -> ufo-search select under latency budgets ->
#   ufo-extract --arch - -> ufo-infer (test split) -> ufo-bench,
# ending with a table per budget: the chosen spec, predicted against measured accuracy and
# latency, parameters, whether the budget held, and the best measured sub-network of the
# sampling table within the same budget (the same measuring cost without a predictor).
#
# Knobs (environment): STEPS (supernet, 2500), ELASTIC_STEPS (800), ELASTIC_LR (5e-4),
# SAMPLES (random rows of the table besides the largest and the smallest, 58), ROUNDS (3),
# BUDGETS (space-separated fractions of the largest sub-network's latency, "0.5 0.7"),
# THREADS (2), OUT (runs/one-for-all). Stages whose output exists are skipped, so a run can be
# resumed or re-summarised.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${UFO_BIN:-$ROOT/build}
DATA=${UFO_DATA_DIR:-$ROOT/data}
OUT=${OUT:-$ROOT/runs/one-for-all}
STEPS=${STEPS:-2500}
ELASTIC_STEPS=${ELASTIC_STEPS:-800}
ELASTIC_LR=${ELASTIC_LR:-5e-4}
SAMPLES=${SAMPLES:-58}
ROUNDS=${ROUNDS:-3}
BUDGETS=${BUDGETS:-"0.5 0.7"}
T=${THREADS:-2}
mkdir -p "$OUT"
stage() { echo "== $* ($(date +%T))" >&2; }
UFO_BIN=$BIN UFO_DATA_DIR=$DATA "$ROOT/scripts/fetch-data" >&2

# The validation split chooses; the test split only reports.
[ -f "$OUT/val.h5" ] || "$BIN/ufo-data" split "$DATA/fashion-train.h5" --count 55000,5000 --seed 1 \
    -o "$OUT/train.h5" -o "$OUT/val.h5" >/dev/null

stage "task supernet: fashion + digits, $STEPS steps"
[ -f "$OUT/supernet.h5" ] || "$BIN/ufo-train" --task "fashion=$OUT/train.h5,$OUT/val.h5" \
    --task "digits=$DATA/digits-train.h5,$DATA/digits-test.h5" --task-batch fashion=128,digits=64 \
    --preset small --steps "$STEPS" --lr 2e-3 --router-lr 0.01 --route-freeze-at $(( STEPS * 6 / 10 )) \
    --crop-pad 2 --seed 1 -t "$T" --log-every 500 -o "$OUT/supernet.h5" > "$OUT/supernet.tsv"

stage "extract the fashion sub-network along its hardened route"
[ -f "$OUT/fashion.h5" ] || "$BIN/ufo-route" --harden "$OUT/supernet.h5" 2>/dev/null |
    "$BIN/ufo-extract" --routes - --task fashion "$OUT/supernet.h5" -o "$OUT/fashion.h5" > /dev/null

stage "elastic training: $ELASTIC_STEPS steps"
[ -f "$OUT/elastic.h5" ] || "$BIN/ufo-train" "$OUT/train.h5" --init "$OUT/fashion.h5" --elastic \
    --elastic-depth 4,5,6 --elastic-heads 1,2,3 --elastic-mlp-ratio 1,1.5,2 --steps "$ELASTIC_STEPS" \
    --lr "$ELASTIC_LR" -b 128 --crop-pad 2 --hflip --seed 1 -t "$T" --log-every 200 -o "$OUT/elastic.h5" \
    > "$OUT/elastic.tsv"

stage "sampling table: the largest, the smallest and $SAMPLES random sub-networks ($ROUNDS timing rounds)"
[ -f "$OUT/table.tsv" ] || "$BIN/ufo-bench" -m "$OUT/elastic.h5" --sample "$SAMPLES" --seed 1 --eval "$OUT/val.h5" \
    -b 64 -t "$T" --reps 30 --rounds "$ROUNDS" > "$OUT/table.tsv"

stage "predictor: k-fold cross-validation, fit, predicted front"
"$BIN/ufo-search" eval "$OUT/table.tsv" -m "$OUT/elastic.h5" --folds 5 > "$OUT/eval.tsv"
"$BIN/ufo-search" fit "$OUT/table.tsv" -m "$OUT/elastic.h5" -o "$OUT/pred.h5" > "$OUT/fit.tsv"
"$BIN/ufo-search" pareto "$OUT/pred.h5" --plot "$OUT/front.png" > "$OUT/front.tsv"

largest=$(awk -F'\t' 'NR == 2 { print $7 }' "$OUT/table.tsv")
: > "$OUT/picks.tsv"
k=0
for f in $BUDGETS; do
  budget=$(python3 -c "print(round($largest * $f, 4))")
  stage "select within latency $budget ms ($f x the largest's), extract, test"
  "$BIN/ufo-search" select "$OUT/pred.h5" --budget "latency=${budget}ms" --json > "$OUT/select-$k.json"
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["arch"])' "$OUT/select-$k.json" |
      "$BIN/ufo-extract" "$OUT/elastic.h5" --arch - -o "$OUT/chip-$k.h5" --json > "$OUT/chip-$k.json"
  "$BIN/ufo-infer" -m "$OUT/chip-$k.h5" "$DATA/fashion-test.h5" -t "$T" --summary-only --json > "$OUT/chip-$k-test.json"
  # The best measured row of the table within the same budget: the same measuring cost, no predictor.
  awk -F'\t' -v b="$budget" 'NR > 1 && $7 <= b && $10 > best { best = $10; spec = $2 } END { print spec }' \
      "$OUT/table.tsv" > "$OUT/random-best-$k.txt"
  printf '%s\t%s\t%s\n' "$budget" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["arch"])' \
      "$OUT/select-$k.json")" "$(cat "$OUT/random-best-$k.txt")" >> "$OUT/picks.tsv"
  k=$((k + 1))
done

stage "measure the chosen and the best random sub-networks again, together with the largest, as the table measured them"
# The largest first: a shared machine changes speed between runs, so a budget is checked as a
# fraction of the largest's latency measured in the same run.
{ awk -F'\t' 'NR == 2 { print $2 }' "$OUT/table.tsv"; cut -f2,3 "$OUT/picks.tsv" | tr '\t' '\n' | grep . | sort -u; } \
    > "$OUT/remeasure.txt"
"$BIN/ufo-bench" -m "$OUT/elastic.h5" --archs "$OUT/remeasure.txt" --eval "$OUT/val.h5" -b 64 -t "$T" --reps 30 \
    --rounds 5 > "$OUT/remeasure.tsv"
for i in $(seq 0 $((k - 1))); do
  "$BIN/ufo-bench" -m "$OUT/chip-$i.h5" -b 1 -t "$T" --reps 200 --warmup 20 -o jsonl > "$OUT/chip-$i-bench.jsonl"
done

python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
def table(path):
    with open(path) as f:
        head = next(f).rstrip("\n").split("\t")
        return [dict(zip(head, l.rstrip("\n").split("\t"))) for l in f if l.strip()]
rows = table(f"{out}/table.tsv")
remeasured = table(f"{out}/remeasure.tsv")
again = {r["arch"]: r for r in remeasured}
# Latencies of this run in the table's terms: scaled by the largest's latency then and now.
scale = float(rows[0]["latency_ms"]) / float(remeasured[0]["latency_ms"])
print(f"sampling table: {len(rows)} sub-networks measured (accuracy on the validation split)")
print()
print("| target | model | rows | folds | Kendall tau | Spearman rho | RMSE |")
print("|---|---|---:|---:|---:|---:|---:|")
for r in table(f"{out}/eval.tsv"):
    print(f"| {r['target']} | {r['model']} | {r['rows']} | {r['folds']} | {r['kendall_tau']} | {r['spearman_rho']} | {r['rmse']} |")
print()
print(f"Latencies measured again are scaled by {scale:.3f} (the largest sub-network's latency in the table over "
      "its latency in the new run), so that they compare with the budget and the predictions.")
print()
print("| latency budget ms | chosen by | spec | params | val acc % predicted | val acc % measured | test acc % | "
      "latency ms predicted | latency ms measured | extracted file b1 ms | budget held |")
print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|:---:|")
for k, line in enumerate(open(f"{out}/picks.tsv")):
    budget, chosen, rand = line.rstrip("\n").split("\t")
    b = float(budget)
    sel = json.load(open(f"{out}/select-{k}.json"))
    test = json.load(open(f"{out}/chip-{k}-test.json"))["summary"]
    chip = [json.loads(l) for l in open(f"{out}/chip-{k}-bench.jsonl")][0]
    m = again[chosen]
    print(f"| {b:.3f} | ufo-search | {chosen} | {sel['params']:,} | {sel['accuracy'] * 100:.2f} | "
          f"{float(m['accuracy']) * 100:.2f} | {test['accuracy'] * 100:.2f} | {sel['latency_ms']:.3f} | "
          f"{float(m['latency_ms']) * scale:.3f} | {chip['median_ms'] * scale:.3f} | "
          f"{'yes' if float(m['latency_ms']) * scale <= b else 'no'} |")
    if rand:
        r = again[rand]
        print(f"| {b:.3f} | best of the table | {rand} | {int(r['params']):,} | | {float(r['accuracy']) * 100:.2f} | | | "
              f"{float(r['latency_ms']) * scale:.3f} | | {'yes' if float(r['latency_ms']) * scale <= b else 'no'} |")
    else:
        print(f"| {b:.3f} | best of the table | (no measured sub-network within the budget) | | | | | | | | |")
PY
