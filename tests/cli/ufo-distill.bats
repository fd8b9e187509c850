#!/usr/bin/env bats
# ufo-distill: a student from a teacher checkpoint (ViT, elastic sub-architecture, supernet task)
# or from stored soft labels; alpha 0 equals ufo-train; the teacher is untouched; resume is
# bit-exact; provenance; bad input (mismatched teacher, augmentation with soft labels, options).

load common

export OMP_WAIT_POLICY=passive

setup_file() {
  export D="$BATS_FILE_TMPDIR"
  make_elastic_fixture "$D"
  make_synth_dataset "$D/other.h5" 40 4
}

setup() {
  ST=("$D/d.h5" --family cnn --preset tiny --steps 12 -b 16 -t 1 --seed 1 --lr 0.01 --val "$D/v.h5" --log-every 6)
}

@test "--help, and a teacher is required (one of -m and --soft-labels)" {
  run "$BIN/ufo-distill" --help
  assert_success
  assert_output --partial "Usage: ufo-distill -m TEACHER.h5"
  run --separate-stderr "$BIN/ufo-distill" "${ST[@]}" -o "$TMP/s.h5"
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"give the teacher as -m TEACHER.h5 or --soft-labels PRED.h5"* ]]
}

@test "a CNN student from a ViT teacher: the log has the teacher's validation accuracy, provenance names the teacher" {
  run --separate-stderr "$BIN/ufo-distill" -m "$D/task.h5" "${ST[@]}" -o "$TMP/s.h5"
  assert_success
  [ "${lines[0]}" = "$(printf 'step\tepoch\tlr\ttrain_loss\ttrain_acc\tval_loss\tval_acc\tteacher_val_acc\timg_per_s\telapsed_s')" ]
  [ "${#lines[@]}" -eq 3 ]
  [[ "$stderr" == *"ufo-distill: teacher $D/task.h5 (ViT"*"validation accuracy "*"; alpha 0.5, temperature 4"* ]]
  h5dump -a /kind "$TMP/s.h5" | grep -q '"cnn"'
  h5dump -a /tool "$TMP/s.h5" | grep -q '"ufo-distill"'
  h5dump -a /teacher "$TMP/s.h5" | grep -q "\"$D/task.h5\""
  [ "$(h5dump -a /teacher_checksum "$TMP/s.h5" | sed -n 's/.*(0): "\(.*\)"/\1/p')" = "$(python3 -c '
import sys
h = 0xcbf29ce484222325
for b in open(sys.argv[1], "rb").read(): h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
print("%016x" % h)' "$D/task.h5")" ]
  h5dump -a /distill "$TMP/s.h5" | grep -q '"alpha":0.5'
  # The student works everywhere a CNN does.
  "$BIN/ufo-infer" -m "$TMP/s.h5" "$D/v.h5" --summary-only >/dev/null 2>&1
  "$BIN/ufo-bench" -m "$TMP/s.h5" -b 1 --reps 1 -t 1 >/dev/null 2>&1
}

@test "alpha 0 is ufo-train: the same log losses and the same weights" {
  "$BIN/ufo-distill" -m "$D/task.h5" "${ST[@]}" --alpha 0 -o "$TMP/a.h5" 2>/dev/null | cut -f1-7 > "$TMP/a.tsv"
  "$BIN/ufo-train" "${ST[@]}" -o "$TMP/b.h5" 2>/dev/null | cut -f1-7 > "$TMP/b.tsv"
  cmp "$TMP/a.tsv" "$TMP/b.tsv"
  for t in $(h5ls -r "$TMP/b.h5" | awk '$2 == "Dataset" && $1 !~ /^\/arch/ {print $1}'); do
    [ "$(h5data "$TMP/a.h5" "$t")" = "$(h5data "$TMP/b.h5" "$t")" ]
  done
}

@test "the teacher file is not changed; an elastic teacher's --arch and a supernet teacher's --task" {
  before=$(md5sum < "$D/el.h5")
  run --separate-stderr "$BIN/ufo-distill" -m "$D/el.h5" --arch "depth=2 heads=1" "${ST[@]}" -o "$TMP/s.h5"
  assert_success
  [[ "$stderr" == *"depth=2 heads=1,1 mlp=32,32"* ]]
  [ "$(md5sum < "$D/el.h5")" = "$before" ]
  echo "depth=1" | "$BIN/ufo-distill" -m "$D/el.h5" --arch - "${ST[@]}" -o "$TMP/s2.h5" 2>&1 >/dev/null | grep -q "depth=1 heads=2 mlp=32"
  run --separate-stderr "$BIN/ufo-distill" -m "$D/el.h5" --arch "depth=9" "${ST[@]}" -o "$TMP/s3.h5"
  assert_one_line_error "$D/el.h5" "depth 9 is not in the elastic space"
  assert_no_output_file "$TMP/s3.h5"
  mkdir -p "$TMP/sup"
  make_supernet_fixture "$TMP/sup"
  make_synth_dataset "$TMP/a10.h5" 64 10
  run --separate-stderr "$BIN/ufo-distill" -m "$TMP/sup/supernet.h5" "$TMP/a10.h5" --family cnn --preset tiny --steps 2 -b 16 -t 1 -o "$TMP/s4.h5"
  assert_one_line_error "$TMP/sup/supernet.h5" "tasks; choose the teacher's with --task"
  run --separate-stderr "$BIN/ufo-distill" -m "$TMP/sup/supernet.h5" --task alpha "$TMP/a10.h5" --family cnn --preset tiny --steps 2 -b 16 -t 1 -o "$TMP/s4.h5"
  assert_success
}

@test "stored soft labels (ufo-infer -o on the training set): trains without the teacher; augmentation is refused" {
  "$BIN/ufo-infer" -m "$D/task.h5" "$D/d.h5" -o "$TMP/p.h5" >/dev/null 2>&1
  run --separate-stderr "$BIN/ufo-distill" --soft-labels "$TMP/p.h5" "${ST[@]}" -o "$TMP/s.h5"
  assert_success
  [[ "$stderr" == *"(stored teacher logits)"* ]]
  run --separate-stderr "$BIN/ufo-distill" --soft-labels "$TMP/p.h5" "${ST[@]}" --crop-pad 2 -o "$TMP/s2.h5"
  assert_one_line_error "$TMP/p.h5" "stored soft labels only fit unaugmented images"
  assert_no_output_file "$TMP/s2.h5"
  "$BIN/ufo-infer" -m "$D/task.h5" "$D/v.h5" -o "$TMP/pv.h5" >/dev/null 2>&1
  run --separate-stderr "$BIN/ufo-distill" --soft-labels "$TMP/pv.h5" "${ST[@]}" -o "$TMP/s3.h5"
  assert_one_line_error "$TMP/pv.h5" "rows, the training set"
  run --separate-stderr "$BIN/ufo-distill" --soft-labels "$TMP/p.h5" --task main "${ST[@]}" -o "$TMP/s3.h5"
  [ "$status" -eq 2 ]
}

@test "a teacher that does not fit the data: other classes, another image shape; clear errors before training" {
  run --separate-stderr "$BIN/ufo-distill" -m "$D/task.h5" "$D/other.h5" --family cnn --preset tiny --steps 2 -b 16 -t 1 -o "$TMP/s.h5"
  assert_one_line_error "$D/task.h5" "10 classes, the training set $D/other.h5 4"
  assert_no_output_file "$TMP/s.h5"
  make_synth_dataset "$TMP/big.h5" 40 10 12 12
  run --separate-stderr "$BIN/ufo-distill" -m "$D/task.h5" "$TMP/big.h5" --family cnn --preset tiny --steps 2 -b 16 -t 1 -o "$TMP/s.h5"
  assert_one_line_error "$D/task.h5" "the teacher takes 8x8x1 images, the training set $TMP/big.h5 holds 12x12x1"
  run --separate-stderr "$BIN/ufo-distill" -m "$TMP/missing.h5" "${ST[@]}" -o "$TMP/s.h5"
  assert_one_line_error "$TMP/missing.h5"
}

@test "bad options: alpha, temperature, the output naming the teacher" {
  for a in "--alpha 1.5" "--alpha -0.1" "--temperature 0" "--temperature nan"; do
    run --separate-stderr "$BIN/ufo-distill" -m "$D/task.h5" "${ST[@]}" $a -o "$TMP/s.h5"
    [ "$status" -eq 2 ]
  done
  run --separate-stderr "$BIN/ufo-distill" -m "$D/task.h5" "${ST[@]}" -o "$D/task.h5"
  [ "$status" -eq 2 ]
  run --separate-stderr "$BIN/ufo-distill" -m - --arch - "${ST[@]}" -o "$TMP/s.h5" < /dev/null
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"only one input can come from stdin"* ]]
}

@test "--resume is bit-exact: --stop-after then --resume equals one run" {
  "$BIN/ufo-distill" -m "$D/task.h5" "${ST[@]}" --crop-pad 1 -o "$TMP/full.h5" > "$TMP/full.tsv" 2>/dev/null
  "$BIN/ufo-distill" -m "$D/task.h5" "${ST[@]}" --crop-pad 1 --stop-after 5 -o "$TMP/part.h5" > "$TMP/p1.tsv" 2>/dev/null
  "$BIN/ufo-distill" -m "$D/task.h5" "${ST[@]}" --crop-pad 1 --resume "$TMP/part.ckpt.h5" -o "$TMP/part.h5" > "$TMP/p2.tsv" 2>/dev/null
  [ "$(cut -f1-8 "$TMP/full.tsv" | tail -n +2)" = "$(cat "$TMP/p1.tsv" "$TMP/p2.tsv" | grep -v '^step' | cut -f1-8)" ]
  for t in $(h5ls -r "$TMP/full.h5" | awk '$2 == "Dataset" && $1 !~ /^\/arch/ {print $1}'); do
    [ "$(h5data "$TMP/full.h5" "$t")" = "$(h5data "$TMP/part.h5" "$t")" ]
  done
}
