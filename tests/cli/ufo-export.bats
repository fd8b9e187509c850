#!/usr/bin/env bats
# ufo-export: every kind of checkpoint ufo-infer runs, exported to ONNX, run by ONNX Runtime
# (npm onnxruntime-node, installed by scripts/ort-setup) and compared with ufo-infer's logits
# on the same images; every file passes python3-onnx's full checker; options and bad input.
#
# Tolerance: |ort - ufo| <= 1e-4 + 1e-4 |ufo| per logit (scripts/logits-diff). Both compute in
# float32 but in another order (GEMM blocking, attention, LayerNorm statistics) and with other
# exp/tanh approximations; each costs a few ulp (~1e-7 relative) per operation, and the
# measured difference on these models and on the 10,000 Fashion-MNIST test images of a small
# ViT is at most 5e-6 (with ufo-infer's 6 printed decimals), 20x under the bound. An export
# error (a wrong weight, a transposed patch, a missing normalisation) moves logits by 1e-2 or
# more.

load common

export OMP_WAIT_POLICY=passive

ROOT="$(cd "$(dirname "$BATS_TEST_FILENAME")/../.." && pwd)"

setup_file() {
  export D="$BATS_FILE_TMPDIR"
  "$ROOT/scripts/ort-setup" >/dev/null
  # 8x12 images: a non-square patch grid and, in the CNN, pools of odd sizes.
  make_synth_dataset "$D/d.h5" 96 10 8 12 --zstd 0
  make_synth_dataset "$D/v.h5" 40 10 8 12 --zstd 0
  local tr=("$BIN/ufo-train" "$D/d.h5" -b 16 -t 1 --seed 1 --lr 0.01 --steps 4)
  "${tr[@]}" --preset tiny -o "$D/vit.h5" >/dev/null 2>&1
  "${tr[@]}" --preset tiny --qk-norm -o "$D/qk.h5" >/dev/null 2>&1
  "${tr[@]}" --preset tiny --parallel-block -o "$D/par.h5" >/dev/null 2>&1
  "${tr[@]}" --preset tiny --no-qkv-bias -o "$D/nobias.h5" >/dev/null 2>&1
  "${tr[@]}" --family cnn --layers c8,c8/2,a,c16,m -o "$D/cnn.h5" >/dev/null 2>&1
  make_synth_supernet "$D/supernet.h5"
  make_synth_dataset "$D/alpha8.h5" 60 10 8 8 --zstd 0
  mkdir -p "$D/el" && make_elastic_fixture "$D/el"
}

# raw_images DATA.h5 OUT.u8: the dataset's uint8 pixels, as h5dump reads them (compressed
# datasets through ufo's HDF5 plugin).
raw_images() {
  HDF5_PLUGIN_PATH="$BIN/plugins" h5dump -d /images -b LE -o "$2" "$1" >/dev/null
}

# matches_ufo MODEL.onnx DATA.h5 [ufo-infer model options...]: ONNX Runtime's logits of the
# dataset equal ufo-infer's within the tolerance, and so do the predictions.
matches_ufo() {
  local onnx=$1 data=$2
  shift 2
  raw_images "$data" "$TMP/x.u8"
  "$ROOT/scripts/ort-infer" "$onnx" "$TMP/x.u8" --threads 1 --logits >"$TMP/ort.tsv"
  "$BIN/ufo-infer" "$@" "$data" --logits -t 1 >"$TMP/ufo.tsv" 2>/dev/null
  run "$ROOT/scripts/logits-diff" "$TMP/ufo.tsv" "$TMP/ort.tsv"
  assert_success
  echo "$output" >&3
}

# onnx_check FILE: python3-onnx's checker with shape inference (full_check).
onnx_check() {
  /usr/bin/python3 -c 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)' "$1"
}

# onnx_meta FILE KEY: a metadata property of the model.
onnx_meta() {
  /usr/bin/python3 -c 'import onnx, sys; m = onnx.load(sys.argv[1]); print({p.key: p.value for p in m.metadata_props}.get(sys.argv[2], ""))' "$1" "$2"
}

@test "ufo-export --help prints usage on stdout and exits 0" {
  run --separate-stderr "$BIN/ufo-export" --help
  assert_success
  assert_output --partial "usage: ufo-export"
  assert_output --partial "--arch"
  [ -z "$stderr" ]
}

