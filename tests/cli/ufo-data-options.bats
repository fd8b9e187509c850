#!/usr/bin/env bats
# ufo-data: every option in each command's --help changes the result the way it says, checked
# against a computation that does not go through ufo (the IDX bytes, h5dump, djpeg, awk); the
# folder importer's errors and JPEG input; exact exit codes (1 bad input, 2 usage) with no
# output file left behind.

load common

# 60 images of 8x8, 6 classes (10 each), as IDX files and as an uncompressed dataset.
setup_file() {
  export TMP="$BATS_FILE_TMPDIR"
  make_synth_idx "$TMP/idx" 60 6 8 8
  "$BIN/ufo-data" import-idx "$TMP/idx/images.idx" "$TMP/idx/labels.idx" --zstd 0 -o "$TMP/d.h5" 2>/dev/null
}

setup() {
  D="$BATS_FILE_TMPDIR/d.h5"
  I="$BATS_FILE_TMPDIR/idx/images.idx"
  L="$BATS_FILE_TMPDIR/idx/labels.idx"
}

info_value() {  # info_value FILE KEY
  "$BIN/ufo-data" info "$1" | awk -F'\t' -v k="$2" '$1 == k { print $2 }'
}

# class_counts FILE: the per-class counts of `ufo-data info`, space-separated.
class_counts() {
  "$BIN/ufo-data" info "$1" | awk -F'\t' '$1 ~ /^class\.[0-9]+\.count$/ { printf "%s%s", sep, $2; sep = " " }'
}

# idx_rows IDX W: the IDX images' pixels, one image per line in hex (16-byte header skipped).
idx_rows() {
  tail -c +17 "$1" | od -An -v -tx1 -w"$2" | tr -d ' '
}

# filters FILE.h5 DATASET: the filter ids and parameters h5dump reports, on one line.
filters() {
  h5dump -p -H -d "$2" "$1" | awk '/FILTERS/ { on = 1 } on && /FILTER_ID|PARAMS|NONE/ { printf "%s ", $0 } /FILLVALUE/ { on = 0 }' |
    tr -s ' '
}

# constant_idx DIR N H W VALUE: IDX files of N images all of one gray VALUE, labels i % 2.
constant_idx() {
  mkdir -p "$1"
  perl -e 'my ($d, $n, $h, $w, $v) = @ARGV;
    open(my $f, ">:raw", "$d/images.idx") or die; print $f pack("C4 N3", 0, 0, 8, 3, $n, $h, $w), chr($v) x ($n * $h * $w);
    open(my $l, ">:raw", "$d/labels.idx") or die; print $l pack("C4 N", 0, 0, 8, 1, $n), map { chr($_ % 2) } 0 .. $n - 1;' "$@"
}

# gray_sheet FILE: a 12x6 gray PNG of 3-px cells, cell i (row-major, 4 per row) filled with 20*i.
gray_sheet() {
  perl -MCompress::Zlib -e '
    sub chunk { my ($t, $d) = @_; pack("N", length $d) . $t . $d . pack("N", crc32($t . $d)) }
    my $raw = join "", map { my $y = $_; "\0" . join "", map { chr((int($y / 3) * 4 + int($_ / 3)) * 20) } 0 .. 11 } 0 .. 5;
    open(my $f, ">:raw", $ARGV[0]) or die;
    print $f "\x89PNG\r\n\x1a\n", chunk("IHDR", pack("NNC5", 12, 6, 8, 0, 0, 0, 0)), chunk("IDAT", compress($raw)), chunk("IEND", "");' "$1"
}

# ------------------------------------------------------------------------- import-idx

@test "import-idx IMAGES LABELS: pixels and labels are the IDX bytes; --images/--labels in any order" {
  [ "$(image_rows "$D")" = "$(idx_rows "$I" 64)" ]
  [ "$(label_list "$D")" = "$(tail -c +9 "$L" | od -An -v -tu1 -w1 | tr -d ' ')" ]
  run --separate-stderr "$BIN/ufo-data" import-idx --labels "$L" --images "$I" --zstd 0 -o "$TMP/named.h5"
  assert_success
  [ "$(image_rows "$TMP/named.h5")" = "$(image_rows "$D")" ]
  [ "$(label_list "$TMP/named.h5")" = "$(label_list "$D")" ]
}

