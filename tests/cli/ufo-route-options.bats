#!/usr/bin/env bats
# ufo-route: every option in --help changes the output as it says, checked against independent
# computations (the TSV report against the JSON one, sharing recounted from the routes and the
# FFN sizes h5ls reports, the plotted data against the report, the PNG size from its header,
# written routes read back). Errors have exact exit codes and leave no output file.

load common

export OMP_WAIT_POLICY=passive

# One tiny supernet (tasks alpha and beta, depth 2) and a dense checkpoint.
setup_file() {
  export TMP="$BATS_FILE_TMPDIR"
  make_supernet_fixture "$TMP"
}

setup() {
  S="$BATS_FILE_TMPDIR/supernet.h5"
  D="$BATS_FILE_TMPDIR/dense.h5"
}

# routes_of FILE: "task layer route" per line, from the TSV report.
routes_of() {
  "$BIN/ufo-route" "$1" 2>/dev/null | awk -F'\t' 'NR > 1 { print $1, $2, $5 }'
}

# ffn_params FILE LAYER: parameters of block LAYER's shared FFN, counted from h5ls.
ffn_params() {
  h5ls -r "$1" | awk -v pre="/blocks/$2/ffn/shared/" 'index($1, pre) == 1 && $2 == "Dataset" {
      gsub(/[{},]/, " "); p = 1; for (i = 3; i <= NF; i++) p *= $i; s += p } END { print s + 0 }'
}

@test "--supernet names the input like the positional argument" {
  run --separate-stderr "$BIN/ufo-route" --supernet "$S"
  assert_success
  [ "$output" = "$("$BIN/ufo-route" "$S" 2>/dev/null)" ]
  [ "${#lines[@]}" -eq 5 ]
  run --separate-stderr "$BIN/ufo-route" --supernet "$D"
  assert_exit_error 1 "$D" "is a dense checkpoint"
}

@test "--json: the same values as the TSV report, as JSON Lines" {
  tsv=$("$BIN/ufo-route" "$S" 2>/dev/null)
  run --separate-stderr "$BIN/ufo-route" "$S" --json
  assert_success
  [ "${#lines[@]}" -eq 4 ]
  perl -MJSON::PP -e '
    my @tsv = (split /\n/, $ARGV[1])[1 .. 4];
    my @json = map { decode_json($_) } split /\n/, $ARGV[0];
    for my $i (0 .. 3) {
      my $j = $json[$i];
      my $row = join "\t", $j->{task}, $j->{layer}, sprintf("%.4f", $j->{p_shared}), sprintf("%.4f", $j->{p_own}), $j->{route};
      die "row $i: $row vs $tsv[$i]\n" unless $row eq $tsv[$i];
    }' "$output" "$tsv"
  # With --sharing, JSON too.
  run --separate-stderr "$BIN/ufo-route" "$S" --sharing --json
  assert_success
  [[ "$output" == "{"*'"task_a":"alpha"'* ]]
}

@test "--sharing: counted from the routes; the fraction from the FFN sizes h5ls reports" {
  # Layer 0 shared by both tasks, layer 1 by neither: 1 of 2 layers, half the FFN parameters.
  "$BIN/ufo-route" "$S" --set alpha:0=shared,beta:0=shared,alpha:1=own,beta:1=shared -o "$TMP/half.h5" 2>/dev/null
  [ "$(routes_of "$TMP/half.h5" | tr '\n' ' ')" = "alpha 0 shared alpha 1 own beta 0 shared beta 1 shared " ]
  ffn0=$(ffn_params "$S" 0)
  ffn1=$(ffn_params "$S" 1)
  [ "$ffn0" -gt 0 ]
  frac=$(awk -v a="$ffn0" -v b="$ffn1" 'BEGIN { printf "%.4f", a / (a + b) }')
  run --separate-stderr "$BIN/ufo-route" "$TMP/half.h5" --sharing
  assert_success
  assert_line --index 1 "alpha"$'\t'"beta"$'\t'"1"$'\t'"2"$'\t'"$frac"
  [ "$frac" = 0.5000 ]
  # All shared: 2 of 2, fraction 1.
  "$BIN/ufo-route" "$S" --set alpha:0=shared,alpha:1=shared,beta:0=shared,beta:1=shared -o "$TMP/all.h5" 2>/dev/null
  run --separate-stderr "$BIN/ufo-route" "$TMP/all.h5" --sharing
  assert_line --index 1 $'alpha\tbeta\t2\t2\t1.0000'
  [[ "$stderr" == *"alpha and beta share 2 of 2 FFN layers"* ]]
}

