#!/usr/bin/env bats
# ufo-bench: every option in --help shows up in the rows or changes them as it says. Parameter
# and FLOP counts are checked against formulas computed here (and, for checkpoints, against
# h5ls); the repetition counts against the wall-clock time of the run; a real checkpoint
# (ufo-train --preset tiny --steps 2) and a supernet with --task are benchmarked. Errors have
# exact exit codes.

load common

export OMP_WAIT_POLICY=passive

# A tiny supernet (alpha: 10 classes, beta: 4) and a dense tiny model trained 2 steps.
setup_file() {
  export TMP="$BATS_FILE_TMPDIR"
  make_supernet_fixture "$TMP"
}

setup() {
  S="$BATS_FILE_TMPDIR/supernet.h5"
  M="$BATS_FILE_TMPDIR/dense.h5"
}

QUICK=(-t 1 --reps 1 --warmup 0 -o csv)

# arch_expect H W C PATCH DIM DEPTH HEADS HIDDEN CLASSES QK_NORM PARALLEL NO_QKV_BIAS
#   "PARAMS MFLOP" of a ViT, from the architecture alone (MFLOP as ufo-bench prints it, %.4g).
arch_expect() {
  awk -v H="$1" -v W="$2" -v C="$3" -v P="$4" -v D="$5" -v L="$6" -v NH="$7" -v F="$8" -v K="$9" \
      -v qk="${10}" -v par="${11}" -v nob="${12}" 'BEGIN {
    np = (H / P) * (W / P); T = np + 1; pd = P * P * C
    p = pd * D + D + D + T * D
    blk = 2 * D + 3 * D * D + (nob ? 0 : 3 * D) + (qk ? 4 * D / NH : 0) + D * D + D + (par ? 0 : 2 * D) + F * D + F + D * F + D
    p += L * blk + 2 * D + K * (D + 1)
    f = 2 * np * pd * D + L * (2 * T * D * 3 * D + 4 * T * T * D + 2 * T * D * D + 4 * T * D * F) + 2 * D * K
    printf "%d %.4g\n", p, f * 1e-6 }'
}

# measured ARGS...: "PARAMS MFLOP" as ufo-bench reports them (params column, stderr header).
measured() {
  local out err
  out=$("$BIN/ufo-bench" "$@" -b 1 "${QUICK[@]}" 2>"$TMP/err") || return 1
  err=$(cat "$TMP/err")
  printf '%s %s\n' "$(tail -n 1 <<<"$out" | cut -d, -f12)" "$(sed -n 's/.*; \([0-9.e+-]*\) MFLOP\/img forward.*/\1/p' <<<"$err")"
}

# field CSV_ROW N: the Nth comma-separated field.
field() { cut -d, -f"$2" <<<"$1"; }

@test "-m CHECKPOINT: a model trained by ufo-train; params as counted by h5ls, FLOPs by formula" {
  run --separate-stderr "$BIN/ufo-bench" -m "$M" -b 2 "${QUICK[@]}"
  assert_success
  [ "${#lines[@]}" -eq 2 ]
  [ "$(field "${lines[1]}" 1-5)" = "$M,infer,2,1,1" ]
  [ "$(field "${lines[1]}" 12)" = "$(h5_param_count "$M")" ]
  [ "$(measured -m "$M")" = "$(arch_expect 8 8 1 4 16 2 2 32 10 0 0 0)" ]
  [[ "$stderr" == *"$M: ViT 8x8x1 patch 4 dim 16 depth 2 heads 2 mlp 32; task main;"* ]]
}

@test "--task on a supernet: the task's active parameters, those of its extracted sub-network" {
  for t in alpha beta; do
    "$BIN/ufo-extract" "$S" --task $t -o "$TMP/$t.h5" >/dev/null 2>&1
    run --separate-stderr "$BIN/ufo-bench" -m "$S" --task $t -b 1 "${QUICK[@]}"
    assert_success
    [ "$(field "${lines[1]}" 1-2)" = "$S,infer" ]
    [ "$(field "${lines[1]}" 12)" = "$(h5_param_count "$TMP/$t.h5")" ]
    [[ "$stderr" == *"; task $t; "* ]]
  done
  # The two tasks differ by their heads: 10 vs 4 classes of 16+1 weights.
  [ $(( $(h5_param_count "$TMP/alpha.h5") - $(h5_param_count "$TMP/beta.h5") )) -eq 102 ]
  run --separate-stderr "$BIN/ufo-bench" -m "$S" -b 1 "${QUICK[@]}"
  assert_exit_error 1 "$S" "alpha, beta" "--task"
  [ -z "$output" ]
  run --separate-stderr "$BIN/ufo-bench" -m "$S" --task gamma -b 1 "${QUICK[@]}"
  assert_exit_error 1 "$S: no task gamma (tasks: alpha, beta)"
}