@test "a dense ViT: summary row, checker, interface, metadata; ONNX Runtime's logits equal ufo's" {
  run --separate-stderr "$BIN/ufo-export" "$D/vit.h5" -o "$TMP/vit.onnx"
  assert_success
  [ "${lines[0]}" = "$(printf 'task\tfamily\tarch\tparams\tmflops\topset\tnodes\tbytes\toutput')" ]
  [[ "${lines[1]}" == "main"$'\t'"vit"$'\t\t'*$'\t17\t'*$'\t'"$TMP/vit.onnx" ]]
  [[ "$stderr" == "ufo-export: wrote $TMP/vit.onnx (task main, "*" parameters, "*" nodes, opset 17)" ]]
  onnx_check "$TMP/vit.onnx"
  /usr/bin/python3 - "$TMP/vit.onnx" <<'EOF'
import onnx, sys
m = onnx.load(sys.argv[1])
assert m.opset_import[0].version == 17 and m.producer_name == "ufo-export"
props = {p.key: p.value for p in m.metadata_props}
assert props["ufo.version"] == m.producer_version != "", props
i, = m.graph.input
t = i.type.tensor_type
assert i.name == "images" and t.elem_type == onnx.TensorProto.UINT8, i
assert [d.dim_param or d.dim_value for d in t.shape.dim] == ["batch", 8, 12, 1], t.shape
assert [o.name for o in m.graph.output] == ["logits", "probs"]
# Only standard operators (the default domain).
assert all(n.domain == "" for n in m.graph.node)
EOF
  [ "$(onnx_meta "$TMP/vit.onnx" ufo.task)" = main ]
  [ "$(onnx_meta "$TMP/vit.onnx" ufo.source)" = "$D/vit.h5" ]
  [ "$(onnx_meta "$TMP/vit.onnx" ufo.source_kind)" = dense ]
  [ "$(onnx_meta "$TMP/vit.onnx" ufo.class_names)" = '["0","1","2","3","4","5","6","7","8","9"]' ]
  # The checksum is the FNV-1a of the checkpoint, as ufo-infer -o records it.
  "$BIN/ufo-infer" -m "$D/vit.h5" "$D/v.h5" -o "$TMP/p.h5" >/dev/null 2>&1
  h5dump -a /model_checksum "$TMP/p.h5" | grep -q "\"$(onnx_meta "$TMP/vit.onnx" ufo.source_checksum)\""
  matches_ufo "$TMP/vit.onnx" "$D/v.h5" -m "$D/vit.h5"
}

@test "ViT-22B options (qk-norm, parallel block, no qkv bias): ONNX Runtime's logits equal ufo's" {
  for m in qk par nobias; do
    "$BIN/ufo-export" "$D/$m.h5" -o "$TMP/$m.onnx" >/dev/null 2>&1
    onnx_check "$TMP/$m.onnx"
    matches_ufo "$TMP/$m.onnx" "$D/v.h5" -m "$D/$m.h5"
  done
}

@test "a supernet with --task: each task along its route equals ufo-infer --task and the extracted sub-network" {
  for t in alpha beta; do
    run --separate-stderr "$BIN/ufo-export" "$D/supernet.h5" --task $t -o "$TMP/$t.onnx" --json
    assert_success
    [[ "$output" == "{\"task\":\"$t\",\"family\":\"vit\",\"arch\":\"\",\"params\":"* ]]
    [ "$(onnx_meta "$TMP/$t.onnx" ufo.source_kind)" = supernet ]
    onnx_check "$TMP/$t.onnx"
    matches_ufo "$TMP/$t.onnx" "$D/alpha8.h5" -m "$D/supernet.h5" --task $t
  done
  # The same file as exporting the task's extracted sub-network, but for the recorded source.
  "$BIN/ufo-extract" "$D/supernet.h5" --task beta -o "$TMP/beta-sub.h5" >/dev/null 2>&1
  "$BIN/ufo-export" "$TMP/beta-sub.h5" -o "$TMP/beta-sub.onnx" >/dev/null 2>&1
  matches_ufo "$TMP/beta-sub.onnx" "$D/alpha8.h5" -m "$D/supernet.h5" --task beta
}

@test "an elastic model: --arch exports that sub-architecture, the default the largest; both equal ufo-infer --arch" {
  local spec="depth=2 heads=1,2 mlp=16,24"
  run --separate-stderr "$BIN/ufo-export" "$D/el/el.h5" --arch "$spec" -o "$TMP/sub.onnx"
  assert_success
  [[ "${lines[1]}" == "main"$'\t'"vit"$'\t'"$spec"$'\t'* ]]
  [ "$(onnx_meta "$TMP/sub.onnx" ufo.arch)" = "$spec" ]
  onnx_check "$TMP/sub.onnx"
  matches_ufo "$TMP/sub.onnx" "$D/el/v.h5" -m "$D/el/el.h5" --arch "$spec"
  # --arch - reads the spec from stdin.
  echo "$spec" | "$BIN/ufo-export" "$D/el/el.h5" --arch - -o "$TMP/sub2.onnx" >/dev/null 2>&1
  [ "$(onnx_meta "$TMP/sub2.onnx" ufo.arch)" = "$spec" ]
  "$BIN/ufo-export" "$D/el/el.h5" -o "$TMP/full.onnx" >/dev/null 2>&1
  matches_ufo "$TMP/full.onnx" "$D/el/v.h5" -m "$D/el/el.h5"
}

