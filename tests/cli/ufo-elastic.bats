#!/usr/bin/env bats
# One-for-All: ufo-train --elastic and its options, sub-architecture specs in ufo-infer,
# ufo-extract and ufo-bench (--arch, --sample, --archs, --eval), ufo-train --arch, and bad input.

load common

export OMP_WAIT_POLICY=passive

setup_file() {
  export D="$BATS_FILE_TMPDIR"
  make_elastic_fixture "$D"
}

setup() {
  EL=("$BIN/ufo-train" "$D/d.h5" --init "$D/task.h5" --elastic -b 16 -t 1 --seed 1 --log-every 2)
}

# ints FILE DSET: an int dataset's values as "1,2,3"
ints() { h5data "$1" "$2" | sed 's/^DATA{\(.*\)}$/\1/'; }

# close_tsv A B: two ufo-infer --logits tables whose numbers agree within 2e-5 (print precision)
close_tsv() {
  python3 - "$1" "$2" <<'PY'
import sys
a = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
b = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])]
assert len(a) == len(b) and len(a) > 1, (len(a), len(b))
worst = 0.0
for ra, rb in zip(a[1:], b[1:]):
    for x, y in zip(ra[5:], rb[5:]):
        worst = max(worst, abs(float(x) - float(y)))
print("worst", worst)
sys.exit(0 if worst <= 2e-5 else 1)
PY
}

@test "--elastic: kind elastic, the space stored, sorting and the space reported; infer runs the largest by default" {
  run --separate-stderr "${EL[@]}" --steps 2 -o "$TMP/e.h5"
  assert_success
  [[ "$stderr" == *"importance sorting reordered heads or hidden units in "*" places"* ]]
  [[ "$stderr" == *"elastic space of 10^"*"elastic depth 1,2,3 heads 1,2 mlp 16,24,32"* ]]
  h5dump -a /kind "$TMP/e.h5" | grep -q '"elastic"'
  [ "$(ints "$TMP/e.h5" /arch/elastic_depth)" = "1,2,3" ]
  [ "$(ints "$TMP/e.h5" /arch/elastic_heads)" = "1,2" ]
  [ "$(ints "$TMP/e.h5" /arch/elastic_hidden)" = "16,24,32" ]
  "$BIN/ufo-infer" -m "$TMP/e.h5" "$D/v.h5" --logits > "$TMP/a.tsv" 2>/dev/null
  "$BIN/ufo-infer" -m "$TMP/e.h5" --arch "depth=3 heads=2 mlp=32" "$D/v.h5" --logits > "$TMP/b.tsv" 2>/dev/null
  cmp "$TMP/a.tsv" "$TMP/b.tsv"
}

@test "--elastic-depth, --elastic-heads, --elastic-mlp-ratio: the space in the checkpoint (sorted, deduplicated)" {
  run --separate-stderr "${EL[@]}" --steps 1 --elastic-depth 3,2 --elastic-heads 2,1,2 --elastic-mlp-ratio 2,1 -o "$TMP/e.h5"
  assert_success
  [ "$(ints "$TMP/e.h5" /arch/elastic_depth)" = "2,3" ]
  [ "$(ints "$TMP/e.h5" /arch/elastic_heads)" = "1,2" ]
  [ "$(ints "$TMP/e.h5" /arch/elastic_hidden)" = "16,32" ]
}

@test "--sandwich-random, --kd-weight, --kd-temperature each change training; same flags reproduce it exactly" {
  "${EL[@]}" --steps 3 -o "$TMP/base.h5" >/dev/null 2>&1
  "${EL[@]}" --steps 3 -o "$TMP/again.h5" >/dev/null 2>&1
  tensor_same "$TMP/base.h5" "$TMP/again.h5" /blocks/0/attn/qkv/w /blocks/0/attn/qkv/w
  for opt in "--sandwich-random 0" "--sandwich-random 3" "--kd-weight 0" "--kd-weight 0.5" "--kd-temperature 4"; do
    "${EL[@]}" --steps 3 $opt -o "$TMP/o.h5" >/dev/null 2>&1
    tensor_differs "$TMP/base.h5" "$TMP/o.h5" /blocks/0/ffn/shared/fc1/w /blocks/0/ffn/shared/fc1/w || { echo "$opt"; false; }
  done
}

