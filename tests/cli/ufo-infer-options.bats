#!/usr/bin/env bats
# ufo-infer: every option in --help changes the output the way it says (or, for -b and -t,
# provably does not change the predictions), checked against independent computations: the
# summary recounted with awk from the rows, the JSON rows against the TSV rows, a task's
# predictions against its extracted sub-network, JPEG input against djpeg's pixels, --logits
# against --probs through a softmax, the -o file against the rows (read by h5dump). Errors have
# exact exit codes.

load common

export OMP_WAIT_POLICY=passive

# A tiny supernet (tasks alpha: 10 classes, beta: 4) and a dense tiny model trained 2 steps.
setup_file() {
  export TMP="$BATS_FILE_TMPDIR"
  make_supernet_fixture "$TMP"
}

setup() {
  S="$BATS_FILE_TMPDIR/supernet.h5"
  M="$BATS_FILE_TMPDIR/dense.h5"
  A="$BATS_FILE_TMPDIR/alpha.h5"
  B="$BATS_FILE_TMPDIR/beta.h5"
}

# summary_from_rows TASK K: the TSV summary (without the loss line) recounted from the rows.
summary_from_rows() {
  awk -F'\t' -v task="$1" -v K="$2" '
    NR == 1 { next }
    $0 == "" { exit }
    { n++; y = $2; p = $3; cnt[y]++; if (y == p) { c++; cc[y]++ } conf[y, p]++ }
    END {
      printf "metric\tvalue\ntask\t%s\nimages\t%d\ncorrect\t%d\naccuracy\t%.6f\n", task, n, c, c / n
      printf "class\tname\tcount\tcorrect\taccuracy\n"
      for (k = 0; k < K; k++)
        printf "%d\t%d\t%d\t%d\t%s\n", k, k, cnt[k], cc[k], cnt[k] ? sprintf("%.6f", cc[k] / cnt[k]) : "nan"
      printf "confusion"
      for (k = 0; k < K; k++) printf "\t%d", k
      printf "\n"
      for (k = 0; k < K; k++) {
        printf "%d", k
        for (j = 0; j < K; j++) printf "\t%d", conf[k, j]
        printf "\n"
      }
    }'
}

# pgm_to_png IN.pgm OUT.png: a gray PNG of a binary PGM's pixels (no ufo code involved).
pgm_to_png() {
  perl -MCompress::Zlib -e '
    local $/; open(my $i, "<:raw", $ARGV[0]) or die; my $pgm = <$i>;
    $pgm =~ s/^P5\s+(\d+)\s+(\d+)\s+255\s//s or die "not a P5 PGM\n"; my ($w, $h) = ($1, $2);
    sub chunk { my ($t, $d) = @_; pack("N", length $d) . $t . $d . pack("N", crc32($t . $d)) }
    my $raw = join "", map { "\0" . substr($pgm, $_ * $w, $w) } 0 .. $h - 1;
    open(my $o, ">:raw", $ARGV[1]) or die;
    print $o "\x89PNG\r\n\x1a\n", chunk("IHDR", pack("NNC5", $w, $h, 8, 0, 0, 0, 0)), chunk("IDAT", compress($raw)), chunk("IEND", "");' "$1" "$2"
}

@test "--model/--input name what -m and the positional argument do" {
  "$BIN/ufo-infer" -m "$M" "$A" -t 1 >"$TMP/a.tsv" 2>/dev/null
  run --separate-stderr "$BIN/ufo-infer" --model "$M" --input "$A" -t 1
  assert_success
  [ "${#lines[@]}" -eq 201 ]
  [ "$output" = "$(cat "$TMP/a.tsv")" ]
  # Another model gives other rows: the model named is the one used.
  [ "$("$BIN/ufo-infer" -m "$S" --task alpha "$A" -t 1 2>/dev/null)" != "$output" ]
}

@test "--task: a supernet predicts with the named task's head and route, as its extracted sub-network does" {
  run --separate-stderr "$BIN/ufo-infer" -m "$S" --task beta "$B" -t 1
  assert_success
  [ "${#lines[@]}" -eq 121 ]
  [[ "$stderr" == *"task beta"* ]]
  # beta has 4 classes: every prediction is 0..3.
  [ -z "$(tail -n +2 <<<"$output" | awk -F'\t' '$3 > 3')" ]
  beta_rows=$output
  "$BIN/ufo-extract" "$S" --task beta -o "$TMP/beta-sub.h5" >/dev/null 2>&1
  [ "$("$BIN/ufo-infer" -m "$TMP/beta-sub.h5" "$B" -t 1 2>/dev/null)" = "$beta_rows" ]
  # The same images through task alpha (10 classes: labels not used) predict otherwise.
  run --separate-stderr "$BIN/ufo-infer" -m "$S" --task alpha "$B" -t 1
  assert_success
  [[ "$stderr" == *"has 4 classes, task 'alpha' has 10; labels are not used"* ]]
  [ "$(cut -f3 <<<"$output")" != "$(cut -f3 <<<"$beta_rows")" ]
}

