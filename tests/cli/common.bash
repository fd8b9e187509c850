# common.bash — shared helpers for the ufo CLI tests (Bats). In a .bats file:   load common
#
# Variables (set for every test):
#   BIN       directory holding the ufo-* binaries: $UFO_BIN, else $PWD/build
#   TMP       this test's private scratch dir ($BATS_TEST_TMPDIR; bats deletes it)
#   FIXTURES  tests/data, for small committed fixtures
#
# Functions:
#   make_synth_idx DIR N [K=10] [H=8] [W=8]
#       Writes DIR/images.idx (idx3 uint8 [N,H,W]) and DIR/labels.idx (idx1, label i%K).
#       Class k lights the pixels p with p%K == k (value 200..211) over noise 0..47, so tiny
#       models can learn it. Pure perl, deterministic, N may be 0.
#   make_synth_dataset OUT.h5 N [K=10] [H=8] [W=8] [ufo-data import-idx options...]
#       make_synth_idx into a scratch dir, then `ufo-data import-idx ... -o OUT.h5`.
#   make_synth_supernet OUT.h5 [ufo-train options...]
#       Two synthetic 8x8 tasks, "alpha" (10 classes) and "beta" (4 classes),
#       written as OUT_DIR/alpha.h5 and OUT_DIR/beta.h5, and a tiny Task-MoE supernet trained
#       on them for a few steps (preset tiny, seed 1, 1 thread) written to OUT.h5.
#   make_supernet_fixture DIR
#       make_synth_supernet DIR/supernet.h5 plus a dense tiny checkpoint DIR/dense.h5 trained
#       on DIR/alpha.h5: the inputs of the ufo-route and ufo-extract suites.
#   make_elastic_fixture DIR
#       DIR/d.h5 (96 synthetic 8x8 images) and DIR/v.h5 (40), a tiny depth-3 task model
#       DIR/task.h5 (2 heads of 8, 32 hidden units) and an elastic model DIR/el.h5 trained from
#       it for 4 steps over the default space (depths 1..3, heads 1,2, widths 16,24,32).
#   assert_one_line_error TEXT...
#       After `run --separate-stderr CMD`: CMD failed, its stderr is exactly one line, and
#       that line contains every TEXT (fixed strings, e.g. the file name and the problem).
#   assert_no_output_file PATH...
#       None of PATH exist, and no temp file (.NAME.tmp.*) was left beside them.

bats_require_minimum_version 1.5.0
load /usr/lib/bats/bats-support/load
load /usr/lib/bats/bats-assert/load

BIN="${UFO_BIN:-$PWD/build}"
TMP="${BATS_TEST_TMPDIR:-${BATS_TMPDIR:-/tmp}}"
FIXTURES="$(cd "$(dirname "${BASH_SOURCE[0]}")/../data" 2>/dev/null && pwd)"

make_synth_idx() {
  local dir=$1 n=$2 k=${3:-10} h=${4:-8} w=${5:-8}
  mkdir -p "$dir"
  perl -e '
    use strict; use integer;
    my ($dir, $n, $k, $h, $w) = @ARGV;
    open(my $fi, ">:raw", "$dir/images.idx") or die "$dir/images.idx: $!\n";
    open(my $fl, ">:raw", "$dir/labels.idx") or die "$dir/labels.idx: $!\n";
    print $fi pack("C4 N3", 0, 0, 8, 3, $n, $h, $w);
    print $fl pack("C4 N", 0, 0, 8, 1, $n);
    my $s = 12345;
    for my $i (0 .. $n - 1) {
      my $l = $i % $k;
      my $img = "";
      for my $p (0 .. $h * $w - 1) {
        $s = ($s * 1103515245 + 12345) % 2147483648;
        my $noise = ($s >> 16) % 48;
        $img .= chr($p % $k == $l ? 200 + ($noise >> 2) : $noise);
      }
      print $fi $img;
      print $fl chr($l);
    }
    close($fi) or die; close($fl) or die;
  ' "$dir" "$n" "$k" "$h" "$w"
}