@test "importance sorting keeps the function (lr 0: logits as before); --no-sort-importance keeps the order" {
  "${EL[@]}" --steps 1 --lr 0 --min-lr 0 -o "$TMP/sorted.h5" >/dev/null 2>&1
  "${EL[@]}" --steps 1 --lr 0 --min-lr 0 --no-sort-importance -o "$TMP/kept.h5" >/dev/null 2>&1
  "$BIN/ufo-infer" -m "$D/task.h5" "$D/v.h5" --logits > "$TMP/t.tsv" 2>/dev/null
  "$BIN/ufo-infer" -m "$TMP/sorted.h5" "$D/v.h5" --logits > "$TMP/s.tsv" 2>/dev/null
  close_tsv "$TMP/t.tsv" "$TMP/s.tsv"
  tensor_differs "$D/task.h5" "$TMP/sorted.h5" /blocks/0/ffn/shared/fc1/w /blocks/0/ffn/shared/fc1/w
  tensor_same "$D/task.h5" "$TMP/kept.h5" /blocks/0/ffn/shared/fc1/w /blocks/0/ffn/shared/fc1/w
  tensor_same "$D/task.h5" "$TMP/kept.h5" /blocks/2/attn/qkv/w /blocks/2/attn/qkv/w
  # the smallest sub-network differs between the two: sorting moved weights into it
  "$BIN/ufo-infer" -m "$TMP/sorted.h5" --arch "depth=1 heads=1 mlp=16" "$D/v.h5" --logits > "$TMP/a.tsv" 2>/dev/null
  "$BIN/ufo-infer" -m "$TMP/kept.h5" --arch "depth=1 heads=1 mlp=16" "$D/v.h5" --logits > "$TMP/b.tsv" 2>/dev/null
  ! cmp -s "$TMP/a.tsv" "$TMP/b.tsv"
}

@test "--elastic resume is bit-exact (sandwich draws depend on seed and step only)" {
  "${EL[@]}" --steps 6 -o "$TMP/full.h5" > "$TMP/full.tsv" 2>/dev/null
  "${EL[@]}" --steps 6 --stop-after 3 -o "$TMP/part.h5" >/dev/null 2>&1
  "$BIN/ufo-train" "$D/d.h5" --elastic --resume "$TMP/part.ckpt.h5" --steps 6 -b 16 -t 1 --seed 1 --log-every 2 \
      -o "$TMP/part.h5" >/dev/null 2>&1
  for t in /blocks/0/attn/qkv/w /blocks/2/ffn/shared/fc2/w /tasks/main/head/w; do
    tensor_same "$TMP/full.h5" "$TMP/part.h5" "$t" "$t"
  done
}

@test "ufo-extract --arch: smaller tensors, same logits as --arch on the elastic model, provenance names both" {
  spec="depth=2 heads=1,2 mlp=24,16"
  run --separate-stderr "$BIN/ufo-extract" "$D/el.h5" --arch "$spec" -o "$TMP/x.h5"
  assert_success
  assert_line --index 0 "$(printf 'arch\tmodel_params\tsubnet_params\tsubnet_mflops\toutput')"
  [[ "${lines[1]}" == "$spec"$'\t'* ]]
  h5dump -a /kind "$TMP/x.h5" | grep -q '"subnet"'
  h5dump -a /parent_arch "$TMP/x.h5" | grep -q "\"$spec\""
  h5dump -a /parent "$TMP/x.h5" | grep -q "el.h5"
  h5ls "$TMP/x.h5/blocks/0/attn/qkv/w" | grep -q "{24, 16}"
  h5ls "$TMP/x.h5/blocks/0/ffn/shared/fc2/w" | grep -q "{16, 24}"
  ! h5ls "$TMP/x.h5/blocks/2" >/dev/null 2>&1
  [ "$(h5_param_count "$TMP/x.h5")" -lt "$(h5_param_count "$D/el.h5")" ]
  [ "$(stat -c %s "$TMP/x.h5")" -lt "$(stat -c %s "$D/el.h5")" ]
  "$BIN/ufo-infer" -m "$D/el.h5" --arch "$spec" "$D/v.h5" --logits -o "$TMP/p.h5" > "$TMP/a.tsv" 2>/dev/null
  h5dump -a /arch "$TMP/p.h5" | grep -q "\"$spec\""   # the predictions file names the sub-network
  "$BIN/ufo-infer" -m "$TMP/x.h5" "$D/v.h5" --logits > "$TMP/b.tsv" 2>/dev/null
  close_tsv "$TMP/a.tsv" "$TMP/b.tsv"
  # --arch - reads the spec from stdin; --json prints one object
  echo "$spec" | "$BIN/ufo-extract" "$D/el.h5" --arch - -o "$TMP/y.h5" --json > "$TMP/y.json" 2>/dev/null
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["arch"]==sys.argv[2] and j["subnet_params"]>0' "$TMP/y.json" "$spec"
  tensor_same "$TMP/x.h5" "$TMP/y.h5" /blocks/1/attn/proj/w /blocks/1/attn/proj/w
}

