#!/usr/bin/env bats
# ufo-infer: help, predictions on a dataset (TSV, JSON Lines, --summary), on PNG files
# (arguments or '-' path lists, --resize), agreement with ufo-train's own evaluation and
# between the two input kinds, the full probability and logit vectors (--probs, --logits) and
# the predictions file (-o, read back with h5dump), and bad input (one stderr line naming the
# file, non-zero exit, nothing on stdout).

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

# h5_f32 FILE DSET COLS: a float32 dataset as rows of COLS tab-separated numbers, read by
# h5dump and od (not by ufo).
h5_f32() {
  local raw
  raw=$(mktemp "$TMP/raw.XXXXXX")
  h5dump -d "$2" -b LE -o "$raw" "$1" >/dev/null && od -An -v -tf4 -w$(( 4 * $3 )) "$raw" | awk -v OFS='\t' '{ $1 = $1; print }'
  rm -f "$raw"
}

# h5_i32 FILE DSET: an int32 dataset, one value per line, read by h5dump and od.
h5_i32() {
  local raw
  raw=$(mktemp "$TMP/raw.XXXXXX")
  h5dump -d "$2" -b LE -o "$raw" "$1" >/dev/null && od -An -v -td4 -w4 "$raw" | tr -d ' '
  rm -f "$raw"
}

# h5_attr FILE NAME: a scalar root attribute's value as h5dump prints it (strings quoted).
h5_attr() {
  h5dump -a "/$2" "$1" | sed -n 's/^ *(0): //p'
}

# fnv1a FILE: 64-bit FNV-1a of the file's bytes as 16 hex digits (python, not ufo).
fnv1a() {
  python3 -c '
import sys
h = 0xcbf29ce484222325
for b in open(sys.argv[1], "rb").read():
    h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
print("%016x" % h)' "$1"
}

# max_diff A B: the largest absolute difference between the numbers of two TSV tables of the
# same shape (fails when the shapes differ).
max_diff() {
  python3 -c '
import sys
a = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
b = [l.split("\t") for l in open(sys.argv[2]).read().splitlines()]
assert len(a) == len(b) and all(len(x) == len(y) for x, y in zip(a, b)), "shapes differ"
print("%.3g" % max(abs(float(x) - float(y)) for r, s in zip(a, b) for x, y in zip(r, s)))' "$1" "$2"
}

@test "ufo-infer --help shows usage and options" {
  run "$BIN/ufo-infer" --help
  assert_success
  assert_line --index 0 --partial "usage: ufo-infer -m MODEL.h5"
  for o in --model --task --summary --summary-only --json --probs --logits --output --resize --batch --threads; do
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

# ---------------------------------------------------------------- --probs, --logits, -o

@test "--probs: one p_ column per class after the others; every row sums to 1 and its largest is the prediction" {
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TEST" --probs -t 1
  assert_success
  assert_line --index 0 $'index\tlabel\tprediction\tprobability\tclass_name\tp_0\tp_1\tp_2\tp_3\tp_4\tp_5\tp_6\tp_7\tp_8\tp_9'
  [ "${#lines[@]}" -eq 101 ]
  assert_line --index 1 --regexp $'^0\t[0-9]\t[0-9]\t[01]\\.[0-9]{6}\t[0-9](\t[01]\\.[0-9]{6}){10}$'
  # The first five columns are the rows printed without --probs.
  [ "$(cut -f1-5 <<<"$output")" = "$("$BIN/ufo-infer" -m "$M" "$TEST" -t 1 2>/dev/null)" ]
  # Sum to 1 within 1e-5; the column of the predicted class is the largest and equals probability.
  run awk -F'\t' 'NR > 1 {
      s = 0; top = 6
      for (j = 6; j <= 15; j++) { s += $j; if ($j + 0 > $top + 0) top = j }
      if (NF != 15 || (s - 1 > 1e-5) || (1 - s > 1e-5) || $(6 + $3) + 0 != $top + 0 || $(6 + $3) != $4) bad++
      n++
    } END { print n, bad + 0 }' <<<"$output"
  assert_output "100 0"
}

