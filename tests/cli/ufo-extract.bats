#!/usr/bin/env bats
# ufo-extract: help, task sub-networks that predict exactly like the supernet on their route,
# route tables from a file or a pipe (with the "source" attribute of every tensor), the shared
# branch, bad input (one stderr line naming the file, non-zero exit, no output file) and
# byte-identical output for identical runs.

load common

# See ufo-train.bats: passive OpenMP waiting keeps runs fast on a loaded machine.
export OMP_WAIT_POLICY=passive

# One tiny supernet (depth 2, tasks alpha and beta) and one dense checkpoint, shared by the tests.
setup_file() {
  export TMP="$BATS_FILE_TMPDIR"
  make_supernet_fixture "$TMP"
}

setup() {
  S="$BATS_FILE_TMPDIR/supernet.h5"
  A="$BATS_FILE_TMPDIR/alpha.h5"
  B="$BATS_FILE_TMPDIR/beta.h5"
}

# source_of FILE TENSOR — the "source" attribute of /TENSOR in FILE.
source_of() {
  h5dump -a "/$2/source" "$1" | grep '(0)'
}

@test "ufo-extract --help prints usage on stdout and exits 0" {
  run --separate-stderr "$BIN/ufo-extract" --help
  assert_success
  assert_output --partial "usage: ufo-extract"
  assert_output --partial "--shared"
  assert_output --partial "--routes"
  [ -z "$stderr" ]
}

@test "--task alpha: a one-task subnet with no router that predicts exactly like the supernet" {
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha -o "$TMP/alpha-sub.h5"
  assert_success
  [ "${lines[0]}" = "$(printf 'task\troute\tsupernet_params\tsubnet_params\toutput')" ]
  [[ "${lines[1]}" == "alpha"$'\t'* ]]
  [[ "$stderr" == "ufo-extract: wrote $TMP/alpha-sub.h5 (task alpha, "*" of "*" parameters)" ]]
  h5dump -a /kind "$TMP/alpha-sub.h5" | grep -q '"subnet"'
  h5dump -a /tasks "$TMP/alpha-sub.h5" | grep -q 'SIMPLE { ( 1 ) / ( 1 ) }'
  run h5ls -r "$TMP/alpha-sub.h5"
  assert_output --partial "/tasks/alpha/head/w"
  refute_output --partial "/tasks/beta"
  refute_output --partial "router"
  refute_output --partial "/ffn/alpha"
  # The key property: the standalone model's output equals the supernet's on alpha's route.
  "$BIN/ufo-infer" -m "$TMP/alpha-sub.h5" "$A" -t 1 >"$TMP/sub.tsv" 2>/dev/null
  "$BIN/ufo-infer" -m "$S" --task alpha "$A" -t 1 >"$TMP/super.tsv" 2>/dev/null
  [ "$(wc -l <"$TMP/sub.tsv")" -eq 201 ]
  cmp "$TMP/sub.tsv" "$TMP/super.tsv"
}

@test "--task beta --json: one JSON object; predictions equal the supernet's" {
  run --separate-stderr "$BIN/ufo-extract" "$S" --task beta --json -o "$TMP/beta-sub.h5"
  assert_success
  [ "${#lines[@]}" -eq 1 ]
  python3 -c '
import json, sys
j = json.loads(sys.argv[1])
assert list(j) == ["task", "route", "supernet_params", "subnet_params", "output"], j
assert j["task"] == "beta" and len(j["route"].split(",")) == 2, j
assert all(p in ("shared", "own") for p in j["route"].split(",")), j
assert 0 < j["subnet_params"] < j["supernet_params"], j
' "$output"
  "$BIN/ufo-infer" -m "$TMP/beta-sub.h5" "$B" -t 1 >"$TMP/sub.tsv" 2>/dev/null
  "$BIN/ufo-infer" -m "$S" --task beta "$B" -t 1 >"$TMP/super.tsv" 2>/dev/null
  cmp "$TMP/sub.tsv" "$TMP/super.tsv"
}

