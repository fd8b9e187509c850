#!/usr/bin/env bats
# ufo-data: help, import/info/split round trips, interoperability with the HDF5 tools,
# and bad input (one stderr line naming the file, non-zero exit, no output left behind).

load common

FASHION_CLASSES="T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot"

info_value() {  # info_value FILE KEY
  "$BIN/ufo-data" info "$1" | awk -F'\t' -v k="$2" '$1 == k { print $2 }'
}

@test "ufo-data --help lists the commands; each command has --help" {
  run "$BIN/ufo-data" --help
  assert_success
  for c in import-idx import-grid import-folder split info; do assert_output --partial "$c"; done
  for c in import-idx import-grid import-folder split info; do
    run "$BIN/ufo-data" "$c" --help
    assert_success
    assert_output --partial "usage: ufo-data $c"
  done
  run "$BIN/ufo-data" split --help
  assert_output --partial -- --fractions
  assert_output --partial -- --count
  assert_output --partial -- --seed
}

@test "unknown command or no command: one line, exit 2" {
  run --separate-stderr "$BIN/ufo-data" frobnicate
  assert_exit_error 2 "unknown command 'frobnicate'"
  run --separate-stderr "$BIN/ufo-data"
  assert_exit_error 2 "missing command"
  [ -z "$output" ]
}

@test "import-idx then info: counts, shape, classes (TSV and JSON)" {
  make_synth_idx "$TMP" 50 5 6 7
  run --separate-stderr "$BIN/ufo-data" import-idx "$TMP/images.idx" "$TMP/labels.idx" -o "$TMP/d.h5" --classes a,b,c,d,e
  assert_success
  run --separate-stderr "$BIN/ufo-data" info "$TMP/d.h5"
  assert_success
  assert_line --index 0 $'key\tvalue'
  assert_line $'count\t50'
  assert_line $'shape\t6x7x1'
  assert_line $'num_classes\t5'
  assert_line $'class.0.name\ta'
  assert_line $'class.4.name\te'
  assert_line $'class.3.count\t10'
  run --separate-stderr "$BIN/ufo-data" info --json "$TMP/d.h5"
  assert_success
  [ "${#lines[@]}" -eq 1 ]
  run python3 -c 'import json,sys; j=json.loads(sys.stdin.read()); print(j["count"], j["shape"], [c["count"] for c in j["classes"]], j["classes"][1]["name"])' <<<"$output"
  assert_output "50 6x7x1 [10, 10, 10, 10, 10] b"
}

@test "import-idx reads .gz, --resize changes the shape, '-' writes stdout and reads stdin" {
  make_synth_idx "$TMP" 20 10 8 8
  gzip -k "$TMP/images.idx" "$TMP/labels.idx"
  "$BIN/ufo-data" import-idx "$TMP/images.idx.gz" "$TMP/labels.idx.gz" --resize 12x10 -o - >"$TMP/out.h5" 2>/dev/null
  [ "$(info_value "$TMP/out.h5" shape)" = 12x10x1 ]
  run --separate-stderr "$BIN/ufo-data" info - <"$TMP/out.h5"
  assert_success
  assert_line $'count\t20'
  assert_line $'file\t<stdin>'
}

