#!/usr/bin/env bats
# ufo-search: fit, eval, select and pareto on a tiny elastic model's sampling table; the pipe
# into ufo-extract; and bad input (empty tables, missing columns, budgets nothing meets).

load common

export OMP_WAIT_POLICY=passive

setup_file() {
  export D="$BATS_FILE_TMPDIR"
  make_elastic_fixture "$D"
  "$BIN/ufo-bench" -m "$D/el.h5" --sample 28 --seed 1 --eval "$D/v.h5" -b 8 -t 1 --reps 3 > "$D/table.tsv" 2>/dev/null
  "$BIN/ufo-search" fit "$D/table.tsv" -m "$D/el.h5" -o "$D/pred.h5" >/dev/null 2>&1
}

@test "--help: the overview and each command's options; no command or an unknown one is a usage error" {
  run "$BIN/ufo-search" --help
  assert_success
  assert_output --partial "ufo-search fit TABLE"
  for c in fit eval select pareto predict; do
    run "$BIN/ufo-search" "$c" --help
    assert_success
    assert_output --partial "usage: ufo-search $c"
  done
  run --separate-stderr "$BIN/ufo-search"
  [ "$status" -eq 2 ]
  run --separate-stderr "$BIN/ufo-search" train "$D/table.tsv"
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"unknown command 'train'"* ]]
}

@test "fit: a predictor file per target column, with the space and the training rows; one TSV row per target" {
  run --separate-stderr "$BIN/ufo-search" fit "$D/table.tsv" -m "$D/el.h5" -o "$TMP/p.h5"
  assert_success
  [ "${lines[0]}" = "$(printf 'target\tmodel\trows\tfitted_by\tlength_scale\tnoise\tlog_marginal_likelihood\tfit_rmse')" ]
  [[ "${lines[1]}" == "accuracy	gp-nas	30	marginal	"* ]]
  [[ "${lines[2]}" == "latency_ms	gp-nas	30	marginal	"* ]]
  [ "${#lines[@]}" -eq 3 ]
  [[ "$stderr" == *"wrote $TMP/p.h5 (30 sub-networks, 2 targets)"* ]]
  h5dump -a /format "$TMP/p.h5" | grep -q '"ufo-predictor"'
  h5dump -a /kind "$TMP/p.h5" | grep -q '"gp-nas"'
  [ "$(h5dump -d /train/features -H "$TMP/p.h5" | grep -o 'DATASPACE.*' | head -1)" = "DATASPACE  SIMPLE { ( 30, 7 ) / ( 30, 7 ) }" ]
  h5dump -d /arch/elastic_hidden "$TMP/p.h5" >/dev/null
}

@test "fit: --target, --linear, fixed --length-scale/--noise, --json, and a table on stdin" {
  run --separate-stderr "$BIN/ufo-search" fit - -m "$D/el.h5" -o "$TMP/p.h5" --target img_per_s --linear --json < "$D/table.tsv"
  assert_success
  [ "${#lines[@]}" -eq 1 ]
  [[ "${lines[0]}" == '{"target":"img_per_s","model":"linear","rows":30,'* ]]
  run --separate-stderr "$BIN/ufo-search" fit "$D/table.tsv" -m "$D/el.h5" -o "$TMP/q.h5" --target accuracy --length-scale 2 --noise 0.01
  assert_success
  [[ "${lines[1]}" == "accuracy	gp-nas	30	fixed	2	0.01	"* ]]
  run --separate-stderr "$BIN/ufo-search" fit "$D/table.tsv" -m "$D/el.h5" -o "$TMP/q.h5" --criterion loo
  assert_success
  [[ "${lines[1]}" == "accuracy	gp-nas	30	loo	"* ]]
  run --separate-stderr "$BIN/ufo-search" fit "$D/table.tsv" -m "$D/el.h5" -o "$TMP/q.h5" --criterion best
  [ "$status" -eq 2 ]
  run --separate-stderr "$BIN/ufo-search" fit "$D/table.tsv" -m "$D/el.h5" -o "$TMP/q.h5" --length-scale 2
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"--length-scale and --noise together"* ]]
}