@test "every architecture flag changes the parameter and FLOP counts as the formula says" {
  # flags | H W C P dim depth heads hidden classes qk par nob
  while IFS='|' read -r flags want; do
    # shellcheck disable=SC2086
    got=$(measured $flags)
    # shellcheck disable=SC2086
    exp=$(arch_expect $want)
    [ "$got" = "$exp" ] || { echo "$flags: got '$got', expected '$exp'"; return 1; }
  done <<'EOF'
--preset tiny|8 8 1 4 16 2 2 32 10 0 0 0
--preset small|28 28 1 4 96 6 3 192 10 0 0 0
--preset ref|28 28 1 4 192 6 3 768 10 0 0 0
--preset tiny --img 16x8x3|16 8 3 4 16 2 2 32 10 0 0 0
--preset tiny --patch 2|8 8 1 2 16 2 2 32 10 0 0 0
--preset tiny --dim 24|8 8 1 4 24 2 2 96 10 0 0 0
--preset tiny --depth 3|8 8 1 4 16 3 2 32 10 0 0 0
--preset tiny --heads 4 --qk-norm|8 8 1 4 16 2 4 32 10 1 0 0
--preset tiny --mlp-ratio 3|8 8 1 4 16 2 2 48 10 0 0 0
--preset tiny --mlp-ratio 3 --mlp-hidden 20|8 8 1 4 16 2 2 20 10 0 0 0
--preset tiny --classes 7|8 8 1 4 16 2 2 32 7 0 0 0
--preset tiny --qk-norm|8 8 1 4 16 2 2 32 10 1 0 0
--preset tiny --parallel-block|8 8 1 4 16 2 2 32 10 0 1 0
--preset tiny --no-qkv-bias|8 8 1 4 16 2 2 32 10 0 0 1
EOF
  # The reference model is the README's 2,684,554 parameters and 277.2 MFLOP.
  [ "$(arch_expect 28 28 1 4 192 6 3 768 10 0 0 0)" = "2684554 277.2" ]
  # --heads alone moves neither count; the header names it.
  run --separate-stderr "$BIN/ufo-bench" --preset tiny --heads 4 -b 1 "${QUICK[@]}"
  [[ "$stderr" == *"dim 16 depth 2 heads 4 mlp 32;"* ]]
  run --separate-stderr "$BIN/ufo-bench" --preset tiny --qk-norm --parallel-block --no-qkv-bias -b 1 "${QUICK[@]}"
  [[ "$stderr" == *"mlp 32 qk-norm parallel-block no-qkv-bias;"* ]]
}

@test "-b: one row per batch size in the order given; img/s is batch / median time" {
  run --separate-stderr "$BIN/ufo-bench" --preset tiny -b 96,32,64 -t 1 --reps 3 --warmup 1 -o csv
  assert_success
  [ "${#lines[@]}" -eq 4 ]
  [ "$(cut -d, -f3 <<<"$output" | tail -n +2 | tr '\n' ' ')" = "96 32 64 " ]
  tail -n +2 <<<"$output" | awk -F, '{ want = $3 * 1000 / $6; if ($10 < 0.98 * want || $10 > 1.02 * want) { print "bad img/s: " $0; exit 1 } }'
}

@test "-t: rows for every thread count (outer) and batch size (inner)" {
  run --separate-stderr "$BIN/ufo-bench" --preset tiny -t 2,1 -b 1,3 --reps 1 --warmup 0 -o csv
  assert_success
  [ "$(tail -n +2 <<<"$output" | cut -d, -f3,4 | tr '\n' ' ')" = "1,2 3,2 1,1 3,1 " ]
  run --separate-stderr "$BIN/ufo-bench" --preset tiny --threads 1 --batch 2 --reps 1 --warmup 0 -o csv
  [ "$(field "${lines[1]}" 3-4)" = "2,1" ]
}

