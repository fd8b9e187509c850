#!/usr/bin/env bats
# ufo-extract: every option in --help changes the output as it says, checked against independent
# computations (parameter counts from h5ls, the tensors h5ls lists, the JSON summary against the
# TSV one, the route table given). Errors have exact exit codes and leave no output file.

load common

export OMP_WAIT_POLICY=passive

# One tiny supernet (depth 2, tasks alpha: 10 classes and beta: 4).
setup_file() {
  export TMP="$BATS_FILE_TMPDIR"
  make_synth_supernet "$TMP/supernet.h5"
}

setup() {
  S="$BATS_FILE_TMPDIR/supernet.h5"
  A="$BATS_FILE_TMPDIR/alpha.h5"
}

# params_without FILE REGEX: h5_param_count of FILE leaving out the datasets whose path matches.
params_without() {
  h5ls -r "$1" | awk -v re="$2" '$2 == "Dataset" && $1 !~ /^\/arch\// && $1 !~ /\/route$/ && $1 !~ re {
      gsub(/[{},]/, " "); p = 1; for (i = 3; i <= NF; i++) p *= $i; s += p } END { print s + 0 }'
}

@test "--supernet names the input like the positional argument; -o/--output names the file" {
  run --separate-stderr "$BIN/ufo-extract" --supernet "$S" --task alpha --output "$TMP/a.h5"
  assert_success
  assert_line --index 1 --regexp $'^alpha\t(shared|own),(shared|own)\t[0-9]+\t[0-9]+\t'"$TMP/a.h5"'$'
  h5dump -a /kind "$TMP/a.h5" | grep -q '"subnet"'
  "$BIN/ufo-extract" "$S" --task alpha -o "$TMP/b.h5" >/dev/null 2>&1
  "$BIN/ufo-infer" -m "$TMP/a.h5" "$A" -t 1 >"$TMP/a.tsv" 2>/dev/null
  "$BIN/ufo-infer" -m "$TMP/b.h5" "$A" -t 1 | cmp - "$TMP/a.tsv"
}

@test "--task: the parameter counts printed are those h5ls finds in the files" {
  for t in alpha beta; do
    run --separate-stderr "$BIN/ufo-extract" "$S" --task $t -o "$TMP/$t.h5"
    assert_success
    [ "$(cut -f1 <<<"${lines[1]}")" = $t ]
    [ "$(cut -f3 <<<"${lines[1]}")" = "$(h5_param_count "$S")" ]
    [ "$(cut -f4 <<<"${lines[1]}")" = "$(h5_param_count "$TMP/$t.h5")" ]
  done
  # Each keeps its own head only: 10 and 4 classes.
  run h5ls "$TMP/beta.h5/tasks/beta/head/w"
  assert_output --regexp 'Dataset \{4, 16\}'
  run h5ls -r "$TMP/alpha.h5"
  assert_output --regexp '/tasks/alpha/head/w +Dataset \{10, 16\}'
  refute_output --partial beta
}

@test "--shared: the supernet less the task FFNs, heads and routers (counted by h5ls)" {
  run --separate-stderr "$BIN/ufo-extract" "$S" --shared -o "$TMP/shared.h5"
  assert_success
  [ "$(cut -f4 <<<"${lines[1]}")" = "$(params_without "$S" '/ffn/(alpha|beta)/|^/tasks/')" ]
  [ "$(h5_param_count "$TMP/shared.h5")" = "$(params_without "$S" '/ffn/(alpha|beta)/|^/tasks/')" ]
  run h5ls -r "$TMP/shared.h5"
  refute_output --partial /tasks
}

