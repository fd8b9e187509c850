#!/usr/bin/env bats
# Hostile and unlucky input, one test per defect class: a full disk, sizes beyond int, negative
# and huge header values, allocation bombs, integer wrap, outputs that would replace inputs,
# lax validation, messages that do not name the file, and temp files left by kill -9.
# Every case: exactly one stderr line naming the file and the problem, the exact exit code
# (1 bad input, 2 usage), no output file and no temp file left, within seconds.

load common

export OMP_WAIT_POLICY=passive

setup_file() {
  export TMP="$BATS_FILE_TMPDIR"
  make_supernet_fixture "$TMP"
  "$BIN/ufo-train" "$TMP/alpha.h5" --preset tiny -b 16 --steps 6 --stop-after 2 -t 1 -o "$TMP/run.h5" >/dev/null 2>&1
  "$BIN/ufo-train" "$TMP/alpha.h5" --arch cnn --preset tiny -b 16 --steps 2 -t 1 -o "$TMP/cnn.h5" >/dev/null 2>&1
}

setup() {
  S="$BATS_FILE_TMPDIR/supernet.h5"
  D="$BATS_FILE_TMPDIR/dense.h5"
  A="$BATS_FILE_TMPDIR/alpha.h5"
  CK="$BATS_FILE_TMPDIR/run.ckpt.h5"
  E="$BIN/h5edit"
  W="$BATS_TEST_TMPDIR"
}

# bounded CMD...: run CMD with a 5 s limit and 1 GB of address space (OpenBLAS reserves
# a few hundred MB at start-up; every bomb below asks for several GB). Under ASan
# (UFO_SANITIZE=1, make SANITIZE=1) the address-space limit is left out: ASan reserves terabytes
# of shadow memory and cannot start under it; the time limit and the error line still apply.
bounded() {
  if [ -n "${UFO_SANITIZE:-}" ]; then
    run --separate-stderr timeout 20 "$@"
  else
    run --separate-stderr bash -c 'ulimit -v 1000000; exec timeout 5 "$@"' _ "$@"
  fi
}

# full_disk CMD...: run CMD where files may not grow beyond 40 KiB (SIGXFSZ ignored, so the
# write fails with EFBIG as on a full disk).
full_disk() {
  run --separate-stderr bash -c 'trap "" XFSZ; ulimit -f 40; exec "$@"' _ "$@"
}

# --- 1. a failing write is an error, not a crash ------------------------------------------

@test "disk full: ufo-extract, ufo-train, ufo-route -o, ufo-data import and split exit 1 and leave nothing" {
  full_disk "$BIN/ufo-extract" "$S" --task alpha -o "$W/e.h5"
  [ "$status" -eq 1 ]
  assert_one_line_error "$W/e.h5" "cannot write"
  assert_no_output_file "$W/e.h5"

  full_disk "$BIN/ufo-train" "$A" --preset tiny -b 16 --steps 2 -t 1 -o "$W/m.h5"
  [ "$status" -eq 1 ]
  [[ "${stderr_lines[-1]}" == *"$W/m"*"cannot write"* ]]
  assert_no_output_file "$W/m.h5" "$W/m.ckpt.h5"

  full_disk "$BIN/ufo-route" "$S" --harden -o "$W/r.h5"
  [ "$status" -eq 1 ]
  assert_one_line_error "$W/r.h5" "cannot write"
  assert_no_output_file "$W/r.h5"

  make_synth_idx "$W/idx" 2000 10 16 16
  full_disk "$BIN/ufo-data" import-idx "$W/idx/images.idx" "$W/idx/labels.idx" --zstd 0 -o "$W/i.h5"
  [ "$status" -eq 1 ]
  assert_one_line_error "$W/i.h5" "cannot write"
  assert_no_output_file "$W/i.h5"

  "$BIN/ufo-data" import-idx "$W/idx/images.idx" "$W/idx/labels.idx" --zstd 0 -o "$W/big.h5" 2>/dev/null
  full_disk "$BIN/ufo-data" split "$W/big.h5" --fractions 0.5,0.5 --zstd 0 -o "$W/p1.h5" -o "$W/p2.h5"
  [ "$status" -eq 1 ]
  assert_one_line_error "cannot write"
  # all or nothing: the first part is not left behind when the second fails
  assert_no_output_file "$W/p1.h5" "$W/p2.h5"
}