@test "--reps: the column, the statistics, and the wall time of the timed repetitions" {
  run --separate-stderr "$BIN/ufo-bench" --preset tiny -b 1 "${QUICK[@]}"
  assert_success
  # One repetition: no spread, min = median = mean.
  [ "$(field "${lines[1]}" 5)" = 1 ]
  [ "$(field "${lines[1]}" 8)" = 0.000 ]
  [ "$(field "${lines[1]}" 6)" = "$(field "${lines[1]}" 7)" ] && [ "$(field "${lines[1]}" 6)" = "$(field "${lines[1]}" 9)" ]
  # 1000 repetitions take at least 1000 x min_ms of wall time.
  t0=$(date +%s%N)
  run --separate-stderr "$BIN/ufo-bench" --preset tiny -b 256 -t 1 --reps 1000 --warmup 0 -o csv
  t1=$(date +%s%N)
  assert_success
  [ "$(field "${lines[1]}" 5)" = 1000 ]
  awk -v wall=$(( (t1 - t0) / 1000 )) -v row="${lines[1]}" 'BEGIN { split(row, f, ","); need = 0.95 * 1000 * f[9] * 1000
    if (wall < need) { print "wall " wall " us < " need " us"; exit 1 }
    if (!(f[9] <= f[6] && f[6] > 0)) { print "min > median: " row; exit 1 } }'
}

@test "--warmup: untimed repetitions that still take their time" {
  t0=$(date +%s%N)
  run --separate-stderr "$BIN/ufo-bench" --preset tiny -b 256 -t 1 --reps 20 --warmup 1000 -o csv
  t1=$(date +%s%N)
  assert_success
  [[ "$stderr" == *"1000 warm-up + 20 reps"* ]]
  # A warm-up repetition is the same work as a timed one, so it takes about min_ms or more.
  awk -v wall=$(( (t1 - t0) / 1000 )) -v row="${lines[1]}" 'BEGIN { split(row, f, ","); need = 0.5 * 1000 * f[9] * 1000
    if (wall < need) { print "wall " wall " us < " need " us"; exit 1 } }'
  run --separate-stderr "$BIN/ufo-bench" --preset tiny -b 1 "${QUICK[@]}"
  [[ "$stderr" == *"0 warm-up + 1 reps"* ]]
}

@test "--train: training-step rows, slower than inference, 3x its FLOPs per image" {
  run --separate-stderr "$BIN/ufo-bench" --preset tiny -b 64 -t 1 --reps 10 --warmup 1 -o jsonl
  infer=$output
  run --separate-stderr "$BIN/ufo-bench" --preset tiny --train -b 64 -t 1 --reps 10 --warmup 1 -o jsonl
  assert_success
  perl -MJSON::PP -e '
    my ($i, $t) = map { decode_json($_) } @ARGV;
    die "mode $t->{mode}\n" unless $t->{mode} eq "train" && $i->{mode} eq "infer";
    # A sanitized build says nothing about speed (ASan maps fresh pages for every large
    # allocation of the uninstrumented libraries), so only the FLOP count is checked there.
    die "train not slower: $t->{min_ms} vs $i->{min_ms}\n" unless $ENV{UFO_SANITIZE} || $t->{min_ms} > $i->{min_ms};
    my $r = ($t->{gflop_per_s} / $t->{img_per_s}) / ($i->{gflop_per_s} / $i->{img_per_s});
    die "flop ratio $r\n" unless abs($r - 3) < 0.15;' "$infer" "$output"
  # On a checkpoint too.
  run --separate-stderr "$BIN/ufo-bench" -m "$M" --train -b 4 "${QUICK[@]}"
  assert_success
  [ "$(field "${lines[1]}" 1-3)" = "$M,train,4" ]
}

@test "--gemm: the matrix products alone, faster than the whole model, same FLOP count" {
  run --separate-stderr "$BIN/ufo-bench" --preset tiny -b 64 -t 1 --reps 20 --warmup 2 -o jsonl
  infer=$output
  run --separate-stderr "$BIN/ufo-bench" --preset tiny --gemm -b 64 -t 1 --reps 20 --warmup 2 -o jsonl
  assert_success
  perl -MJSON::PP -e '
    my ($i, $g) = map { decode_json($_) } @ARGV;
    die "mode $g->{mode}\n" unless $g->{mode} eq "gemm-infer";
    die "gemm not faster: $g->{min_ms} vs $i->{min_ms}\n" unless $g->{min_ms} < $i->{min_ms};
    die "params\n" unless $g->{params} == $i->{params};' "$infer" "$output"
  run --separate-stderr "$BIN/ufo-bench" -m "$M" --gemm --train -b 2 "${QUICK[@]}"
  assert_success
  [ "$(field "${lines[1]}" 1-3)" = "$M,gemm-train,2" ]
}