@test "import-idx --classes: the names are stored and shown; default 0..max label" {
  [ "$(info_value "$D" class.5.name)" = 5 ]
  run --separate-stderr "$BIN/ufo-data" import-idx "$I" "$L" --classes cat,dog,emu,fox,gnu,hen -o "$TMP/c.h5"
  assert_success
  run --separate-stderr "$BIN/ufo-data" info "$TMP/c.h5"
  assert_line $'class.0.name\tcat'
  assert_line $'class.5.name\then'
  assert_line $'class.5.count\t10'
  h5dump -a /class_names "$TMP/c.h5" | grep -q '"gnu"'
}

@test "import-idx --resize HxW: the stated shape, counts kept, a constant image stays constant" {
  constant_idx "$TMP/k" 6 8 8 77
  run --separate-stderr "$BIN/ufo-data" import-idx "$TMP/k/images.idx" "$TMP/k/labels.idx" --resize 12x10 --zstd 0 -o "$TMP/r.h5"
  assert_success
  [ "$(info_value "$TMP/r.h5" shape)" = 12x10x1 ]
  [ "$(info_value "$TMP/r.h5" count)" = 6 ]
  run h5ls "$TMP/r.h5/images"
  assert_output --regexp 'Dataset \{6, 12, 10, 1\}'
  # 6 images x 120 pixels, every one 77 (0x4d).
  [ "$(image_rows "$TMP/r.h5" | fold -w2 | sort -u)" = 4d ]
  [ "$(image_rows "$TMP/r.h5" | fold -w2 | wc -l)" -eq 720 ]
  run --separate-stderr "$BIN/ufo-data" import-idx "$I" "$L" --resize 3x5 -o "$TMP/s.h5"
  assert_success
  [ "$(info_value "$TMP/s.h5" shape)" = 3x5x1 ]
  [ "$(info_value "$TMP/s.h5" class.2.count)" = 10 ]
}

@test "--zstd N: filter 32015 at level N on images and labels; 0: no filter; same data" {
  "$BIN/ufo-data" import-idx "$I" "$L" -o "$TMP/z3.h5" 2>/dev/null
  "$BIN/ufo-data" import-idx "$I" "$L" --zstd 19 -o "$TMP/z19.h5" 2>/dev/null
  [[ "$(filters "$TMP/z3.h5" /images)" == *"FILTER_ID 32015"*"PARAMS { 3 }"* ]]
  [[ "$(filters "$TMP/z19.h5" /images)" == *"FILTER_ID 32015"*"PARAMS { 19 }"* ]]
  [[ "$(filters "$TMP/z19.h5" /labels)" == *"FILTER_ID 32015"*"PARAMS { 19 }"* ]]
  [[ "$(filters "$D" /images)" == *NONE* ]]
  [[ "$(filters "$D" /images)" != *32015* ]]
  [[ "$(filters "$D" /labels)" != *32015* ]]
  # The compressed file holds the same images: re-split uncompressed, compared as sets of rows.
  "$BIN/ufo-data" split "$TMP/z19.h5" --count 30,30 --zstd 0 -o "$TMP/p1.h5" -o "$TMP/p2.h5" 2>/dev/null
  [ "$( { image_rows "$TMP/p1.h5"; image_rows "$TMP/p2.h5"; } | sort)" = "$(image_rows "$D" | sort)" ]
}

# ------------------------------------------------------------------------- import-grid

