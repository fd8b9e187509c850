#!/usr/bin/env bats
# ufo-bench: options, the four output formats, training mode, and one-line errors.

load common

TINY=(--preset tiny)
HEADER=model,mode,batch,threads,reps,median_ms,mean_ms,std_ms,min_ms,img_per_s,gflop_per_s,params,processes,allreduce_ms

@test "ufo-bench --help exits 0 and lists --reps" {
  run "$BIN/ufo-bench" --help
  assert_success
  assert_output --partial -- --reps
  assert_output --partial -- --train
}

@test "ufo-bench -o csv prints a header and one row per batch size" {
  run --separate-stderr "$BIN/ufo-bench" "${TINY[@]}" -b 1,2 -t 1 --reps 2 -o csv
  assert_success
  [ "${#lines[@]}" -eq 3 ]
  [ "${lines[0]}" = "$HEADER" ]
  IFS=, read -r -a r1 <<<"${lines[1]}"
  IFS=, read -r -a r2 <<<"${lines[2]}"
  [ "${#r1[@]}" -eq 14 ]
  [ "${r1[0]}" = arch ] && [ "${r1[1]}" = infer ]
  [ "${r1[2]}" = 1 ] && [ "${r2[2]}" = 2 ]     # batch
  [ "${r1[3]}" = 1 ] && [ "${r1[4]}" = 2 ]     # threads, reps
  [ "${r1[11]}" -gt 0 ]                        # params
  [ "${r1[12]}" = 1 ] && [ "${r1[13]}" = 0.000 ] # processes, allreduce_ms (one process)
  # Progress is on stderr, never mixed into the table.
  [ -n "$stderr" ]
}

@test "ufo-bench -o json is one JSON array with every column" {
  run --separate-stderr "$BIN/ufo-bench" "${TINY[@]}" -b 1,2 -t 1 --reps 2 -o json
  assert_success
  python3 -c '
import json, sys
rows = json.loads(sys.argv[1])
assert isinstance(rows, list) and len(rows) == 2, rows
cols = sys.argv[2].split(",")
for r in rows:
    assert list(r) == cols, list(r)
    assert r["median_ms"] > 0 and r["img_per_s"] > 0 and r["gflop_per_s"] > 0
' "$output" "$HEADER"
}

@test "ufo-bench -o jsonl prints one object per line" {
  run --separate-stderr "$BIN/ufo-bench" "${TINY[@]}" -b 1,2 -t 1 --reps 1 --warmup 0 -o jsonl
  assert_success
  [ "${#lines[@]}" -eq 2 ]
  for l in "${lines[@]}"; do python3 -c 'import json,sys; json.loads(sys.argv[1])' "$l"; done
}

@test "ufo-bench -o md prints an aligned table" {
  run --separate-stderr "$BIN/ufo-bench" "${TINY[@]}" -b 1 -t 1 --reps 1
  assert_success
  [ "${#lines[@]}" -eq 3 ]
  [[ ${lines[0]} == "| model "* ]]
  [ "${#lines[0]}" -eq "${#lines[2]}" ]
}

@test "ufo-bench --train times training steps" {
  run --separate-stderr "$BIN/ufo-bench" "${TINY[@]}" --train -b 2 -t 1 --reps 2 -o csv
  assert_success
  [ "${#lines[@]}" -eq 2 ]
  [[ ${lines[1]} == arch,train,2,1,2,* ]]
}

@test "ufo-bench: training counts 3x the forward FLOPs" {
  # gflop_per_s / img_per_s is the GFLOP counted per image, whatever the timings were. Both
  # are printed with 2 decimals, so the model must reach well over 1 GFLOP/s even in a
  # sanitized build for the ratio to hold to 3%: the small preset (50 MFLOP per image).
  run --separate-stderr "$BIN/ufo-bench" --preset small -b 4 -t 1 --reps 1 -o jsonl
  infer=$output
  run --separate-stderr "$BIN/ufo-bench" --preset small --train -b 4 -t 1 --reps 1 -o jsonl
  python3 -c '
import json, sys
i, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
fi = i["gflop_per_s"] / i["img_per_s"]
ft = t["gflop_per_s"] / t["img_per_s"]
assert abs(ft / fi - 3) < 0.1, (fi, ft)
' "$infer" "$output"
}

@test "ufo-bench --gemm times the matrix products alone, on every shard's thread" {
  run --separate-stderr "$BIN/ufo-bench" "${TINY[@]}" --gemm -b 1,5 -t 1,2 --reps 2 -o csv
  assert_success
  [ "${#lines[@]}" -eq 5 ]
  [[ ${lines[1]} == arch,gemm-infer,1,1,2,* ]]
  [[ ${lines[4]} == arch,gemm-infer,5,2,2,* ]]
  run --separate-stderr "$BIN/ufo-bench" "${TINY[@]}" --gemm --train -b 3 -t 2 --reps 1 -o csv
  assert_success
  [[ ${lines[1]} == arch,gemm-train,3,2,1,* ]]
}

@test "ufo-bench: an unknown option fails with one stderr line" {
  run --separate-stderr "$BIN/ufo-bench" --no-such-option
  assert_exit_error 2 no-such-option
  [ -z "$output" ]
}

@test "ufo-bench: a missing checkpoint fails and names the path" {
  run --separate-stderr "$BIN/ufo-bench" -m "$TMP/nope.h5" -b 1 --reps 1
  assert_exit_error 1 "$TMP/nope.h5: no such file"
  [ -z "$output" ]
}

@test "ufo-bench: a bad batch list fails" {
  run --separate-stderr "$BIN/ufo-bench" "${TINY[@]}" -b 1,x
  assert_exit_error 2 --batch "'x'"
  [ -z "$output" ]
}

@test "ufo-bench: an unknown task is named with the tasks there are" {
  run --separate-stderr "$BIN/ufo-bench" "${TINY[@]}" --task nope -b 1 --reps 1
  assert_exit_error 1 "no task nope (tasks: main)"
  [ -z "$output" ]
}

@test "ufo-bench: an unknown format fails" {
  run --separate-stderr "$BIN/ufo-bench" "${TINY[@]}" -o xml -b 1 --reps 1
  assert_exit_error 2 xml
  [ -z "$output" ]
}

@test "ufo-bench: architecture flags are refused with -m" {
  run --separate-stderr "$BIN/ufo-bench" -m "$TMP/x.h5" --dim 8
  assert_exit_error 2 -m
  [ -z "$output" ]
}

@test "bench-pytorch prints ufo-bench's columns for the reference model" {
  /usr/bin/python3 -c 'import torch' 2>/dev/null || skip "python3-torch is not installed"
  # The reference run also checks the parameter count (2,684,554) and fails if it differs.
  run --separate-stderr /usr/bin/python3 "$BATS_TEST_DIRNAME/../../scripts/bench-pytorch" \
    -b 1 -t 1 --reps 1 --warmup 0 -o csv
  assert_success
  [ "${lines[0]}" = "$HEADER" ]
  [[ ${lines[1]} == pytorch-eager,infer,1,1,1,*,2684554,1,0.000 ]]
}