@test "-o md|csv|json|jsonl and --json: one table, the same rows in each format" {
  args=(-m "$M" -b 1,2 -t 1 --reps 2 --warmup 0)
  csv=$("$BIN/ufo-bench" "${args[@]}" -o csv 2>/dev/null | tail -n +2 | cut -d, -f1-5,12)
  [ "$(wc -l <<<"$csv")" -eq 2 ]
  md=$("$BIN/ufo-bench" "${args[@]}" -o md 2>/dev/null)
  [ "$(tail -n +3 <<<"$md" | awk -F'|' '{ for (i = 2; i <= 6; i++) { gsub(/ /, "", $i); printf "%s,", $i } gsub(/ /, "", $13); print $13 }')" = "$csv" ]
  for f in "-o json" "-o jsonl" "--json"; do
    # shellcheck disable=SC2086
    out=$("$BIN/ufo-bench" "${args[@]}" $f 2>/dev/null)
    [ "$(perl -MJSON::PP -e '
      my $in = join "", <STDIN>;
      my @rows = $ARGV[0] eq "-o json" ? @{ decode_json($in) } : map { decode_json($_) } split /\n/, $in;
      print join(",", @{$_}{qw(model mode batch threads reps params)}), "\n" for @rows;' -- "$f" <<<"$out")" = "$csv" ]
  done
}

@test "--seed: accepted with any value and validated; the work counted is the same" {
  # The seed only sets random weights and inputs, which no column shows.
  a=$("$BIN/ufo-bench" --preset tiny --seed 1 -b 2 "${QUICK[@]}" 2>/dev/null | cut -d, -f1-5,12)
  b=$("$BIN/ufo-bench" --preset tiny --seed 99 -b 2 "${QUICK[@]}" 2>/dev/null | cut -d, -f1-5,12)
  [ "$a" = "$b" ]
  [ "$(wc -l <<<"$a")" -eq 2 ]
  run --separate-stderr "$BIN/ufo-bench" --preset tiny --seed x -b 1 "${QUICK[@]}"
  assert_exit_error 2 "--seed"
  [ -z "$output" ]
}

@test "usage errors that boost reports: exit 2, nothing on stdout" {
  run --separate-stderr "$BIN/ufo-bench" --no-such-option
  assert_exit_error 2 "no-such-option"
  run --separate-stderr "$BIN/ufo-bench" --preset tiny --reps many -b 1
  assert_exit_error 2 "--reps"
  run --separate-stderr "$BIN/ufo-bench" --preset tiny --warmup -b 1
  assert_exit_error 2 "--warmup"
  run --separate-stderr "$BIN/ufo-bench" --preset tiny --dim x -b 1
  assert_exit_error 2 "--dim"
  run --separate-stderr "$BIN/ufo-bench" -m
  assert_exit_error 2 "--model"
  [ -z "$output" ]
}

@test "bad values of -b, -t, --reps, --warmup, -o: usage errors, exit 2" {
  for bad in "-b 1,x|--batch" "-b 0|--batch" "-b ,|--batch" "-t 0|--threads" "-t 1,y|--threads" "--reps 0|--reps" \
             "--warmup -1|--warmup" "-o xml|--format" "--seed -1|--seed"; do
    # shellcheck disable=SC2086
    run --separate-stderr "$BIN/ufo-bench" --preset tiny ${bad%%|*}
    assert_exit_error 2 "${bad#*|}"
    [ -z "$output" ]
  done
}

@test "bad architecture flags and flags with -m: usage errors, exit 2" {
  for bad in "--preset huge|unknown preset 'huge'" "--preset tiny --img 8x8|--img: '8x8' is not HxWxC" \
             "--preset tiny --patch 3|patch size 3 does not divide the image 8x8" \
             "--preset tiny --heads 3|dim 16 is not divisible by 3 heads" "--preset tiny --dim 0|--dim: 0 is outside 1..8192" \
             "--preset tiny --depth 0|--depth: 0 is outside 1..128" "--preset tiny --classes 1|--classes: 1 is outside 2..100000" \
             "-m $M --dim 8|cannot be combined with -m"; do
    # shellcheck disable=SC2086
    run --separate-stderr "$BIN/ufo-bench" ${bad%%|*} -b 1 "${QUICK[@]}"
    assert_exit_error 2 "${bad#*|}"
    [ -z "$output" ]
  done
}