@test "--logits: logit_ columns after the p_ ones; their softmax equals the --probs columns" {
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TEST" --probs --logits -t 1
  assert_success
  local header=$'index\tlabel\tprediction\tprobability\tclass_name'
  for k in 0 1 2 3 4 5 6 7 8 9; do header+=$'\t'"p_$k"; done
  for k in 0 1 2 3 4 5 6 7 8 9; do header+=$'\t'"logit_$k"; done
  assert_line --index 0 "$header"
  [ "${#lines[@]}" -eq 101 ]
  both=$output
  run awk -F'\t' 'NR > 1 {
      m = $16; for (j = 17; j <= 25; j++) if ($j > m) m = $j
      z = 0; for (j = 16; j <= 25; j++) z += exp($j - m)
      for (k = 0; k < 10; k++) { d = exp($(16 + k) - m) / z - $(6 + k); if (d > 1e-5 || -d > 1e-5) bad++ }
      # Logits are not probabilities: they do not sum to 1.
      s = 0; for (j = 16; j <= 25; j++) s += $j; if (s > 0.999 && s < 1.001) same++
      n++
    } END { print n, bad + 0, same + 0 }' <<<"$both"
  assert_output "100 0 0"
  # --logits alone: the same columns right after class_name, and no p_ columns.
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TEST" --logits -t 1
  assert_success
  [ "$(cut -f1-5,16- <<<"$both")" = "$output" ]
}

@test "--probs --logits --json: arrays \"probs\" and \"logits\" of K numbers that the TSV columns round" {
  tsv=$("$BIN/ufo-infer" -m "$M" "$TEST" --probs --logits -t 1 2>/dev/null)
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TEST" --probs --logits --json -t 1
  assert_success
  [ "${#lines[@]}" -eq 100 ]
  run python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.argv[1].splitlines()]
tsv = [l.split("\t") for l in sys.argv[2].splitlines()[1:]]
assert len(rows) == len(tsv) == 100
for r, t in zip(rows, tsv):
    assert list(r) == ["index", "label", "prediction", "probability", "class_name", "probs", "logits"], list(r)
    assert len(r["probs"]) == 10 and len(r["logits"]) == 10
    assert abs(sum(r["probs"]) - 1) < 1e-5
    assert max(r["probs"]) == r["probs"][r["prediction"]] == r["probability"]
    vals = r["probs"] + r["logits"]
    assert all(abs(v - float(c)) <= 5.01e-7 for v, c in zip(vals, t[5:])), (r["index"], vals, t[5:])
print("ok")' "$output" "$tsv"
  assert_output ok
}

@test "--probs and --logits headers: class names escaped like every other TSV cell" {
  make_synth_dataset "$TMP/named.h5" 60 3 8 8 --classes $'cat\tdog,back\\slash,new\nline'
  "$BIN/ufo-train" "$TMP/named.h5" --preset tiny -b 16 --steps 2 -t 1 -o "$TMP/named-model.h5" >/dev/null 2>&1
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/named-model.h5" "$TMP/named.h5" --probs --logits -t 1
  assert_success
  assert_line --index 0 $'index\tlabel\tprediction\tprobability\tclass_name\t''p_cat\tdog'$'\t''p_back\\slash'$'\t''p_new\nline'$'\t''logit_cat\tdog'$'\t''logit_back\\slash'$'\t''logit_new\nline'
  [ "${#lines[@]}" -eq 61 ]
  [ -z "$(awk -F'\t' 'NF != 11' <<<"$output")" ]
  # JSON keeps the names as they are; the arrays have 3 entries.
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/named-model.h5" "$TMP/named.h5" --probs --logits --json -t 1
  python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
assert len(rows) == 60 and all(len(r["probs"]) == len(r["logits"]) == 3 for r in rows)
assert {r["class_name"] for r in rows} <= {"cat\tdog", "back\\slash", "new\nline"}' <<<"$output"
}