@test "import-grid cuts a PNG sheet into classes" {
  # 4x2 cells of 3 px, cell i filled with 20*i; 2 cells per class -> 4 classes.
  # A minimal gray PNG encoder in python3's standard library (no numpy/PIL needed).
  python3 - "$TMP/sheet.png" <<'PY'
import sys, zlib, struct
w, h, cell = 12, 6, 3
rows = b"".join(b"\x00" + bytes(((y // cell) * 4 + x // cell) * 20 for x in range(w)) for y in range(h))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
  run --separate-stderr "$BIN/ufo-data" import-grid "$TMP/sheet.png" --cell 3 --per-class 2 -o "$TMP/g.h5"
  assert_success
  [ "$(info_value "$TMP/g.h5" count)" = 8 ]
  [ "$(info_value "$TMP/g.h5" num_classes)" = 4 ]
  [ "$(info_value "$TMP/g.h5" shape)" = 3x3x1 ]
  run --separate-stderr "$BIN/ufo-data" import-grid "$TMP/sheet.png" --cell 3 --per-class 3 -o "$TMP/bad.h5"
  assert_exit_error 1 "$TMP/sheet.png" "not a multiple of --per-class 3"
  assert_no_output_file "$TMP/bad.h5"
}

@test "split --fractions and --count are stratified and exact" {
  make_synth_dataset "$TMP/d.h5" 100 10
  run --separate-stderr "$BIN/ufo-data" split "$TMP/d.h5" --fractions 0.8,0.1,0.1 --seed 3 -o "$TMP/a.h5" -o "$TMP/b.h5" -o "$TMP/c.h5"
  assert_success
  [ "$(info_value "$TMP/a.h5" count)" = 80 ]
  [ "$(info_value "$TMP/b.h5" count)" = 10 ]
  [ "$(info_value "$TMP/c.h5" count)" = 10 ]
  [ "$(info_value "$TMP/a.h5" class.7.count)" = 8 ]
  [ "$(info_value "$TMP/b.h5" class.7.count)" = 1 ]
  run --separate-stderr "$BIN/ufo-data" split "$TMP/d.h5" --count 60,30 --seed 3 -o "$TMP/x.h5" -o "$TMP/y.h5"
  assert_success
  [ "$(info_value "$TMP/x.h5" count)" = 60 ]
  [ "$(info_value "$TMP/y.h5" count)" = 30 ]
  [ "$(info_value "$TMP/y.h5" class.0.count)" = 3 ]
}

@test "split is deterministic given --seed (byte-identical with SOURCE_DATE_EPOCH)" {
  make_synth_dataset "$TMP/d.h5" 60 6
  mkdir "$TMP/r1" "$TMP/r2" "$TMP/r3"
  for r in r1 r2; do
    (cd "$TMP/$r" && SOURCE_DATE_EPOCH=0 "$BIN/ufo-data" split ../d.h5 --fractions 0.5,0.5 --seed 9 -o a.h5 -o b.h5 2>/dev/null)
  done
  (cd "$TMP/r3" && SOURCE_DATE_EPOCH=0 "$BIN/ufo-data" split ../d.h5 --fractions 0.5,0.5 --seed 10 -o a.h5 -o b.h5 2>/dev/null)
  cmp "$TMP/r1/a.h5" "$TMP/r2/a.h5"
  cmp "$TMP/r1/b.h5" "$TMP/r2/b.h5"
  ! cmp -s "$TMP/r1/a.h5" "$TMP/r3/a.h5"
}

@test "h5ls and h5dump read the output (zstd data via --zstd 0)" {
  make_synth_dataset "$TMP/z.h5" 10 10
  run h5ls -r "$TMP/z.h5"
  assert_success
  assert_output --regexp '/images +Dataset \{10, 8, 8, 1\}'
  assert_output --regexp '/labels +Dataset \{10\}'
  run h5ls -v "$TMP/z.h5/images"
  assert_output --partial "32015"
  make_synth_dataset "$TMP/p.h5" 10 10 8 8 --zstd 0
  run h5dump -d /labels "$TMP/p.h5"
  assert_success
  assert_output --partial "0, 1, 2, 3, 4, 5, 6, 7, 8, 9"
  run h5dump -a /format "$TMP/p.h5"
  assert_output --partial '"ufo-dataset"'
  run h5dump -a /class_names "$TMP/p.h5"
  assert_output --partial '"9"'
}

@test "missing input file" {
  run --separate-stderr "$BIN/ufo-data" info "$TMP/nope.h5"
  assert_exit_error 1 "$TMP/nope.h5: no such file"
  [ -z "$output" ]
  run --separate-stderr "$BIN/ufo-data" import-idx "$TMP/nope.idx" "$TMP/nope2.idx" -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/nope.idx: no such file"
  assert_no_output_file "$TMP/o.h5"
}

@test "not an HDF5 file" {
  echo "hello" >"$TMP/text.h5"
  run --separate-stderr "$BIN/ufo-data" info "$TMP/text.h5"
  assert_exit_error 1 "$TMP/text.h5: not an HDF5 file"
  [ -z "$output" ]
  run --separate-stderr "$BIN/ufo-data" split "$TMP/text.h5" --fractions 0.5,0.5 -o "$TMP/a.h5" -o "$TMP/b.h5"
  assert_exit_error 1 "$TMP/text.h5: not an HDF5 file"
  assert_no_output_file "$TMP/a.h5" "$TMP/b.h5"
}

@test "truncated HDF5 file" {
  make_synth_dataset "$TMP/d.h5" 200 10 16 16 --zstd 0
  head -c $(( $(stat -c %s "$TMP/d.h5") / 2 )) "$TMP/d.h5" >"$TMP/half.h5"
  run --separate-stderr "$BIN/ufo-data" info "$TMP/half.h5"
  assert_exit_error 1 "$TMP/half.h5: truncated or corrupt HDF5 file"
  [ -z "$output" ]
  run --separate-stderr "$BIN/ufo-data" split "$TMP/half.h5" --count 10,10 -o "$TMP/a.h5" -o "$TMP/b.h5"
  assert_exit_error 1 "$TMP/half.h5: truncated or corrupt HDF5 file"
  assert_no_output_file "$TMP/a.h5" "$TMP/b.h5"
}

@test "labels out of range: rejected at import and by the dataset reader" {
  make_synth_idx "$TMP" 20 10
  perl -i -pe 'BEGIN { binmode STDIN; binmode STDOUT } s/^(.{8}.{5})./$1\xc8/s if $. == 1' "$TMP/labels.idx"
  run --separate-stderr "$BIN/ufo-data" import-idx "$TMP/images.idx" "$TMP/labels.idx" --classes 0,1,2,3,4,5,6,7,8,9 -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/labels.idx: label 200 at index 5 is out of range [0,10)"
  assert_no_output_file "$TMP/o.h5"
  # A valid file, then its stored labels patched in place (uncompressed, so they are raw int32 LE).
  make_synth_dataset "$TMP/ok.h5" 20 10 8 8 --zstd 0
  perl -0777 -i -pe 'BEGIN { binmode STDIN; binmode STDOUT } s/\x05\x00\x00\x00(\x06\x00\x00\x00\x07\x00\x00\x00\x08\x00\x00\x00\x09\x00\x00\x00)/\xc8\x00\x00\x00$1/' "$TMP/ok.h5"
  run --separate-stderr "$BIN/ufo-data" info "$TMP/ok.h5"
  assert_exit_error 1 "$TMP/ok.h5: label 200 at index 5 is out of range [0,10)"
  [ -z "$output" ]
  run --separate-stderr "$BIN/ufo-data" split "$TMP/ok.h5" --count 10,10 -o "$TMP/a.h5" -o "$TMP/b.h5"
  assert_exit_error 1 "$TMP/ok.h5: label 200 at index 5"
  assert_no_output_file "$TMP/a.h5" "$TMP/b.h5"
}

@test "empty dataset" {
  make_synth_idx "$TMP" 0 10
  run --separate-stderr "$BIN/ufo-data" import-idx "$TMP/images.idx" "$TMP/labels.idx" -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/images.idx: dataset is empty"
  assert_no_output_file "$TMP/o.h5"
}

@test "unknown option: usage error, exit 2" {
  make_synth_idx "$TMP" 10 10
  run --separate-stderr "$BIN/ufo-data" import-idx "$TMP/images.idx" "$TMP/labels.idx" -o "$TMP/o.h5" --frobnicate
  assert_exit_error 2 "frobnicate"
  assert_no_output_file "$TMP/o.h5"
  run --separate-stderr "$BIN/ufo-data" split "$TMP/x.h5" --fractions 0.5,0.5 -o "$TMP/a.h5"
  assert_exit_error 2 "2 parts need 2 -o outputs"
  assert_no_output_file "$TMP/a.h5"
}

@test "output in a missing directory fails before any work" {
  make_synth_idx "$TMP" 10 10
  run --separate-stderr "$BIN/ufo-data" import-idx "$TMP/images.idx" "$TMP/labels.idx" -o "$TMP/no/such/o.h5"
  assert_exit_error 1 "$TMP/no/such/o.h5: directory does not exist"
  make_synth_dataset "$TMP/d.h5" 20 10
  run --separate-stderr "$BIN/ufo-data" split "$TMP/d.h5" --count 10,10 -o "$TMP/a.h5" -o "$TMP/gone/b.h5"
  assert_exit_error 1 "$TMP/gone/b.h5: directory does not exist"
  assert_no_output_file "$TMP/a.h5"
}