@test "a supernet without --task: one line naming its tasks, exit 1, nothing on stdout" {
  run --separate-stderr "$BIN/ufo-infer" -m "$S" "$A" -t 1
  assert_exit_error 1 "$S" "2 tasks (alpha, beta)" "--task"
  [ -z "$output" ]
  run --separate-stderr "$BIN/ufo-infer" -m "$S" "$A" --task gamma -t 1
  assert_exit_error 1 "$S: no task gamma (tasks: alpha, beta)"
  [ -z "$output" ]
}

@test "-b and -t do not change the predictions" {
  "$BIN/ufo-infer" -m "$S" --task alpha "$A" -b 256 -t 1 2>/dev/null | cut -f1-3,5 >"$TMP/ref"
  [ "$(wc -l <"$TMP/ref")" -eq 201 ]
  for opts in "-b 1 -t 1" "-b 7 -t 2" "--batch 200 --threads 2" "-b 1000 -t 1"; do
    # shellcheck disable=SC2086
    "$BIN/ufo-infer" -m "$S" --task alpha "$A" $opts 2>/dev/null | cut -f1-3,5 | cmp - "$TMP/ref"
  done
}

@test "--summary: every number but the loss equals a recount of the rows" {
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$A" --summary -t 1
  assert_success
  want=$(summary_from_rows main 10 <<<"$output")
  # Not a trivial model: some images are wrong, so the off-diagonal counts are tested too.
  [ "$(awk -F'\t' '$1 == "correct" { print $2 }' <<<"$output")" -lt 190 ]
  got=$(sed -n '/^metric\tvalue$/,$p' <<<"$output" | grep -v -e '^loss' -e '^$')
  [ "$got" = "$want" ]
  # Without --summary there is no summary.
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$A" -t 1
  refute_line --partial "metric"
  [ "${#lines[@]}" -eq 201 ]
}

@test "--summary-only: the summary of --summary without the rows" {
  full=$("$BIN/ufo-infer" -m "$M" "$A" --summary -t 1 2>/dev/null)
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$A" --summary-only -t 1
  assert_success
  [ "$output" = "$(sed -n '/^metric\tvalue$/,$p' <<<"$full")" ]
  refute_line --regexp $'^[0-9]+\t[0-9]+\t[0-9]+\t[01]\\.'
}