@test "the route printed and the sources recorded follow the supernet's stored route" {
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha -o "$TMP/x.h5"
  assert_success
  route=$(cut -f2 <<<"${lines[1]}")
  IFS=, read -r -a paths <<<"$route"
  [ "${#paths[@]}" -eq 2 ]
  for l in 0 1; do
    if [ "${paths[$l]}" = own ]; then want=alpha; else want=shared; fi
    source_of "$TMP/x.h5" "blocks/$l/ffn/shared/fc2/b" | grep -q "blocks/$l/ffn/$want/fc2/b"
  done
  source_of "$TMP/x.h5" tasks/alpha/head/w | grep -q '"tasks/alpha/head/w"'
  source_of "$TMP/x.h5" embed/pos | grep -q '"embed/pos"'
  h5dump -a /tool "$TMP/x.h5" | grep -q '"ufo-extract"'
  h5dump -a /parent "$TMP/x.h5" | grep -qF "\"$S\""
  h5dump -a /parent_checksum "$TMP/x.h5" | grep -qE '"[0-9a-f]{16}"'
}

@test "--routes FILE overrides the stored routes; each tensor's source names the chosen FFN" {
  printf 'task\tlayer\tpath\nalpha\t0\town\nalpha\t1\tshared\n' >"$TMP/routes.tsv"
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha --routes "$TMP/routes.tsv" -o "$TMP/x.h5"
  assert_success
  [ "$(cut -f2 <<<"${lines[1]}")" = "own,shared" ]
  source_of "$TMP/x.h5" blocks/0/ffn/shared/fc1/w | grep -q 'blocks/0/ffn/alpha/fc1/w'
  source_of "$TMP/x.h5" blocks/1/ffn/shared/fc1/w | grep -q 'blocks/1/ffn/shared/fc1/w'
  # The same table through stdin gives the same weights.
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha --routes - -o "$TMP/y.h5" <"$TMP/routes.tsv"
  assert_success
  "$BIN/ufo-infer" -m "$TMP/x.h5" "$A" -t 1 >"$TMP/x.tsv" 2>/dev/null
  "$BIN/ufo-infer" -m "$TMP/y.h5" "$A" -t 1 >"$TMP/y.tsv" 2>/dev/null
  cmp "$TMP/x.tsv" "$TMP/y.tsv"
}

@test "pipe: ufo-route --harden S | ufo-extract --routes - --task alpha S" {
  [ -x "$BIN/ufo-route" ] || skip "ufo-route is not built"
  run --separate-stderr bash -c 'set -o pipefail; "$1/ufo-route" --harden "$2" | "$1/ufo-extract" --routes - --task alpha "$2" -o "$3"' \
      _ "$BIN" "$S" "$TMP/piped.h5"
  assert_success
  [[ "${lines[1]}" == "alpha"$'\t'* ]]
  h5dump -a /kind "$TMP/piped.h5" | grep -q '"subnet"'
  # The route used is the one the table gave for alpha, block by block.
  want=$("$BIN/ufo-route" --harden "$S" 2>/dev/null | awk -F'\t' '$1 == "alpha" { printf "%s%s", sep, $3; sep = "," }')
  [ "$(cut -f2 <<<"${lines[1]}")" = "$want" ]
}

@test "the supernet can come from stdin (no parent path is recorded)" {
  run --separate-stderr "$BIN/ufo-extract" - --task beta -o "$TMP/x.h5" <"$S"
  assert_success
  "$BIN/ufo-infer" -m "$TMP/x.h5" "$B" -t 1 >"$TMP/sub.tsv" 2>/dev/null
  "$BIN/ufo-infer" -m "$S" --task beta "$B" -t 1 >"$TMP/super.tsv" 2>/dev/null
  cmp "$TMP/sub.tsv" "$TMP/super.tsv"
  h5dump -a /parent "$TMP/x.h5" | grep -q '(0): ""'
}

@test "--shared: every shared FFN, no task head; ufo-infer refuses it in one line" {
  run --separate-stderr "$BIN/ufo-extract" "$S" --shared -o "$TMP/shared.h5"
  assert_success
  [ "${lines[1]%%$'\t'*}" = shared ]
  [ "$(cut -f2 <<<"${lines[1]}")" = "shared,shared" ]
  [[ "$stderr" == *"shared branch"* ]]
  run h5ls -r "$TMP/shared.h5"
  refute_output --partial "/tasks"
  refute_output --partial "/ffn/alpha"
  assert_output --partial "/blocks/1/ffn/shared/fc2/w"
  source_of "$TMP/shared.h5" blocks/0/ffn/shared/fc1/w | grep -q '"blocks/0/ffn/shared/fc1/w"'
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/shared.h5" "$A" -t 1
  assert_exit_error 1 "$TMP/shared.h5" "no task head"
  [ -z "$output" ]
}