@test "--routes FILE: the table's route, not the stored one, is extracted" {
  stored=$("$BIN/ufo-extract" "$S" --task beta -o "$TMP/stored.h5" 2>/dev/null | tail -n 1 | cut -f2)
  # The opposite of the stored route in every layer.
  flipped=$(tr ',' '\n' <<<"$stored" | awk '{ printf "%s%s", (NR > 1 ? "," : ""), ($1 == "own" ? "shared" : "own") }')
  tr ',' '\n' <<<"$flipped" | awk 'BEGIN { print "task\tlayer\tpath" } { print "beta\t" NR - 1 "\t" $1 }' >"$TMP/flip.tsv"
  run --separate-stderr "$BIN/ufo-extract" "$S" --task beta --routes "$TMP/flip.tsv" -o "$TMP/flip.h5"
  assert_success
  [ "$(cut -f2 <<<"${lines[1]}")" = "$flipped" ]
  [ "$flipped" != "$stored" ]
  # Layer by layer, the FFN's source follows the table.
  IFS=, read -r -a paths <<<"$flipped"
  for l in 0 1; do
    want=$([ "${paths[$l]}" = own ] && echo beta || echo shared)
    h5dump -a "/blocks/$l/ffn/shared/fc1/w/source" "$TMP/flip.h5" | grep -q "blocks/$l/ffn/$want/fc1/w"
  done
  # A different route gives a different model.
  ! cmp -s <("$BIN/ufo-infer" -m "$TMP/flip.h5" "$A" -t 1 2>/dev/null) <("$BIN/ufo-infer" -m "$TMP/stored.h5" "$A" -t 1 2>/dev/null) || false
}

@test "--json: one object with the TSV row's values" {
  tsv=$("$BIN/ufo-extract" "$S" --task alpha -o "$TMP/t.h5" 2>/dev/null | tail -n 1)
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha --json -o "$TMP/t.h5"
  assert_success
  [ "${#lines[@]}" -eq 1 ]
  perl -MJSON::PP -e '
    my $j = decode_json($ARGV[0]);
    my $row = join "\t", @{$j}{qw(task route supernet_params subnet_params output)};
    die "$row\nvs\n$ARGV[1]\n" unless $row eq $ARGV[1];' "$output" "$tsv"
  run --separate-stderr "$BIN/ufo-extract" "$S" --shared --json -o "$TMP/s.h5"
  assert_success
  [[ "$output" == '{"task":"shared","route":"shared,shared",'* ]]
}

@test "usage errors: exit 2, no output file" {
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha --task beta -o "$TMP/o.h5"
  assert_exit_error 2 "--task"
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha -o "$TMP/o.h5" -o "$TMP/p.h5"
  assert_exit_error 2 "--output"
  run --separate-stderr "$BIN/ufo-extract" "$S" --task
  assert_exit_error 2 "--task"
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha --routes -o "$TMP/o.h5"
  assert_exit_error 2 "--routes"
  run --separate-stderr "$BIN/ufo-extract" "$S" "$S" --task alpha -o "$TMP/o.h5"
  assert_exit_error 2 "positional"
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha --frobnicate -o "$TMP/o.h5"
  assert_exit_error 2 "frobnicate"
  [ -z "$output" ]
  assert_no_output_file "$TMP/o.h5" "$TMP/p.h5"
}

@test "bad route tables and inputs: exit 1 naming the file, no output file" {
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha --routes "$TMP/nope.tsv" -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/nope.tsv"
  echo "hello" >"$TMP/bad.tsv"
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha --routes "$TMP/bad.tsv" -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/bad.tsv:1: not a route table"
  printf 'task\tlayer\tpath\nalpha\t0\tboth\n' >"$TMP/both.tsv"
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha --routes "$TMP/both.tsv" -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/both.tsv:2: path 'both' is neither shared nor own"
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha --routes - -o "$TMP/o.h5" </dev/null
  assert_exit_error 1 "<stdin>: empty route table"
  run --separate-stderr "$BIN/ufo-extract" "$TMP/nope.h5" --task alpha -o "$TMP/o.h5"
  assert_exit_error 1 "$TMP/nope.h5: no such file"
  echo "hello" >"$TMP/text.h5"
  run --separate-stderr "$BIN/ufo-extract" - --task alpha -o "$TMP/o.h5" <"$TMP/text.h5"
  assert_exit_error 1 "<stdin>" "not an HDF5 file"
  [ -z "$output" ]
  assert_no_output_file "$TMP/o.h5"
}
