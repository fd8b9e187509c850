#!/usr/bin/env bats
# ufo-infer: help, predictions on a dataset (TSV, JSON Lines, --summary), on PNG files
# (arguments or '-' path lists, --resize), agreement with ufo-train's own evaluation and
# between the two input kinds, and bad input (one stderr line naming the file, non-zero
# exit, nothing on stdout).

load common

# See ufo-train.bats: passive OpenMP waiting keeps 2-thread runs fast on a loaded machine.
export OMP_WAIT_POLICY=passive

# One small trained model shared by the tests: 8x8x1, 10 classes, trained on train.h5
# (300 images) and evaluated by ufo-train on test.h5 (100 images).
setup_file() {
  export TMP="$BATS_FILE_TMPDIR"
  make_synth_dataset "$TMP/all.h5" 400 10
  "$BIN/ufo-data" split "$TMP/all.h5" --count 300,100 --seed 1 -o "$TMP/train.h5" -o "$TMP/test.h5" 2>/dev/null
  "$BIN/ufo-train" "$TMP/train.h5" --val "$TMP/test.h5" --preset tiny --batch 32 --lr 0.01 --steps 60 \
      --log-every 60 --seed 3 -t 1 -o "$TMP/model.h5" >"$TMP/train.tsv" 2>/dev/null
}

setup() {
  M="$BATS_FILE_TMPDIR/model.h5"
  TEST="$BATS_FILE_TMPDIR/test.h5"
}

# write_pngs DIR NAME:HxW[:rgb] ... — gray (or RGB) 8-bit PNGs; image i lights pixels p with
# p % 10 == i % 10 like make_synth_idx, so the model has something to recognise.
write_pngs() {
  python3 - "$@" <<'PY'
import sys, zlib, struct
d = sys.argv[1]
def chunk(t, b): return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xffffffff)
for i, spec in enumerate(sys.argv[2:]):
    name, hw, *rgb = spec.split(":")
    h, w = map(int, hw.split("x"))
    ch = 3 if rgb else 1
    px = lambda p: 210 if p % 10 == i % 10 else (p * 7) % 40
    rows = b"".join(b"\x00" + bytes(v for x in range(w) for v in [px(y * w + x)] * ch) for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2 if rgb else 0, 0, 0, 0)
    open(f"{d}/{name}", "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
}

@test "ufo-infer --help shows usage and options" {
  run "$BIN/ufo-infer" --help
  assert_success
  assert_line --index 0 --partial "usage: ufo-infer -m MODEL.h5"
  for o in --model --task --summary --summary-only --json --resize --batch --threads; do
    assert_output --partial -- "$o"
  done
}

@test "dataset: one TSV row per image with label, prediction, probability, class name" {
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TEST" -t 1
  assert_success
  assert_line --index 0 $'index\tlabel\tprediction\tprobability\tclass_name'
  [ "${#lines[@]}" -eq 101 ]
  assert_line --index 1 --regexp $'^0\t[0-9]\t[0-9]\t(0|1)\\.[0-9]{6}\t[0-9]$'
  assert_line --index 100 --regexp $'^99\t'
  # Class names of this model are "0".."9", so class_name repeats the prediction.
  run awk -F'\t' 'NR > 1 && $3 != $5 { bad++ } END { print bad + 0 }' <<<"$output"
  assert_output 0
  [[ "$stderr" == *"100 images"* ]]
}