@test "import-grid SHEET --cell --per-class: cell i is image i, label i / per-class" {
  gray_sheet "$TMP/sheet.png"
  run --separate-stderr "$BIN/ufo-data" import-grid "$TMP/sheet.png" --cell 3 --per-class 2 --zstd 0 -o "$TMP/g.h5"
  assert_success
  [ "$(info_value "$TMP/g.h5" shape)" = 3x3x1 ]
  want=$(for i in 0 1 2 3 4 5 6 7; do printf '%02x' $(yes $((20 * i)) | head -n 9); echo; done)
  [ "$(image_rows "$TMP/g.h5")" = "$want" ]
  [ "$(label_list "$TMP/g.h5" | tr '\n' ' ')" = "0 0 1 1 2 2 3 3 " ]
  # --per-class 4: two classes; --sheet names the file.
  run --separate-stderr "$BIN/ufo-data" import-grid --sheet "$TMP/sheet.png" --cell 3 --per-class 4 --zstd 0 -o "$TMP/g4.h5"
  assert_success
  [ "$(label_list "$TMP/g4.h5" | tr '\n' ' ')" = "0 0 0 0 1 1 1 1 " ]
  # --cell 6: 2 cells of 6x6.
  run --separate-stderr "$BIN/ufo-data" import-grid "$TMP/sheet.png" --cell 6 --per-class 1 -o "$TMP/g6.h5"
  assert_success
  [ "$(info_value "$TMP/g6.h5" count)" = 2 ]
  [ "$(info_value "$TMP/g6.h5" shape)" = 6x6x1 ]
}

@test "import-grid --classes, --channels 3, --resize, --zstd" {
  gray_sheet "$TMP/sheet.png"
  run --separate-stderr "$BIN/ufo-data" import-grid "$TMP/sheet.png" --cell 3 --per-class 2 --classes w,x,y,z -o "$TMP/g.h5"
  assert_success
  [ "$(info_value "$TMP/g.h5" class.0.name)" = w ]
  [ "$(info_value "$TMP/g.h5" class.3.name)" = z ]
  # --channels 3 on a gray sheet: three equal channels.
  run --separate-stderr "$BIN/ufo-data" import-grid "$TMP/sheet.png" --cell 3 --per-class 2 --channels 3 --zstd 0 -o "$TMP/rgb.h5"
  assert_success
  [ "$(info_value "$TMP/rgb.h5" shape)" = 3x3x3 ]
  [ "$(image_rows "$TMP/rgb.h5" | sed -n 3p)" = "$(printf '28%.0s' $(seq 27))" ]   # cell 2 = 40 = 0x28
  # --resize: the stated shape; constant cells stay constant.
  run --separate-stderr "$BIN/ufo-data" import-grid "$TMP/sheet.png" --cell 3 --per-class 2 --resize 5x4 --zstd 0 -o "$TMP/r.h5"
  assert_success
  [ "$(info_value "$TMP/r.h5" shape)" = 5x4x1 ]
  [ "$(image_rows "$TMP/r.h5" | sed -n 8p)" = "$(printf '8c%.0s' $(seq 20))" ]     # cell 7 = 140
  [[ "$(filters "$TMP/g.h5" /images)" == *32015* ]]
  [[ "$(filters "$TMP/rgb.h5" /images)" != *32015* ]]
}

# ------------------------------------------------------------------------- import-folder

@test "import-folder DIR / --dir: classes are the sorted sub-directories, files sorted by name" {
  mkdir -p "$TMP/f/zebra" "$TMP/f/ant" "$TMP/f/.hidden"
  make_images "$TMP/f/zebra" png z1.png:8x8 z0.png:8x8
  make_images "$TMP/f/ant" png a0.png:8x8 a1.png:8x8 a2.png:8x8
  make_images "$TMP/f/.hidden" png h.png:8x8
  run --separate-stderr "$BIN/ufo-data" import-folder --dir "$TMP/f" --zstd 0 -o "$TMP/f.h5"
  assert_success
  [ "$(info_value "$TMP/f.h5" num_classes)" = 2 ]
  [ "$(info_value "$TMP/f.h5" class.0.name)" = ant ]
  [ "$(info_value "$TMP/f.h5" class.0.count)" = 3 ]
  [ "$(info_value "$TMP/f.h5" class.1.name)" = zebra ]
  [ "$(label_list "$TMP/f.h5" | tr '\n' ' ')" = "0 0 0 1 1 " ]
  # The same folder through the positional argument gives the same pixels.
  "$BIN/ufo-data" import-folder "$TMP/f" --zstd 0 -o "$TMP/f2.h5" 2>/dev/null
  [ "$(image_rows "$TMP/f2.h5")" = "$(image_rows "$TMP/f.h5")" ]
  # zebra/z0.png was written second (pattern of image 1) but sorts first: row 4 lights p%10 == 1.
  [ "$(image_rows "$TMP/f.h5" | sed -n 4p | cut -c3-4)" = d2 ]
}

