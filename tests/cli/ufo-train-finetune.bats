#!/usr/bin/env bats
# ufo-train --init / --new-head / --freeze (fine-tuning and new tasks): starting from another
# checkpoint's weights, fresh heads, frozen parts, and what the output records.

load common

export OMP_WAIT_POLICY=passive

setup_file() {
  export D="$BATS_FILE_TMPDIR"
  make_synth_supernet "$D/super.h5"                # tasks alpha (10 classes) and beta (4)
  "$BIN/ufo-extract" --task alpha "$D/super.h5" -o "$D/alpha-sub.h5" >/dev/null 2>&1
  "$BIN/ufo-extract" --shared "$D/super.h5" -o "$D/shared.h5" >/dev/null 2>&1
  make_synth_dataset "$D/new.h5" 64 6              # a new task: 6 classes
}

setup() {
  FT=("$BIN/ufo-train" -b 16 -t 1 --seed 1 --log-every 4)
}

@test "--init from a task subnet: with --lr 0 the model predicts exactly as the subnet; parent and checksum name it" {
  run --separate-stderr "${FT[@]}" "$D/alpha.h5" --init "$D/alpha-sub.h5" --steps 2 --lr 0 --min-lr 0 -o "$TMP/ft.h5"
  assert_success
  [[ "$stderr" == *"started from $D/alpha-sub.h5"*"its head"* ]]
  "$BIN/ufo-infer" -m "$D/alpha-sub.h5" "$D/alpha.h5" --json > "$TMP/a.jsonl" 2>/dev/null
  "$BIN/ufo-infer" -m "$TMP/ft.h5" "$D/alpha.h5" --json > "$TMP/b.jsonl" 2>/dev/null
  cmp "$TMP/a.jsonl" "$TMP/b.jsonl"
  for t in /embed/patch/w /blocks/1/attn/qkv/w /blocks/0/ffn/shared/fc1/w /tasks/main/head/w; do
    src=$t; [ "$t" = /tasks/main/head/w ] && src=/tasks/alpha/head/w
    tensor_same "$D/alpha-sub.h5" "$TMP/ft.h5" "$src" "$t"
  done
  sum=$(python3 -c 'import sys
h = 0xcbf29ce484222325
for b in open(sys.argv[1], "rb").read(): h = ((h ^ b) * 0x100000001b3) % 2**64
print("%016x" % h)' "$D/alpha-sub.h5")
  h5dump -a /parent_checksum "$TMP/ft.h5" | grep -q "\"$sum\""
  h5dump -a /parent "$TMP/ft.h5" | grep -q "alpha-sub.h5"
}

@test "--init from the shared branch: a fresh head for the new task's classes; training moves it" {
  run --separate-stderr "${FT[@]}" "$D/new.h5" --init "$D/shared.h5" --steps 8 --lr 0.01 -o "$TMP/new.h5"
  assert_success
  [[ "$stderr" == *"a fresh head"* ]]
  h5ls "$TMP/new.h5/tasks/main/head/w" | grep -q "{6, 16}"
  tensor_differs "$D/shared.h5" "$TMP/new.h5" /blocks/0/attn/qkv/w /blocks/0/attn/qkv/w   # not frozen: trained
  "$BIN/ufo-infer" -m "$TMP/new.h5" "$D/new.h5" --summary-only > /dev/null 2>&1
}

@test "--new-head: the source's head is not used even when the class count matches" {
  run --separate-stderr "${FT[@]}" "$D/alpha.h5" --init "$D/alpha-sub.h5" --new-head --steps 1 --lr 0 --min-lr 0 -o "$TMP/nh.h5"
  assert_success
  [[ "$stderr" == *"a fresh head"* ]]
  tensor_differs "$D/alpha-sub.h5" "$TMP/nh.h5" /tasks/alpha/head/w /tasks/main/head/w
  tensor_same "$D/alpha-sub.h5" "$TMP/nh.h5" /blocks/1/ffn/shared/fc2/w /blocks/1/ffn/shared/fc2/w
}

@test "--freeze attn,embed: those tensors stay bit-identical through training, the rest moves" {
  run --separate-stderr "${FT[@]}" "$D/new.h5" --init "$D/shared.h5" --freeze attn,embed --steps 8 --lr 0.01 -o "$TMP/fz.h5"
  assert_success
  for t in /embed/patch/w /embed/patch/b /embed/cls /embed/pos /blocks/0/attn/qkv/w /blocks/0/attn/qkv/b \
           /blocks/1/attn/proj/w /blocks/1/attn/proj/b; do
    tensor_same "$D/shared.h5" "$TMP/fz.h5" "$t" "$t"
  done
  for t in /blocks/0/ffn/shared/fc1/w /blocks/1/ln1/w /norm/w; do
    tensor_differs "$D/shared.h5" "$TMP/fz.h5" "$t" "$t"
  done
  # --freeze ffn instead: the FFNs stay, attention moves
  run --separate-stderr "${FT[@]}" "$D/new.h5" --init "$D/shared.h5" --freeze ffn --steps 8 --lr 0.01 -o "$TMP/fz2.h5"
  assert_success
  tensor_same "$D/shared.h5" "$TMP/fz2.h5" /blocks/1/ffn/shared/fc2/w /blocks/1/ffn/shared/fc2/w
  tensor_differs "$D/shared.h5" "$TMP/fz2.h5" /blocks/1/attn/qkv/w /blocks/1/attn/qkv/w
  # a frozen run resumes bit-exactly: the frozen parts are recorded in the options
  run --separate-stderr "${FT[@]}" "$D/new.h5" --init "$D/shared.h5" --freeze attn --steps 8 --stop-after 4 -o "$TMP/r.h5"
  assert_success
  run --separate-stderr "${FT[@]}" "$D/new.h5" --init "$D/shared.h5" --freeze attn --steps 8 -o "$TMP/u.h5"
  assert_success
  run --separate-stderr "${FT[@]}" "$D/new.h5" --resume "$TMP/r.ckpt.h5" --freeze attn --steps 8 -o "$TMP/r.h5"
  assert_success
  h5same "$TMP/u.h5" "$TMP/r.h5" /blocks/0/ffn/shared/fc1/w /blocks/0/ffn/shared/fc1/w
}

@test "--init, --new-head and --freeze errors: one line, right exit status, no output" {
  run --separate-stderr "${FT[@]}" "$D/new.h5" --init "$D/super.h5" --steps 1 -o "$TMP/x.h5"
  assert_exit_error 1 "is a Task-MoE supernet"
  assert_no_output_file "$TMP/x.h5"
  run --separate-stderr "${FT[@]}" "$D/new.h5" --new-head --steps 1 -o "$TMP/x.h5"
  assert_exit_error 2 "--new-head needs --init"
  run --separate-stderr "${FT[@]}" "$D/new.h5" --freeze wings --steps 1 -o "$TMP/x.h5"
  assert_exit_error 2 "unknown part 'wings'"
  run --separate-stderr "${FT[@]}" "$D/new.h5" --init "$D/shared.h5" --preset small --steps 1 -o "$TMP/x.h5"
  assert_exit_error 2 "cannot be combined with --init"
  run --separate-stderr "${FT[@]}" "$D/new.h5" --init "$TMP/missing.h5" --steps 1 -o "$TMP/x.h5"
  assert_exit_error 1 "missing.h5"
  run --separate-stderr "${FT[@]}" "$D/new.h5" --init "$D/shared.h5" --steps 1 -o "$D/shared.h5"
  assert_exit_error 2
  assert_no_output_file "$TMP/x.h5"
}