@test "dataset --summary: accuracy equals ufo-train's val_acc; per-class table and confusion matrix" {
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TEST" --summary -t 1
  assert_success
  local val_acc
  val_acc=$(tail -n 1 "$BATS_FILE_TMPDIR/train.tsv" | cut -f7)
  assert_line "accuracy"$'\t'"$val_acc"
  assert_line $'metric\tvalue'
  assert_line $'images\t100'
  assert_line $'class\tname\tcount\tcorrect\taccuracy'
  assert_line --regexp $'^confusion\t0\t1\t2\t3\t4\t5\t6\t7\t8\t9$'
  # Exactly the 100 per-image rows look like rows.
  [ "$(grep -c $'^[0-9]*\t[0-9]\t[0-9]\t[01]\\.' <<<"$output")" -eq 100 ]
  # The confusion matrix sums to 100 and its diagonal to the correct count.
  run awk -F'\t' '$1 == "confusion" { on = 1; next } on { for (j = 2; j <= NF; j++) { s += $j; if (j - 2 == $1) d += $j } }
                  END { print s, d }' <<<"$output"
  local correct
  correct=$("$BIN/ufo-infer" -m "$M" "$TEST" --summary-only -t 1 2>/dev/null | awk -F'\t' '$1 == "correct" { print $2 }')
  assert_output "100 $correct"
  # --summary-only: the summary blocks alone.
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TEST" --summary-only -t 1
  assert_success
  assert_line --index 0 $'metric\tvalue'
  [ "${#lines[@]}" -eq 28 ]   # 6 + 11 + 11 lines; $lines skips the blank separators
}

@test "dataset --json: rows and the summary object parse" {
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TEST" --json --summary -t 2
  assert_success
  [ "${#lines[@]}" -eq 101 ]
  local val_acc
  val_acc=$(tail -n 1 "$BATS_FILE_TMPDIR/train.tsv" | cut -f7)
  run python3 -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin]
rows, summary = lines[:-1], lines[-1]["summary"]
assert all(list(r) == ["index", "label", "prediction", "probability", "class_name"] for r in rows), rows[0]
assert [r["index"] for r in rows] == list(range(100))
assert all(0 < r["probability"] <= 1 for r in rows)
correct = sum(r["label"] == r["prediction"] for r in rows)
assert summary["images"] == 100 and summary["correct"] == correct, summary
assert abs(summary["accuracy"] - float(sys.argv[1])) < 1e-6, (summary["accuracy"], sys.argv[1])
assert len(summary["classes"]) == 10 and sum(c["count"] for c in summary["classes"]) == 100
assert sum(map(sum, summary["confusion"])) == 100
assert sum(summary["confusion"][k][k] for k in range(10)) == correct
assert summary["loss"] > 0
print("ok")' "$val_acc" <<<"$output"
  assert_output ok
  # --summary-only --json: exactly one JSON object.
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TEST" --json --summary-only -t 1
  assert_success
  [ "${#lines[@]}" -eq 1 ]
  python3 -c 'import json,sys; assert json.loads(sys.stdin.read())["summary"]["images"] == 100' <<<"$output"
}

@test "batch size and thread count do not change the predictions; --task picks the task" {
  "$BIN/ufo-infer" -m "$M" "$TEST" -b 256 -t 1 2>/dev/null | cut -f1-3 >"$TMP/a"
  "$BIN/ufo-infer" -m "$M" "$TEST" -b 7 -t 2 2>/dev/null | cut -f1-3 >"$TMP/b"
  "$BIN/ufo-infer" -m "$M" "$TEST" -b 1 -t 1 --task main 2>/dev/null | cut -f1-3 >"$TMP/c"
  [ "$(wc -l <"$TMP/a")" -eq 101 ]
  cmp "$TMP/a" "$TMP/b"
  cmp "$TMP/a" "$TMP/c"
}

@test "'-' reads a dataset from stdin" {
  run --separate-stderr "$BIN/ufo-infer" -m "$M" - --summary-only -t 1 <"$TEST"
  assert_success
  assert_line $'images\t100'
  [[ "$stderr" == *"<stdin>"* ]]
}