# --- 2. sizes beyond int -------------------------------------------------------------------

@test "/images with a side of 2^32+8: clean error, no allocation" {
  cp "$A" "$W/d.h5"
  "$E" "$W/d.h5" declare /images u8 64,4294967304,8,1
  "$E" "$W/d.h5" declare /labels i32 64
  for tool in "ufo-data info" "ufo-infer -m $D" "ufo-train --preset tiny --steps 1 -o $W/m.h5"; do
    bounded $BIN/$tool "$W/d.h5"
    [ "$status" -eq 1 ]
    assert_one_line_error "$W/d.h5" "/images has shape [64,4294967304,8,1]" "limit of 16384"
  done
  assert_no_output_file "$W/m.h5"
}

@test "/images declared far larger than the data it stores: clean error" {
  cp "$A" "$W/d.h5"
  "$E" "$W/d.h5" declare /images u8 2000000000,8,8,1
  "$E" "$W/d.h5" declare /labels i32 2000000000
  bounded "$BIN/ufo-data" info "$W/d.h5"
  [ "$status" -eq 1 ]
  assert_one_line_error "$W/d.h5" "/images declares shape [2000000000,8,8,1] but stores no data"
}

# --- 3. negative and huge train_state@step --------------------------------------------------

@test "--resume with train_state step -5, 2^62 or beyond the run: clean error, no training" {
  for step in -5 4611686018427387904 100; do
    cp "$CK" "$W/ck.h5"
    "$E" "$W/ck.h5" int /train_state step "$step"
    run --separate-stderr "$BIN/ufo-train" "$A" --preset tiny -b 16 --steps 6 -t 1 --resume "$W/ck.h5" -o "$W/m.h5"
    [ "$status" -eq 1 ]
    assert_one_line_error "$W/ck.h5" "step"
    assert_no_output_file "$W/m.h5"
  done
}

# --- 4. allocation and time bombs -----------------------------------------------------------

@test "bombs: PNG of 1e6 x 1e6, JPEG of 65500^2: one line within 5 s under 1 GB" {
  python3 "$BATS_TEST_DIRNAME/craft/bomb-images.py" "$W" 1000000 1000000
  bounded "$BIN/ufo-infer" -m "$D" "$W/bomb.png"
  [ "$status" -eq 1 ]
  assert_one_line_error "$W/bomb.png" "1000000x1000000 pixels, above the limit"
  python3 "$BATS_TEST_DIRNAME/craft/bomb-images.py" "$W" 65500 65500
  bounded "$BIN/ufo-infer" -m "$D" "$W/bomb.jpg"
  [ "$status" -eq 1 ]
  assert_one_line_error "$W/bomb.jpg" "65500x65500 pixels, above the limit"
  bounded "$BIN/ufo-data" import-grid "$W/bomb.png" --cell 10 --per-class 1 -o "$W/g.h5"
  [ "$status" -eq 1 ]
  assert_one_line_error "$W/bomb.png" "above the limit"
  assert_no_output_file "$W/g.h5"
}

@test "bombs: checkpoint depth=1e9, ffn_sets=1e9, supernet depth=1e9: one line within 5 s under 1 GB" {
  for spec in "$D depth" "$D ffn_sets" "$S depth"; do
    set -- $spec
    cp "$1" "$W/m.h5"
    "$E" "$W/m.h5" int /arch "$2" 1000000000
    bounded "$BIN/ufo-infer" -m "$W/m.h5" --task alpha "$A"
    [ "$status" -eq 1 ]
    assert_one_line_error "$W/m.h5" "/arch@$2 is 1000000000, outside"
  done
}

@test "bomb: an IDX header promising 3 GB with no data fails at the end of the real data" {
  perl -e 'print pack("C4 N3", 0,0,8,3, 4000000, 28, 28)' >"$W/i.idx"
  perl -e 'print pack("C4 N", 0,0,8,1, 4000000)' >"$W/l.idx"
  bounded "$BIN/ufo-data" import-idx "$W/i.idx" "$W/l.idx" -o "$W/o.h5"
  [ "$status" -eq 1 ]
  assert_one_line_error "$W/i.idx" "truncated: header promises 3136000000 bytes of data, file has 0"
  assert_no_output_file "$W/o.h5"
}