@test "import-folder --channels: 3 on gray PNGs repeats the gray value, 1 on RGB PNGs keeps it" {
  mkdir -p "$TMP/g/a" "$TMP/c/a"
  make_images "$TMP/g/a" png 0.png:8x8
  make_images "$TMP/c/a" png 0.png:8x8:rgb
  "$BIN/ufo-data" import-folder "$TMP/g" --zstd 0 -o "$TMP/gray.h5" 2>/dev/null
  run --separate-stderr "$BIN/ufo-data" import-folder "$TMP/g" --channels 3 --zstd 0 -o "$TMP/g3.h5"
  assert_success
  [ "$(info_value "$TMP/g3.h5" shape)" = 8x8x3 ]
  [ "$(image_rows "$TMP/g3.h5")" = "$(image_rows "$TMP/gray.h5" | sed -E 's/(..)/\1\1\1/g')" ]
  "$BIN/ufo-data" import-folder "$TMP/c" --zstd 0 -o "$TMP/rgb.h5" 2>/dev/null
  [ "$(info_value "$TMP/rgb.h5" channels)" = 3 ]
  run --separate-stderr "$BIN/ufo-data" import-folder "$TMP/c" --channels 1 --zstd 0 -o "$TMP/c1.h5"
  assert_success
  [ "$(info_value "$TMP/c1.h5" shape)" = 8x8x1 ]
  [ "$(image_rows "$TMP/c1.h5")" = "$(image_rows "$TMP/gray.h5")" ]
}

@test "import-folder --resize HxW: mixed sizes become one shape; --zstd" {
  mkdir -p "$TMP/m/a" "$TMP/m/b"
  make_images "$TMP/m/a" png 0.png:8x8 1.png:12x6
  make_images "$TMP/m/b" png 2.png:5x7
  run --separate-stderr "$BIN/ufo-data" import-folder "$TMP/m" --resize 6x4 -o "$TMP/m.h5"
  assert_success
  [ "$(info_value "$TMP/m.h5" shape)" = 6x4x1 ]
  [ "$(info_value "$TMP/m.h5" count)" = 3 ]
  [[ "$(filters "$TMP/m.h5" /images)" == *"PARAMS { 3 }"* ]]
  run --separate-stderr "$BIN/ufo-data" import-folder "$TMP/m" --resize 6x4 --zstd 7 -o "$TMP/m7.h5"
  assert_success
  [[ "$(filters "$TMP/m7.h5" /images)" == *"PARAMS { 7 }"* ]]
}

@test "import-folder reads JPEG (.jpg, .jpeg, .JPG) exactly as djpeg decodes it, next to PNG" {
  mkdir -p "$TMP/j/a" "$TMP/j/b"
  make_images "$TMP/j/a" jpg 0.jpg:8x8 1.jpeg:8x8
  make_images "$TMP/j/b" jpg 2.JPG:8x8
  make_images "$TMP/j/b" png 3.png:8x8
  run --separate-stderr "$BIN/ufo-data" import-folder "$TMP/j" --zstd 0 -o "$TMP/j.h5"
  assert_success
  [ "$(info_value "$TMP/j.h5" count)" = 4 ]
  [ "$(info_value "$TMP/j.h5" class.1.count)" = 2 ]
  want=$(for f in "$TMP/j/a/0.jpg" "$TMP/j/a/1.jpeg" "$TMP/j/b/2.JPG"; do djpeg -pnm "$f" | tail -c 64 | od -An -v -tx1 -w64 | tr -d ' '; done)
  [ "$(image_rows "$TMP/j.h5" | head -3)" = "$want" ]
  # An RGB JPEG, and --channels 3 on a gray JPEG.
  mkdir -p "$TMP/k/a"
  make_images "$TMP/k/a" jpg 0.jpg:6x8:rgb
  run --separate-stderr "$BIN/ufo-data" import-folder "$TMP/k" --zstd 0 -o "$TMP/k.h5"
  assert_success
  [ "$(info_value "$TMP/k.h5" shape)" = 6x8x3 ]
  [ "$(image_rows "$TMP/k.h5")" = "$(djpeg -pnm "$TMP/k/a/0.jpg" | tail -c 144 | od -An -v -tx1 -w144 | tr -d ' ')" ]
}