@test "-o: an HDF5 file h5ls and h5dump read, holding the printed probabilities, predictions and labels" {
  tsv=$("$BIN/ufo-infer" -m "$M" "$TEST" --probs --logits -t 1 2>/dev/null)
  run --separate-stderr env SOURCE_DATE_EPOCH=0 "$BIN/ufo-infer" -m "$M" "$TEST" --probs --logits -t 1 -o "$TMP/pred.h5"
  assert_success
  # stdout still carries the rows, unchanged.
  [ "$output" = "$tsv" ]
  [[ "$stderr" == *"predictions in $TMP/pred.h5"* ]]
  run h5ls "$TMP/pred.h5"
  assert_success
  assert_output --regexp '^labels +Dataset \{100\}'$'\n''logits +Dataset \{100, 10\}'$'\n''prediction +Dataset \{100\}'$'\n''probs +Dataset \{100, 10\}$'
  run h5dump -H "$TMP/pred.h5"
  assert_success
  [ "$(grep -c 'DATATYPE  H5T_IEEE_F32LE' <<<"$output")" -eq 2 ]
  [ "$(grep -c 'DATATYPE  H5T_STD_I32LE' <<<"$output")" -eq 2 ]
  # The documented root attributes.
  [ "$(h5_attr "$TMP/pred.h5" format)" = '"ufo-predictions"' ]
  [ "$(h5_attr "$TMP/pred.h5" format_version)" = 1 ]
  [ "$(h5_attr "$TMP/pred.h5" task)" = '"main"' ]
  [ "$(h5_attr "$TMP/pred.h5" num_classes)" = 10 ]
  run h5dump -a /class_names "$TMP/pred.h5"
  assert_output --partial '(0): "0", "1", "2", "3", "4", "5", "6", "7", "8", "9"'
  [ "$(h5_attr "$TMP/pred.h5" model)" = "\"$M\"" ]
  [ "$(h5_attr "$TMP/pred.h5" model_checksum)" = "\"$(fnv1a "$M")\"" ]
  [ "$(h5_attr "$TMP/pred.h5" input)" = "\"$TEST\"" ]
  [ "$(h5_attr "$TMP/pred.h5" input_kind)" = '"dataset"' ]
  [ "$(h5_attr "$TMP/pred.h5" input_checksum)" = "\"$(fnv1a "$TEST")\"" ]
  [ "$(h5_attr "$TMP/pred.h5" tool)" = '"ufo-infer"' ]
  [[ "$(h5_attr "$TMP/pred.h5" command)" == *"ufo-infer -m $M $TEST --probs --logits -t 1 -o $TMP/pred.h5\"" ]]
  [ "$(h5_attr "$TMP/pred.h5" created)" = '"1970-01-01T00:00:00Z"' ]
  [ -n "$(h5_attr "$TMP/pred.h5" ufo_version)" ]
  # /probs and /logits equal the printed columns to printing precision (half a unit of 1e-6).
  tail -n +2 <<<"$tsv" | cut -f6-15 >"$TMP/p.tsv"
  tail -n +2 <<<"$tsv" | cut -f16-25 >"$TMP/l.tsv"
  h5_f32 "$TMP/pred.h5" /probs 10 >"$TMP/p.h5.tsv"
  h5_f32 "$TMP/pred.h5" /logits 10 >"$TMP/l.h5.tsv"
  [ "$(wc -l <"$TMP/p.h5.tsv")" -eq 100 ]
  run max_diff "$TMP/p.tsv" "$TMP/p.h5.tsv"
  assert_success
  python3 -c 'import sys; assert float(sys.argv[1]) <= 5.01e-7, sys.argv[1]' "$output"
  run max_diff "$TMP/l.tsv" "$TMP/l.h5.tsv"
  assert_success
  python3 -c 'import sys; assert float(sys.argv[1]) <= 5.01e-7, sys.argv[1]' "$output"
  # /prediction is the prediction column, /labels the label column.
  [ "$(h5_i32 "$TMP/pred.h5" /prediction)" = "$(tail -n +2 <<<"$tsv" | cut -f3)" ]
  [ "$(h5_i32 "$TMP/pred.h5" /labels)" = "$(tail -n +2 <<<"$tsv" | cut -f2)" ]
  # No temp file is left beside it.
  [ -z "$(compgen -G "$TMP/.pred.h5.tmp.*")" ]
}

@test "-o is byte-reproducible with SOURCE_DATE_EPOCH, and --summary-only writes the same file" {
  mkdir -p "$TMP/r1" "$TMP/r2"
  (cd "$TMP/r1" && SOURCE_DATE_EPOCH=0 "$BIN/ufo-infer" -m "$M" "$TEST" -b 7 -t 1 -o p.h5 >/dev/null 2>&1)
  (cd "$TMP/r2" && SOURCE_DATE_EPOCH=0 "$BIN/ufo-infer" -m "$M" "$TEST" -b 7 -t 1 -o p.h5 >/dev/null 2>&1)
  cmp "$TMP/r1/p.h5" "$TMP/r2/p.h5"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TEST" --summary-only -b 7 -t 1 -o "$TMP/s.h5"
  assert_success
  assert_line --index 0 $'metric\tvalue'
  h5same "$TMP/r1/p.h5" "$TMP/s.h5" /probs
  h5same "$TMP/r1/p.h5" "$TMP/s.h5" /prediction
}

@test "-o with image files: /sources holds their paths, there is no /labels; '-' lists record <stdin>" {
  write_pngs "$TMP" a.png:8x8 b.png:8x8 'c d.png:8x8'
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP/a.png" "$TMP/b.png" "$TMP/c d.png" -t 1 -o "$TMP/img.h5"
  assert_success
  [ "${#lines[@]}" -eq 4 ]
  run h5ls "$TMP/img.h5"
  assert_output --regexp '^logits +Dataset \{3, 10\}'$'\n''prediction +Dataset \{3\}'$'\n''probs +Dataset \{3, 10\}'$'\n''sources +Dataset \{3\}$'
  run h5dump -d /sources "$TMP/img.h5"
  assert_line --partial "(0): \"$TMP/a.png\","
  assert_line --partial "(1): \"$TMP/b.png\","
  assert_line --partial "(2): \"$TMP/c d.png\""
  [ "$(h5_attr "$TMP/img.h5" input_kind)" = '"images"' ]
  [ "$(h5_attr "$TMP/img.h5" input)" = '""' ]
  [ "$(h5_attr "$TMP/img.h5" input_checksum)" = '""' ]
  run --separate-stderr "$BIN/ufo-infer" -m "$M" - -t 1 -o "$TMP/list.h5" < <(printf '%s\n' "$TMP/a.png" "$TMP/b.png" "$TMP/c d.png")
  assert_success
  [ "$(h5_attr "$TMP/list.h5" input)" = '"<stdin>"' ]
  h5same "$TMP/img.h5" "$TMP/list.h5" /probs
  h5same "$TMP/img.h5" "$TMP/list.h5" /sources
}