@test "ufo-train --arch: a sub-architecture trained alone has per-block widths; infer and bench run it" {
  run --separate-stderr "$BIN/ufo-train" "$D/d.h5" --preset tiny --depth 3 --arch "depth=2 heads=2,1 mlp=32,8" --steps 2 \
      -b 16 -t 1 -o "$TMP/a.h5"
  assert_success
  [ "$(ints "$TMP/a.h5" /arch/block_heads)" = "2,1" ]
  [ "$(ints "$TMP/a.h5" /arch/block_hidden)" = "32,8" ]
  h5ls "$TMP/a.h5/blocks/1/ffn/shared/fc1/w" | grep -q "{8, 16}"
  "$BIN/ufo-infer" -m "$TMP/a.h5" "$D/v.h5" --summary-only >/dev/null 2>&1
  "$BIN/ufo-bench" -m "$TMP/a.h5" -b 2 -t 1 --reps 1 -o csv >/dev/null 2>&1
}

@test "ufo-bench --sample N: largest, smallest and N distinct random rows; --eval adds accuracy; seeded" {
  run --separate-stderr "$BIN/ufo-bench" -m "$D/el.h5" --sample 4 --seed 3 -b 8 -t 1 --reps 2 --eval "$D/v.h5"
  assert_success
  assert_line --index 0 "$(printf 'id\tarch\tdepth\tparams\tmflops\tthreads\tlatency_ms\tbatch\timg_per_s\taccuracy\tloss')"
  [ "${#lines[@]}" -eq 7 ]
  [[ "${lines[1]}" == $'0\tdepth=3 heads=2,2,2 mlp=32,32,32\t3\t'* ]]
  [[ "${lines[2]}" == $'1\tdepth=1 heads=1 mlp=16\t1\t'* ]]
  [[ "$stderr" == *"6 sub-networks of $D/el.h5 in "* ]]
  [ "$(printf '%s\n' "${lines[@]:1}" | cut -f2 | sort -u | wc -l)" -eq 6 ]
  printf '%s\n' "${lines[@]:1}" | awk -F'\t' '$10 < 0 || $10 > 1 || $4 <= 0 || $7 <= 0 { exit 1 }'
  # the same seed draws the same sub-networks; another seed others
  a=$("$BIN/ufo-bench" -m "$D/el.h5" --sample 4 --seed 3 -b 2 -t 1 --reps 1 2>/dev/null | cut -f2)
  b=$("$BIN/ufo-bench" -m "$D/el.h5" --sample 4 --seed 3 -b 2 -t 1 --reps 1 2>/dev/null | cut -f2)
  c=$("$BIN/ufo-bench" -m "$D/el.h5" --sample 4 --seed 4 -b 2 -t 1 --reps 1 2>/dev/null | cut -f2)
  [ "$a" = "$b" ] && [ "$a" != "$c" ]
}

@test "ufo-bench --archs FILE|-: the listed specs (comments, blank lines, a table's first column); --json; --arch" {
  printf '# specs\n\ndepth=1 heads=1 mlp=16\ndepth=2\textra\n' > "$TMP/specs.txt"
  run --separate-stderr "$BIN/ufo-bench" -m "$D/el.h5" --archs "$TMP/specs.txt" -b 2 -t 1 --reps 1 --json
  assert_success
  [ "${#lines[@]}" -eq 2 ]
  python3 -c 'import json,sys; r=[json.loads(l) for l in sys.stdin]; assert [x["arch"] for x in r]==["depth=1 heads=1 mlp=16","depth=2 heads=2,2 mlp=32,32"], r' <<<"$output"
  run --separate-stderr bash -c "cut -f1 '$TMP/specs.txt' | '$BIN/ufo-bench' -m '$D/el.h5' --archs - -b 2 -t 1 --reps 1 -o csv"
  assert_success
  assert_line --index 0 "id,arch,depth,params,mflops,threads,latency_ms,batch,img_per_s"
  run --separate-stderr "$BIN/ufo-bench" -m "$D/el.h5" --arch "depth=1 heads=1 mlp=16" -b 1 -t 1 --reps 1 -o tsv
  assert_success
  [[ "$stderr" == *"active params"* ]]
  [[ "${lines[1]}" == *$'\tinfer\t1\t1\t1\t'* ]]
}