@test "import-folder errors: missing dir, a file, no class dirs, an empty class, mixed sizes (exit 1)" {
  run --separate-stderr "$BIN/ufo-data" import-folder "$TMP/nope" -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/nope: no such directory"
  make_images "$TMP" png file.png:8x8
  run --separate-stderr "$BIN/ufo-data" import-folder "$TMP/file.png" -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/file.png: not a directory"
  mkdir -p "$TMP/flat"
  make_images "$TMP/flat" png 0.png:8x8
  run --separate-stderr "$BIN/ufo-data" import-folder "$TMP/flat" -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/flat: no class sub-directories"
  mkdir -p "$TMP/e/a" "$TMP/e/b"
  make_images "$TMP/e/a" png 0.png:8x8
  echo "not an image" >"$TMP/e/b/readme.txt"
  run --separate-stderr "$BIN/ufo-data" import-folder "$TMP/e" -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/e/b: no PNG or JPEG images"
  mkdir -p "$TMP/m/a" "$TMP/m/b"
  make_images "$TMP/m/a" png 0.png:8x8
  make_images "$TMP/m/b" jpg 1.jpg:8x6
  run --separate-stderr "$BIN/ufo-data" import-folder "$TMP/m" -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/m/b/1.jpg: image is 8x6, but $TMP/m/a/0.png is 8x8 (use --resize HxW)"
  [ -z "$output" ]
  assert_no_output_file "$TMP/o.h5"
}

@test "import-folder errors: a corrupt PNG, a truncated JPEG, a text file named .png (exit 1)" {
  mkdir -p "$TMP/p/a" "$TMP/p/b"
  make_images "$TMP/p/a" png 0.png:8x8
  make_images "$TMP/p/b" png 1.png:8x8
  head -c 40 "$TMP/p/b/1.png" >"$TMP/p/b/2.png"
  run --separate-stderr "$BIN/ufo-data" import-folder "$TMP/p" -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/p/b/2.png: bad PNG"
  assert_no_output_file "$TMP/o.h5"
  mkdir -p "$TMP/j/a"
  make_images "$TMP/j/a" jpg 0.jpg:8x8
  head -c $(( $(stat -c %s "$TMP/j/a/0.jpg") - 30 )) "$TMP/j/a/0.jpg" >"$TMP/j/a/1.jpg"
  run --separate-stderr "$BIN/ufo-data" import-folder "$TMP/j" -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/j/a/1.jpg" "JPEG"
  assert_no_output_file "$TMP/o.h5"
  rm "$TMP/j/a/1.jpg"
  head -c 200 "$TMP/j/a/0.jpg" >"$TMP/j/a/1.jpg"       # cut before the scan
  run --separate-stderr "$BIN/ufo-data" import-folder "$TMP/j" -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/j/a/1.jpg: bad JPEG"
  rm "$TMP/j/a/1.jpg"
  echo "hello" >"$TMP/j/a/1.png"
  run --separate-stderr "$BIN/ufo-data" import-folder "$TMP/j" -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/j/a/1.png: not a PNG or JPEG image"
  [ -z "$output" ]
  assert_no_output_file "$TMP/o.h5"
}

# ------------------------------------------------------------------------- split

@test "split --fractions: exact stratified sizes; the parts partition the input" {
  run --separate-stderr "$BIN/ufo-data" split --input "$D" --fractions 0.7,0.2,0.1 --zstd 0 -o "$TMP/a.h5" -o "$TMP/b.h5" -o "$TMP/c.h5"
  assert_success
  [ "$(class_counts "$TMP/a.h5")" = "7 7 7 7 7 7" ]
  [ "$(class_counts "$TMP/b.h5")" = "2 2 2 2 2 2" ]
  [ "$(class_counts "$TMP/c.h5")" = "1 1 1 1 1 1" ]
  # Each image keeps its label: the (image, label) pairs of the parts are those of the input.
  pairs() { paste -d' ' <(image_rows "$1") <(label_list "$1"); }
  [ "$( { pairs "$TMP/a.h5"; pairs "$TMP/b.h5"; pairs "$TMP/c.h5"; } | sort)" = "$(pairs "$D" | sort)" ]
}