make_synth_dataset() {
  local out=$1 n=$2 k=${3:-10} h=${4:-8} w=${5:-8}
  shift $(( $# < 5 ? $# : 5 ))
  local dir
  dir=$(mktemp -d "$TMP/synth.XXXXXX")
  make_synth_idx "$dir" "$n" "$k" "$h" "$w"
  "$BIN/ufo-data" import-idx "$dir/images.idx" "$dir/labels.idx" -o "$out" "$@" 2>/dev/null
}

make_synth_supernet() {
  local out=$1 dir
  shift
  dir=$(dirname "$out")
  make_synth_dataset "$dir/alpha.h5" 200 10 &&
  make_synth_dataset "$dir/beta.h5" 120 4 &&
  "$BIN/ufo-train" --task alpha="$dir/alpha.h5" --task beta="$dir/beta.h5" --preset tiny -b 16 --steps 12 \
      --log-every 12 --lr 0.01 --router-lr 0.5 --seed 1 -t 1 -o "$out" "$@" >/dev/null 2>&1
}

make_elastic_fixture() {
  make_synth_dataset "$1/d.h5" 96 10 &&
  make_synth_dataset "$1/v.h5" 40 10 &&
  "$BIN/ufo-train" "$1/d.h5" --preset tiny --depth 3 --steps 6 -b 16 -t 1 --seed 1 --lr 0.01 -o "$1/task.h5" >/dev/null 2>&1 &&
  "$BIN/ufo-train" "$1/d.h5" --init "$1/task.h5" --elastic --steps 4 -b 16 -t 1 --seed 1 --lr 0.01 \
      -o "$1/el.h5" >/dev/null 2>&1
}

make_supernet_fixture() {
  make_synth_supernet "$1/supernet.h5" &&
  "$BIN/ufo-train" "$1/alpha.h5" --preset tiny --steps 2 -t 1 -o "$1/dense.h5" >/dev/null 2>&1
}

assert_one_line_error() {
  assert_failure
  if [ "${#stderr_lines[@]}" -ne 1 ]; then
    batslib_print_kv_single_or_multi 8 'stderr' "$stderr" | batslib_decorate 'expected exactly one line on stderr' | fail
    return 1
  fi
  local t
  for t in "$@"; do
    if [[ "$stderr" != *"$t"* ]]; then
      batslib_print_kv_single_or_multi 8 'stderr' "$stderr" 'missing' "$t" | batslib_decorate 'error line lacks expected text' | fail
      return 1
    fi
  done
}

assert_no_output_file() {
  local p
  for p in "$@"; do
    if [ -e "$p" ]; then
      echo "output file was left behind: $p" | fail
      return 1
    fi
    if compgen -G "$(dirname "$p")/.$(basename "$p").tmp.*" >/dev/null; then
      echo "temp file was left behind next to: $p" | fail
      return 1
    fi
  done
}

# ---------------------------------------------------------------- per-option suites
#   assert_exit_error CODE TEXT...
#       assert_one_line_error TEXT..., and the exit status is exactly CODE (1: bad input file
#       or data, 2: usage error), so a crash after the message (134, 139) does not pass.
#   h5_param_count FILE.h5
#       Parameters of a checkpoint counted by h5ls alone: the element counts of every dataset
#       except /arch/* and the stored routes (/tasks/*/route).
#   image_rows FILE.h5
#       The /images of an uncompressed (--zstd 0) dataset, one image per line in hex, read by
#       h5dump (not by ufo).
#   label_list FILE.h5
#       The /labels of an uncompressed dataset, one per line, read by h5dump.
#   make_images DIR png|jpg NAME:HxW[:rgb]...
#       8-bit gray (or RGB with three equal channels) images; image i lights the pixels p with
#       p % 10 == i % 10 (210) over a ramp (p*7 % 40), like make_synth_idx. PNGs are written by
#       python3's standard library, JPEGs by cjpeg (libjpeg-turbo-progs) from PGM/PPM.

assert_exit_error() {
  local code=$1
  shift
  if [ "$status" -ne "$code" ]; then
    batslib_print_kv_single_or_multi 8 'status' "$status" 'stderr' "$stderr" |
      batslib_decorate "expected exit status $code" | fail
    return 1
  fi
  assert_one_line_error "$@"
}

h5_param_count() {
  h5ls -r "$1" | awk '$2 == "Dataset" && $1 !~ /^\/arch\// && $1 !~ /\/route$/ {
      gsub(/[{},]/, " "); p = 1; for (i = 3; i <= NF; i++) p *= $i; s += p } END { print s + 0 }'
}

image_rows() {
  local raw
  raw=$(mktemp "$TMP/raw.XXXXXX")
  local n
  n=$(h5dump -H -d /images "$1" | awk -F'[(),]' '/DATASPACE/ { print $3 * $4 * $5; exit }')
  h5dump -d /images -b LE -o "$raw" "$1" >/dev/null && od -An -v -tx1 -w"$n" "$raw" | tr -d ' '
  rm -f "$raw"
}

label_list() {
  local raw
  raw=$(mktemp "$TMP/raw.XXXXXX")
  h5dump -d /labels -b LE -o "$raw" "$1" >/dev/null && od -An -v -td4 -w4 "$raw" | tr -d ' '
  rm -f "$raw"
}

make_images() {
  perl -MCompress::Zlib -e '
    use strict;
    my ($dir, $kind, @specs) = @ARGV;
    sub chunk { my ($t, $d) = @_; pack("N", length $d) . $t . $d . pack("N", crc32($t . $d)) }
    for my $i (0 .. $#specs) {
      my ($name, $hw, $rgb) = split /:/, $specs[$i];
      my ($h, $w) = split /x/, $hw;
      my $ch = $rgb ? 3 : 1;
      my @px = map { $_ % 10 == $i % 10 ? 210 : ($_ * 7) % 40 } 0 .. $h * $w - 1;
      my $path = "$dir/$name";
      if ($kind eq "png") {
        my $raw = join "", map { my $y = $_; "\0" . join "", map { chr($px[$y * $w + $_]) x $ch } 0 .. $w - 1 } 0 .. $h - 1;
        open(my $f, ">:raw", $path) or die "$path: $!\n";
        print $f "\x89PNG\r\n\x1a\n", chunk("IHDR", pack("NNC5", $w, $h, 8, $rgb ? 2 : 0, 0, 0, 0)),
                 chunk("IDAT", compress($raw)), chunk("IEND", "");
        close($f) or die;
      } else {
        open(my $c, "|-", "cjpeg", "-quality", "95", "-outfile", $path) or die "cjpeg: $!\n";
        binmode $c;
        print $c sprintf("P%d\n%d %d\n255\n", $rgb ? 6 : 5, $w, $h), join "", map { chr($_) x $ch } @px;
        close($c) or die "cjpeg failed for $path\n";
      }
    }' "$@"
}

# h5same ARGS... / h5differ ARGS...: `h5diff -q ARGS` exits exactly 0 (same) / 1 (different).
# (`! h5diff` would also pass when h5diff itself fails, with 2.)
h5same() { _h5diff_is 0 "$@"; }
h5differ() { _h5diff_is 1 "$@"; }
_h5diff_is() {
  local want=$1 st=0
  shift
  h5diff -q "$@" >/dev/null 2>&1 || st=$?
  [ "$st" -eq "$want" ] || { echo "h5diff -q $* exited $st, expected $want" | fail; return 1; }
}

# tensor_same F1 F2 OBJ1 OBJ2 / tensor_differs ...: the values of two datasets, compared exactly
# (h5dump %.9g round-trips float32), attributes ignored (a subnet's tensors carry `source`).
h5data() {
  local out
  out=$(h5dump -d "$2" -m %.9g -y -w 0 -A 0 "$1" 2>/dev/null) || { echo "h5dump -d $2 $1 failed" >&2; return 1; }
  sed -n '/DATA {/,/}/p' <<<"$out" | tr -d ' \n'
}
tensor_same() {
  local a b
  a=$(h5data "$1" "$3") && b=$(h5data "$2" "$4") || return 1
  [ -n "$a" ] && [ "$a" = "$b" ] || { echo "$3 of $1 differs from $4 of $2" | fail; return 1; }
}
tensor_differs() {
  local a b
  a=$(h5data "$1" "$3") && b=$(h5data "$2" "$4") || return 1
  [ -n "$a" ] && [ "$a" != "$b" ] || { echo "$3 of $1 equals $4 of $2" | fail; return 1; }
}

# ---------------------------------------------------------------- multi-process (MPI) suites
#   weights_max_diff A.h5 B.h5
#       The largest |a - b| over every float tensor of two checkpoints of one architecture
#       (every dataset outside /arch and /train_state), read by h5dump.
#   mpi_run N CMD...
#       mpirun with N processes as root on this small machine (--oversubscribe), ranks' output
#       to the caller's stdout/stderr. With sanitized binaries (UFO_SANITIZE=1) ASan and UBSan
#       stay on but LeakSanitizer is off: Open MPI unloads its components at MPI_Finalize, so
#       their process-lifetime allocations show as "<unknown module>" and no suppression can
#       name them. Our own code runs the same paths without mpirun in the other suites, with
#       leak checks.
weights_max_diff() {
  local t
  for t in $(h5ls -r "$1" | awk '$2 == "Dataset" && $1 !~ /^\/arch\// && $1 !~ /^\/train_state/ {print $1}'); do
    paste <(h5data "$1" "$t" | sed 's/^DATA{//; s/}$//' | tr ',' '\n') \
          <(h5data "$2" "$t" | sed 's/^DATA{//; s/}$//' | tr ',' '\n')
  done | awk 'BEGIN { m = 0 } { d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d } END { printf "%.3g\n", m }'
}

mpi_run() {
  local n=$1
  shift
  local asan=${ASAN_OPTIONS:-}
  [ "${UFO_SANITIZE:-0}" = 1 ] && asan="${asan:+$asan:}detect_leaks=0"
  ASAN_OPTIONS=$asan OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
    mpirun -np "$n" --oversubscribe "$@"
}
