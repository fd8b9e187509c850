#!/usr/bin/env bats
# The CNN family end to end: ufo-train --arch cnn, ufo-infer and ufo-bench on its checkpoint,
# exact resume, and the CNN's option errors.

load common

export OMP_WAIT_POLICY=passive

setup_file() {
  export D="$BATS_FILE_TMPDIR"
  make_synth_dataset "$D/d.h5" 96 10
  make_synth_dataset "$D/v.h5" 40 10
}

setup() {
  CT=("$BIN/ufo-train" "$D/d.h5" --arch cnn --preset tiny -b 16 -t 1 --seed 1)
}

@test "--arch cnn trains a CNN: kind cnn, /arch@layers, BatchNorm running statistics, ufo-infer reloads it" {
  run --separate-stderr "${CT[@]}" --val "$D/v.h5" --epochs 4 --lr 0.01 -o "$TMP/c.h5"
  assert_success
  [[ "$stderr" == *"CNN 8x8x1 layers c8,m,c16"* ]]
  h5dump -a /kind "$TMP/c.h5" | grep -q '"cnn"'
  h5dump -a /arch/layers "$TMP/c.h5" | grep -q '"c8,m,c16"'
  h5ls "$TMP/c.h5/layers/0/conv/w" | grep -q "{8, 1, 3, 3}"
  h5ls "$TMP/c.h5/layers/2/conv/w" | grep -q "{16, 8, 3, 3}"
  # running statistics moved away from their start (0 and 1)
  h5dump -d /layers/0/bn/running_mean "$TMP/c.h5" | grep -qv "(0): 0, 0, 0"
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/c.h5" "$D/v.h5" --summary-only --json
  assert_success
  # the logged val accuracy of the last row is what ufo-infer measures (running statistics)
  acc=$(python3 -c 'import json,sys; print("%.6f" % json.loads(sys.argv[1])["summary"]["accuracy"])' "$(head -1 <<<"$output")")
  "${CT[@]}" --val "$D/v.h5" --epochs 4 --lr 0.01 -o "$TMP/c2.h5" 2>/dev/null | tail -1 | grep -q "$acc"
}

@test "--arch cnn: resume is bit-exact (weights, moments and running statistics)" {
  run "${CT[@]}" --steps 10 --stop-after 4 -o "$TMP/r.h5"
  assert_success
  run "${CT[@]}" --steps 10 --resume "$TMP/r.ckpt.h5" -o "$TMP/r.h5"
  assert_success
  run "${CT[@]}" --steps 10 -o "$TMP/u.h5"
  assert_success
  for t in /layers/0/conv/w /layers/2/bn/running_var /tasks/main/head/w; do h5same "$TMP/u.h5" "$TMP/r.h5" "$t" "$t"; done
}

@test "--layers sets the CNN; ufo-bench times it with exact FLOPs and parameters" {
  run --separate-stderr "${CT[@]}" --layers c4,c6/2,a,c5 --steps 2 -o "$TMP/l.h5"
  assert_success
  h5dump -a /arch/layers "$TMP/l.h5" | grep -q '"c4,c6/2,a,c5"'
  run --separate-stderr "$BIN/ufo-bench" -m "$TMP/l.h5" -b 1,4 -t 1 --reps 2 -o jsonl
  assert_success
  # FLOPs: conv 2*H*W*OC*IC*9 (8x8x4 from 1, 4x4x6 from 4, 2x2x5 from 6) + head 2*5*10 = 13780
  # (printed as MFLOP with 4 digits); parameters: conv weights, BatchNorm scale/shift, head
  [[ "$stderr" == *"; 0.01378 MFLOP/img forward"* ]] || { echo "$stderr"; false; }
  python3 - "$output" <<'PY'
import json, sys
rows = [json.loads(l) for l in sys.argv[1].splitlines()]
params = 9 * (4 * 1 + 6 * 4 + 5 * 6) + 2 * (4 + 6 + 5) + 5 * 10 + 10
assert len(rows) == 2 and all(r["params"] == params for r in rows), (rows, params)
PY
  run --separate-stderr "$BIN/ufo-bench" --family cnn --preset small -b 2 -t 1 --reps 1 --train -o csv
  assert_success
}

@test "CNN option errors: ViT-only flags, bad --layers, --family / --arch: exit 2, one line, no output" {
  for b in "--dim 32" "--patch 2" "--qk-norm" "--layers c4,x" "--layers m,c4" "--layers c0"; do
    run --separate-stderr "${CT[@]}" $b --steps 1 -o "$TMP/bad.h5"
    [ "$status" -eq 2 ] || { echo "$b -> $status: $stderr"; false; }
    assert_one_line_error
    assert_no_output_file "$TMP/bad.h5"
  done
  run --separate-stderr "$BIN/ufo-train" "$D/d.h5" --family rnn --steps 1 -o "$TMP/bad.h5"
  assert_exit_error 2 "--family: 'rnn' is not vit or cnn"
  run --separate-stderr "$BIN/ufo-train" "$D/d.h5" --arch rnn --steps 1 -o "$TMP/bad.h5"
  assert_exit_error 2 "--arch: 'rnn' is neither a family (vit, cnn) nor a sub-architecture"
  run --separate-stderr "$BIN/ufo-train" "$D/d.h5" --family cnn --arch vit --steps 1 -o "$TMP/bad.h5"
  assert_exit_error 2 "options --family cnn and --arch vit disagree"
  run --separate-stderr "$BIN/ufo-train" "$D/d.h5" --family cnn --arch "depth=2" --steps 1 -o "$TMP/bad.h5"
  assert_exit_error 2 "a sub-architecture applies to ViTs, not --family cnn"
  run --separate-stderr "$BIN/ufo-train" "$D/d.h5" --layers c4 --steps 1 -o "$TMP/bad.h5"
  assert_exit_error 2 "--layers applies to --family cnn"
  run --separate-stderr "$BIN/ufo-train" --task a="$D/d.h5" --task b="$D/v.h5" --family cnn --steps 1 -o "$TMP/bad.h5"
  assert_exit_error 2 "multi-task supernets are ViTs"
  run --separate-stderr "$BIN/ufo-bench" --arch cnn --layers c4,m,m,m,m,m,m -b 1 --reps 1
  assert_exit_error 2 "a pool on a"
}
