#!/usr/bin/env bats
# The HDF5 filter plugin for zstd (filter 32015, build/plugins/libufo_h5zstd.so): with it,
# programs that are not ufo (h5dump, h5repack, Debian's python3-h5py) read the pixels of
# compressed ufo datasets and the tensors of compressed checkpoints, and write files ufo reads;
# `make install-plugin` puts it where HDF5 looks by default.

load common

export OMP_WAIT_POLICY=passive

ROOT="$(cd "$(dirname "$BATS_TEST_FILENAME")/../.." && pwd)"

setup_file() {
  export D="$BATS_FILE_TMPDIR"
  make_synth_idx "$D/idx" 50 10
  "$BIN/ufo-data" import-idx "$D/idx/images.idx" "$D/idx/labels.idx" -o "$D/z.h5" 2>/dev/null
  "$BIN/ufo-data" import-idx "$D/idx/images.idx" "$D/idx/labels.idx" --zstd 0 -o "$D/plain.h5" 2>/dev/null
  local tr=("$BIN/ufo-train" "$D/plain.h5" --preset tiny -b 16 -t 1 --seed 1 --steps 2)
  "${tr[@]}" --zstd 3 -o "$D/zck.h5" >/dev/null 2>&1
  "${tr[@]}" -o "$D/plainck.h5" >/dev/null 2>&1
}

# data_block FILE DATASET: the DATA { ... } part of h5dump's output (no file name in it).
data_block() {
  h5dump -d "$2" "$1" | sed -n '/DATA {/,$p'
}

@test "the files are compressed with filter 32015 (images and checkpoint tensors)" {
  h5ls -v "$D/z.h5/images" | grep -q "zstd-32015"
  h5ls -v "$D/zck.h5/blocks/0/attn/qkv/w" | grep -q "zstd-32015"
  ! h5ls -v "$D/plain.h5/images" | grep -q "zstd"
}

@test "h5dump: no pixels without the plugin; with HDF5_PLUGIN_PATH=build/plugins the same pixels as the uncompressed copy" {
  # An empty plugin path: no zstd filter even where `make install` has put one in HDF5's
  # default directory.
  mkdir -p "$TMP/no-plugins"
  HDF5_PLUGIN_PATH="$TMP/no-plugins" run h5dump -d /images "$D/z.h5"
  assert_output --partial "unable to print data"
  export HDF5_PLUGIN_PATH="$BIN/plugins"
  run data_block "$D/z.h5" /images
  assert_success
  refute_output --partial "unable to print data"
  [ "${#lines[@]}" -gt 50 ]
  [ "$output" = "$(data_block "$D/plain.h5" /images)" ]
  [ "$(data_block "$D/z.h5" /labels)" = "$(data_block "$D/plain.h5" /labels)" ]
  local w
  w=$(data_block "$D/zck.h5" /blocks/1/ffn/shared/fc1/w)
  [[ "$w" == *"(0,0): "* ]]
  [ "$w" = "$(data_block "$D/plainck.h5" /blocks/1/ffn/shared/fc1/w)" ]
}

@test "python3-h5py reads a compressed dataset's images and every tensor of a compressed checkpoint" {
  HDF5_PLUGIN_PATH="$BIN/plugins" /usr/bin/python3 - "$D" <<'EOF'
import sys, h5py, numpy as np
d = sys.argv[1]
z, p = h5py.File(f"{d}/z.h5", "r"), h5py.File(f"{d}/plain.h5", "r")
assert z["images"].shape == (50, 8, 8, 1) and "32015" in z["images"]._filters, z["images"]._filters
assert np.array_equal(z["images"][:], p["images"][:]) and z["images"][:].any()
assert np.array_equal(z["labels"][:], p["labels"][:])
zc, pc = h5py.File(f"{d}/zck.h5", "r"), h5py.File(f"{d}/plainck.h5", "r")
names = []
pc.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and not n.startswith("arch") else None)
assert len(names) > 10
compressed = 0
for n in names:
    a, b = zc[n], pc[n]
    compressed += "32015" in a._filters
    assert np.array_equal(a[()], b[()]), n
assert compressed > 10, compressed
EOF
}

@test "h5repack with the plugin writes zstd chunks that ufo reads" {
  HDF5_PLUGIN_PATH="$BIN/plugins" h5repack -f UD=32015,0,1,9 "$D/plain.h5" "$TMP/repacked.h5"
  h5ls -v "$TMP/repacked.h5/images" | grep -q "zstd-32015  {9}"
  run "$BIN/ufo-data" info "$TMP/repacked.h5"
  assert_success
  assert_output --partial "50"
  "$BIN/ufo-infer" -m "$D/plainck.h5" "$TMP/repacked.h5" -t 1 >"$TMP/a.tsv" 2>/dev/null
  "$BIN/ufo-infer" -m "$D/plainck.h5" "$D/plain.h5" -t 1 >"$TMP/b.tsv" 2>/dev/null
  cmp "$TMP/a.tsv" "$TMP/b.tsv"
}

@test "make install-plugin: the plugin lands in HDF5's default plugin directory, from where h5dump and h5py load it" {
  local dir
  dir=$(/usr/bin/python3 -c 'from h5py import h5pl; print(h5pl.get(0).decode())')
  [ -n "$dir" ]
  # The same build mode as the binaries under test, so make finds them up to date.
  local mode=()
  [ "${UFO_SANITIZE:-0}" = 1 ] && mode=(SANITIZE=1)
  run make -C "$ROOT" --no-print-directory -s BUILD="$BIN" "${mode[@]}" DESTDIR="$TMP/root" install-plugin
  assert_success
  [ -f "$TMP/root$dir/libufo_h5zstd.so" ]
  export HDF5_PLUGIN_PATH="$TMP/root$dir"
  [ "$(data_block "$D/z.h5" /images)" = "$(data_block "$D/plain.h5" /images)" ]
  /usr/bin/python3 -c 'import sys, h5py; assert h5py.File(sys.argv[1], "r")["images"][:].any()' "$D/z.h5"
}