@test "--plot: gnuplot is given the report's p(own) and routes; the PNG has the planned size" {
  # A stand-in gnuplot keeps the script and writes a PNG signature where it is told to.
  mkdir -p "$TMP/bin"
  cat >"$TMP/bin/gnuplot" <<EOF
#!/bin/sh
cp "\$1" "$TMP/script.gp"
out=\$(sed -n "s/^set output '\\(.*\\)'\$/\\1/p" "\$1")
printf '\\211PNG\\r\\n\\032\\n' >"\$out"
EOF
  chmod +x "$TMP/bin/gnuplot"
  run --separate-stderr env PATH="$TMP/bin:$PATH" "$BIN/ufo-route" "$S" --plot "$TMP/fake.png"
  assert_success
  [ -s "$TMP/fake.png" ]
  # Data block: "layer task_index p_own S|O", one line per task and layer.
  want=$("$BIN/ufo-route" "$S" 2>/dev/null | awk -F'\t' 'NR > 1 { if (!($1 in t)) t[$1] = n++; print $2, t[$1], $4, ($5 == "own" ? "O" : "S") }')
  [ "$(sed -n '/^\$routes << EOD$/,/^EOD$/p' "$TMP/script.gp" | sed '1d;$d')" = "$want" ]
  grep -q "^set ytics .*'alpha' 0, 'beta' 1" "$TMP/script.gp"
  # The real gnuplot: a 560x280 PNG (the minimum size) read from the IHDR chunk.
  command -v gnuplot >/dev/null || skip "gnuplot is not installed"
  run --separate-stderr "$BIN/ufo-route" "$S" --plot "$TMP/routes.png"
  assert_success
  [ "$(od -An -tu1 -j16 -N8 "$TMP/routes.png" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 "x" $5 * 16777216 + $6 * 65536 + $7 * 256 + $8 }')" = 560x280 ]
}

@test "--harden -o: the argmax routes are written, the weights are not touched" {
  want=$("$BIN/ufo-route" "$S" 2>/dev/null | awk -F'\t' 'NR > 1 { print $1, $2, ($4 > $3 ? "own" : "shared") }')
  # Start from a copy whose stored routes are all the opposite of the argmax.
  flip=$(awk '{ printf "%s%s:%s=%s", (NR > 1 ? "," : ""), $1, $2, ($3 == "own" ? "shared" : "own") }' <<<"$want")
  "$BIN/ufo-route" "$S" --set "$flip" -o "$TMP/flip.h5" 2>/dev/null
  [ "$(routes_of "$TMP/flip.h5")" != "$want" ]
  run --separate-stderr "$BIN/ufo-route" "$TMP/flip.h5" --harden -o "$TMP/hard.h5"
  assert_success
  [ -z "$output" ]
  [ "$(routes_of "$TMP/hard.h5")" = "$want" ]
  run h5diff "$S" "$TMP/hard.h5" /blocks/1/ffn/alpha/fc2/w
  assert_success
  run h5diff "$S" "$TMP/hard.h5" /tasks/beta/router
  assert_success
}

@test "--set: each entry, repeated or comma-separated, changes exactly its route" {
  "$BIN/ufo-route" "$S" --set alpha:0=shared,alpha:1=shared,beta:0=shared,beta:1=shared -o "$TMP/s.h5" 2>/dev/null
  run --separate-stderr "$BIN/ufo-route" "$TMP/s.h5" --set beta:1=own --set alpha:0=own -o "$TMP/t.h5"
  assert_success
  [ "$(routes_of "$TMP/t.h5" | tr '\n' ' ')" = "alpha 0 own alpha 1 shared beta 0 shared beta 1 own " ]
}