@test "split --count: exact part sizes, in the order of the -o outputs" {
  run --separate-stderr "$BIN/ufo-data" split "$D" --count 13,41 --zstd 0 -o "$TMP/a.h5" -o "$TMP/b.h5"
  assert_success
  a=$(image_rows "$TMP/a.h5")
  b=$(image_rows "$TMP/b.h5")
  [ "$(wc -l <<<"$a") $(wc -l <<<"$b")" = "13 41" ]
  # 54 distinct images, all from the input.
  [ "$(sort -u <<<"$a"$'\n'"$b" | wc -l)" -eq 54 ]
  [ -z "$(comm -23 <(sort <<<"$a"$'\n'"$b") <(image_rows "$D" | sort))" ]
  run --separate-stderr "$BIN/ufo-data" split "$D" --count 5,3,2 -o "$TMP/x.h5" -o "$TMP/y.h5" -o "$TMP/z.h5"
  assert_success
  [ "$(info_value "$TMP/x.h5" count) $(info_value "$TMP/y.h5" count) $(info_value "$TMP/z.h5" count)" = "5 3 2" ]
}

@test "split --seed: another seed changes which images go where, not the counts" {
  for s in 1 2; do
    "$BIN/ufo-data" split "$D" --fractions 0.5,0.5 --seed $s --zstd 0 -o "$TMP/a$s.h5" -o "$TMP/b$s.h5" 2>/dev/null
  done
  "$BIN/ufo-data" split "$D" --fractions 0.5,0.5 --seed 1 --zstd 0 -o "$TMP/again.h5" -o "$TMP/again-b.h5" 2>/dev/null
  a1=$(image_rows "$TMP/a1.h5")
  [ "$(image_rows "$TMP/again.h5")" = "$a1" ]
  [ "$(sort <<<"$a1")" != "$(image_rows "$TMP/a2.h5" | sort)" ]
  [ "$(class_counts "$TMP/a1.h5")" = "5 5 5 5 5 5" ]
  [ "$(class_counts "$TMP/a2.h5")" = "5 5 5 5 5 5" ]
  h5dump -a /source "$TMP/a2.h5" | grep -q "seed 2"
}

@test "split --zstd: the parts' filter follows the option" {
  "$BIN/ufo-data" split "$D" --count 30,30 -o "$TMP/a.h5" -o "$TMP/b.h5" 2>/dev/null
  "$BIN/ufo-data" split "$D" --count 30,30 --zstd 12 -o "$TMP/c.h5" -o "$TMP/d.h5" 2>/dev/null
  "$BIN/ufo-data" split "$D" --count 30,30 --zstd 0 -o "$TMP/e.h5" -o "$TMP/f.h5" 2>/dev/null
  [[ "$(filters "$TMP/b.h5" /images)" == *"FILTER_ID 32015"*"PARAMS { 3 }"* ]]
  [[ "$(filters "$TMP/d.h5" /labels)" == *"FILTER_ID 32015"*"PARAMS { 12 }"* ]]
  [[ "$(filters "$TMP/f.h5" /images)" != *32015* ]]
}

# ------------------------------------------------------------------------- info

@test "info --input and --json: the JSON values are the TSV values" {
  run --separate-stderr "$BIN/ufo-data" info --input "$D" --json
  assert_success
  [ "${#lines[@]}" -eq 1 ]
  json=$output
  run --separate-stderr "$BIN/ufo-data" info "$D"
  assert_success
  perl -MJSON::PP -e '
    my $j = decode_json($ARGV[0]);
    my %kv = map { split /\t/, $_, 2 } grep { length } (split /\n/, $ARGV[1])[1 .. 100];
    for my $k (qw(file format_version count height width channels shape num_classes source)) {
      die "$k: $j->{$k} vs $kv{$k}\n" unless "$j->{$k}" eq $kv{$k};
    }
    my $sum = 0;
    for my $c (@{ $j->{classes} }) {
      die "class $c->{index}\n" unless $kv{"class.$c->{index}.name"} eq $c->{name} && $kv{"class.$c->{index}.count"} == $c->{count};
      $sum += $c->{count};
    }
    die "sum $sum\n" unless $sum == $j->{count} && $sum == 60;' "$json" "$output"
}