@test "fit: the same table gives the same predictions (deterministic), a JSON Lines table as well as TSV" {
  "$BIN/ufo-bench" -m "$D/el.h5" --archs "$D/table.tsv" -t 1 --reps 2 -b 8 --eval "$D/v.h5" --json > "$TMP/t.jsonl" 2>/dev/null
  run --separate-stderr "$BIN/ufo-search" fit "$TMP/t.jsonl" -m "$D/el.h5" -o "$TMP/j.h5" --target accuracy
  assert_success
  # The same rows again from the JSON Lines table: the specs come back in order.
  "$BIN/ufo-bench" -m "$D/el.h5" --archs "$TMP/t.jsonl" -t 1 --reps 1 -b 8 > "$TMP/t2.tsv" 2>/dev/null
  [ "$(cut -f2 "$TMP/t2.tsv")" = "$(cut -f2 "$D/table.tsv")" ]
  "$BIN/ufo-search" fit "$D/table.tsv" -m "$D/el.h5" -o "$TMP/a.h5" 2>/dev/null > "$TMP/a.tsv"
  "$BIN/ufo-search" fit "$D/table.tsv" -m "$D/el.h5" -o "$TMP/b.h5" 2>/dev/null > "$TMP/b.tsv"
  cmp "$TMP/a.tsv" "$TMP/b.tsv"
  [ "$(h5data "$TMP/a.h5" /targets/accuracy/alpha)" = "$(h5data "$TMP/b.h5" /targets/accuracy/alpha)" ]
}

@test "eval: k-fold Kendall tau, Spearman rho and RMSE for GP-NAS and the linear baseline, per target" {
  run --separate-stderr "$BIN/ufo-search" eval "$D/table.tsv" -m "$D/el.h5" --folds 5
  assert_success
  [ "${lines[0]}" = "$(printf 'target\tmodel\trows\tfolds\tkendall_tau\tspearman_rho\trmse')" ]
  [ "${#lines[@]}" -eq 5 ]
  [[ "${lines[1]}" == "accuracy	gp-nas	30	5	"* ]]
  [[ "${lines[2]}" == "accuracy	linear	30	5	"* ]]
  [[ "${lines[3]}" == "latency_ms	gp-nas	30	5	"* ]]
  awk -F'\t' 'NR > 1 && ($5 < -1 || $5 > 1 || $6 < -1 || $6 > 1 || $7 < 0) { exit 1 }' <<<"$output"
  run --separate-stderr "$BIN/ufo-search" eval "$D/table.tsv" -m "$D/el.h5" --rows 20 --folds 4 --target latency_ms --json
  assert_success
  [ "${#lines[@]}" -eq 2 ]
  [[ "${lines[0]}" == '{"target":"latency_ms","model":"gp-nas","rows":20,"folds":4,'* ]]
  run --separate-stderr "$BIN/ufo-search" eval "$D/table.tsv" -m "$D/el.h5" --folds 16
  assert_one_line_error "$D/table.tsv" "30 rows are too few for 16-fold cross-validation"
}

@test "select: the spec on stdout pipes into ufo-extract --arch -; the figures on stderr; the budget holds" {
  run --separate-stderr "$BIN/ufo-search" select "$D/pred.h5" --budget params=5k
  assert_success
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == "depth="*" heads="*" mlp="* ]]
  [[ "$stderr" == *"exhaustive of 258 sub-networks ("*" within the budget), params <= 5000: predicted, accuracy "* ]]
  spec=$output
  run --separate-stderr bash -c "'$BIN/ufo-search' select '$D/pred.h5' --budget params=5k | '$BIN/ufo-extract' '$D/el.h5' --arch - -o '$TMP/sub.h5'"
  assert_success
  [[ "${lines[1]}" == "$spec	"* ]]
  params=$(cut -f3 <<<"${lines[1]}")
  [ "$params" -le 5000 ]
  # The JSON object pipes into ufo-extract as well.
  run --separate-stderr bash -c "'$BIN/ufo-search' select '$D/pred.h5' --budget params=5k --json | '$BIN/ufo-extract' '$D/el.h5' --arch - -o '$TMP/sub2.h5'"
  assert_success
  [[ "${lines[1]}" == "$spec	"* ]]
  run --separate-stderr bash -c "echo '{\"spec\": 1}' | '$BIN/ufo-extract' '$D/el.h5' --arch - -o '$TMP/sub3.h5'"
  assert_one_line_error "<stdin>" "is not a JSON object with an \"arch\" string"
  run --separate-stderr "$BIN/ufo-search" select "$D/pred.h5" --budget params=5k --json
  assert_success
  python3 - "$output" "$spec" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