@test "-o with the model or the dataset on stdin: no path and no checksum recorded for it" {
  run --separate-stderr "$BIN/ufo-infer" -m - "$TEST" -t 1 -o "$TMP/m.h5" <"$M"
  assert_success
  [ "$(h5_attr "$TMP/m.h5" model)" = '""' ]
  [ "$(h5_attr "$TMP/m.h5" model_checksum)" = '""' ]
  [ "$(h5_attr "$TMP/m.h5" input_checksum)" = "\"$(fnv1a "$TEST")\"" ]
  run --separate-stderr "$BIN/ufo-infer" -m "$M" - -t 1 -o "$TMP/d.h5" <"$TEST"
  assert_success
  [ "$(h5_attr "$TMP/d.h5" input)" = '"<stdin>"' ]
  [ "$(h5_attr "$TMP/d.h5" input_kind)" = '"dataset"' ]
  [ "$(h5_attr "$TMP/d.h5" input_checksum)" = '""' ]
  h5same "$TMP/m.h5" "$TMP/d.h5" /probs
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

@test "-o naming the model, the dataset or an image is a usage error that leaves the input intact" {
  cp "$M" "$TMP/m.h5"
  cp "$TEST" "$TMP/t.h5"
  write_pngs "$TMP" a.png:8x8
  cp "$TMP/a.png" "$TMP/a0.png"
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/m.h5" "$TMP/t.h5" -o "$TMP/m.h5"
  assert_exit_error 2 "$TMP/m.h5: output would replace the input $TMP/m.h5"
  [ -z "$output" ]
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/m.h5" "$TMP/t.h5" --output "$TMP/../$(basename "$TMP")/t.h5"
  assert_exit_error 2 "output would replace the input $TMP/t.h5"
  [ -z "$output" ]
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/m.h5" "$TMP/a.png" -o "$TMP/a.png"
  assert_exit_error 2 "output would replace the input $TMP/a.png"
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/m.h5" - -o "$TMP/a.png" < <(echo "$TMP/a.png")
  assert_exit_error 2 "output would replace the input $TMP/a.png"
  [ -z "$output" ]
  cmp "$M" "$TMP/m.h5"
  cmp "$TEST" "$TMP/t.h5"
  cmp "$TMP/a0.png" "$TMP/a.png"
  [ -z "$(compgen -G "$TMP/.*.tmp.*")" ]
}

@test "-o into a missing directory: one line before anything is read, exit 1, no file" {
  # The model does not exist either: the output is checked first.
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/no-model.h5" "$TEST" -o "$TMP/nodir/p.h5"
  assert_exit_error 1 "$TMP/nodir/p.h5: directory does not exist"
  [ -z "$output" ]
  [ ! -e "$TMP/nodir" ]
}

@test "-o: a failed run (bad image, full disk) leaves no file and no temp file" {
  write_pngs "$TMP" a.png:8x8
  echo "not an image" >"$TMP/bad.png"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP/a.png" "$TMP/bad.png" -o "$TMP/p.h5" -t 1
  assert_exit_error 1 "$TMP/bad.png"
  assert_no_output_file "$TMP/p.h5"
  # Files may not grow beyond 40 KiB; 3000 images x 10 classes need 240 KB.
  make_synth_dataset "$TMP/big.h5" 3000 10
  run --separate-stderr bash -c 'trap "" XFSZ; ulimit -f 40; exec "$@"' _ "$BIN/ufo-infer" -m "$M" "$TMP/big.h5" --summary-only -t 1 -o "$TMP/full.h5"
  assert_exit_error 1 "$TMP/full.h5: cannot write"
  assert_no_output_file "$TMP/full.h5"
}

@test "usage errors: -o -, an empty -o, --probs or --logits with --summary-only" {
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TEST" -o -
  assert_exit_error 2 "-o - is not supported"
  [ -z "$output" ]
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TEST" --output=
  assert_exit_error 2 "--output"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TEST" --probs --summary-only
  assert_exit_error 2 "--summary-only"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TEST" --logits --summary-only
  assert_exit_error 2 "--summary-only"
  [ -z "$output" ]
}