# --- 5. integer wrap -----------------------------------------------------------------------

@test "IDX dims (2^22, 2^21, 2^21) that wrap to 0 bytes are refused" {
  perl -e 'print pack("C4 N3", 0,0,8,3, 4194304, 2097152, 2097152)' >"$W/i.idx"
  perl -e 'print pack("C4 N", 0,0,8,1, 4194304)' >"$W/l.idx"
  run --separate-stderr "$BIN/ufo-data" import-idx "$W/i.idx" "$W/l.idx" -o "$W/o.h5"
  [ "$status" -eq 1 ]
  assert_one_line_error "$W/i.idx" "2097152, outside 0..16384"
  assert_no_output_file "$W/o.h5"
}

@test "checkpoint attributes of 2^32+x do not load as x" {
  for attr in "/arch dim" "/arch depth" "/tasks/main num_classes"; do
    set -- $attr
    cp "$D" "$W/m.h5"
    "$E" "$W/m.h5" int "$1" "$2" 4294967298
    run --separate-stderr "$BIN/ufo-infer" -m "$W/m.h5" "$A"
    [ "$status" -eq 1 ]
    assert_one_line_error "$W/m.h5" "$1@$2 is 4294967298, outside"
  done
}

# --- 6. an output never replaces an input ---------------------------------------------------

@test "output == input: exit 2 and the input is untouched (train, split, extract, import, route)" {
  cp "$A" "$W/a.h5"; cp "$S" "$W/s.h5"; cp "$W/a.h5" "$W/a.orig"; cp "$W/s.h5" "$W/s.orig"
  make_synth_idx "$W/idx" 20
  cp "$W/idx/images.idx" "$W/images.orig"
  cmds=(
    "ufo-train $W/a.h5 --preset tiny --steps 1 -o $W/a.h5"
    "ufo-train $W/a.h5 --preset tiny --steps 1 -o $W/m.h5 --checkpoint $W/a.h5"
    "ufo-train $W/a.h5 --preset tiny --steps 1 -o $W/./a.h5"
    "ufo-data split $W/a.h5 --fractions 0.5,0.5 -o $W/a.h5 -o $W/b.h5"
    "ufo-extract $W/s.h5 --task alpha -o $W/s.h5"
    "ufo-route $W/s.h5 --harden -o $W/s.h5"
    "ufo-data import-idx $W/idx/images.idx $W/idx/labels.idx -o $W/idx/images.idx"
  )
  for c in "${cmds[@]}"; do
    run --separate-stderr $BIN/$c
    [ "$status" -eq 2 ] || { echo "$c -> $status: $stderr"; false; }
    assert_one_line_error "output would replace the input"
    cmp "$W/a.h5" "$W/a.orig"
    cmp "$W/s.h5" "$W/s.orig"
    cmp "$W/idx/images.idx" "$W/images.orig"
  done
  # through a symlink too (same device and inode)
  ln -s "$W/a.h5" "$W/link.h5"
  run --separate-stderr "$BIN/ufo-data" split "$W/a.h5" --fractions 0.5,0.5 -o "$W/link.h5" -o "$W/b.h5"
  [ "$status" -eq 2 ]
  cmp "$W/a.h5" "$W/a.orig"
  assert_no_output_file "$W/b.h5" "$W/m.h5"
}

@test "the checkpoint may be the --resume file: a resumed run advances it" {
  cp "$CK" "$W/ck.h5"
  run --separate-stderr "$BIN/ufo-train" "$A" --preset tiny -b 16 --steps 6 -t 1 --resume "$W/ck.h5" \
      --checkpoint "$W/ck.h5" --stop-after 2 -o "$W/m.h5"
  assert_success
  h5dump -a /train_state/step "$W/ck.h5" | grep -q '(0): 4'
}

# --- 7. lax validation ------------------------------------------------------------------------

