#!/usr/bin/env bash
# all-in-one.sh — single-task dense baselines against the All-in-One Task-MoE supernet on
# Fashion-MNIST + digits, with the same architecture (preset small), the same number of steps
# and the same batch size per task. Then routes, extraction, parameter counts and latency of
# a task on the supernet vs its extracted sub-network vs the dense baseline of the same size.
#
# Knobs (environment): STEPS (2500), FASHION_BATCH (128), DIGITS_BATCH (64), LR (2e-3),
# ROUTER_LR (0.01), FREEZE (route freeze step; default 60% of STEPS), SUPERNET_FLAGS (more
# ufo-train options for the supernet only, e.g. "--task-weight fashion=2"), OUT (runs/all-in-one).
# The three trainings run as two single-threaded jobs side by side (on 2 cores that uses the
# machine better than one 2-thread job); the benchmarks run afterwards, alone.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${UFO_BIN:-$ROOT/build}
DATA=${UFO_DATA_DIR:-$ROOT/data}
OUT=${OUT:-$ROOT/runs/all-in-one}
STEPS=${STEPS:-2500}
FB=${FASHION_BATCH:-128}
DB=${DIGITS_BATCH:-64}
LR=${LR:-2e-3}
RLR=${ROUTER_LR:-0.01}
FREEZE=${FREEZE:-$(( STEPS * 6 / 10 ))}
read -r -a EXTRA <<< "${SUPERNET_FLAGS:-}"
mkdir -p "$OUT"
UFO_BIN=$BIN UFO_DATA_DIR=$DATA "$ROOT/scripts/fetch-data" >&2
export OMP_WAIT_POLICY=passive
COMMON=(--preset small --steps "$STEPS" --lr "$LR" --crop-pad 2 --seed 1 -t 1 --log-every 500)

single() {   # name batch
  local n=$1 b=$2 t0
  t0=$(date +%s)
  "$BIN/ufo-train" "$DATA/$n-train.h5" --val "$DATA/$n-test.h5" --task-name "$n" -b "$b" "${COMMON[@]}" \
      -o "$OUT/single-$n.h5" > "$OUT/single-$n.tsv" 2> "$OUT/single-$n.err"
  echo $(( $(date +%s) - t0 )) > "$OUT/single-$n.seconds"
}
multi() {
  local t0
  t0=$(date +%s)
  "$BIN/ufo-train" --task "fashion=$DATA/fashion-train.h5,$DATA/fashion-test.h5" \
      --task "digits=$DATA/digits-train.h5,$DATA/digits-test.h5" --task-batch "fashion=$FB,digits=$DB" \
      --router-lr "$RLR" --route-freeze-at "$FREEZE" "${COMMON[@]}" ${EXTRA[@]+"${EXTRA[@]}"} \
      -o "$OUT/supernet.h5" > "$OUT/supernet.tsv" 2> "$OUT/supernet.err"
  echo $(( $(date +%s) - t0 )) > "$OUT/supernet.seconds"
}
echo "all-in-one: training (two single-threaded jobs side by side; logs in $OUT)" >&2
multi &
mpid=$!
single fashion "$FB"
single digits "$DB"
wait "$mpid"

"$BIN/ufo-route" "$OUT/supernet.h5" > "$OUT/routes.tsv"
"$BIN/ufo-route" --sharing "$OUT/supernet.h5" > "$OUT/sharing.tsv"
"$BIN/ufo-route" "$OUT/supernet.h5" --plot "$OUT/routes.png" > /dev/null 2>&1 || echo "all-in-one: no heatmap (gnuplot?)" >&2
for n in fashion digits; do
  "$BIN/ufo-extract" "$OUT/supernet.h5" --task "$n" -o "$OUT/$n-subnet.h5" --json > "$OUT/$n-extract.json"
  for m in single-$n:"$OUT/single-$n.h5" subnet-$n:"$OUT/$n-subnet.h5"; do
    "$BIN/ufo-infer" -m "${m#*:}" "$DATA/$n-test.h5" -t 2 --summary-only --json > "$OUT/${m%%:*}-summary.json"
  done
  "$BIN/ufo-infer" -m "$OUT/supernet.h5" --task "$n" "$DATA/$n-test.h5" -t 2 --summary-only --json \
      > "$OUT/supernet-$n-summary.json"
done
# Latency at batch 1, 1 thread: supernet --task, extracted sub-network, dense baseline; three
# rounds taking turns, so that drift of a shared machine hits all three alike.
: > "$OUT/bench.jsonl"
for round in 1 2 3; do
  for n in fashion digits; do
    "$BIN/ufo-bench" -m "$OUT/supernet.h5" --task "$n" -b 1 -t 1 --reps 200 --warmup 20 -o jsonl | sed "s/^{/{\"case\":\"supernet --task $n\",/" >> "$OUT/bench.jsonl"
    "$BIN/ufo-bench" -m "$OUT/$n-subnet.h5" -b 1 -t 1 --reps 200 --warmup 20 -o jsonl | sed "s/^{/{\"case\":\"subnet $n\",/" >> "$OUT/bench.jsonl"
    "$BIN/ufo-bench" -m "$OUT/single-$n.h5" -b 1 -t 1 --reps 200 --warmup 20 -o jsonl | sed "s/^{/{\"case\":\"dense $n\",/" >> "$OUT/bench.jsonl"
  done 2>/dev/null
done
python3 "$ROOT/scripts/all-in-one-report" "$OUT"