@test "a CNN (stride-2 convolution, average and max pooling, BatchNorm statistics): ONNX Runtime's logits equal ufo's" {
  run --separate-stderr "$BIN/ufo-export" "$D/cnn.h5" -o "$TMP/cnn.onnx"
  assert_success
  [[ "${lines[1]}" == "main"$'\t'"cnn"$'\t'* ]]
  onnx_check "$TMP/cnn.onnx"
  matches_ufo "$TMP/cnn.onnx" "$D/v.h5" -m "$D/cnn.h5"
}

@test "-o - writes the model to stdout (no summary row); the bytes equal a file's; a pipe in works" {
  "$BIN/ufo-export" "$D/vit.h5" -o "$TMP/a.onnx" >/dev/null 2>&1
  "$BIN/ufo-export" "$D/vit.h5" -o "$TMP/a.onnx" >/dev/null 2>&1
  cp "$TMP/a.onnx" "$TMP/first.onnx"
  "$BIN/ufo-export" "$D/vit.h5" -o "$TMP/a.onnx" >/dev/null 2>&1
  cmp "$TMP/first.onnx" "$TMP/a.onnx"   # deterministic: the same command writes the same bytes
  run --separate-stderr bash -c "'$BIN/ufo-export' '$D/vit.h5' -o - >'$TMP/out.onnx'"
  assert_success
  [[ "$stderr" == "ufo-export: wrote <stdout> "* ]]
  onnx_check "$TMP/out.onnx"
  "$BIN/ufo-export" - -o "$TMP/piped.onnx" <"$D/vit.h5" >/dev/null 2>&1
  [ "$(onnx_meta "$TMP/piped.onnx" ufo.source)" = "" ]
  [ "$(onnx_meta "$TMP/piped.onnx" ufo.source_checksum)" = "" ]
  matches_ufo "$TMP/piped.onnx" "$D/v.h5" -m "$D/vit.h5"
}

@test "bad input: one stderr line naming the file or option, exit 1 or 2, no output file" {
  run --separate-stderr "$BIN/ufo-export" "$D/supernet.h5" --task gamma -o "$TMP/x.onnx"
  assert_exit_error 1 "$D/supernet.h5" "no task gamma"
  assert_no_output_file "$TMP/x.onnx"
  run --separate-stderr "$BIN/ufo-export" "$D/supernet.h5" -o "$TMP/x.onnx"
  assert_exit_error 1 "$D/supernet.h5" "choose one with --task"
  run --separate-stderr "$BIN/ufo-export" "$D/el/el.h5" --arch "depth=9" -o "$TMP/x.onnx"
  assert_exit_error 1 "$D/el/el.h5" "depth 9 is not in the elastic space"
  run --separate-stderr "$BIN/ufo-export" "$D/el/el.h5" --arch "heads=1,2,7" -o "$TMP/x.onnx"
  assert_exit_error 1 "$D/el/el.h5" "heads"
  run --separate-stderr "$BIN/ufo-export" "$D/cnn.h5" --arch "depth=1" -o "$TMP/x.onnx"
  assert_exit_error 1 "$D/cnn.h5" "--arch names a ViT sub-architecture"
  run --separate-stderr "$BIN/ufo-export" "$D/vit.h5" -o "$TMP/missing/x.onnx"
  assert_exit_error 1 "$TMP/missing/x.onnx" "directory does not exist"
  run --separate-stderr "$BIN/ufo-export" "$D/vit.h5" -o "$D/vit.h5"
  assert_exit_error 2 "$D/vit.h5"
  run --separate-stderr "$BIN/ufo-export" "$D/d.h5" -o "$TMP/x.onnx"
  assert_exit_error 1 "$D/d.h5"
  assert_no_output_file "$TMP/x.onnx"
  run --separate-stderr "$BIN/ufo-export" "$TMP/nope.h5" -o "$TMP/x.onnx"
  assert_exit_error 1 "$TMP/nope.h5"
  "$BIN/ufo-extract" "$D/supernet.h5" --shared -o "$TMP/shared.h5" >/dev/null 2>&1
  run --separate-stderr "$BIN/ufo-export" "$TMP/shared.h5" -o "$TMP/x.onnx"
  assert_exit_error 1 "$TMP/shared.h5" "no task head"
  assert_no_output_file "$TMP/x.onnx"
  run --separate-stderr "$BIN/ufo-export" "$D/vit.h5"
  assert_exit_error 2 "output"
  run --separate-stderr "$BIN/ufo-export" -o "$TMP/x.onnx"
  assert_exit_error 2 "checkpoint is required"
  run --separate-stderr "$BIN/ufo-export" "$D/vit.h5" -o "$TMP/x.onnx" --bogus
  assert_exit_error 2 "bogus"
  run --separate-stderr bash -c "echo depth=1 | '$BIN/ufo-export' - --arch - -o '$TMP/x.onnx'"
  assert_exit_error 2 "stdin"
}