@test "PNG files: source column; same predictions as the same pixels in a dataset" {
  mkdir -p "$TMP/set/a" "$TMP/set/b"
  write_pngs "$TMP/set/a" p0.png:8x8 p1.png:8x8 p2.png:8x8 p3.png:8x8 p4.png:8x8
  write_pngs "$TMP/set/b" q0.png:8x8 q1.png:8x8 q2.png:8x8 q3.png:8x8 q4.png:8x8:rgb
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP"/set/a/*.png "$TMP"/set/b/*.png -t 1
  assert_success
  assert_line --index 0 $'index\tsource\tprediction\tprobability\tclass_name'
  [ "${#lines[@]}" -eq 11 ]
  assert_line --index 1 --regexp $'^0\t'"$TMP/set/a/p0.png"$'\t[0-9]\t[01]\\.[0-9]{6}\t[0-9]$'
  assert_line --index 10 --regexp $'^9\t'"$TMP/set/b/q4.png"$'\t'
  cut -f3 <<<"$output" >"$TMP/from-files"
  # The same pictures as a dataset (folder import: classes a, b; files sorted by name).
  "$BIN/ufo-data" import-folder "$TMP/set" --channels 1 -o "$TMP/set.h5" 2>/dev/null
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP/set.h5" -t 1
  assert_success
  cut -f3 <<<"$output" | diff "$TMP/from-files" -
  # The model has 10 classes, the folder 2: labels are not comparable, so they are left empty.
  assert_line --index 1 --regexp $'^0\t\t[0-9]\t'
  [[ "$stderr" == *"labels are not used"* ]]
}

@test "'-' reads image paths from stdin, one per line; --json names the source" {
  write_pngs "$TMP" a.png:8x8 b.png:8x8
  run --separate-stderr "$BIN/ufo-infer" -m "$M" - --json -t 1 < <(printf '%s\n\n%s\n' "$TMP/a.png" "$TMP/b.png")
  assert_success
  [ "${#lines[@]}" -eq 2 ]
  run python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
assert [list(r) for r in rows] == [["index", "source", "prediction", "probability", "class_name"]] * 2, rows
assert [r["source"] for r in rows] == [sys.argv[1], sys.argv[2]], rows
print("ok")' "$TMP/a.png" "$TMP/b.png" <<<"$output"
  assert_output ok
}

@test "image size: an error naming the file unless --resize is given" {
  write_pngs "$TMP" ok.png:8x8 big.png:12x10
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP/ok.png" "$TMP/big.png" -t 1
  assert_exit_error 1 "$TMP/big.png: image is 12x10 but the model takes 8x8 (use --resize)"
  [ -z "$output" ]
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP/ok.png" "$TMP/big.png" --resize -t 1
  assert_success
  [ "${#lines[@]}" -eq 3 ]
}

@test "--summary without labels: one line on stderr, exit 1" {
  write_pngs "$TMP" a.png:8x8
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP/a.png" --summary -t 1
  assert_exit_error 1 "$TMP/a.png" "no labels"
  [ -z "$output" ]
  mkdir -p "$TMP/set/x" "$TMP/set/y"
  write_pngs "$TMP/set/x" 1.png:8x8
  write_pngs "$TMP/set/y" 2.png:8x8
  "$BIN/ufo-data" import-folder "$TMP/set" -o "$TMP/two.h5" 2>/dev/null
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP/two.h5" --summary-only -t 1
  [ "$status" -eq 1 ]
  [ -z "$output" ]
  [ "${#stderr_lines[@]}" -eq 2 ]       # the note about the classes, then the error
  [[ "${stderr_lines[1]}" == *"$TMP/two.h5"*"no summary"* ]]
}

# ---------------------------------------------------------------- bad input

@test "missing files: model, dataset, image" {
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/nope.h5" "$TEST"
  assert_exit_error 1 "$TMP/nope.h5: no such file"
  [ -z "$output" ]
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP/nope-data.h5"
  assert_exit_error 1 "$TMP/nope-data.h5: no such file"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP/nope.png"
  assert_exit_error 1 "$TMP/nope.png: no such file"
  [ -z "$output" ]
}

@test "not an HDF5 file, not a checkpoint, not an image" {
  echo "hello" >"$TMP/text.h5"
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/text.h5" "$TEST"
  assert_exit_error 1 "$TMP/text.h5: not an HDF5 file"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP/text.h5"
  assert_exit_error 1 "$TMP/text.h5: not an HDF5 file"
  run --separate-stderr "$BIN/ufo-infer" -m "$TEST" "$TEST"
  assert_exit_error 1 "$TEST: not a ufo checkpoint (format=ufo-dataset)"
  echo "hello" >"$TMP/text.png"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP/text.png"
  assert_exit_error 1 "$TMP/text.png: not a PNG or JPEG image"
  [ -z "$output" ]
}