assert j["arch"] == sys.argv[2], j
assert j["params"] <= 5000 and j["budget"] == {"params": 5000.0}, j
assert j["method"] == "exhaustive" and j["evaluated"] == 258 and 0 < j["within_budget"] < 258, j
assert set(j) >= {"accuracy", "accuracy_sd", "latency_ms", "latency_ms_sd", "mflops", "depth"}, j
PY
}

@test "select: a latency budget in ms or us; evolution finds what exhaustive search finds; the seed fixes it" {
  lat=$(awk -F'\t' 'NR > 1 { s += $7; n++ } END { printf "%.4f", s / n }' "$D/table.tsv")
  run --separate-stderr "$BIN/ufo-search" select "$D/pred.h5" --budget "latency=${lat}ms" --json
  assert_success
  python3 -c "import json,sys; j = json.loads(sys.argv[1]); assert j['latency_ms'] <= $lat, j" "$output"
  ex=$("$BIN/ufo-search" select "$D/pred.h5" --budget "latency=${lat}ms" 2>/dev/null)
  us=$(python3 -c "print($lat * 1000)")
  [ "$("$BIN/ufo-search" select "$D/pred.h5" --budget "latency=${us}us" 2>/dev/null)" = "$ex" ]
  run --separate-stderr "$BIN/ufo-search" select "$D/pred.h5" --budget "latency=${lat}ms" --method evolution --generations 60 --seed 3
  assert_success
  [ "$output" = "$ex" ]
  [[ "$stderr" == *"evolution of "*" sub-networks"* ]]
  # A margin: the choice's predicted latency plus one sd stays within the budget.
  run --separate-stderr "$BIN/ufo-search" select "$D/pred.h5" --budget "latency=${lat}ms" --margin-sd 1 --json
  assert_success
  python3 -c "import json,sys; j = json.loads(sys.argv[1]); assert j['latency_ms'] + j['latency_ms_sd'] <= $lat, j" "$output"
  run --separate-stderr "$BIN/ufo-search" select "$D/pred.h5" --margin-sd -1
  [ "$status" -eq 2 ]
    # Other objective: the fastest sub-network is the smallest one.
  run --separate-stderr "$BIN/ufo-search" select "$D/pred.h5" --objective latency
  assert_success
  [[ "$stderr" == *"exhaustive of 258 sub-networks"* ]]
}

@test "select: a budget no sub-network meets is an error naming the budget and the smallest sub-network, exit 1" {
  run --separate-stderr "$BIN/ufo-search" select "$D/pred.h5" --budget params=1k
  assert_one_line_error "$D/pred.h5" "no sub-network meets the budget (params <= 1000)" "the smallest, depth=1 heads=1 mlp=16, has params "
  [ -z "$output" ]
  run --separate-stderr "$BIN/ufo-search" select "$D/pred.h5" --budget latency=1us --method evolution --generations 2
  assert_one_line_error "no sub-network meets the budget (latency_ms <= 0.001)"
}

@test "select: bad budgets and objectives are usage errors" {
  for b in params latency=fast latency=3h params=2x =5; do
    run --separate-stderr "$BIN/ufo-search" select "$D/pred.h5" --budget "$b"
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--budget"* ]]
  done
  run --separate-stderr "$BIN/ufo-search" select "$D/pred.h5" --budget power=3
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"'power' is neither computed (depth, params, mflops) nor predicted by this predictor (columns: depth, params, mflops, accuracy, latency_ms)"* ]]
  run --separate-stderr "$BIN/ufo-search" select "$D/pred.h5" --objective loss
  [ "$status" -eq 2 ]
  run --separate-stderr "$BIN/ufo-search" select "$D/pred.h5" --method random
  [ "$status" -eq 2 ]
  run --separate-stderr "$BIN/ufo-search" select "$D/pred.h5" --maximize --minimize
  [ "$status" -eq 2 ]
}