@test "--json: the rows and the summary carry the TSV's values" {
  tsv=$("$BIN/ufo-infer" -m "$M" "$A" --summary -t 1 2>/dev/null)
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$A" --summary --json -t 1
  assert_success
  [ "${#lines[@]}" -eq 201 ]
  perl -MJSON::PP -e '
    my @json = map { decode_json($_) } split /\n/, $ARGV[0];
    my @tsv = split /\n/, $ARGV[1];
    my $sum = pop(@json)->{summary};
    die "rows\n" unless @json == 200;
    for my $i (0 .. 199) {
      my ($idx, $label, $pred, $prob, $name) = split /\t/, $tsv[$i + 1];
      my $j = $json[$i];
      die "row $i\n" unless $j->{index} == $idx && $j->{label} == $label && $j->{prediction} == $pred
          && abs($j->{probability} - $prob) < 1e-6 && $j->{class_name} eq $name;
    }
    my %m = map { split /\t/ } grep { /^(task|images|correct|accuracy|loss)\t/ } @tsv;
    die "summary\n" unless $sum->{images} == $m{images} && $sum->{correct} == $m{correct} && $sum->{task} eq $m{task}
        && abs($sum->{accuracy} - $m{accuracy}) < 1e-6 && abs($sum->{loss} - $m{loss}) < 1e-6;
    my @cls = grep { /^[0-9]+\t[^\t]*\t[0-9]+\t[0-9]+\t([0-9.]+|nan)$/ } @tsv[201 .. $#tsv];
    my @conf = grep { /^[0-9]+(\t[0-9]+){10}$/ } @tsv[201 .. $#tsv];
    die "tables\n" unless @cls == 10 && @conf == 10;
    for my $k (0 .. 9) {
      my $c = $sum->{classes}[$k];
      die "class $k\n" unless join("\t", @{$c}{qw(index name count correct)}) eq join("\t", (split /\t/, $cls[$k])[0 .. 3]);
      die "confusion $k\n" unless join("\t", $k, @{ $sum->{confusion}[$k] }) eq $conf[$k];
    }
  ' "$output" "$tsv"
}

@test "JPEG files predict as the same pixels decoded by djpeg in a PNG; '-' reads their paths" {
  make_images "$TMP" jpg j0.jpg:8x8 j1.jpg:8x8 j2.jpg:8x8
  for i in 0 1 2; do
    djpeg -pnm "$TMP/j$i.jpg" >"$TMP/j$i.pgm"
    pgm_to_png "$TMP/j$i.pgm" "$TMP/p$i.png"
  done
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP"/j0.jpg "$TMP"/j1.jpg "$TMP"/j2.jpg -t 1
  assert_success
  [ "${#lines[@]}" -eq 4 ]
  assert_line --index 1 --regexp $'^0\t'"$TMP/j0.jpg"$'\t[0-9]\t'
  from_jpeg=$(cut -f1,3- <<<"$output")
  [ "$("$BIN/ufo-infer" -m "$M" "$TMP"/p0.png "$TMP"/p1.png "$TMP"/p2.png -t 1 2>/dev/null | cut -f1,3-)" = "$from_jpeg" ]
  run --separate-stderr "$BIN/ufo-infer" -m "$M" - -t 1 < <(printf '%s\n' "$TMP"/j0.jpg "$TMP"/j1.jpg "$TMP"/j2.jpg)
  assert_success
  [ "$(cut -f1,3- <<<"$output")" = "$from_jpeg" ]
}

@test "--resize: a 12x12 JPEG needs it, and then predicts as its djpeg pixels resized" {
  make_images "$TMP" jpg big.jpg:12x12
  djpeg -pnm "$TMP/big.jpg" >"$TMP/big.pgm"
  pgm_to_png "$TMP/big.pgm" "$TMP/big.png"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP/big.jpg" -t 1
  assert_exit_error 1 "$TMP/big.jpg: image is 12x12 but the model takes 8x8 (use --resize)"
  [ -z "$output" ]
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP/big.jpg" --resize -t 1
  assert_success
  [ "${#lines[@]}" -eq 2 ]
  [ "$(cut -f3- <<<"${lines[1]}")" = "$("$BIN/ufo-infer" -m "$M" "$TMP/big.png" --resize -t 1 2>/dev/null | tail -n 1 | cut -f3-)" ]
}

@test "a corrupt JPEG: exit 1 naming the file, nothing on stdout" {
  make_images "$TMP" jpg ok.jpg:8x8
  head -c 200 "$TMP/ok.jpg" >"$TMP/cut.jpg"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$TMP/ok.jpg" "$TMP/cut.jpg" -t 1
  assert_exit_error 1 "$TMP/cut.jpg: bad JPEG"
  [ -z "$output" ]
}

@test "--probs: a p_ column per class of the chosen task, and a \"probs\" array in JSON; without it neither" {
  plain=$("$BIN/ufo-infer" -m "$S" --task beta "$B" -t 1 2>/dev/null)
  run --separate-stderr "$BIN/ufo-infer" -m "$S" --task beta "$B" --probs -t 1
  assert_success
  # beta has 4 classes: 4 more columns, the first five unchanged.
  assert_line --index 0 "$(head -n 1 <<<"$plain")"$'\tp_0\tp_1\tp_2\tp_3'
  [ "$(cut -f1-5 <<<"$output")" = "$plain" ]
  [ -z "$(awk -F'\t' 'NF != 9' <<<"$output")" ]
  [ "$(head -n 1 <<<"$plain" | awk -F'\t' '{ print NF }')" -eq 5 ]
  # The p_ column of the predicted class is the probability column.
  [ -z "$(awk -F'\t' 'NR > 1 && $(6 + $3) != $4' <<<"$output")" ]
  run --separate-stderr "$BIN/ufo-infer" -m "$S" --task beta "$B" --probs --json -t 1
  assert_success
  python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
assert len(rows) == 120 and all(len(r["probs"]) == 4 and "logits" not in r for r in rows)' <<<"$output"
  run --separate-stderr "$BIN/ufo-infer" -m "$S" --task beta "$B" --json -t 1
  refute_output --partial '"probs"'
}

@test "--logits: a logit_ column per class and a \"logits\" array; they are the logits, not the probabilities" {
  both=$("$BIN/ufo-infer" -m "$S" --task beta "$B" --probs --logits -t 1 2>/dev/null)
  run --separate-stderr "$BIN/ufo-infer" -m "$S" --task beta "$B" --logits -t 1
  assert_success
  assert_line --index 0 --regexp $'\tclass_name\tlogit_0\tlogit_1\tlogit_2\tlogit_3$'
  [ "$output" = "$(cut -f1-5,10- <<<"$both")" ]
  # softmax(logit_ columns) = p_ columns; the logits themselves are not probabilities.
  run awk -F'\t' 'NR > 1 {
      m = $10; for (j = 11; j <= 13; j++) if ($j > m) m = $j
      z = 0; s = 0; for (j = 10; j <= 13; j++) { z += exp($j - m); s += $j }
      for (k = 0; k < 4; k++) { d = exp($(10 + k) - m) / z - $(6 + k); if (d > 1e-5 || -d > 1e-5) bad++ }
      if (s > 0.999 && s < 1.001) same++
    } END { print bad + 0, same + 0 }' <<<"$both"
  assert_output "0 0"
  run --separate-stderr "$BIN/ufo-infer" -m "$S" --task beta "$B" --logits --json -t 1
  assert_success
  python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
assert len(rows) == 120 and all(len(r["logits"]) == 4 and "probs" not in r for r in rows)' <<<"$output"
}

@test "-o/--output: writes the chosen task's predictions; without it no file is written" {
  mkdir -p "$TMP/o" "$TMP/none"
  rows=$("$BIN/ufo-infer" -m "$S" --task beta "$B" -t 1 2>/dev/null)
  (cd "$TMP/none" && "$BIN/ufo-infer" -m "$S" --task beta "$B" -t 1 >/dev/null 2>&1)
  [ -z "$(ls -A "$TMP/none")" ]
  run --separate-stderr "$BIN/ufo-infer" -m "$S" --task beta "$B" -t 1 --output "$TMP/o/long.h5"
  assert_success
  [ "$output" = "$rows" ]
  run --separate-stderr "$BIN/ufo-infer" -m "$S" --task beta "$B" -t 1 -o "$TMP/o/short.h5"
  assert_success
  h5same "$TMP/o/long.h5" "$TMP/o/short.h5" /probs
  run h5ls "$TMP/o/short.h5"
  assert_line --regexp '^probs +Dataset \{120, 4\}$'
  assert_line --regexp '^labels +Dataset \{120\}$'
  run h5dump -a /task "$TMP/o/short.h5"
  assert_output --partial '(0): "beta"'
  run h5dump -a /num_classes "$TMP/o/short.h5"
  assert_output --partial '(0): 4'
  # /prediction is the prediction column of the rows.
  raw=$(mktemp "$TMP/raw.XXXXXX")
  h5dump -d /prediction -b LE -o "$raw" "$TMP/o/short.h5" >/dev/null
  [ "$(od -An -v -td4 -w4 "$raw" | tr -d ' ')" = "$(tail -n +2 <<<"$rows" | cut -f3)" ]
  # Another task, another file: alpha's 10 classes (its labels are not beta's, so no /labels).
  run --separate-stderr "$BIN/ufo-infer" -m "$S" --task alpha "$B" -t 1 -o "$TMP/o/alpha.h5"
  assert_success
  run h5ls "$TMP/o/alpha.h5"
  assert_line --regexp '^probs +Dataset \{120, 10\}$'
  refute_line --regexp '^labels '
}

@test "bad option values and missing arguments: exit 2, nothing on stdout" {
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$A" -t -1
  assert_exit_error 2 "--threads must not be negative"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$A" -t two
  assert_exit_error 2 "--threads"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$A" -b many
  assert_exit_error 2 "--batch"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$A" --task
  assert_exit_error 2 "--task"
  run --separate-stderr "$BIN/ufo-infer" -m
  assert_exit_error 2 "--model"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$A" -o
  assert_exit_error 2 "--output"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$A" -o -
  assert_exit_error 2 "-o - is not supported"
  run --separate-stderr "$BIN/ufo-infer" -m "$M" "$A" --probs --summary-only
  assert_exit_error 2 "--probs and --logits add columns to the rows"
  [ -z "$output" ]
}