@test "'-': split and import-idx read stdin, import-grid and import-folder write stdout" {
  run --separate-stderr bash -c '"$1" split - --count 20,40 --zstd 0 -o "$2/a.h5" -o "$2/b.h5" <"$3"' _ "$BIN/ufo-data" "$TMP" "$D"
  assert_success
  [ "$( { image_rows "$TMP/a.h5"; image_rows "$TMP/b.h5"; } | sort)" = "$(image_rows "$D" | sort)" ]
  h5dump -a /source "$TMP/a.h5" | grep -q "<stdin>"
  "$BIN/ufo-data" import-idx - "$L" --zstd 0 -o "$TMP/i.h5" <"$I" 2>/dev/null
  [ "$(image_rows "$TMP/i.h5")" = "$(image_rows "$D")" ]
  gray_sheet "$TMP/sheet.png"
  "$BIN/ufo-data" import-grid "$TMP/sheet.png" --cell 3 --per-class 2 -o - 2>/dev/null >"$TMP/g.h5"
  [ "$(info_value "$TMP/g.h5" count)" = 8 ]
  mkdir -p "$TMP/f/a"
  make_images "$TMP/f/a" png 0.png:8x8 1.png:8x8
  "$BIN/ufo-data" import-folder "$TMP/f" -o - 2>/dev/null | "$BIN/ufo-data" info - >"$TMP/info.tsv"
  grep -q $'^count\t2$' "$TMP/info.tsv"
}

# ------------------------------------------------------------------------- bad option values

@test "bad option values: exit 2, one line, no output file" {
  run --separate-stderr "$BIN/ufo-data" import-idx "$I" "$L" --resize 12 -o "$TMP/o.h5"
  assert_exit_error 2 "--resize '12' is not HxW"
  run --separate-stderr "$BIN/ufo-data" import-idx "$I" "$L" --resize 0x4 -o "$TMP/o.h5"
  assert_exit_error 2 "--resize '0x4'"
  run --separate-stderr "$BIN/ufo-data" import-idx "$I" "$L" --zstd 23 -o "$TMP/o.h5"
  assert_exit_error 2 "--zstd must be between 0 and 22"
  run --separate-stderr "$BIN/ufo-data" import-idx "$I" "$L" --zstd -1 -o "$TMP/o.h5"
  assert_exit_error 2 "--zstd"
  run --separate-stderr "$BIN/ufo-data" import-idx "$I" "$L" --zstd fast -o "$TMP/o.h5"
  assert_exit_error 2 "--zstd"
  run --separate-stderr "$BIN/ufo-data" import-idx "$I" "$L" --classes a,a,b,c,d,e -o "$TMP/o.h5"
  assert_exit_error 2 "--classes names 'a' twice"
  run --separate-stderr "$BIN/ufo-data" import-idx "$I" "$L" --classes a,,b -o "$TMP/o.h5"
  assert_exit_error 2 "--classes has an empty name"
  run --separate-stderr "$BIN/ufo-data" import-idx "$I" "$L"
  assert_exit_error 2 "--output"
  run --separate-stderr "$BIN/ufo-data" import-idx "$I" -o "$TMP/o.h5"
  assert_exit_error 2 "--labels"
  run --separate-stderr "$BIN/ufo-data" import-folder "$TMP" --channels 2 -o "$TMP/o.h5"
  assert_exit_error 2 "--channels must be 1 or 3"
  run --separate-stderr "$BIN/ufo-data" import-grid "$TMP/s.png" --cell 0 --per-class 1 -o "$TMP/o.h5"
  assert_exit_error 2 "--cell and --per-class must be positive"
  run --separate-stderr "$BIN/ufo-data" import-grid "$TMP/s.png" --per-class 1 -o "$TMP/o.h5"
  assert_exit_error 2 "--cell"
  run --separate-stderr "$BIN/ufo-data" info
  assert_exit_error 2 "--input"
  [ -z "$output" ]
  assert_no_output_file "$TMP/o.h5"
}