@test "booleans other than 0/1, NaN/Inf weights and normalisation, wrong kind: clean errors" {
  check() {  # check EXPECTED EDIT-ARGS...
    local want=$1; shift
    cp "$D" "$W/m.h5"
    "$E" "$W/m.h5" "$@"
    run --separate-stderr "$BIN/ufo-infer" -m "$W/m.h5" "$A"
    [ "$status" -eq 1 ]
    assert_one_line_error "$W/m.h5" "$want"
  }
  check "/arch@qk_norm is 7, expected 0 or 1" int /arch qk_norm 7
  check "/arch@parallel_block is -1, expected 0 or 1" int /arch parallel_block -1
  check "/arch@qkv_bias is 2, expected 0 or 1" int /arch qkv_bias 2
  check "/blocks/0/attn/qkv/w[3] is nan" f32 /blocks/0/attn/qkv/w 3 nan
  check "/tasks/main/head/b[1] is inf" f32 /tasks/main/head/b 1 inf
  check "/arch/input_mean[0] is not a finite number" f32 /arch/input_mean 0 nan
  check "/arch/input_std[0] is not a finite positive number" f32 /arch/input_std 0 inf
  check "kind is supernet, but the architecture is not a Task-MoE supernet" str / kind supernet
  cp "$S" "$W/s.h5"
  "$E" "$W/s.h5" str / kind dense
  run --separate-stderr "$BIN/ufo-infer" -m "$W/s.h5" --task alpha "$A"
  [ "$status" -eq 1 ]
  assert_one_line_error "$W/s.h5" "kind is dense, but the architecture has 2 tasks"
}

@test "CNN checkpoints: bad or huge layer lists, momentum, running variance, family: one line, bounded" {
  C="$BATS_FILE_TMPDIR/cnn.h5"
  check() {  # check EXPECTED EDIT-ARGS...
    local want=$1; shift
    cp "$C" "$W/c.h5"
    "$E" "$W/c.h5" "$@"
    bounded "$BIN/ufo-infer" -m "$W/c.h5" "$A"
    [ "$status" -eq 1 ]
    assert_one_line_error "$W/c.h5" "$want"
  }
  check "CNN layers 'c8,x': 'x' is not a layer" str /arch layers c8,x
  check "CNN layers 'c0': 'c0': channels must be in 1..4096" str /arch layers c0
  check "the first layer must be a convolution" str /arch layers m,c8
  check "is longer than 4096 characters" str /arch layers "$(printf 'c8,%.0s' $(seq 1 1400))c8"
  check "the model would have too many parameters" str /arch layers "$(printf 'c4096,%.0s' $(seq 1 40))c4096"
  check "/layers/0/conv/w has shape" str /arch layers c9,m,c16
  check "/arch@bn_momentum must be in (0,1]" double /arch bn_momentum nan
  check "/layers/0/bn/running_var[2] is -1.000000, not a finite non-negative number" f32 /layers/0/bn/running_var 2 -1
  check "/layers/2/bn/running_mean[0] is nan" f32 /layers/2/bn/running_mean 0 nan
  check "kind is cnn but /arch@model is 'vit'" str /arch model vit
  check "kind is dense but /arch@model is 'cnn'" str / kind dense
  cp "$C" "$W/c.h5"
  "$E" "$W/c.h5" delete /layers/2/bn/running_var
  run --separate-stderr "$BIN/ufo-infer" -m "$W/c.h5" "$A"
  assert_exit_error 1 "missing tensor /layers/2/bn/running_var"
  run --separate-stderr "$BIN/ufo-extract" --shared "$C" -o "$W/x.h5"
  assert_exit_error 1 "is a cnn checkpoint, not a ViT"
}

@test "train_state: NaN in the AdamW moments and negative counters are refused at --resume" {
  cp "$CK" "$W/ck.h5"
  "$E" "$W/ck.h5" f32 /train_state/adam_v 0 -1
  run --separate-stderr "$BIN/ufo-train" "$A" --preset tiny -b 16 --steps 6 -t 1 --resume "$W/ck.h5" -o "$W/m.h5"
  [ "$status" -eq 1 ]
  assert_one_line_error "$W/ck.h5" "/train_state/adam_v[0] is -1" "non-negative"
  cp "$CK" "$W/ck.h5"
  "$E" "$W/ck.h5" int /train_state log_count -3
  run --separate-stderr "$BIN/ufo-train" "$A" --preset tiny -b 16 --steps 6 -t 1 --resume "$W/ck.h5" -o "$W/m.h5"
  [ "$status" -eq 1 ]
  assert_one_line_error "$W/ck.h5" "log_count is -3"
  assert_no_output_file "$W/m.h5"
}

