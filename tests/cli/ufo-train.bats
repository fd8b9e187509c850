#!/usr/bin/env bats
# ufo-train: help, import -> train -> checkpoint readable by the HDF5 tools, learning on
# learnable data, bit-exact resume (--stop-after, SIGTERM), and bad input (one stderr line
# naming the file, exit 1 for bad files and 2 for usage errors, no output left behind). What
# each option does is tested in ufo-train-options.bats. Every test runs in seconds on 8x8
# synthetic images with --preset tiny.

load common

# OpenMP threads that spin while the other cores are busy can make a 2-thread step 100x
# slower on a loaded machine; passive waiting changes no result, only the wall time.
export OMP_WAIT_POLICY=passive

TINY=(--preset tiny --batch 16 --lr 0.01)

# The columns a resumed run must reproduce exactly: all but img_per_s and elapsed_s.
det_cols() { cut -f1-7 "$@"; }

@test "ufo-train --help lists the options" {
  run "$BIN/ufo-train" --help
  assert_success
  assert_line --index 0 --partial "Usage: ufo-train"
  for o in --val --output --checkpoint --resume --epochs --steps --batch --lr --min-lr --warmup \
           --weight-decay --clip --label-smoothing --crop-pad --hflip --erase --seed --threads \
           --log-every --ckpt-every --stop-after --task-name --zstd --json \
           --preset --img --patch --dim --depth --heads --mlp-ratio --mlp-hidden --classes \
           --qk-norm --parallel-block --no-qkv-bias --beta1 --beta2 --task --task-batch --task-weight \
           --task-lr-mult --tau --tau-start --tau-end --tau-anneal-steps --gumbel-noise --router-lr --router-init \
           --route-freeze-at; do
    assert_output --partial -- "$o"
  done
}

