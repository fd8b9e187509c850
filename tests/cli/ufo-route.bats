#!/usr/bin/env bats
# ufo-route: help, the per-task/per-layer report (TSV, JSON Lines), pairwise sharing, route
# tables (--harden, --set), writing routes back (--apply, weights untouched), the gnuplot
# heatmap, the TTY text heatmap, and bad input (one stderr line naming the file, non-zero exit,
# no output file).

load common

# See ufo-train.bats: passive OpenMP waiting keeps runs fast on a loaded machine.
export OMP_WAIT_POLICY=passive

# One tiny supernet (tasks alpha and beta, depth 2) and one dense checkpoint shared by the tests.
setup_file() {
  export TMP="$BATS_FILE_TMPDIR"
  make_supernet_fixture "$TMP"
}

setup() {
  S="$BATS_FILE_TMPDIR/supernet.h5"
  D="$BATS_FILE_TMPDIR/dense.h5"
}

# flip_table < TABLE: every route swapped (shared <-> own), header kept.
flip_table() {
  awk -F'\t' 'BEGIN { OFS = "\t" } NR == 1 { print; next } { $3 = ($3 == "own" ? "shared" : "own"); print }'
}

@test "ufo-route --help shows usage and options" {
  run "$BIN/ufo-route" --help
  assert_success
  assert_line --index 0 --partial "usage: ufo-route SUPERNET.h5"
  for o in --json --sharing --plot --harden --set --apply --output; do
    assert_output --partial -- "$o"
  done
}

@test "report: TSV header and one row per task and layer; p_shared + p_own = 1" {
  [ -s "$S" ]
  run --separate-stderr "$BIN/ufo-route" "$S"
  assert_success
  assert_line --index 0 $'task\tlayer\tp_shared\tp_own\troute'
  [ "${#lines[@]}" -eq 5 ]   # header + 2 tasks x 2 layers
  assert_line --index 1 --regexp $'^alpha\t0\t[01]\\.[0-9]{4}\t[01]\\.[0-9]{4}\t(shared|own)$'
  assert_line --index 4 --regexp $'^beta\t1\t'
  awk -F'\t' 'NR > 1 { s = $3 + $4; if (s < 0.9998 || s > 1.0002) { print "bad sum " $0; exit 1 } }' <<<"$output"
  # The human sharing summary goes to stderr, one line per pair.
  [[ "$stderr" == *"alpha and beta share "*" of 2 FFN layers (all attention and embeddings)"* ]]
}

@test "report: the route column is the stored route (here as written by --set -o)" {
  "$BIN/ufo-route" "$S" --set alpha:0=own,alpha:1=shared -o "$TMP/set.h5" 2>/dev/null
  run --separate-stderr "$BIN/ufo-route" "$TMP/set.h5"
  assert_success
  assert_line --index 1 --regexp $'^alpha\t0\t.*\town$'
  assert_line --index 2 --regexp $'^alpha\t1\t.*\tshared$'
}

@test "--json: one JSON object per task and layer with the TSV's fields" {
  run --separate-stderr "$BIN/ufo-route" "$S" --json
  assert_success
  [ "${#lines[@]}" -eq 4 ]
  python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
assert [(r["task"], r["layer"]) for r in rows] == [("alpha", 0), ("alpha", 1), ("beta", 0), ("beta", 1)], rows
for r in rows:
    assert list(r) == ["task", "layer", "p_shared", "p_own", "route"], r
    assert abs(r["p_shared"] + r["p_own"] - 1) < 1e-5, r
    assert r["route"] in ("shared", "own"), r
' <<<"$output"
}

@test "--sharing: one row per pair of tasks, counted from the routes" {
  run --separate-stderr "$BIN/ufo-route" "$S" --sharing
  assert_success
  assert_line --index 0 $'task_a\ttask_b\tshared_layers\tlayers\tshared_ffn_params_fraction'
  [ "${#lines[@]}" -eq 2 ]
  # Expected from the per-layer report: layers both tasks route to the shared FFN.
  want=$("$BIN/ufo-route" "$S" 2>/dev/null |
         awk -F'\t' 'NR > 1 && $5 == "shared" { n[$2]++ } END { c = 0; for (l in n) if (n[l] == 2) c++; print c }')
  frac=$(awk -v c="$want" 'BEGIN { printf "%.4f", c / 2 }')
  assert_line --index 1 "alpha"$'\t'"beta"$'\t'"$want"$'\t'"2"$'\t'"$frac"
  [[ "$stderr" == *"alpha and beta share $want of 2 FFN layers"* ]]
  run --separate-stderr "$BIN/ufo-route" "$S" --sharing --json
  assert_success
  python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
assert list(r) == ["task_a", "task_b", "shared_layers", "layers", "shared_ffn_params_fraction"], r
assert (r["task_a"], r["task_b"], r["layers"]) == ("alpha", "beta", 2), r
assert abs(r["shared_ffn_params_fraction"] - r["shared_layers"] / 2) < 1e-9, r
' <<<"$output"
}