@test "--apply FILE -o -: a table written to stdout, read back" {
  printf 'task\tlayer\tpath\nalpha\t0\tshared\nalpha\t1\town\nbeta\t0\town\nbeta\t1\tshared\n' >"$TMP/t.tsv"
  "$BIN/ufo-route" "$S" --apply "$TMP/t.tsv" -o - 2>/dev/null >"$TMP/out.h5"
  [ "$(routes_of "$TMP/out.h5" | tr '\n' ' ')" = "alpha 0 shared alpha 1 own beta 0 own beta 1 shared " ]
  # --output is -o.
  run --separate-stderr "$BIN/ufo-route" "$S" --apply "$TMP/t.tsv" --output "$TMP/o2.h5"
  assert_success
  [ "$(routes_of "$TMP/o2.h5")" = "$(routes_of "$TMP/out.h5")" ]
}

@test "usage errors: exit 2, nothing written" {
  run --separate-stderr "$BIN/ufo-route" "$S" --harden --apply "$TMP/x.tsv" -o "$TMP/o.h5"
  assert_exit_error 2 "--harden and --apply"
  run --separate-stderr "$BIN/ufo-route" "$S" --harden --json
  assert_exit_error 2 "--json and --sharing describe the report"
  run --separate-stderr "$BIN/ufo-route" "$S" --set alpha:0=own -o "$TMP/o.h5" --sharing
  assert_exit_error 2 "--json and --sharing describe the report"
  run --separate-stderr "$BIN/ufo-route" - --apply - -o "$TMP/o.h5" <"$S"
  assert_exit_error 2 "cannot both be stdin"
  run --separate-stderr "$BIN/ufo-route" "$S" --plot -
  assert_exit_error 2 "--plot needs a file name"
  run --separate-stderr "$BIN/ufo-route" "$S" --set alpha0=own -o "$TMP/o.h5"
  assert_exit_error 2 "'alpha0=own' is not TASK:LAYER=shared|own"
  run --separate-stderr "$BIN/ufo-route" "$S" --set alpha:x=own -o "$TMP/o.h5"
  assert_exit_error 2 "layer 'x' is not a non-negative integer"
  run --separate-stderr "$BIN/ufo-route" "$S" --set alpha:-1=own -o "$TMP/o.h5"
  assert_exit_error 2 "layer '-1'"
  run --separate-stderr "$BIN/ufo-route" "$S" --plot
  assert_exit_error 2 "--plot"
  run --separate-stderr "$BIN/ufo-route" "$S" "$D"
  assert_exit_error 2 "positional"
  [ -z "$output" ]
  assert_no_output_file "$TMP/o.h5"
}

@test "bad route tables and bad --plot paths: exit 1 naming the file, nothing written" {
  run --separate-stderr "$BIN/ufo-route" "$S" --apply "$TMP/nope.tsv" -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/nope.tsv: no such file"
  echo "hello" >"$TMP/bad.tsv"
  run --separate-stderr "$BIN/ufo-route" "$S" --apply "$TMP/bad.tsv" -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/bad.tsv:1: not a route table"
  printf 'task\tlayer\tpath\nalpha\t0\tboth\n' >"$TMP/both.tsv"
  run --separate-stderr "$BIN/ufo-route" "$S" --apply "$TMP/both.tsv" -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/both.tsv:2: path 'both' is neither shared nor own"
  run --separate-stderr "$BIN/ufo-route" "$S" --harden -o "$TMP/nodir/o.h5"
  assert_exit_error 1 "$TMP/nodir/o.h5: directory does not exist"
  run --separate-stderr "$BIN/ufo-route" "$S" --plot "$TMP/nodir/p.png"
  assert_exit_error 1 "$TMP/nodir/p.png: directory does not exist"
  [ -z "$output" ]
  assert_no_output_file "$TMP/o.h5" "$TMP/nodir/o.h5" "$TMP/nodir/p.png"
}