@test "bad specs: one line naming the model and the problem, exit 1, no output file" {
  for t in "depth=9:depth 9 is not in the elastic space (depths 1,2,3)" \
           "heads=3:heads 3 in block 0 is above the stored maximum 2" \
           "mlp=20:mlp 20 in block 0 is not one of the space's choices (16,24,32)" \
           "depth=3 heads=1,2:heads lists 2 values for depth 3" \
           "width=2:unknown key 'width'" \
           "depth=2 depth=2:'depth' is given twice" ; do
    spec=${t%%:*} want=${t#*:}
    run --separate-stderr "$BIN/ufo-extract" "$D/el.h5" --arch "$spec" -o "$TMP/x.h5"
    assert_exit_error 1 "$D/el.h5" "$want"
    assert_no_output_file "$TMP/x.h5"
    run --separate-stderr "$BIN/ufo-infer" -m "$D/el.h5" --arch "$spec" "$D/v.h5"
    assert_exit_error 1 "$D/el.h5" "$want"
    run --separate-stderr "$BIN/ufo-bench" -m "$D/el.h5" --arch "$spec" -b 1 -t 1 --reps 1
    assert_exit_error 1 "$D/el.h5" "$want"
  done
  printf 'depth=1\ndepth=7\n' > "$TMP/s.txt"
  run --separate-stderr "$BIN/ufo-bench" -m "$D/el.h5" --archs "$TMP/s.txt" -b 1 -t 1 --reps 1
  assert_exit_error 1 "$TMP/s.txt" "depth 7 is not in the elastic space"
  : > "$TMP/empty.txt"
  run --separate-stderr "$BIN/ufo-bench" -m "$D/el.h5" --archs "$TMP/empty.txt" -b 1 -t 1
  assert_exit_error 1 "$TMP/empty.txt" "holds no sub-architecture spec"
  run --separate-stderr bash -c "'$BIN/ufo-extract' '$D/el.h5' --arch - -o '$TMP/x.h5' < /dev/null"
  assert_exit_error 1 "<stdin>" "holds no sub-architecture spec"
  run --separate-stderr "$BIN/ufo-train" "$D/d.h5" --preset tiny --arch "depth=5" --steps 1 -o "$TMP/x.h5"
  assert_exit_error 2 "depth 5 is above the model's 2 blocks"
  run --separate-stderr "$BIN/ufo-train" "$D/d.h5" --preset tiny --arch "deep" --steps 1 -o "$TMP/x.h5"
  assert_exit_error 2 "--arch: 'deep' is neither a family (vit, cnn) nor a sub-architecture"
}

@test "bad elastic runs and tables: clear errors before any training" {
  run --separate-stderr "$BIN/ufo-train" "$D/d.h5" --kd-weight 0.5 --steps 1 -o "$TMP/x.h5"
  assert_exit_error 2 "--kd-weight needs --elastic"
  run --separate-stderr "${EL[@]}" --steps 1 --kd-weight 2 -o "$TMP/x.h5"
  assert_exit_error 2 "--kd-weight must be in [0,1]"
  run --separate-stderr "${EL[@]}" --steps 1 --sandwich-random -1 -o "$TMP/x.h5"
  assert_exit_error 2 "--sandwich-random must be in 0..64"
  run --separate-stderr "${EL[@]}" --steps 1 --kd-temperature 0 -o "$TMP/x.h5"
  assert_exit_error 2 "--kd-temperature must be in (0,100]"
  run --separate-stderr "${EL[@]}" --steps 1 --sort-importance --no-sort-importance -o "$TMP/x.h5"
  assert_exit_error 2 "not both"
  run --separate-stderr "${EL[@]}" --steps 1 --elastic-depth 1,2 -o "$TMP/x.h5"
  assert_exit_error 1 "$D/task.h5" "the largest elastic depth choice is 2, not the model's 3"
  run --separate-stderr "${EL[@]}" --steps 1 --elastic-heads 1,3 -o "$TMP/x.h5"
  assert_exit_error 1 "--elastic-heads: 3 is outside 1..2"
  run --separate-stderr "${EL[@]}" --steps 1 --elastic-mlp-ratio 1,x -o "$TMP/x.h5"
  assert_exit_error 1 "--elastic-mlp-ratio: 'x' is not a positive number"
  assert_no_output_file "$TMP/x.h5"
  run --separate-stderr "$BIN/ufo-train" --task a="$D/d.h5" --task b="$D/v.h5" --elastic --steps 1 -o "$TMP/x.h5"
  assert_exit_error 2 "--elastic trains one task"
  "$BIN/ufo-train" "$D/d.h5" --family cnn --preset tiny --steps 1 -b 16 -t 1 -o "$TMP/cnn.h5" >/dev/null 2>&1
  run --separate-stderr "$BIN/ufo-train" "$D/d.h5" --init "$TMP/cnn.h5" --elastic --steps 1 -o "$TMP/x.h5"
  assert_exit_error 1 "$TMP/cnn.h5" "--elastic needs a ViT, not a cnn"
  run --separate-stderr "$BIN/ufo-train" "$D/d.h5" --resume "$D/el.h5" --steps 9 -o "$TMP/x.h5"
  assert_failure
  run --separate-stderr "$BIN/ufo-extract" "$D/el.h5" --task main -o "$TMP/x.h5"
  assert_exit_error 1 "$D/el.h5" "is an elastic checkpoint, not a Task-MoE supernet"
  run --separate-stderr "$BIN/ufo-bench" -m "$D/task.h5" --sample 2 -b 1 -t 1
  assert_exit_error 1 "$D/task.h5" "is not an elastic model"
  run --separate-stderr "$BIN/ufo-bench" -m "$D/el.h5" --sample 300 -b 1 -t 1
  assert_exit_error 1 "the elastic space holds only 258 sub-networks"
  run --separate-stderr "$BIN/ufo-bench" -m "$D/el.h5" --eval "$D/v.h5" -b 1 -t 1
  assert_exit_error 2 "--eval applies to --sample and --archs"
  run --separate-stderr "$BIN/ufo-bench" -m "$D/el.h5" --sample 2 --archs - -b 1 -t 1
  assert_exit_error 2 "not both"
  run --separate-stderr "$BIN/ufo-bench" -m "$D/el.h5" --sample 2 -b 1,2 -t 1
  assert_exit_error 2 "-b and -t take one value each"
  run --separate-stderr "$BIN/ufo-infer" -m "$D/el.h5" --arch - - < "$D/v.h5"
  assert_exit_error 2 "--arch - reads stdin"
}

@test "hostile elastic checkpoints: a space out of range, a partial space, a kind that does not match" {
  E="$BIN/h5edit"
  cp "$D/el.h5" "$TMP/m.h5"; "$E" "$TMP/m.h5" declare /arch/elastic_depth i32 3
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/m.h5" "$D/v.h5"
  assert_exit_error 1 "$TMP/m.h5" "/arch/elastic_depth declares shape [3] but stores no data"
  cp "$D/el.h5" "$TMP/m.h5"; "$E" "$TMP/m.h5" declare /arch/elastic_hidden i32 1000000000
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/m.h5" "$D/v.h5"
  assert_exit_error 1 "$TMP/m.h5" "/arch/elastic_hidden has shape" "expected 1 to 32 entries"
  cp "$D/el.h5" "$TMP/m.h5"; "$E" "$TMP/m.h5" delete /arch/elastic_heads
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/m.h5" "$D/v.h5"
  assert_exit_error 1 "$TMP/m.h5" "an elastic space needs /arch/elastic_depth, /arch/elastic_heads and /arch/elastic_hidden"
  cp "$D/el.h5" "$TMP/m.h5"; "$E" "$TMP/m.h5" str / kind dense
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/m.h5" "$D/v.h5"
  assert_exit_error 1 "$TMP/m.h5" "kind is dense, but the architecture has an elastic space"
  cp "$D/task.h5" "$TMP/m.h5"; "$E" "$TMP/m.h5" str / kind elastic
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/m.h5" "$D/v.h5"
  assert_exit_error 1 "$TMP/m.h5" "kind is elastic, but the architecture has no elastic space"
  ufo_x="$BIN/ufo-extract"
  "$ufo_x" "$D/el.h5" --arch "depth=2 heads=1" -o "$TMP/s.h5" >/dev/null 2>&1
  cp "$TMP/s.h5" "$TMP/m.h5"; "$E" "$TMP/m.h5" declare /arch/block_heads i32 5
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/m.h5" "$D/v.h5"
  assert_exit_error 1 "$TMP/m.h5" "/arch/block_heads has shape [5], expected 1 to 2 entries"
}
