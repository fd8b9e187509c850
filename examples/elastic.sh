#!/usr/bin/env bash
# One-for-All on Fashion-MNIST (small preset): a task model, an elastic model trained from it
# with the sandwich rule and in-place distillation (with and without importance sorting),
# five sub-architectures trained alone from scratch for the same total steps, extraction,
# and a sampling table. Prints the tables of the README's One-for-All section.
#   examples/elastic.sh [OUT_DIR]     (THREADS=2, TASK_STEPS, ELASTIC_STEPS, ELASTIC_LR, SAMPLES to change)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build}; OUT=${1:-runs/elastic}; T=${THREADS:-2}
TASK_STEPS=${TASK_STEPS:-1200}; ELASTIC_STEPS=${ELASTIC_STEPS:-800}; ELASTIC_LR=${ELASTIC_LR:-5e-4}; SAMPLES=${SAMPLES:-50}
DATA=data
mkdir -p "$OUT"
[ -f "$DATA/fashion-train.h5" ] || scripts/fetch-data
# A validation split for the sampling table (the test split stays for the final figures).
[ -f "$OUT/val.h5" ] || "$BIN/ufo-data" split "$DATA/fashion-train.h5" --count 55000,5000 --seed 1 \
    -o "$OUT/train.h5" -o "$OUT/val.h5" >/dev/null
COMMON=(-b 128 --crop-pad 2 --hflip -t "$T" --seed 1 --log-every 500)
SPACE=(--elastic-depth 4,5,6 --elastic-heads 1,2,3 --elastic-mlp-ratio 1,1.5,2)
ARCHS=("depth=6 heads=3 mlp=192"
       "depth=6 heads=2 mlp=144"
       "depth=5 heads=3,3,2,2,1 mlp=192,192,144,96,96"
       "depth=4 heads=3,2,2,1 mlp=144,144,96,96"
       "depth=4 heads=1 mlp=96")
stage() { echo "== $* ($(date +%T))" >&2; }

stage "task model: $TASK_STEPS steps"
[ -f "$OUT/task.h5" ] || "$BIN/ufo-train" "$OUT/train.h5" --preset small --steps "$TASK_STEPS" "${COMMON[@]}" --lr 2e-3 \
    --task-name fashion -o "$OUT/task.h5" > "$OUT/task.tsv"
for sort in sort no-sort; do
    stage "elastic model ($sort-importance): $ELASTIC_STEPS steps"
    [ -f "$OUT/elastic-$sort.h5" ] || "$BIN/ufo-train" "$OUT/train.h5" --init "$OUT/task.h5" --elastic "${SPACE[@]}" \
        --"$sort"-importance --steps "$ELASTIC_STEPS" "${COMMON[@]}" --lr "$ELASTIC_LR" -o "$OUT/elastic-$sort.h5" \
        > "$OUT/elastic-$sort.tsv"
done
i=0
for a in "${ARCHS[@]}"; do
    stage "alone from scratch: $a, $((TASK_STEPS + ELASTIC_STEPS)) steps"
    [ -f "$OUT/alone-$i.h5" ] || "$BIN/ufo-train" "$OUT/train.h5" --preset small --arch "$a" \
        --steps $((TASK_STEPS + ELASTIC_STEPS)) "${COMMON[@]}" --lr 2e-3 --task-name fashion -o "$OUT/alone-$i.h5" \
        > "$OUT/alone-$i.tsv"
    i=$((i + 1))
done

acc() { local m=$1; shift; "$BIN/ufo-infer" -m "$m" "$@" "$DATA/fashion-test.h5" -t "$T" --summary-only 2>/dev/null | awk '$1 == "accuracy" {print $2}'; }
stage "A/B: test accuracy"
{
    printf 'arch\tparams\tmflops\telastic\telastic_no_sort\talone\n'
    i=0
    for a in "${ARCHS[@]}"; do
        row=$("$BIN/ufo-extract" "$OUT/elastic-sort.h5" --arch "$a" -o "$OUT/sub-$i.h5" | tail -1)
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$a" "$(cut -f3 <<<"$row")" "$(cut -f4 <<<"$row")" \
            "$(acc "$OUT/elastic-sort.h5" --arch "$a")" "$(acc "$OUT/elastic-no-sort.h5" --arch "$a")" \
            "$(acc "$OUT/alone-$i.h5")"
        i=$((i + 1))
    done
} | tee "$OUT/accuracy.tsv"