@test "a dense checkpoint is not a supernet" {
  run --separate-stderr "$BIN/ufo-extract" "$BATS_FILE_TMPDIR/dense.h5" --task main -o "$TMP/out.h5"
  assert_exit_error 1 "dense.h5: is a dense checkpoint, not a Task-MoE supernet"
  [ -z "$output" ]
  assert_no_output_file "$TMP/out.h5"
}

@test "an extracted subnet is not a supernet either" {
  "$BIN/ufo-extract" "$S" --task alpha -o "$TMP/sub.h5" >/dev/null 2>&1
  run --separate-stderr "$BIN/ufo-extract" "$TMP/sub.h5" --task alpha -o "$TMP/out.h5"
  assert_exit_error 1 "sub.h5: is a subnet checkpoint, not a Task-MoE supernet"
  assert_no_output_file "$TMP/out.h5"
}

@test "an unknown task names the supernet and lists its tasks" {
  run --separate-stderr "$BIN/ufo-extract" "$S" --task nosuch -o "$TMP/out.h5"
  assert_exit_error 1 "supernet.h5: no task nosuch (tasks: alpha, beta)"
  [ -z "$output" ]
  assert_no_output_file "$TMP/out.h5"
}

@test "a route table of another supernet (unknown task) names the table" {
  printf 'task\tlayer\tpath\ngamma\t0\town\ngamma\t1\tshared\n' >"$TMP/other.tsv"
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha --routes "$TMP/other.tsv" -o "$TMP/out.h5"
  assert_exit_error 1 "other.tsv" "gamma"
  [ -z "$output" ]
  assert_no_output_file "$TMP/out.h5"
}

@test "a route table with 3 layers for a depth-2 supernet names the table" {
  printf 'task\tlayer\tpath\nalpha\t0\town\nalpha\t1\tshared\nalpha\t2\town\n' >"$TMP/deep.tsv"
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha --routes "$TMP/deep.tsv" -o "$TMP/out.h5"
  assert_exit_error 1 "deep.tsv" "3 layers" "has 2"
  assert_no_output_file "$TMP/out.h5"
}

@test "a missing output directory is one line naming the path" {
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha -o "$TMP/nodir/out.h5"
  assert_exit_error 1 "$TMP/nodir/out.h5" "directory does not exist"
  [ -z "$output" ]
  [ ! -e "$TMP/nodir" ]
}

@test "usage errors: --task and --shared, neither, no -o, -o -, two stdins (exit 2)" {
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha --shared -o "$TMP/out.h5"
  assert_exit_error 2 "exactly one of --task"
  run --separate-stderr "$BIN/ufo-extract" "$S" -o "$TMP/out.h5"
  assert_exit_error 2 "exactly one of --task"
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha
  assert_exit_error 2 "output"
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha -o -
  assert_exit_error 2 "stdout"
  run --separate-stderr "$BIN/ufo-extract" - --routes - --task alpha -o "$TMP/out.h5" <"$S"
  assert_exit_error 2 "stdin"
  run --separate-stderr "$BIN/ufo-extract" --task alpha -o "$TMP/out.h5"
  assert_exit_error 2 "supernet"
  assert_no_output_file "$TMP/out.h5"
}

@test "deterministic: two runs with SOURCE_DATE_EPOCH=0 give byte-identical files" {
  SOURCE_DATE_EPOCH=0 "$BIN/ufo-extract" "$S" --task beta -o "$TMP/d.h5" >/dev/null 2>&1
  mv "$TMP/d.h5" "$TMP/first.h5"
  SOURCE_DATE_EPOCH=0 "$BIN/ufo-extract" "$S" --task beta -o "$TMP/d.h5" >/dev/null 2>&1
  cmp "$TMP/first.h5" "$TMP/d.h5"
}