@test "truncated HDF5 files: model and dataset" {
  head -c $(( $(stat -c %s "$M") / 2 )) "$M" >"$TMP/half-model.h5"
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/half-model.h5" "$TEST"
  assert_exit_error 1 "$TMP/half-model.h5: truncated or corrupt HDF5 file"
  make_synth_dataset "$TMP/d.h5" 200 10 8 8 --zstd 0
  head -c $(( $(stat -c %s "$TMP/d.h5") / 2 )) "$TMP/d.h5" >"$TMP/half.h5"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP/half.h5"
  assert_exit_error 1 "$TMP/half.h5: truncated or corrupt HDF5 file"
  [ -z "$output" ]
}

@test "checkpoint whose tensor shapes disagree with its architecture" {
  cp "$M" "$TMP/bad.h5"
  perl -0777 -i -pe 'BEGIN { binmode STDIN; binmode STDOUT } s/(dim\x00+.{0,40}?)\x10(\x00{7})/$1\x20$2/s' "$TMP/bad.h5"
  run h5dump -a /arch/dim "$TMP/bad.h5"
  assert_output --partial '(0): 32'
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/bad.h5" "$TEST"
  assert_exit_error 1 "$TMP/bad.h5: /embed/patch/w has shape [16,16], expected [32,16]"
  [ -z "$output" ]
}

@test "images that do not fit the model: 12x12 dataset on an 8x8 model" {
  make_synth_dataset "$TMP/d12.h5" 20 10 12 12
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP/d12.h5"
  assert_exit_error 1 "$TMP/d12.h5: images are 12x12x1 but the model takes 8x8x1"
  [ -z "$output" ]
}

@test "empty dataset, labels out of range" {
  make_synth_dataset "$TMP/e.h5" 20 10 8 8 --zstd 0
  perl -0777 -i -pe 'BEGIN { binmode STDIN; binmode STDOUT }
    s/(\x01\x04[\x00\x01]\x00{5})\x14(\x00{7}\x08\x00{7}\x08\x00{7}\x01\x00{7})\x14/$1\x00$2\x00/;
    s/(\x01\x01[\x00\x01]\x00{5})\x14(\x00{7})\x14/$1\x00$2\x00/' "$TMP/e.h5"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP/e.h5"
  assert_exit_error 1 "$TMP/e.h5: dataset is empty"
  [ -z "$output" ]
  make_synth_dataset "$TMP/l.h5" 20 10 8 8 --zstd 0
  perl -0777 -i -pe 'BEGIN { binmode STDIN; binmode STDOUT } s/\x05\x00\x00\x00(\x06\x00\x00\x00\x07\x00\x00\x00\x08\x00\x00\x00\x09\x00\x00\x00)/\xc8\x00\x00\x00$1/' "$TMP/l.h5"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP/l.h5"
  assert_exit_error 1 "$TMP/l.h5: label 200 at index 5 is out of range [0,10)"
  [ -z "$output" ]
}

@test "unknown task" {
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TEST" --task cars
  assert_exit_error 1 "$M: no task cars (tasks: main)"
  [ -z "$output" ]
}

@test "usage errors exit 2: unknown option, no input, no model, '-' with others, bad batch" {
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TEST" --frobnicate
  assert_exit_error 2 "frobnicate"
  run --separate-stderr "$BIN/ufo-infer" -m "$M"
  assert_exit_error 2 "a dataset, image files or '-' is required"
  run --separate-stderr "$BIN/ufo-infer" "$TEST"
  assert_exit_error 2 "model"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" - "$TEST"
  assert_exit_error 2 "'-' must be the only input"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TEST" -b 0
  assert_exit_error 2 "--batch must be positive"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TEST" "$TEST"
  assert_exit_error 1 "$TEST: is an HDF5 file; give a dataset as the only input"
  [ -z "$output" ]
}