@test "pareto: cheapest first, each point better than every cheaper one; --x params; --plot draws a PNG" {
  run --separate-stderr "$BIN/ufo-search" pareto "$D/pred.h5"
  assert_success
  [ "${lines[0]}" = "$(printf 'arch\tdepth\tparams\tmflops\taccuracy\taccuracy_sd\tlatency_ms\tlatency_ms_sd')" ]
  [ "${#lines[@]}" -ge 3 ]
  awk -F'\t' 'NR > 2 && ($7 < lat || $5 < acc) { exit 1 } NR > 1 { lat = $7; acc = $5 }' <<<"$output"
  [[ "$stderr" == *"sub-networks on the front (exhaustive)"* ]]
  run --separate-stderr "$BIN/ufo-search" pareto "$D/pred.h5" --x params --budget params=5k --plot "$TMP/front.png" --json
  assert_success
  python3 - "$output" <<'PY'
import json, sys
rows = [json.loads(l) for l in sys.argv[1].splitlines()]
assert rows and all(r["params"] <= 5000 for r in rows), rows
assert all(a["params"] <= b["params"] and a["accuracy"] < b["accuracy"] for a, b in zip(rows, rows[1:])), rows
PY
  [ "$(head -c 8 "$TMP/front.png" | od -An -tx1 | tr -d ' ')" = "89504e470d0a1a0a" ]
  run --separate-stderr "$BIN/ufo-search" pareto "$D/pred.h5" --method evolution --points 4 --generations 20
  assert_success
  [[ "$stderr" == *"(evolution)"* ]]
  run --separate-stderr "$BIN/ufo-search" pareto "$D/pred.h5" --x accuracy
  [ "$status" -eq 2 ]
}

@test "predict: one row per listed spec, from a file, stdin or a sampling table's arch column; the fitted rows come back" {
  printf 'depth=2 heads=1 mlp=16\n# comment\n\ndepth=3\n' > "$TMP/specs.txt"
  run --separate-stderr "$BIN/ufo-search" predict "$D/pred.h5" --archs "$TMP/specs.txt"
  assert_success
  [ "${lines[0]}" = "$(printf 'arch\tdepth\tparams\tmflops\taccuracy\taccuracy_sd\tlatency_ms\tlatency_ms_sd')" ]
  [[ "${lines[1]}" == "depth=2 heads=1,1 mlp=16,16	2	"* ]]
  [[ "${lines[2]}" == "depth=3 heads=2,2,2 mlp=32,32,32	3	"* ]]
  [ "${#lines[@]}" -eq 3 ]
  # On the rows it was fitted on, the predictor beats their mean (a fit, not a test).
  "$BIN/ufo-search" predict "$D/pred.h5" --archs - --json < "$D/table.tsv" > "$TMP/p.jsonl"
  [ "$(wc -l < "$TMP/p.jsonl")" -eq 30 ]
  python3 - "$TMP/p.jsonl" "$D/table.tsv" <<'PY'
import json, sys
pred = [json.loads(l) for l in open(sys.argv[1])]
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])][1:]
assert [p["arch"] for p in pred] == [r[1] for r in rows]
assert all(int(p["params"]) == int(r[3]) for p, r in zip(pred, rows))
y = [float(r[9]) for r in rows]
mean = sum(y) / len(y)
rmse = (sum((p["accuracy"] - v) ** 2 for p, v in zip(pred, y)) / len(y)) ** 0.5
spread = (sum((v - mean) ** 2 for v in y) / len(y)) ** 0.5
assert rmse < spread, (rmse, spread)
PY
  run --separate-stderr "$BIN/ufo-search" predict "$D/pred.h5" --archs <(echo "depth=9")
  assert_failure
  [[ "$stderr" == *"depth 9 is not in the elastic space"* ]]
  run --separate-stderr "$BIN/ufo-search" predict "$D/pred.h5"
  [ "$status" -eq 2 ]
}