@test "import -> train: TSV log, JSON log, checkpoint readable by h5ls and h5dump" {
  make_synth_dataset "$TMP/d.h5" 200 10
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" --val "$TMP/d.h5" "${TINY[@]}" --steps 24 --log-every 8 \
      -t 1 -o "$TMP/m.h5"
  assert_success
  assert_line --index 0 $'step\tepoch\tlr\ttrain_loss\ttrain_acc\tval_loss\tval_acc\timg_per_s\telapsed_s'
  [ "${#lines[@]}" -eq 4 ]
  assert_line --index 1 --regexp $'^8\t0\\.667\t[0-9.e-]+\t[0-9.]+\t[0-9.]+\t[0-9.]+\t[0-9.]+\t[0-9.]+\t[0-9.]+$'
  assert_line --index 3 --regexp $'^24\t2\\.000\t'
  [[ "$stderr" == *"wrote $TMP/m.h5"* ]]
  [ -f "$TMP/m.h5" ]
  assert_no_output_file "$TMP/m.ckpt.h5"    # no periodic checkpoint was asked for

  # Without --val the validation columns say nan (TSV) / null (JSON).
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" --steps 12 --log-every 4 --json -t 1 \
      -o "$TMP/j.h5"
  assert_success
  [ "${#lines[@]}" -eq 3 ]
  run python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
keys = {"step", "epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "img_per_s", "elapsed_s"}
assert all(set(r) == keys for r in rows), rows
assert [r["step"] for r in rows] == [4, 8, 12], rows
assert all(r["val_loss"] is None and r["val_acc"] is None for r in rows), rows
assert all(0 < r["train_loss"] < 10 and 0 <= r["train_acc"] <= 1 for r in rows), rows
print("ok")' <<<"$output"
  assert_output ok

  # The checkpoint is plain HDF5 (uncompressed by default): the standard tools read it.
  run h5ls -r "$TMP/m.h5"
  assert_success
  assert_output --regexp '/arch/input_mean +Dataset \{1\}'
  assert_output --regexp '/embed/patch/w +Dataset \{16, 16\}'
  assert_output --regexp '/embed/pos +Dataset \{5, 16\}'
  assert_output --regexp '/blocks/1/attn/qkv/w +Dataset \{48, 16\}'
  assert_output --regexp '/blocks/0/ffn/shared/fc1/w +Dataset \{32, 16\}'
  assert_output --regexp '/tasks/main/head/w +Dataset \{10, 16\}'
  refute_output --partial train_state           # the final model carries no optimiser state
  run h5dump -H "$TMP/m.h5"
  assert_success
  assert_output --partial 'ATTRIBUTE "format_version"'
  assert_output --partial 'DATATYPE  H5T_IEEE_F32LE'
  run h5dump -a /format "$TMP/m.h5"
  assert_output --partial '"ufo-checkpoint"'
  run h5dump -a /kind "$TMP/m.h5"
  assert_output --partial '"dense"'
  run h5dump -a /arch/dim "$TMP/m.h5"
  assert_output --partial '(0): 16'
  run h5dump -a /tasks/main/num_classes "$TMP/m.h5"
  assert_output --partial '(0): 10'
  run h5dump -d /tasks/main/head/b "$TMP/m.h5"
  assert_success
}

@test "training learns: held-out accuracy far above chance after 200 steps" {
  make_synth_dataset "$TMP/all.h5" 400 10
  "$BIN/ufo-data" split "$TMP/all.h5" --count 300,100 --seed 1 -o "$TMP/train.h5" -o "$TMP/test.h5" 2>/dev/null
  run --separate-stderr "$BIN/ufo-train" "$TMP/train.h5" --val "$TMP/test.h5" --preset tiny --batch 32 --lr 0.01 \
      --steps 200 --log-every 100 --seed 5 -t 1 -o "$TMP/m.h5"
  assert_success
  # Chance is 0.1; this reaches ~1.0. Column 7 is val_acc.
  local acc
  acc=$(tail -n 1 <<<"$output" | cut -f7)
  awk -v a="$acc" 'BEGIN { exit !(a >= 0.8) }' || { echo "val_acc $acc < 0.8"; false; }
  local loss1 loss2
  loss1=$(sed -n 2p <<<"$output" | cut -f4)
  loss2=$(sed -n 3p <<<"$output" | cut -f4)
  awk -v a="$loss1" -v b="$loss2" 'BEGIN { exit !(b < a) }'
}

@test "resume is bit-exact: --stop-after J, then --resume, equals one uninterrupted run" {
  make_synth_dataset "$TMP/d.h5" 160 10
  local cmd=("$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" --steps 20 --log-every 1 --seed 11 -t 2 --warmup 4)
  "${cmd[@]}" -o "$TMP/a.h5" >"$TMP/A.tsv" 2>/dev/null
  [ "$(wc -l <"$TMP/A.tsv")" -eq 21 ]
  # B: the same run, stopped after 7 steps; it writes the checkpoint and exits 0.
  run --separate-stderr "${cmd[@]}" -o "$TMP/c.h5" --checkpoint "$TMP/ck.h5" --stop-after 7
  assert_success
  [ "${#lines[@]}" -eq 8 ]
  [[ "$stderr" == *"stopped after 7 steps"* ]]
  diff <(det_cols "$TMP/A.tsv" | head -n 8) <(det_cols <<<"$output")
  [ -f "$TMP/ck.h5" ]
  assert_no_output_file "$TMP/c.h5"
  run h5dump -a /train_state/step "$TMP/ck.h5"
  assert_output --partial '(0): 7'
  # C: the same command again, resuming from B's checkpoint.
  "${cmd[@]}" -o "$TMP/c.h5" --checkpoint "$TMP/ck.h5" --resume "$TMP/ck.h5" >"$TMP/C.tsv" 2>/dev/null
  [ "$(head -n 1 "$TMP/C.tsv")" = "$(head -n 1 "$TMP/A.tsv")" ]
  [ "$(sed -n 2p "$TMP/C.tsv" | cut -f1)" = 8 ]
  diff <(det_cols "$TMP/A.tsv" | sed -n '9,21p') <(det_cols "$TMP/C.tsv" | tail -n +2)
  # ... and ends with bit-identical weights (only provenance attributes on / differ).
  h5diff -q --exclude-attribute / "$TMP/a.h5" "$TMP/c.h5"
  run h5dump -a /parent "$TMP/c.h5"
  assert_output --partial "$TMP/ck.h5"
}

@test "resume after --log-every 0 (per-epoch rows) keeps the open interval's sums" {
  make_synth_dataset "$TMP/d.h5" 64 10
  local cmd=("$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" --steps 12 --seed 4 -t 1)
  "${cmd[@]}" -o "$TMP/a.h5" >"$TMP/A.tsv" 2>/dev/null
  "${cmd[@]}" -o "$TMP/b.h5" --stop-after 5 >/dev/null 2>&1
  "${cmd[@]}" -o "$TMP/b.h5" --resume "$TMP/b.ckpt.h5" >"$TMP/C.tsv" 2>/dev/null
  # 4 steps per epoch: rows at steps 4, 8, 12; the stop at step 5 fell inside epoch 2.
  diff <(det_cols "$TMP/A.tsv" | sed -n '3,4p') <(det_cols "$TMP/C.tsv" | tail -n +2)
}

@test "SIGTERM writes a checkpoint and exits 143; the checkpoint resumes; SIGINT exits 130" {
  make_synth_dataset "$TMP/d.h5" 160 10
  local cmd=("$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" --steps 100000000 --seed 2 -t 2
             -o "$TMP/m.h5")
  "${cmd[@]}" --log-every 50 >"$TMP/log.tsv" 2>"$TMP/err" &
  local pid=$! i
  for i in $(seq 100); do [ -s "$TMP/log.tsv" ] && break; sleep 0.05; done   # training has started
  sleep 0.2
  kill -TERM "$pid"
  local status=0
  wait "$pid" || status=$?
  [ "$status" -eq 143 ]
  grep -q "stopped by signal 15" "$TMP/err"
  [ -f "$TMP/m.ckpt.h5" ]
  assert_no_output_file "$TMP/m.h5"
  local step
  step=$(h5dump -a /train_state/step "$TMP/m.ckpt.h5" | sed -n 's/.*(0): *//p')
  [ "$step" -ge 1 ]
  run --separate-stderr "${cmd[@]}" --log-every 1 --resume "$TMP/m.ckpt.h5" --stop-after 2
  assert_success
  assert_line --index 1 --regexp "^$((step + 1))"$'\t'
  assert_line --index 2 --regexp "^$((step + 2))"$'\t'
  [ "$(h5dump -a /train_state/step "$TMP/m.ckpt.h5" | sed -n 's/.*(0): *//p')" -eq $((step + 2)) ]

  "${cmd[@]}" --checkpoint "$TMP/int.h5" >"$TMP/log2.tsv" 2>/dev/null &
  pid=$!
  for i in $(seq 100); do [ -s "$TMP/log2.tsv" ] && break; sleep 0.05; done
  sleep 0.1
  kill -INT "$pid"
  status=0
  wait "$pid" || status=$?
  [ "$status" -eq 130 ]
  [ -f "$TMP/int.h5" ]
}

@test "--ckpt-every writes periodic checkpoints; --zstd compresses with filter 32015" {
  make_synth_dataset "$TMP/d.h5" 64 10
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" --steps 10 --ckpt-every 4 --zstd 3 -t 1 \
      -o "$TMP/m.h5"
  assert_success
  [ -f "$TMP/m.h5" ] && [ -f "$TMP/m.ckpt.h5" ]
  [ "$(h5dump -a /train_state/step "$TMP/m.ckpt.h5" | sed -n 's/.*(0): *//p')" -eq 8 ]
  run h5ls -v "$TMP/m.h5/blocks/0/attn/qkv/w"
  assert_output --partial 32015
  # Compressed checkpoints are read back by ufo's own reader.
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/m.h5" "$TMP/d.h5" -t 1
  assert_success
}

# ---------------------------------------------------------------- bad input

@test "missing training file" {
  run --separate-stderr "$BIN/ufo-train" "$TMP/nope.h5" "${TINY[@]}" -o "$TMP/m.h5"
  assert_exit_error 1 "$TMP/nope.h5: no such file"
  [ -z "$output" ]
  assert_no_output_file "$TMP/m.h5" "$TMP/m.ckpt.h5"
  make_synth_dataset "$TMP/d.h5" 32 10
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" --val "$TMP/nope-val.h5" "${TINY[@]}" -o "$TMP/m.h5"
  assert_exit_error 1 "$TMP/nope-val.h5: no such file"
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" --resume "$TMP/nope-ck.h5" -o "$TMP/m.h5"
  assert_exit_error 1 "$TMP/nope-ck.h5: no such file"
  assert_no_output_file "$TMP/m.h5" "$TMP/m.ckpt.h5"
}

@test "not an HDF5 file (data and checkpoint)" {
  echo "hello" >"$TMP/text.h5"
  run --separate-stderr "$BIN/ufo-train" "$TMP/text.h5" "${TINY[@]}" -o "$TMP/m.h5"
  assert_exit_error 1 "$TMP/text.h5: not an HDF5 file"
  make_synth_dataset "$TMP/d.h5" 32 10
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" --resume "$TMP/text.h5" -o "$TMP/m.h5"
  assert_exit_error 1 "$TMP/text.h5: not an HDF5 file"
  # A dataset is HDF5 but not a checkpoint.
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" --resume "$TMP/d.h5" -o "$TMP/m.h5"
  assert_exit_error 1 "$TMP/d.h5: not a ufo checkpoint (format=ufo-dataset)"
  assert_no_output_file "$TMP/m.h5" "$TMP/m.ckpt.h5"
}

@test "truncated HDF5 file (data and checkpoint)" {
  make_synth_dataset "$TMP/d.h5" 200 10 8 8 --zstd 0
  head -c $(( $(stat -c %s "$TMP/d.h5") / 2 )) "$TMP/d.h5" >"$TMP/half.h5"
  run --separate-stderr "$BIN/ufo-train" "$TMP/half.h5" "${TINY[@]}" -o "$TMP/m.h5"
  assert_exit_error 1 "$TMP/half.h5: truncated or corrupt HDF5 file"
  "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" --steps 4 --stop-after 2 -t 1 -o "$TMP/a.h5" >/dev/null 2>&1
  head -c $(( $(stat -c %s "$TMP/a.ckpt.h5") / 2 )) "$TMP/a.ckpt.h5" >"$TMP/halfck.h5"
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" --steps 4 --resume "$TMP/halfck.h5" -o "$TMP/m.h5"
  assert_exit_error 1 "$TMP/halfck.h5: truncated or corrupt HDF5 file"
  assert_no_output_file "$TMP/m.h5" "$TMP/m.ckpt.h5"
}

@test "checkpoint whose tensor shapes disagree with its architecture" {
  make_synth_dataset "$TMP/d.h5" 32 10
  "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" --steps 4 --stop-after 2 -t 1 -o "$TMP/a.h5" >/dev/null 2>&1
  # /arch@dim is a scalar int64 attribute in the object header: 16 becomes 32 in place, so the
  # architecture now asks for [32,...] tensors while the file holds [16,...] ones.
  perl -0777 -i -pe 'BEGIN { binmode STDIN; binmode STDOUT } s/(dim\x00+.{0,40}?)\x10(\x00{7})/$1\x20$2/s' "$TMP/a.ckpt.h5"
  run h5dump -a /arch/dim "$TMP/a.ckpt.h5"
  assert_output --partial '(0): 32'
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" --steps 4 --resume "$TMP/a.ckpt.h5" -o "$TMP/m.h5"
  assert_exit_error 1 "$TMP/a.ckpt.h5: /embed/patch/w has shape [16,16], expected [32,16]"
  assert_no_output_file "$TMP/m.h5" "$TMP/m.ckpt.h5"
}

@test "labels out of range" {
  make_synth_dataset "$TMP/d.h5" 20 10 8 8 --zstd 0
  # Uncompressed, so the stored labels are raw int32 LE: label 5 becomes 200.
  perl -0777 -i -pe 'BEGIN { binmode STDIN; binmode STDOUT } s/\x05\x00\x00\x00(\x06\x00\x00\x00\x07\x00\x00\x00\x08\x00\x00\x00\x09\x00\x00\x00)/\xc8\x00\x00\x00$1/' "$TMP/d.h5"
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" -o "$TMP/m.h5"
  assert_exit_error 1 "$TMP/d.h5: label 200 at index 5 is out of range [0,10)"
  assert_no_output_file "$TMP/m.h5" "$TMP/m.ckpt.h5"
}

@test "empty dataset" {
  make_synth_dataset "$TMP/d.h5" 20 10 8 8 --zstd 0
  # N = 20 becomes 0 in the dataspaces of /images [N,8,8,1] and /labels [N] (current and max dims).
  perl -0777 -i -pe 'BEGIN { binmode STDIN; binmode STDOUT }
    s/(\x01\x04[\x00\x01]\x00{5})\x14(\x00{7}\x08\x00{7}\x08\x00{7}\x01\x00{7})\x14/$1\x00$2\x00/;
    s/(\x01\x01[\x00\x01]\x00{5})\x14(\x00{7})\x14/$1\x00$2\x00/' "$TMP/d.h5"
  run "$BIN/ufo-data" info "$TMP/d.h5"
  assert_line $'count\t0'
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" -o "$TMP/m.h5"
  assert_exit_error 1 "$TMP/d.h5: dataset is empty"
  assert_no_output_file "$TMP/m.h5" "$TMP/m.ckpt.h5"
}

@test "fewer images than one batch" {
  make_synth_dataset "$TMP/d.h5" 10 10
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" -o "$TMP/m.h5"
  assert_exit_error 1 "$TMP/d.h5" "fewer than one batch of 16"
  assert_no_output_file "$TMP/m.h5" "$TMP/m.ckpt.h5"
}

@test "patch size that does not divide the image names the data file" {
  make_synth_dataset "$TMP/d.h5" 32 10
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" --patch 3 -o "$TMP/m.h5"
  assert_exit_error 1 "$TMP/d.h5: patch size 3 does not divide the image 8x8"
  assert_no_output_file "$TMP/m.h5" "$TMP/m.ckpt.h5"
}

@test "unknown option and missing dataset: usage error, exit 2" {
  make_synth_dataset "$TMP/d.h5" 32 10
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" -o "$TMP/m.h5" --frobnicate
  assert_exit_error 2 "frobnicate"
  run --separate-stderr "$BIN/ufo-train" "${TINY[@]}" -o "$TMP/m.h5"
  assert_exit_error 2 "a training dataset (or --task) is required"
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" --steps abc -o "$TMP/m.h5"
  assert_exit_error 2 "steps"
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" -o "$TMP/m.h5" --steps
  assert_exit_error 2 "--steps"                          # a missing argument
  # option values that no run can use: rejected before any training
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" --preset tiny -b 0 -o "$TMP/m.h5"
  assert_exit_error 2 "--batch must be positive"
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" --zstd 23 -o "$TMP/m.h5"
  assert_exit_error 2 "--zstd" "23"
  [ -z "$output" ]
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" --tau-end 0 -o "$TMP/m.h5"
  assert_exit_error 2 "temperature must be positive"
  assert_no_output_file "$TMP/m.h5" "$TMP/m.ckpt.h5"
}

@test "output in a missing directory fails before any training" {
  make_synth_dataset "$TMP/d.h5" 32 10
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" -o "$TMP/nonexistent/dir/m.h5"
  assert_exit_error 1 "$TMP/nonexistent/dir/m.h5: directory does not exist"
  [ -z "$output" ]                    # not even the log header: nothing was trained
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" -o "$TMP/m.h5" --checkpoint "$TMP/gone/ck.h5"
  assert_exit_error 1 "$TMP/gone/ck.h5: directory does not exist"
  [ -z "$output" ]
  assert_no_output_file "$TMP/m.h5"
}

@test "--resume: another architecture, a final model without train state, another seed" {
  make_synth_dataset "$TMP/d.h5" 32 10
  "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" --steps 4 --stop-after 2 --seed 3 -t 1 -o "$TMP/a.h5" >/dev/null 2>&1
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" --dim 32 --steps 4 --seed 3 \
      --resume "$TMP/a.ckpt.h5" -o "$TMP/m.h5"
  assert_exit_error 1 "$TMP/a.ckpt.h5" "another architecture" "dim 16 vs 32"
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" --steps 4 --seed 4 --resume "$TMP/a.ckpt.h5" \
      -o "$TMP/m.h5"
  assert_exit_error 1 "$TMP/a.ckpt.h5" "--seed 3, not 4"
  "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" --steps 2 -t 1 -o "$TMP/final.h5" >/dev/null 2>&1
  run --separate-stderr "$BIN/ufo-train" "$TMP/d.h5" "${TINY[@]}" --steps 4 --resume "$TMP/final.h5" -o "$TMP/m.h5"
  assert_exit_error 1 "$TMP/final.h5: has no /train_state to resume from"
  assert_no_output_file "$TMP/m.h5" "$TMP/m.ckpt.h5"
}