@test "--harden: a route table of the router's argmax" {
  run --separate-stderr "$BIN/ufo-route" --harden "$S"
  assert_success
  assert_line --index 0 $'task\tlayer\tpath'
  [ "${#lines[@]}" -eq 5 ]
  # argmax of p: own when p_own > p_shared
  want=$("$BIN/ufo-route" "$S" 2>/dev/null | awk -F'\t' 'NR == 1 { print "task\tlayer\tpath"; next }
         { print $1 "\t" $2 "\t" ($4 > $3 ? "own" : "shared") }')
  [ "$output" = "$want" ]
}

@test "--harden --set: overrides the named entries only" {
  base=$("$BIN/ufo-route" --harden "$S" 2>/dev/null)
  run --separate-stderr "$BIN/ufo-route" --harden "$S" --set beta:1=shared --set alpha:0=own,alpha:1=shared
  assert_success
  assert_line --index 1 $'alpha\t0\town'
  assert_line --index 2 $'alpha\t1\tshared'
  assert_line --index 4 $'beta\t1\tshared'
  [ "${lines[3]}" = "$(sed -n 4p <<<"$base")" ]
}

@test "--apply: routes written back, weights unchanged, provenance recorded" {
  "$BIN/ufo-route" "$S" 2>/dev/null | awk -F'\t' 'BEGIN { OFS = "\t"; print "task", "layer", "path" }
      NR > 1 { print $1, $2, $5 }' >"$TMP/stored.tsv"
  flip_table <"$TMP/stored.tsv" >"$TMP/flip.tsv"
  run --separate-stderr "$BIN/ufo-route" "$S" --apply "$TMP/flip.tsv" -o "$TMP/out.h5"
  assert_success
  [ -z "$output" ]
  run --separate-stderr "$BIN/ufo-route" "$TMP/out.h5"
  assert_success
  [ "$(cut -f1,2,5 <<<"$output" | tail -n +2)" = "$(tail -n +2 "$TMP/flip.tsv")" ]
  # Same router probabilities, same weights.
  [ "$(cut -f1-4 <<<"$output")" = "$("$BIN/ufo-route" "$S" 2>/dev/null | cut -f1-4)" ]
  run h5diff "$S" "$TMP/out.h5" /blocks/0/attn/qkv/w
  assert_success
  assert_output ""
  run h5diff "$S" "$TMP/out.h5" /blocks/1/ffn/beta/fc1/w
  assert_success
  h5dump -a /tool "$TMP/out.h5" | grep -q '"ufo-route"'
  h5dump -a /kind "$TMP/out.h5" | grep -q '"supernet"'
  h5dump -a /parent "$TMP/out.h5" | grep -qF "\"$S\""
}

@test "--apply -: the table from stdin, with --set applied after it" {
  "$BIN/ufo-route" --harden "$S" 2>/dev/null | flip_table >"$TMP/flip.tsv"
  run --separate-stderr "$BIN/ufo-route" "$S" --apply - --set beta:0=own -o "$TMP/out.h5" <"$TMP/flip.tsv"
  assert_success
  run --separate-stderr "$BIN/ufo-route" "$TMP/out.h5"
  assert_line --index 3 --regexp $'^beta\t0\t.*\town$'
  [ "$(cut -f5 <<<"${lines[1]}")" = "$(sed -n 2p "$TMP/flip.tsv" | cut -f3)" ]
}

@test "the supernet can come from stdin and go to stdout" {
  run --separate-stderr bash -c '"$1/ufo-route" - --harden --set alpha:1=shared -o - <"$2" | "$1/ufo-route" -' _ "$BIN" "$S"
  assert_success
  assert_line --index 2 --regexp $'^alpha\t1\t.*\tshared$'
}

@test "--plot writes a PNG heatmap" {
  command -v gnuplot >/dev/null || skip "gnuplot is not installed"
  run --separate-stderr "$BIN/ufo-route" "$S" --plot "$TMP/routes.png"
  assert_success
  [ "${#lines[@]}" -eq 5 ]
  [ "$(head -c 8 "$TMP/routes.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]
  [ -z "$(compgen -G "$TMP/.routes.png.tmp.*")" ]
}

@test "--plot: a failing gnuplot gives one line and no PNG" {
  mkdir -p "$TMP/bin"
  printf '#!/bin/sh\necho "line 1: unknown terminal" >&2\nexit 1\n' >"$TMP/bin/gnuplot"
  chmod +x "$TMP/bin/gnuplot"
  run --separate-stderr env PATH="$TMP/bin:$PATH" "$BIN/ufo-route" "$S" --plot "$TMP/routes.png"
  assert_exit_error 1 "$TMP/routes.png" "gnuplot failed" "unknown terminal"
  [ -z "$output" ]
  assert_no_output_file "$TMP/routes.png"
}

@test "--plot: no gnuplot on PATH gives one line and no PNG" {
  mkdir -p "$TMP/empty"
  run --separate-stderr env PATH="$TMP/empty" "$BIN/ufo-route" "$S" --plot "$TMP/routes.png"
  assert_exit_error 1 "$TMP/routes.png" "gnuplot is not installed"
  assert_no_output_file "$TMP/routes.png"
}

@test "on a TTY a text heatmap goes to stderr, stdout stays TSV" {
  command -v script >/dev/null || skip "script(1) is not installed"
  run script -qec "'$BIN/ufo-route' '$S' >'$TMP/rows.tsv'" /dev/null
  assert_success
  assert_output --partial "p(own) per layer"
  assert_output --regexp $'alpha +[^\n]*[SO] [^\n]*[SO]'
  [ "$(head -1 "$TMP/rows.tsv")" = $'task\tlayer\tp_shared\tp_own\troute' ]
  [ "$(wc -l <"$TMP/rows.tsv")" -eq 5 ]
}

@test "bad input: a dense checkpoint" {
  run --separate-stderr "$BIN/ufo-route" "$D"
  assert_exit_error 1 "$D" "is a dense checkpoint, not a Task-MoE supernet"
  [ -z "$output" ]
  run --separate-stderr "$BIN/ufo-route" "$D" --harden --set main:0=own -o "$TMP/out.h5"
  assert_exit_error 1 "$D" "is a dense checkpoint"
  assert_no_output_file "$TMP/out.h5"
}

@test "bad input: a route table with an unknown task" {
  printf 'task\tlayer\tpath\ngamma\t0\town\ngamma\t1\tshared\n' >"$TMP/other.tsv"
  run --separate-stderr "$BIN/ufo-route" "$S" --apply "$TMP/other.tsv" -o "$TMP/out.h5"
  assert_exit_error 1 "$TMP/other.tsv" "gamma" "tasks: alpha, beta"
  assert_no_output_file "$TMP/out.h5"
}

@test "bad input: a route table with the wrong number of layers" {
  "$BIN/ufo-route" --harden "$S" 2>/dev/null | head -n 4 >"$TMP/short.tsv"   # beta lacks layer 1
  run --separate-stderr "$BIN/ufo-route" "$S" --apply "$TMP/short.tsv" -o "$TMP/out.h5"
  assert_exit_error 1 "$TMP/short.tsv" "for task beta" "the supernet has 2"
  assert_no_output_file "$TMP/out.h5"
  { "$BIN/ufo-route" --harden "$S" 2>/dev/null; printf 'alpha\t2\town\n'; } >"$TMP/long.tsv"
  run --separate-stderr "$BIN/ufo-route" "$S" --apply "$TMP/long.tsv" -o "$TMP/out.h5"
  assert_exit_error 1 "$TMP/long.tsv" "3 layers for task alpha" "the supernet has 2"
  assert_no_output_file "$TMP/out.h5"
}

@test "bad input: --set with an unknown task, a layer out of range, a bad path" {
  run --separate-stderr "$BIN/ufo-route" "$S" --set nosuch:0=own -o "$TMP/out.h5"
  assert_exit_error 1 "$S" "nosuch" "tasks: alpha, beta"
  assert_no_output_file "$TMP/out.h5"
  run --separate-stderr "$BIN/ufo-route" "$S" --harden --set alpha:2=own
  assert_exit_error 1 "$S" "layer 2 is out of range"
  [ -z "$output" ]
  run --separate-stderr "$BIN/ufo-route" "$S" --set alpha:0=both -o "$TMP/out.h5"
  assert_exit_error 2 "alpha:0=both" "neither shared nor own"
  assert_no_output_file "$TMP/out.h5"
}

@test "usage errors: -o without a change, --apply or --set without -o, missing file" {
  run --separate-stderr "$BIN/ufo-route" "$S" -o "$TMP/out.h5"
  assert_exit_error 2 "-o needs"
  run --separate-stderr "$BIN/ufo-route" "$S" --apply "$TMP/x.tsv"
  assert_exit_error 2 "needs -o"
  run --separate-stderr "$BIN/ufo-route" "$S" --set alpha:0=own
  assert_exit_error 2 "needs -o"
  run --separate-stderr "$BIN/ufo-route"
  assert_exit_error 2 "supernet checkpoint is required"
  run --separate-stderr "$BIN/ufo-route" "$TMP/nosuch.h5"
  assert_exit_error 1 "$TMP/nosuch.h5" "no such file"
  assert_no_output_file "$TMP/out.h5"
}