@test "bad tables: empty, header only, no arch column, a missing target column, a spec outside the space" {
  : > "$TMP/empty.tsv"
  run --separate-stderr "$BIN/ufo-search" fit "$TMP/empty.tsv" -m "$D/el.h5" -o "$TMP/p.h5"
  assert_one_line_error "$TMP/empty.tsv" "is empty"
  assert_no_output_file "$TMP/p.h5"
  head -1 "$D/table.tsv" > "$TMP/header.tsv"
  run --separate-stderr "$BIN/ufo-search" eval "$TMP/header.tsv" -m "$D/el.h5"
  assert_one_line_error "$TMP/header.tsv" "an empty table"
  cut -f1,3- "$D/table.tsv" > "$TMP/noarch.tsv"
  run --separate-stderr "$BIN/ufo-search" fit "$TMP/noarch.tsv" -m "$D/el.h5" -o "$TMP/p.h5"
  assert_one_line_error "$TMP/noarch.tsv" "has no 'arch' column"
  run --separate-stderr "$BIN/ufo-search" fit "$D/table.tsv" -m "$D/el.h5" -o "$TMP/p.h5" --target top5
  assert_one_line_error "$D/table.tsv" "no column 'top5' (columns: id, arch, depth, params"
  assert_no_output_file "$TMP/p.h5"
  cut -f1-9 "$D/table.tsv" > "$TMP/nomeasure.tsv"   # no accuracy, loss; but latency_ms stays
  run --separate-stderr "$BIN/ufo-search" fit "$TMP/nomeasure.tsv" -m "$D/el.h5" -o "$TMP/p.h5"
  assert_success
  [ "${#lines[@]}" -eq 2 ]
  sed '3s/depth=[0-9]/depth=7/' "$D/table.tsv" > "$TMP/outside.tsv"
  run --separate-stderr "$BIN/ufo-search" fit "$TMP/outside.tsv" -m "$D/el.h5" -o "$TMP/q.h5"
  assert_one_line_error "$TMP/outside.tsv: line 3" "is not in the elastic space"
  sed '4s/\t0\.[0-9]*\t\([0-9.]*\)$/\tn\/a\t\1/' "$D/table.tsv" > "$TMP/na.tsv"
  run --separate-stderr "$BIN/ufo-search" fit "$TMP/na.tsv" -m "$D/el.h5" -o "$TMP/q.h5"
  assert_one_line_error "$TMP/na.tsv" "line 4: accuracy 'n/a' is not a finite number"
  printf 'id\tarch\n1\n' > "$TMP/short.tsv"
  run --separate-stderr "$BIN/ufo-search" fit "$TMP/short.tsv" -m "$D/el.h5" -o "$TMP/q.h5"
  assert_one_line_error "$TMP/short.tsv" "line 2 has 1 cells, the header 2"
  head -c 3000 /dev/urandom > "$TMP/bin.tsv"; printf '\0' >> "$TMP/bin.tsv"
  run --separate-stderr "$BIN/ufo-search" fit "$TMP/bin.tsv" -m "$D/el.h5" -o "$TMP/q.h5"
  assert_one_line_error "$TMP/bin.tsv" "is not text"
}

@test "bad models and files: not elastic, not a predictor, missing files, outputs that would replace inputs" {
  run --separate-stderr "$BIN/ufo-search" fit "$D/table.tsv" -m "$D/task.h5" -o "$TMP/p.h5"
  assert_one_line_error "$D/task.h5" "is not an elastic model"
  run --separate-stderr "$BIN/ufo-search" fit "$D/table.tsv" -o "$TMP/p.h5"
  [ "$status" -eq 2 ]
  run --separate-stderr "$BIN/ufo-search" select "$D/el.h5"
  assert_one_line_error "$D/el.h5" "not a ufo predictor file"
  run --separate-stderr "$BIN/ufo-search" select "$TMP/missing.h5"
  assert_one_line_error "$TMP/missing.h5"
  run --separate-stderr "$BIN/ufo-search" fit "$D/table.tsv" -m "$D/el.h5" -o "$TMP/no/such/dir/p.h5"
  assert_failure
  assert_no_output_file "$TMP/no/such/dir/p.h5"
  run --separate-stderr "$BIN/ufo-search" fit "$D/table.tsv" -m "$D/el.h5" -o "$D/table.tsv"
  [ "$status" -eq 2 ]
  run --separate-stderr "$BIN/ufo-search" fit "$D/table.tsv" -m "$D/el.h5" -o -
  [ "$status" -eq 2 ]
  run --separate-stderr "$BIN/ufo-search" pareto "$D/pred.h5" --plot "$D/pred.h5"
  [ "$status" -eq 2 ]
  cp "$D/pred.h5" "$TMP/bad.h5"
  "$BIN/h5edit" "$TMP/bad.h5" delete /targets/accuracy/alpha
  run --separate-stderr "$BIN/ufo-search" select "$TMP/bad.h5"
  assert_one_line_error "$TMP/bad.h5" "/targets/accuracy/alpha"
  cp "$D/pred.h5" "$TMP/bad.h5"
  "$BIN/h5edit" "$TMP/bad.h5" double /targets/latency_ms length_scale nan
  run --separate-stderr "$BIN/ufo-search" pareto "$TMP/bad.h5"
  assert_one_line_error "$TMP/bad.h5" "/targets/latency_ms@length_scale is not a finite positive number"
  cp "$D/pred.h5" "$TMP/bad.h5"
  "$BIN/h5edit" "$TMP/bad.h5" int / format_version 9
  run --separate-stderr "$BIN/ufo-search" select "$TMP/bad.h5"
  assert_one_line_error "$TMP/bad.h5" "predictor format version 9 is not supported"
}