@test "split usage errors: exit 2, no output file" {
  run --separate-stderr "$BIN/ufo-data" split "$D" --fractions 0.5,0.6 -o "$TMP/a.h5" -o "$TMP/b.h5"
  assert_exit_error 2 "--fractions must sum to 1, not 1.1"
  run --separate-stderr "$BIN/ufo-data" split "$D" --fractions 0.5,x -o "$TMP/a.h5" -o "$TMP/b.h5"
  assert_exit_error 2 "--fractions: 'x' is not a number in (0,1]"
  run --separate-stderr "$BIN/ufo-data" split "$D" --fractions 0.5,0.5 --count 30,30 -o "$TMP/a.h5" -o "$TMP/b.h5"
  assert_exit_error 2 "give exactly one of --fractions and --count"
  run --separate-stderr "$BIN/ufo-data" split "$D" -o "$TMP/a.h5" -o "$TMP/b.h5"
  assert_exit_error 2 "give exactly one of --fractions and --count"
  run --separate-stderr "$BIN/ufo-data" split "$D" --fractions 1 -o "$TMP/a.h5"
  assert_exit_error 2 "split makes 2 or 3 parts, not 1"
  run --separate-stderr "$BIN/ufo-data" split "$D" --count 1,1,1,1 -o "$TMP/a.h5" -o "$TMP/b.h5"
  assert_exit_error 2 "split makes 2 or 3 parts, not 4"
  run --separate-stderr "$BIN/ufo-data" split "$D" --count 30,30 -o "$TMP/a.h5" -o "$TMP/a.h5"
  assert_exit_error 2 "-o"
  run --separate-stderr "$BIN/ufo-data" split "$D" --count 30,30 --seed x -o "$TMP/a.h5" -o "$TMP/b.h5"
  assert_exit_error 2 "--seed"
  run --separate-stderr "$BIN/ufo-data" split "$D" --count 30,30 --zstd 99 -o "$TMP/a.h5" -o "$TMP/b.h5"
  assert_exit_error 2 "--zstd"
  assert_no_output_file "$TMP/a.h5" "$TMP/b.h5"
}

@test "split --count with a non-number or zero is a usage error (exit 2)" {
  run --separate-stderr "$BIN/ufo-data" split "$D" --count 30,x -o "$TMP/a.h5" -o "$TMP/b.h5"
  assert_exit_error 2 "--count" "'x'"
  run --separate-stderr "$BIN/ufo-data" split "$D" --count 30,0 -o "$TMP/a.h5" -o "$TMP/b.h5"
  assert_exit_error 2 "--count" "'0'"
  assert_no_output_file "$TMP/a.h5" "$TMP/b.h5"
}

@test "split --seed with a negative number is a usage error (exit 2)" {
  run --separate-stderr "$BIN/ufo-data" split "$D" --count 30,30 --seed -1 -o "$TMP/a.h5" -o "$TMP/b.h5"
  assert_exit_error 2 "--seed"
  assert_no_output_file "$TMP/a.h5" "$TMP/b.h5"
}

@test "split asks for more than there is: exit 1 naming the input, no output file" {
  run --separate-stderr "$BIN/ufo-data" split "$D" --count 50,11 -o "$TMP/a.h5" -o "$TMP/b.h5"
  assert_exit_error 1 "$D" "61" "60"
  assert_no_output_file "$TMP/a.h5" "$TMP/b.h5"
}

@test "import-grid / import-idx data errors: exit 1 naming the file, no output file" {
  gray_sheet "$TMP/sheet.png"
  run --separate-stderr "$BIN/ufo-data" import-grid "$TMP/sheet.png" --cell 5 --per-class 1 -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/sheet.png" "not a whole number of 5-px cells"
  run --separate-stderr "$BIN/ufo-data" import-grid "$TMP/sheet.png" --cell 3 --per-class 2 --classes a,b -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/sheet.png" "2 class names given" "4 classes"
  run --separate-stderr "$BIN/ufo-data" import-grid "$TMP/nope.png" --cell 3 --per-class 2 -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/nope.png: no such file"
  run --separate-stderr "$BIN/ufo-data" import-idx "$I" "$L" --classes a,b -o "$TMP/o.h5"
  assert_exit_error 1 "$L" "out of range [0,2)"
  run --separate-stderr "$BIN/ufo-data" import-idx "$L" "$I" -o "$TMP/o.h5"
  assert_exit_error 1 "$L" "expected 3"
  assert_no_output_file "$TMP/o.h5"
}
