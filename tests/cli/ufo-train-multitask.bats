#!/usr/bin/env bats
# ufo-train with two or more --task: the Task-MoE supernet. Log format (one row per task),
# checkpoint contents, determinism for a seed, bit-exact resume, route freezing, per-task
# options, and bad input. Seconds each on 8x8 synthetic data with --preset tiny.

load common

export OMP_WAIT_POLICY=passive

setup_file() {
  export TMP="$BATS_FILE_TMPDIR"
  make_synth_dataset "$TMP/a.h5" 160 10
  make_synth_dataset "$TMP/b.h5" 96 4
  make_synth_dataset "$TMP/big.h5" 40 4 12 12
}

setup() {
  A="$BATS_FILE_TMPDIR/a.h5"
  B="$BATS_FILE_TMPDIR/b.h5"
  MT=("$BIN/ufo-train" --task "alpha=$A,$A" --task "beta=$B" --task-batch beta=8 --preset tiny -b 16 --lr 0.01
      --router-lr 0.3)
}

# Columns a rerun or a resumed run must reproduce: all but img_per_s and elapsed_s.
det_cols() { cut -f1-10 "$@"; }

@test "two tasks: one log row per task with routes, a supernet checkpoint" {
  run --separate-stderr "${MT[@]}" --steps 20 --log-every 10 --seed 1 -t 1 -o "$TMP/s.h5"
  assert_success
  assert_line --index 0 $'step\tepoch\ttask\tlr\ttrain_loss\ttrain_acc\tval_loss\tval_acc\troute\tp_own\timg_per_s\telapsed_s'
  [ "${#lines[@]}" -eq 5 ]
  assert_line --index 1 --regexp $'^10\t[0-9.]+\talpha\t[0-9.e-]+\t[0-9.]+\t[0-9.]+\t[0-9.]+\t[0-9.]+\t(shared|own),(shared|own)\t0\\.[0-9]{3},0\\.[0-9]{3}\t'
  assert_line --index 2 --regexp $'^10\t[0-9.]+\tbeta\t.*\tnan\tnan\t'
  [[ "$stderr" == *"Task-MoE supernet"* ]]
  run h5dump -a /kind "$TMP/s.h5"
  assert_output --partial '"supernet"'
  run h5ls -r "$TMP/s.h5"
  for d in /tasks/alpha/router /tasks/beta/router /tasks/alpha/route /blocks/1/ffn/shared/fc1/w \
           /blocks/1/ffn/alpha/fc1/w /blocks/1/ffn/beta/fc2/b /tasks/beta/head/w; do
    assert_output --partial "$d "
  done
  # JSON Lines carry the same, with arrays for the route and p_own.
  run --separate-stderr "${MT[@]}" --steps 10 --log-every 10 --seed 1 -t 1 --json -o "$TMP/j.h5"
  assert_success
  python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
assert [r["task"] for r in rows] == ["alpha", "beta"], rows
assert len(rows[0]["p_own"]) == 2 and all(0 < p < 1 for p in rows[0]["p_own"])
assert rows[1]["val_acc"] is None and rows[0]["val_acc"] is not None
' <<<"$output"
}

@test "routing and training are deterministic for a seed and thread count" {
  "${MT[@]}" --steps 12 --log-every 4 --seed 5 -t 2 -o "$TMP/x.h5" >"$TMP/X.tsv" 2>/dev/null
  "${MT[@]}" --steps 12 --log-every 4 --seed 5 -t 2 -o "$TMP/y.h5" >"$TMP/Y.tsv" 2>/dev/null
  diff <(det_cols "$TMP/X.tsv") <(det_cols "$TMP/Y.tsv")
  h5diff -q --exclude-attribute / "$TMP/x.h5" "$TMP/y.h5"
  # Another seed draws other Gumbel noise (and other weights).
  "${MT[@]}" --steps 12 --log-every 4 --seed 6 -t 2 -o "$TMP/z.h5" >/dev/null 2>&1
  ! h5diff -q "$TMP/x.h5" "$TMP/z.h5" /tasks/alpha/router /tasks/alpha/router
}

@test "supernet resume is bit-exact, log rows of every task included" {
  local cmd=("${MT[@]}" --steps 16 --log-every 3 --seed 2 -t 2)
  "${cmd[@]}" -o "$TMP/a1.h5" >"$TMP/A.tsv" 2>/dev/null
  "${cmd[@]}" -o "$TMP/c1.h5" --stop-after 7 >/dev/null 2>&1
  [ -f "$TMP/c1.ckpt.h5" ]
  "${cmd[@]}" -o "$TMP/c1.h5" --resume "$TMP/c1.ckpt.h5" >"$TMP/C.tsv" 2>/dev/null
  # rows at steps 3 and 6 come before the stop (2 tasks each), the rest after the resume
  diff <(det_cols "$TMP/A.tsv" | tail -n +6) <(det_cols "$TMP/C.tsv" | tail -n +2)
  h5diff -q --exclude-attribute / "$TMP/a1.h5" "$TMP/c1.h5"
}