@test "route tables: layer ' 0', '+0', '00' and a huge layer are refused" {
  for layer in " 0" "+0" "00" "99999999999"; do
    printf 'task\tlayer\tpath\nalpha\t%s\town\nalpha\t1\tshared\n' "$layer" >"$W/r.tsv"
    run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha --routes "$W/r.tsv" -o "$W/e.h5"
    [ "$status" -eq 1 ]
    assert_one_line_error "$W/r.tsv:2"
    assert_no_output_file "$W/e.h5"
  done
}

# --- 8. every message names the file ----------------------------------------------------------

@test "a directory as a route table or an image: the message names it" {
  mkdir "$W/dir"
  run --separate-stderr "$BIN/ufo-route" "$S" --apply "$W/dir" -o "$W/o.h5"
  [ "$status" -eq 1 ]
  assert_one_line_error "$W/dir: is a directory"
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha --routes "$W/dir" -o "$W/o.h5"
  [ "$status" -eq 1 ]
  assert_one_line_error "$W/dir: is a directory"
  assert_no_output_file "$W/o.h5"
}

@test "more data than memory allows: the error names the file instead of 'out of memory'" {
  [ -z "${UFO_SANITIZE:-}" ] || skip "needs ulimit -v, under which ASan cannot start"
  # 600 MB of images in a 600 KB gzip file, read under a 500 MB address-space limit
  perl -e 'print pack("C4 N3", 0,0,8,3, 765306, 28, 28)' >"$W/i.idx"
  head -c 600000000 /dev/zero | gzip -1 >"$W/zeros.gz"
  (gzip -c "$W/i.idx"; cat "$W/zeros.gz") >"$W/i.idx.gz"
  perl -e 'print pack("C4 N", 0,0,8,1, 765306); print "\0" x 765306' >"$W/l.idx"
  run --separate-stderr bash -c 'ulimit -v 500000; exec timeout 20 "$@"' _ \
      "$BIN/ufo-data" import-idx "$W/i.idx.gz" "$W/l.idx" -o "$W/o.h5"
  [ "$status" -eq 1 ]
  assert_one_line_error "$W/i.idx.gz: cannot allocate"
  assert_no_output_file "$W/o.h5"
}

# --- 9. temp files left by kill -9 do not pile up --------------------------------------------

@test "stale .NAME.tmp.* of a killed writer are removed by the next write; a live writer's are kept" {
  cp "$D" "$W/m.h5"
  : >"$W/.e.h5.tmp.AbC123"       # a dead writer's (nobody holds its lock)
  : >"$W/.e.h5.tmp.LiVe99"       # a live writer's: locked by the process below
  : >"$W/.e.h5.tmp.keep"          # not our naming: left alone
  python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "r+"); fcntl.lockf(f, fcntl.LOCK_EX); print("locked", flush=True); time.sleep(30)' \
      "$W/.e.h5.tmp.LiVe99" >"$W/lock.out" &
  holder=$!
  for _ in $(seq 50); do [ -s "$W/lock.out" ] && break; sleep 0.1; done
  run --separate-stderr "$BIN/ufo-extract" "$S" --task alpha -o "$W/e.h5"
  kill "$holder"
  assert_success
  [ ! -e "$W/.e.h5.tmp.AbC123" ]
  [ -e "$W/.e.h5.tmp.LiVe99" ]
  [ -e "$W/.e.h5.tmp.keep" ]
}

@test "kill -9 during training, twelve times: at most one temp file at any time, none after a clean run" {
  make_synth_dataset "$W/big.h5" 2000 10
  for i in $(seq 12); do
    "$BIN/ufo-train" "$W/big.h5" --preset tiny -b 16 --steps 100000 --ckpt-every 1 -t 1 -o "$W/m.h5" >/dev/null 2>&1 &
    pid=$!
    sleep 0.$((RANDOM % 5 + 3))
    kill -9 "$pid"
    wait "$pid" || true
    [ "$(compgen -G "$W/.m.ckpt.h5.tmp.*" | wc -l)" -le 1 ]
  done
  "$BIN/ufo-train" "$W/big.h5" --preset tiny -b 16 --steps 2 --ckpt-every 1 -t 1 -o "$W/m.h5" >/dev/null 2>&1
  ! compgen -G "$W/.m*.tmp.*"
}