stage "C: extracted sub-networks against the elastic model run with --arch"
{
    printf 'arch\tmax_abs_logit_diff\tparams_elastic\tparams_sub\tfile_kb_elastic\tfile_kb_sub\tlatency_ms_arch\tlatency_ms_sub\tratio\n'
    i=0
    for a in "${ARCHS[@]}"; do
        "$BIN/ufo-infer" -m "$OUT/elastic-sort.h5" --arch "$a" "$DATA/fashion-test.h5" -t "$T" --logits 2>/dev/null > "$OUT/l-arch.tsv"
        "$BIN/ufo-infer" -m "$OUT/sub-$i.h5" "$DATA/fashion-test.h5" -t "$T" --logits 2>/dev/null > "$OUT/l-sub.tsv"
        diff=$(paste "$OUT/l-arch.tsv" "$OUT/l-sub.tsv" | awk -F'\t' 'NR > 1 { n = NF / 2; for (k = 6; k <= n; k++) { d = $k - $(k + n); if (d < 0) d = -d; if (d > m) m = d } } END { printf "%.2g", m }')
        : > "$OUT/lat-arch.jsonl"; : > "$OUT/lat-sub.jsonl"
        for round in 1 2 3; do   # interleaved rounds, median of the rounds' medians
            "$BIN/ufo-bench" -m "$OUT/elastic-sort.h5" --arch "$a" -b 1 -t "$T" --reps 200 --warmup 20 -o jsonl 2>/dev/null >> "$OUT/lat-arch.jsonl"
            "$BIN/ufo-bench" -m "$OUT/sub-$i.h5" -b 1 -t "$T" --reps 200 --warmup 20 -o jsonl 2>/dev/null >> "$OUT/lat-sub.jsonl"
        done
        med() { python3 -c 'import json,statistics,sys; print("%.4f" % statistics.median(json.loads(l)["median_ms"] for l in open(sys.argv[1])))' "$1"; }
        la=$(med "$OUT/lat-arch.jsonl"); ls=$(med "$OUT/lat-sub.jsonl")
        ps=$(h5dump -a /num_params "$OUT/sub-$i.h5" | sed -n 's/.*(0): *//p')
        printf '%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%.3f\n' "$a" "$diff" "$(h5dump -a /num_params "$OUT/elastic-sort.h5" | sed -n 's/.*(0): *//p')" \
            "$ps" $(( $(stat -c %s "$OUT/elastic-sort.h5") / 1024 )) $(( $(stat -c %s "$OUT/sub-$i.h5") / 1024 )) "$la" "$ls" \
            "$(python3 -c "print($ls / $la)")"
        i=$((i + 1))
    done
} | tee "$OUT/extract.tsv"

stage "D: sampling table of $SAMPLES random sub-networks plus the largest and the smallest (accuracy on the validation split)"
s0=$(date +%s)
"$BIN/ufo-bench" -m "$OUT/elastic-sort.h5" --sample "$SAMPLES" --seed 1 --eval "$OUT/val.h5" -b 256 -t "$T" > "$OUT/table.tsv"
echo "sampling table: $(( $(wc -l < "$OUT/table.tsv") - 1 )) rows in $(( $(date +%s) - s0 )) s" | tee "$OUT/table-time.txt"
awk -F'\t' 'NR == 2 { print "largest: " $2 ", " $7 " ms, acc " $10 } NR == 3 { print "smallest: " $2 ", " $7 " ms, acc " $10 }' "$OUT/table.tsv"