@test "--route-freeze-at fixes the routes and stops the router; STEP and Nep forms" {
  run --separate-stderr "${MT[@]}" --steps 12 --log-every 6 --seed 3 -t 1 --route-freeze-at 6 \
      --ckpt-every 8 -o "$TMP/f.h5"
  assert_success
  [[ "$stderr" == *"routes frozen at step 6"* ]]
  # The routes printed after the freeze are the ones stored, and the router logits did not move
  # between the checkpoint at step 8 and the end (its learning rate is zero after the freeze).
  h5diff -q "$TMP/f.h5" "$TMP/f.ckpt.h5" /tasks/alpha/router /tasks/alpha/router
  h5diff -q "$TMP/f.h5" "$TMP/f.ckpt.h5" /tasks/beta/route /tasks/beta/route
  run h5dump -a /train_state/routes_frozen "$TMP/f.ckpt.h5"
  assert_output --partial '(0): 1'
  # An epoch is a pass over the task with the most steps: beta, 96 images / batch 8 = 12 steps
  # (alpha has 160 / 16 = 10), so "1ep" freezes at step 12.
  run --separate-stderr "${MT[@]}" --steps 14 --log-every 14 --seed 3 -t 1 --route-freeze-at 1ep -o "$TMP/g.h5"
  assert_success
  [[ "$stderr" == *"routes frozen at step 12"* ]]
}

@test "per-task batch, weight, lr multiplier and tau options are accepted and recorded" {
  run --separate-stderr "${MT[@]}" --steps 4 --log-every 4 --seed 1 -t 1 --task-weight alpha=2,beta=0.5 \
      --task-lr-mult beta=3 --tau-start 5 --tau-end 1 --tau-anneal-steps 4 --gumbel-noise batch --router-init 0.5 \
      --ckpt-every 2 -o "$TMP/o.h5"
  assert_success
  run h5dump -a /train_state/train_options "$TMP/o.ckpt.h5"
  assert_output --partial '"weight":2.0'
  assert_output --partial '"lr_mult":3.0'
  assert_output --partial '"gumbel_noise":"batch"'
  assert_output --partial '"tau_anneal_steps":4'
}

@test "bad multi-task input: one stderr line, non-zero exit, no output" {
  run --separate-stderr "$BIN/ufo-train" --task alpha "$A" -o "$TMP/bad.h5"
  assert_one_line_error "--task takes NAME=TRAIN.h5"
  run --separate-stderr "${MT[@]}" --val "$A" --steps 2 -o "$TMP/bad.h5"
  assert_one_line_error "--val and --task-name apply to one dataset"
  run --separate-stderr "${MT[@]}" --task-batch gamma=4 --steps 2 -o "$TMP/bad.h5"
  assert_one_line_error "--task-batch" "no --task named 'gamma'"
  run --separate-stderr "${MT[@]}" --task-weight alpha=heavy --steps 2 -o "$TMP/bad.h5"
  assert_one_line_error "'heavy' is not a number"
  run --separate-stderr "${MT[@]}" --route-freeze-at soon --steps 2 -o "$TMP/bad.h5"
  assert_one_line_error "--route-freeze-at" "soon"
  run --separate-stderr "${MT[@]}" --gumbel-noise pixel --steps 2 -o "$TMP/bad.h5"
  assert_one_line_error "--gumbel-noise"
  run --separate-stderr "$BIN/ufo-train" --task alpha="$A" --task beta="$BATS_FILE_TMPDIR/big.h5" --preset tiny \
      -b 8 --steps 2 -t 1 -o "$TMP/bad.h5"
  assert_one_line_error "big.h5" "images are 12x12x1 but task alpha's are 8x8x1"
  run --separate-stderr "$BIN/ufo-train" --task alpha="$A" --task alpha="$B" --preset tiny -b 8 --steps 2 -t 1 \
      -o "$TMP/bad.h5"
  assert_one_line_error "task 'alpha' appears twice"
  run --separate-stderr "$BIN/ufo-train" --task shared="$A" --task beta="$B" --preset tiny -b 8 --steps 2 -t 1 \
      -o "$TMP/bad.h5"
  assert_one_line_error "reserved"
  run --separate-stderr "$BIN/ufo-train" --task alpha="$A" --task beta="$TMP/nosuch.h5" --preset tiny -o "$TMP/bad.h5"
  assert_one_line_error "nosuch.h5"
  assert_no_output_file "$TMP/bad.h5"
  # A dense checkpoint cannot resume a multi-task run.
  "$BIN/ufo-train" "$A" --preset tiny -b 16 --steps 2 -t 1 --stop-after 1 -o "$TMP/d.h5" >/dev/null 2>&1
  run --separate-stderr "${MT[@]}" --steps 4 -t 1 --resume "$TMP/d.ckpt.h5" -o "$TMP/bad.h5"
  assert_one_line_error "d.ckpt.h5" "not a supernet one"
  assert_no_output_file "$TMP/bad.h5"
}
