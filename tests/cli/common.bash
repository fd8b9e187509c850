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
