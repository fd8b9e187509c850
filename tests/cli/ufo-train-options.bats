#!/usr/bin/env bats
# ufo-train: every documented option changes the result in the direction it promises. Where it is
# cheap the change is checked against a computation done here, independently of ufo: the logged
# learning rate against the warm-up + cosine formula, AdamW's moments and steps against the
# checkpoints' weights and /train_state moments, clipping, label smoothing and task weights
# against the gradients a checkpoint stores. Otherwise two runs that differ only in the option
# must differ (and the same value twice must not). Seconds each: --preset tiny, 8x8 synthetic
# data, one thread, a few steps.
#
# Exact arithmetic used below: with --min-lr equal to --lr and --warmup 0 the rate is exactly
# --lr at every step; with --lr 0 a run's final model holds the initial weights of its seed; with
# --beta1 0 the stored first moment /train_state/adam_m is the last step's gradient. The heads
# start at zero, so step 1 has a zero gradient everywhere below them: step 2 is the first to
# train the body and the routers.

load common

export OMP_WAIT_POLICY=passive

setup_file() {
  export D="$BATS_FILE_TMPDIR"
  make_synth_dataset "$D/d.h5" 64 10     # 4 steps per epoch at -b 16
  make_synth_dataset "$D/v.h5" 40 10
  make_synth_dataset "$D/b.h5" 48 4      # the second task of the supernet tests
}

setup() {
  TR=("$BIN/ufo-train" "$D/d.h5" --preset tiny -b 16 -t 1 --seed 1)
  MT=("$BIN/ufo-train" --task "alpha=$D/d.h5" --task "beta=$D/b.h5" --preset tiny -b 16 -t 1 --seed 1)
  EXACT=(--lr 0.01 --min-lr 0.01 --warmup 0)   # the rate is 0.01 at every step
}

# py CODE: python3 with helpers for reading checkpoints exactly:
#   T(file, "/name") -> a dataset's values (float32 exactly, via h5dump -m %.9g); I(...): as ints
#   attr(file, "/obj@name") -> an integer attribute;  f32(x) -> x rounded to float32
#   layout(file) -> [(name, offset, size, decayed)] in the flat order of /train_state/adam_*
#   log(text) -> TSV rows as dicts;  close(a, b, rel, abs_) -> |a-b| <= abs_ + rel*|b|;  lr_at: the schedule
PY_LIB='
import json, math, re, struct, subprocess, sys
def f32(x): return struct.unpack("f", struct.pack("f", x))[0]
_cache = {}
def load(path):
    """All datasets of a file: one h5dump, %.9g (exact for float32)."""
    if path in _cache: return _cache[path]
    out = subprocess.run(["h5dump", "-A", "0", "-m", "%.9g", "-y", "-w", "0", path], check=True,
                         capture_output=True, text=True).stdout
    res, stack, buf = {}, [], None
    for line in out.splitlines()[1:]:
        s = line.strip()
        m = re.match("(?:GROUP|DATASET) \"([^\"]*)\" [{]$", s)
        if m: stack.append(m.group(1))
        elif s == "DATA {": buf = []
        elif s == "}" and buf is not None: res["/" + "/".join(stack[1:])], buf = buf, None
        elif s == "}": stack = stack[:-1]
        elif buf is not None: buf += [f32(float(x)) for x in s.split(",") if x.strip()]
    _cache[path] = res
    return res
def T(path, name): return load(path)[name]
def I(path, name): return [int(x) for x in load(path)[name]]
def attr(path, spec):
    obj, a = spec.split("@")
    out = subprocess.run(["h5dump", "-a", obj.rstrip("/") + "/" + a, path], check=True, capture_output=True, text=True).stdout
    return int(re.search(r"\(0\): *(-?\d+)", out).group(1))
def shapes(path):
    out = subprocess.run(["h5ls", "-r", path], check=True, capture_output=True, text=True).stdout
    return {m.group(1): [int(d) for d in m.group(2).split(",")] for m in re.finditer(r"^(\S+) +Dataset \{([^}]*)\}", out, re.M)}
def layout(path):
    s = shapes(path)
    depth = attr(path, "/arch@depth")
    tasks = re.findall(r"\"([^\"]*)\"", subprocess.run(["h5dump", "-a", "/tasks", path], capture_output=True, text=True).stdout.split("DATA {")[1])
    sets = ["shared"] + (tasks if attr(path, "/arch@ffn_sets") > 1 else [])
    names = ["/embed/patch/w", "/embed/patch/b", "/embed/cls", "/embed/pos"]
    for l in range(depth):
        b = "/blocks/%d/" % l
        names += [b + x for x in ["ln1/w", "ln1/b", "attn/qkv/w", "attn/qkv/b", "attn/q_norm/w", "attn/q_norm/b",
                                  "attn/k_norm/w", "attn/k_norm/b", "attn/proj/w", "attn/proj/b", "ln2/w", "ln2/b"]]
        for f in sets: names += [b + "ffn/%s/%s" % (f, x) for x in ["fc1/w", "fc1/b", "fc2/w", "fc2/b"]]
    names += ["/norm/w", "/norm/b"]
    for t in tasks: names += ["/tasks/%s/%s" % (t, x) for x in ["head/w", "head/b", "router"]]
    out, off = [], 0
    for n in names:
        if n not in s: continue
        size = math.prod(s[n])
        out.append((n, off, size, n.endswith("/w") and len(s[n]) == 2))
        off += (size + 15) // 16 * 16
    return out
def log(text):
    rows = [l.split("\t") for l in text.strip().split("\n")]
    return [dict(zip(rows[0], r)) for r in rows[1:]]
def close(a, b, rel=1e-6, abs_=0.0): return abs(a - b) <= abs_ + rel * abs(b)
def lr_at(step, total, warmup, base, min_lr):
    base, min_lr = f32(base), f32(min_lr)
    if warmup > 0 and step < warmup: return f32(base * f32(step + 1) / f32(warmup))
    if total <= warmup + 1: return base
    p = min(1.0, (step - warmup) / (total - 1 - warmup))
    return f32(min_lr + 0.5 * (base - min_lr) * (1 + math.cos(math.pi * p)))
'
py() { python3 -c "$PY_LIB"$'\n'"$1" "${@:2}"; }

# ---------------------------------------------------------------- schedule and optimiser

@test "--lr --min-lr --warmup (default 5%) --steps --epochs -b: the logged rate is warm-up + cosine" {
  # 64 images at -b 16: 4 steps per epoch, 5 epochs = 20 steps, default warm-up 20/20 = 1 step
  run --separate-stderr "${TR[@]}" --epochs 5 --log-every 1 --lr 0.02 --min-lr 0.001 -o "$TMP/a.h5"
  assert_success
  py '
rows = log(sys.argv[1])
assert [int(r["step"]) for r in rows] == list(range(1, 21)), rows
for r in rows:
    s = int(r["step"])
    assert r["epoch"] == "%.3f" % (s / 4), r
    want = lr_at(s - 1, 20, 1, 0.02, 0.001)
    assert close(float(r["lr"]), want, 1e-5), (s, r["lr"], want)
assert float(rows[0]["lr"]) == 0.02 and close(float(rows[-1]["lr"]), 0.001, 1e-6)   # --min-lr at the last step
' "$output"
  # -b 8: 8 steps per epoch, so 2 epochs are 16 steps; the default --lr (0.001) and --min-lr
  # (1e-5); --warmup -1 is the default (16/20 = 0 steps: step 1 is at the peak)
  run --separate-stderr "$BIN/ufo-train" "$D/d.h5" --preset tiny -b 8 -t 1 --seed 1 --epochs 2 --log-every 1 --warmup -1 -o "$TMP/b.h5"
  assert_success
  py '
rows = log(sys.argv[1])
assert [int(r["step"]) for r in rows] == list(range(1, 17)), rows
for r in rows:
    s = int(r["step"])
    assert r["epoch"] == "%.3f" % (s / 8), r
    assert close(float(r["lr"]), lr_at(s - 1, 16, 0, 0.001, 1e-5), 1e-5), (s, r)
' "$output"
  # --steps wins over --epochs; --warmup 5: 1/5, 2/5, ... of the peak; 40 steps -> default 2
  run --separate-stderr "${TR[@]}" --steps 12 --epochs 99 --warmup 5 --log-every 1 --lr 0.01 --min-lr 0 -o "$TMP/c.h5"
  assert_success
  py '
rows = log(sys.argv[1])
assert len(rows) == 12
assert [float(r["lr"]) for r in rows[:5]] == [0.002, 0.004, 0.006, 0.008, 0.01], rows[:5]
for r in rows: assert close(float(r["lr"]), lr_at(int(r["step"]) - 1, 12, 5, 0.01, 0.0), 1e-5, 1e-12), r
' "$output"
  run --separate-stderr "${TR[@]}" --steps 40 --log-every 1 --lr 0.01 -o "$TMP/d.h5"
  assert_success
  py '
rows = log(sys.argv[1])
assert [float(r["lr"]) for r in rows[:3]] == [0.005, 0.01, 0.01], rows[:3]
for r in rows: assert close(float(r["lr"]), lr_at(int(r["step"]) - 1, 40, 2, 0.01, 1e-5), 1e-5), r
' "$output"
}

@test "AdamW at the CLI: --lr, --weight-decay, --beta1, --beta2 give the hand-computed moments and steps" {
  local opt=(--steps 3 "${EXACT[@]}" --weight-decay 2 --beta1 0.8 --beta2 0.99 --clip 0)
  "${TR[@]}" --steps 1 --lr 0 --min-lr 0 -o "$TMP/p0.h5" 2>/dev/null >/dev/null       # the initial weights
  "${TR[@]}" "${opt[@]}" --stop-after 1 --checkpoint "$TMP/c1.h5" -o "$TMP/x.h5" >/dev/null 2>&1
  "${TR[@]}" "${opt[@]}" --stop-after 2 --checkpoint "$TMP/c2.h5" -o "$TMP/x.h5" >/dev/null 2>&1
  py '
p0f, c1, c2 = sys.argv[1:4]
lr, wd, b1, b2, eps = f32(0.01), f32(2.0), f32(0.8), f32(0.99), 1e-8
m1, v1 = T(c1, "/train_state/adam_m"), T(c1, "/train_state/adam_v")
m2, v2 = T(c2, "/train_state/adam_m"), T(c2, "/train_state/adam_v")
assert attr(c1, "/train_state@step") == 1 and attr(c2, "/train_state@step") == 2
checked = nonzero = 0
for name, off, n, decayed in layout(c1):
    p0, p1, p2 = T(p0f, name), T(c1, name), T(c2, name)
    keep = 1 - lr * wd if decayed else 1.0
    for i in range(n):
        a1, s1, a2, s2 = m1[off + i], v1[off + i], m2[off + i], v2[off + i]
        # step 1: m = (1-b1) g, v = (1-b2) g^2 (g = 0 but in the head: it starts at zero)
        assert close(a1 * a1 * (1 - b2), s1 * (1 - b1) ** 2, 1e-5, 1e-30), (name, i, a1, s1)
        nonzero += s2 > 0
        want1 = p0[i] * keep - lr * (a1 / (1 - b1)) / (math.sqrt(s1 / (1 - b2)) + eps)
        assert close(p1[i], want1, 1e-6, 1e-7), (name, i, p0[i], p1[i], want1)
        # step 2: the moments follow their recurrences, the step uses the bias corrections of t=2
        g2 = (a2 - b1 * a1) / (1 - b1)
        assert close(s2, b2 * s1 + (1 - b2) * g2 * g2, 1e-3, 1e-30), (name, i, s2, s1, g2)
        want2 = p1[i] * keep - lr * (a2 / (1 - b1 ** 2)) / (math.sqrt(s2 / (1 - b2 ** 2)) + eps)
        assert close(p2[i], want2, 1e-6, 1e-7), (name, i, p1[i], p2[i], want2)
        checked += 1
assert checked == 5018 and nonzero > 0.9 * checked, (checked, nonzero)
print("ok")' "$TMP/p0.h5" "$TMP/c1.h5" "$TMP/c2.h5"
}

@test "--weight-decay: a 1-step run differs from --weight-decay 0 by exactly lr*wd*p0 on decayed tensors only" {
  "${TR[@]}" --steps 1 --lr 0 --min-lr 0 -o "$TMP/p0.h5" >/dev/null 2>&1
  "${TR[@]}" --steps 1 "${EXACT[@]}" --weight-decay 0 -o "$TMP/w0.h5" >/dev/null 2>&1
  "${TR[@]}" --steps 1 "${EXACT[@]}" --weight-decay 3 -o "$TMP/w3.h5" >/dev/null 2>&1
  "${TR[@]}" --steps 1 "${EXACT[@]}" -o "$TMP/wdef.h5" >/dev/null 2>&1     # default 0.05
  py '
p0f, w0, w3, wdef = sys.argv[1:5]
decayed_seen = 0
for name, off, n, decayed in layout(p0f):
    p0, a, b, c = T(p0f, name), T(w0, name), T(w3, name), T(wdef, name)
    for i in range(n):
        # the Adam term is the same in all runs (same gradient): only the decoupled decay differs
        for got, wd in ((b, 3.0), (c, 0.05)):
            want = a[i] - (f32(0.01) * f32(wd) * p0[i] if decayed else 0.0)
            assert close(got[i], want, 1e-6, 2e-8), (name, i, wd, p0[i], a[i], got[i])
            if not decayed: assert got[i] == a[i], (name, i)
    decayed_seen += decayed
assert decayed_seen == 10, decayed_seen   # patch, 2 x (qkv, proj, fc1, fc2), head
print("ok")' "$TMP/p0.h5" "$TMP/w0.h5" "$TMP/w3.h5" "$TMP/wdef.h5"
}

@test "--clip: 0 is off (same as a huge clip), a small clip scales the step's gradient to that norm" {
  # --beta1 0: /train_state/adam_m after step 1 is step 1's (clipped) gradient, computed from the
  # same initial weights in every run (non-zero in the head only, which starts at zero)
  local opt=(--steps 2 --stop-after 1 --beta1 0 --lr 0.01)
  "${TR[@]}" "${opt[@]}" --clip 0 --checkpoint "$TMP/c0.h5" -o "$TMP/x.h5" >/dev/null 2>&1
  "${TR[@]}" "${opt[@]}" --clip 1e30 --checkpoint "$TMP/cbig.h5" -o "$TMP/x.h5" >/dev/null 2>&1
  "${TR[@]}" "${opt[@]}" --clip 0.05 --checkpoint "$TMP/c05.h5" -o "$TMP/x.h5" >/dev/null 2>&1
  "${TR[@]}" "${opt[@]}" --checkpoint "$TMP/cdef.h5" -o "$TMP/x.h5" >/dev/null 2>&1      # default 1
  h5same "$TMP/c0.h5" "$TMP/cbig.h5" /train_state/adam_m /train_state/adam_m
  py 'assert load(sys.argv[1]) == load(sys.argv[2])' "$TMP/c0.h5" "$TMP/cbig.h5"    # every tensor
  h5differ "$TMP/c0.h5" "$TMP/c05.h5" /train_state/adam_m /train_state/adam_m
  py '
g0, g05, gdef = (T(f, "/train_state/adam_m") for f in sys.argv[1:4])
n0 = math.sqrt(sum(x * x for x in g0))
assert n0 > 0.2, n0                         # so that 0.05 clips
n05 = math.sqrt(sum(x * x for x in g05))
assert close(n05, 0.05, 1e-5), n05
for a, b in zip(g0, g05): assert close(b, a * 0.05 / (n0 + 1e-6), 1e-5, 1e-12), (a, b)
s = min(1.0, 1.0 / (n0 + 1e-6))             # the default clip of 1
for a, b in zip(g0, gdef): assert close(b, a * s, 1e-5, 1e-12), (a, b, n0)
print(n0)' "$TMP/c0.h5" "$TMP/c05.h5" "$TMP/cdef.h5"
}

@test "--label-smoothing: the logged loss is the smoothed cross-entropy; 0 is ufo-infer's loss" {
  # Train 30 steps on batches of the whole set, then one more step with --lr 0 from the
  # checkpoint: its logged train_loss is the loss of the checkpoint's weights on all 64 images.
  "$BIN/ufo-train" "$D/d.h5" --preset tiny -b 64 -t 1 --seed 1 --steps 31 --stop-after 30 --lr 0.01 -o "$TMP/m.h5" \
      >/dev/null 2>&1
  local ls loss=()
  for ls in 0 0.5 1 default; do
    local arg=(--label-smoothing "$ls")
    [ "$ls" = default ] && arg=()
    run --separate-stderr "$BIN/ufo-train" "$D/d.h5" --preset tiny -b 64 -t 1 --seed 1 --steps 31 --lr 0 --min-lr 0 \
        "${arg[@]}" --resume "$TMP/m.ckpt.h5" -o "$TMP/m-$ls.h5"
    assert_success
    loss+=("$(tail -n 1 <<<"$output" | cut -f4)")
  done
  h5same --exclude-attribute / "$TMP/m-0.h5" "$TMP/m-1.h5"     # --lr 0: the weights did not move
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/m-0.h5" "$D/d.h5" --summary-only -t 1
  assert_success
  local ce
  ce=$(awk -F'\t' '$1 == "loss" { print $2 }' <<<"$output")
  # The smoothed loss is (1 - e) CE + e U, U the mean over classes of -log p: affine in e.
  py '
l0, l5, l1, ldef, ce = map(float, sys.argv[1:6])
assert abs(l0 - ce) <= 2e-6, (l0, ce)
assert l1 - l0 > 0.1, (l0, l1)              # a trained model: uniform targets cost more
assert abs(l5 - (l0 + l1) / 2) <= 3e-6, (l0, l5, l1)
assert abs(ldef - (0.9 * l0 + 0.1 * l1)) <= 3e-6, (l0, ldef, l1)   # default 0.1
print(l0, l5, l1, ldef, ce)' "${loss[@]}" "$ce"
}

# ---------------------------------------------------------------- run control

@test "--seed: the same seed gives the same weights and log, another seed others; -t 2 differs from -t 1 by rounding" {
  # OMP_NUM_THREADS=1: if -t were ignored every run below would use one thread
  export OMP_NUM_THREADS=1
  local run=("$BIN/ufo-train" "$D/d.h5" --preset tiny -b 16 --steps 8 --log-every 4 --lr 0.01)
  "${run[@]}" --seed 3 -t 1 -o "$TMP/a.h5" >"$TMP/a.tsv" 2>/dev/null
  "${run[@]}" --seed 3 -t 1 -o "$TMP/b.h5" >"$TMP/b.tsv" 2>/dev/null
  "${run[@]}" --seed 4 -t 1 -o "$TMP/c.h5" >"$TMP/c.tsv" 2>/dev/null
  h5same --exclude-attribute / "$TMP/a.h5" "$TMP/b.h5"
  diff <(cut -f1-7 "$TMP/a.tsv") <(cut -f1-7 "$TMP/b.tsv")
  h5differ --exclude-attribute / "$TMP/a.h5" "$TMP/c.h5"
  h5differ "$TMP/a.h5" "$TMP/c.h5" /embed/pos /embed/pos        # another initialisation ...
  run diff -q <(cut -f1-7 "$TMP/a.tsv") <(cut -f1-7 "$TMP/c.tsv")  # ... and another log
  [ "$status" -eq 1 ]
  # Threads: two shards sum the gradients in another order than one; the same count twice is
  # bit-identical, and the difference is rounding, not another computation.
  "${run[@]}" --seed 3 -t 2 -o "$TMP/t2.h5" >/dev/null 2>&1
  "${run[@]}" --seed 3 -t 2 -o "$TMP/t2b.h5" >/dev/null 2>&1
  h5same --exclude-attribute / "$TMP/t2.h5" "$TMP/t2b.h5"
  h5differ --exclude-attribute / "$TMP/a.h5" "$TMP/t2.h5"
  h5same --exclude-attribute / -d 1e-3 "$TMP/a.h5" "$TMP/t2.h5"
}

@test "--log-every N: a row every N steps and at the end; 0: one per epoch; --json: the same rows" {
  run --separate-stderr "${TR[@]}" --steps 10 --log-every 3 -o "$TMP/a.h5"
  assert_success
  [ "$(cut -f1 <<<"$output" | tr '\n' ' ')" = "step 3 6 9 10 " ]
  run --separate-stderr "${TR[@]}" --steps 10 --log-every 0 -o "$TMP/b.h5"      # 4 steps per epoch
  assert_success
  [ "$(cut -f1 <<<"$output" | tr '\n' ' ')" = "step 4 8 10 " ]
  run --separate-stderr "${TR[@]}" --steps 10 -o "$TMP/c.h5"                    # the default is 0
  [ "$(cut -f1 <<<"$output" | tr '\n' ' ')" = "step 4 8 10 " ]
  run --separate-stderr "${TR[@]}" --steps 10 --log-every 3 --json -o "$TMP/d.h5"
  assert_success
  py '
rows = [json.loads(l) for l in sys.argv[1].strip().split("\n")]
assert [r["step"] for r in rows] == [3, 6, 9, 10], rows
' "$output"
}

@test "--ckpt-every N writes the state of step N, 2N, ... to --checkpoint PATH (the same as --stop-after there)" {
  run --separate-stderr "${TR[@]}" --steps 10 --ckpt-every 4 --checkpoint "$TMP/ck.h5" -o "$TMP/m.h5"
  assert_success
  [ -f "$TMP/m.h5" ]
  assert_no_output_file "$TMP/m.ckpt.h5"          # --checkpoint replaced the default path
  py 'assert attr(sys.argv[1], "/train_state@step") == 8' "$TMP/ck.h5"   # step 8: the last multiple of 4 before 10
  # the periodic checkpoint holds what a run stopped at step 8 holds: weights and moments
  "${TR[@]}" --steps 10 --stop-after 8 --checkpoint "$TMP/stop.h5" -o "$TMP/n.h5" >/dev/null 2>&1
  assert_no_output_file "$TMP/n.h5"
  h5same --exclude-attribute / "$TMP/ck.h5" "$TMP/stop.h5"
  # without --ckpt-every there is no checkpoint at all; the default path is OUT.ckpt.h5
  "${TR[@]}" --steps 10 -o "$TMP/p.h5" >/dev/null 2>&1
  assert_no_output_file "$TMP/p.ckpt.h5"
  "${TR[@]}" --steps 10 --ckpt-every 3 -o "$TMP/q.h5" >/dev/null 2>&1
  py 'assert attr(sys.argv[1], "/train_state@step") == 9' "$TMP/q.ckpt.h5"
}

@test "--zstd L: every tensor passes filter 32015 with level L; the weights are those of --zstd 0" {
  "${TR[@]}" --steps 2 --zstd 7 --ckpt-every 1 -o "$TMP/z.h5" >/dev/null 2>&1
  "${TR[@]}" --steps 2 -o "$TMP/p.h5" >/dev/null 2>&1
  local d
  for d in /blocks/0/attn/qkv/w /tasks/main/head/b /embed/pos; do
    run h5dump -p -H -d "$d" "$TMP/z.h5"
    assert_output --partial 'FILTER_ID 32015'
    assert_output --partial 'PARAMS { 7 }'
    run h5dump -p -H -d "$d" "$TMP/p.h5"
    refute_output --partial 'FILTER_ID'
  done
  run h5dump -p -H -d /train_state/adam_m "$TMP/z.ckpt.h5"
  assert_output --partial 'FILTER_ID 32015'
  # h5diff and h5dump cannot decode zstd without a plugin; ufo reads it back: the same predictions
  diff <("$BIN/ufo-infer" -m "$TMP/z.h5" "$D/v.h5" -t 1 2>/dev/null) <("$BIN/ufo-infer" -m "$TMP/p.h5" "$D/v.h5" -t 1 2>/dev/null)
  [ "$(stat -c %s "$TMP/z.ckpt.h5")" -lt "$(stat -c %s "$TMP/p.h5")" ] || [ "$(stat -c %s "$TMP/z.h5")" -lt "$(stat -c %s "$TMP/p.h5")" ]
}

@test "--val: the val columns are ufo-infer's loss and accuracy of the model on that set" {
  run --separate-stderr "${TR[@]}" --steps 8 --log-every 8 --lr 0.01 --val "$D/v.h5" -o "$TMP/m.h5"
  assert_success
  local vl va
  vl=$(tail -n 1 <<<"$output" | cut -f6)
  va=$(tail -n 1 <<<"$output" | cut -f7)
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/m.h5" "$D/v.h5" --summary-only -t 1
  assert_success
  py '
vl, va, out = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
m = dict(l.split("\t")[:2] for l in out.split("\n") if l.count("\t") == 1)
assert abs(vl - float(m["loss"])) <= 2e-6 and va == float(m["accuracy"]), (vl, va, m)
assert int(m["images"]) == 40
print(vl, va)' "$vl" "$va" "$output"
}

@test "--task-name NAME: the head lives under /tasks/NAME and ufo-infer --task NAME runs it" {
  "${TR[@]}" --steps 2 --task-name digits -o "$TMP/m.h5" >/dev/null 2>&1
  run h5ls -r "$TMP/m.h5"
  assert_output --regexp '/tasks/digits/head/w +Dataset \{10, 16\}'
  refute_output --partial '/tasks/main'
  run h5dump -a /tasks "$TMP/m.h5"
  assert_output --partial '"digits"'
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/m.h5" --task digits "$D/v.h5" --summary-only -t 1
  assert_success
  assert_line $'task\tdigits'
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/m.h5" --task main "$D/v.h5" --summary-only -t 1
  assert_failure
}

# ---------------------------------------------------------------- architecture

# arch_attr FILE NAME: an integer attribute of /arch
arch_attr() { h5dump -a "/arch/$2" "$1" | sed -n 's/.*(0): *//p'; }

@test "--preset: the preset's architecture (tiny, small), fitted to the data's image size" {
  "$BIN/ufo-train" "$D/d.h5" --preset small -b 16 -t 1 --steps 1 -o "$TMP/s.h5" >/dev/null 2>&1
  [ "$(arch_attr "$TMP/s.h5" dim)" = 96 ] && [ "$(arch_attr "$TMP/s.h5" depth)" = 6 ]
  [ "$(arch_attr "$TMP/s.h5" heads)" = 3 ] && [ "$(arch_attr "$TMP/s.h5" mlp_hidden)" = 192 ]
  [ "$(arch_attr "$TMP/s.h5" img_h)" = 8 ]
  run h5ls -r "$TMP/s.h5"
  assert_output --regexp '/blocks/5/ffn/shared/fc1/w +Dataset \{192, 96\}'
  "${TR[@]}" --steps 1 -o "$TMP/t.h5" >/dev/null 2>&1
  [ "$(arch_attr "$TMP/t.h5" dim)" = 16 ] && [ "$(arch_attr "$TMP/t.h5" depth)" = 2 ]
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/s.h5" "$D/v.h5" --summary-only -t 1
  assert_success
}

@test "architecture flags: /arch, tensor shapes, and ufo-infer reloads the model" {
  run --separate-stderr "${TR[@]}" --steps 2 --img 8x8x1 --patch 2 --dim 24 --depth 3 --heads 3 --mlp-hidden 40 \
      --classes 10 --qk-norm --parallel-block --no-qkv-bias --val "$D/v.h5" --log-every 2 -o "$TMP/a.h5"
  assert_success
  local kv va
  va=$(tail -n 1 <<<"$output" | cut -f7)    # val_acc
  for kv in img_h=8 img_w=8 img_c=1 patch=2 dim=24 depth=3 heads=3 mlp_hidden=40 qk_norm=1 parallel_block=1 \
            qkv_bias=0; do
    [ "$(arch_attr "$TMP/a.h5" "${kv%=*}")" = "${kv#*=}" ] || { echo "/arch/${kv%=*} is not ${kv#*=}"; false; }
  done
  run h5dump -a /tasks/main/num_classes "$TMP/a.h5"
  assert_output --partial '(0): 10'
  run h5ls -r "$TMP/a.h5"
  assert_output --regexp '/embed/patch/w +Dataset \{24, 4\}'          # patch 2x2x1
  assert_output --regexp '/embed/pos +Dataset \{17, 24\}'             # (8/2)^2 patches + class token
  assert_output --regexp '/blocks/2/attn/qkv/w +Dataset \{72, 24\}'
  assert_output --regexp '/blocks/2/attn/q_norm/w +Dataset \{8\}'     # head dim 24/3
  assert_output --regexp '/blocks/0/attn/k_norm/b +Dataset \{8\}'
  assert_output --regexp '/blocks/1/ffn/shared/fc1/w +Dataset \{40, 24\}'
  assert_output --regexp '/tasks/main/head/w +Dataset \{10, 24\}'
  refute_output --partial '/blocks/3/'
  refute_output --partial 'qkv/b'          # --no-qkv-bias
  refute_output --partial 'ln2'            # --parallel-block: one LayerNorm per block
  # ufo-infer rebuilds the model from /arch alone and computes what training validated
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/a.h5" "$D/v.h5" --summary-only -t 1
  assert_success
  assert_line "accuracy	$va"
  # defaults of the same preset: none of the above
  "${TR[@]}" --steps 2 -o "$TMP/b.h5" >/dev/null 2>&1
  for kv in patch=4 dim=16 depth=2 heads=2 mlp_hidden=32 qk_norm=0 parallel_block=0 qkv_bias=1; do
    [ "$(arch_attr "$TMP/b.h5" "${kv%=*}")" = "${kv#*=}" ]
  done
  # --mlp-ratio: hidden = ratio x dim; --mlp-hidden wins over it
  "${TR[@]}" --steps 1 --dim 20 --heads 4 --mlp-ratio 1.5 -o "$TMP/c.h5" >/dev/null 2>&1
  [ "$(arch_attr "$TMP/c.h5" mlp_hidden)" = 30 ]
  run h5ls "$TMP/c.h5/blocks/0/ffn/shared/fc2/w"
  assert_output --partial '{20, 30}'
  "${TR[@]}" --steps 1 --dim 20 --heads 4 --mlp-ratio 1.5 --mlp-hidden 12 -o "$TMP/d.h5" >/dev/null 2>&1
  [ "$(arch_attr "$TMP/d.h5" mlp_hidden)" = 12 ]
  run --separate-stderr "$BIN/ufo-infer" -m "$TMP/c.h5" "$D/v.h5" --summary-only -t 1
  assert_success
}

@test "ViT-22B flags change the computation, not only /arch: the first steps' losses differ" {
  # Same seed: the shared tensors start equal; --parallel-block and --qk-norm change the forward
  # pass, --no-qkv-bias the gradient step (its bias starts at zero). Step 1 has a zero head.
  local base=(--steps 4 --log-every 1 --lr 0.02 --warmup 0)
  "${TR[@]}" "${base[@]}" -o "$TMP/a.h5" >"$TMP/a.tsv" 2>/dev/null
  local f
  for f in --parallel-block --qk-norm --no-qkv-bias; do
    "${TR[@]}" "${base[@]}" "$f" -o "$TMP/b.h5" >"$TMP/b.tsv" 2>/dev/null
    run diff -q <(cut -f4 "$TMP/a.tsv" | tail -n 2) <(cut -f4 "$TMP/b.tsv" | tail -n 2)
    [ "$status" -eq 1 ] || { echo "$f did not change the training loss"; false; }
  done
}

@test "--img must match the data and --classes its labels: a clear error, exit 1, no output" {
  "${TR[@]}" --steps 1 --img 8x8x1 --classes 10 -o "$TMP/ok.h5" >/dev/null 2>&1
  run -1 --separate-stderr "${TR[@]}" --steps 1 --img 16x16x1 -o "$TMP/m.h5"
  assert_one_line_error "$D/d.h5" "images are 8x8x1 but the model takes 16x16x1"
  run -1 --separate-stderr "${TR[@]}" --steps 1 --classes 12 -o "$TMP/m.h5"
  assert_one_line_error "$D/d.h5" "12 classes"
  assert_no_output_file "$TMP/m.h5" "$TMP/m.ckpt.h5"
}

# ---------------------------------------------------------------- augmentation

@test "--crop-pad, --hflip, --erase each change the training; off equals the default bit for bit" {
  local base=(--steps 6 --lr 0.01)
  "${TR[@]}" "${base[@]}" -o "$TMP/none.h5" >/dev/null 2>&1
  "${TR[@]}" "${base[@]}" --crop-pad 0 --erase 0 -o "$TMP/off.h5" >/dev/null 2>&1
  h5same --exclude-attribute / "$TMP/none.h5" "$TMP/off.h5"
  local a
  for a in "--crop-pad 1" "--hflip" "--erase 0.5"; do
    "${TR[@]}" "${base[@]}" $a -o "$TMP/aug.h5" >/dev/null 2>&1
    h5differ --exclude-attribute / "$TMP/none.h5" "$TMP/aug.h5"
    "${TR[@]}" "${base[@]}" $a -o "$TMP/aug2.h5" >/dev/null 2>&1     # per-sample seeds: repeatable
    h5same --exclude-attribute / "$TMP/aug.h5" "$TMP/aug2.h5"
  done
}

@test "resume is bit-exact with --crop-pad, --hflip and --erase on" {
  local cmd=("$BIN/ufo-train" "$D/d.h5" --preset tiny -b 16 --steps 12 --log-every 1 --lr 0.01 --seed 7 -t 2
             --crop-pad 2 --hflip --erase 0.5)
  "${cmd[@]}" -o "$TMP/a.h5" >"$TMP/A.tsv" 2>/dev/null
  "${cmd[@]}" -o "$TMP/c.h5" --stop-after 5 >/dev/null 2>&1
  "${cmd[@]}" -o "$TMP/c.h5" --resume "$TMP/c.ckpt.h5" >"$TMP/C.tsv" 2>/dev/null
  [ "$(sed -n 2p "$TMP/C.tsv" | cut -f1)" = 6 ]
  diff <(cut -f1-7 "$TMP/A.tsv" | sed -n '7,13p') <(cut -f1-7 "$TMP/C.tsv" | tail -n +2)
  h5same --exclude-attribute / "$TMP/a.h5" "$TMP/c.h5"
  # and the augmentation was on: without it the run ends elsewhere
  "$BIN/ufo-train" "$D/d.h5" --preset tiny -b 16 --steps 12 --lr 0.01 --seed 7 -t 2 -o "$TMP/plain.h5" >/dev/null 2>&1
  h5differ --exclude-attribute / "$TMP/a.h5" "$TMP/plain.h5"
}

# ---------------------------------------------------------------- multi-task (Task-MoE supernet)

@test "--task NAME=TRAIN[,VAL] (twice): a supernet with one head per task, validation where given" {
  run --separate-stderr "${MT[@]}" --steps 2 --log-every 2 -o "$TMP/s.h5"
  assert_success
  [ "$(cut -f3 <<<"$output" | tr '\n' ' ')" = "task alpha beta " ]
  run h5dump -a /kind "$TMP/s.h5"
  assert_output --partial '"supernet"'
  run h5ls -r "$TMP/s.h5"
  assert_output --regexp '/tasks/alpha/head/w +Dataset \{10, 16\}'
  assert_output --regexp '/tasks/beta/head/w +Dataset \{4, 16\}'
  assert_output --regexp '/blocks/1/ffn/beta/fc1/w +Dataset \{32, 16\}'
  run --separate-stderr "$BIN/ufo-train" --task "alpha=$D/d.h5,$D/v.h5" --task "beta=$D/b.h5" --preset tiny -b 16 \
      -t 1 --steps 2 --log-every 2 -o "$TMP/v.h5"
  assert_success
  [ "$(sed -n 2p <<<"$output" | cut -f7)" != nan ] && [ "$(sed -n 3p <<<"$output" | cut -f7)" = nan ]
}

@test "--task-batch NAME=B: that task's batch size, and with it its epoch length" {
  # beta has 48 images: 3 steps per epoch at -b 16, 12 at --task-batch beta=4; alpha 4 at -b 16.
  # An epoch is a pass over the task with the most steps per epoch.
  run --separate-stderr "${MT[@]}" --steps 12 --log-every 12 -o "$TMP/a.h5"
  assert_success
  [ "$(sed -n 2p <<<"$output" | cut -f2)" = 3.000 ]
  run --separate-stderr "${MT[@]}" --steps 12 --log-every 12 --task-batch beta=4 -o "$TMP/b.h5"
  assert_success
  [ "$(sed -n 2p <<<"$output" | cut -f2)" = 1.000 ]
  # ... and the images a step sees: 12 steps of 4 are beta's 48 images once, so at least one
  # training accuracy is a multiple of 1/48 that is not one of 1/192
  run --separate-stderr "${MT[@]}" --steps 12 --log-every 12 --task-batch alpha=8,beta=4 --json -o "$TMP/c.h5"
  assert_success
  py '
rows = [json.loads(l) for l in sys.argv[1].strip().split("\n")]
assert rows[0]["epoch"] == 1.0, rows             # beta: 12 steps per epoch; alpha 8 at 8
for r, n in zip(rows, (12 * 8, 12 * 4)):
    k = r["train_acc"] * n
    assert abs(k - round(k)) < 1e-6, (r, n)     # an integer count of hits out of n images
' "$output"
}

@test "--task-weight: a weight of 2 doubles that task's gradient contribution (adam_m = gradient)" {
  # --beta1 0 --clip 0: the checkpoint's adam_m after step 2 is step 2's raw gradient, the sum of
  # the tasks' weighted gradients. (Step 1 moves only the zero-initialised heads, by the same
  # Adam step whatever the weight, so step 2 starts from the same weights up to Adam's eps.)
  local opt=(--steps 3 --stop-after 2 --beta1 0 --clip 0 "${EXACT[@]}")
  "${MT[@]}" "${opt[@]}" --checkpoint "$TMP/w11.h5" -o "$TMP/x.h5" >/dev/null 2>&1
  "${MT[@]}" "${opt[@]}" --task-weight alpha=2 --checkpoint "$TMP/w21.h5" -o "$TMP/x.h5" >/dev/null 2>&1
  "${MT[@]}" "${opt[@]}" --task-weight beta=0 --checkpoint "$TMP/w10.h5" -o "$TMP/x.h5" >/dev/null 2>&1
  py '
g11, g21, g10 = (T(f, "/train_state/adam_m") for f in sys.argv[1:4])
L = {n: (o, s) for n, o, s, _ in layout(sys.argv[1])}
big = max(abs(x) for x in g11)
# 2 g_alpha + g_beta = (g_alpha + g_beta) + g_alpha, element by element
bad = [(i, a, b, c) for i, (a, b, c) in enumerate(zip(g11, g21, g10)) if abs(b - (a + c)) > 1e-3 * big + 1e-4 * abs(b)]
assert not bad, bad[:5]
# ... and not trivially: alpha contributes to the shared weights, beta with weight 0 to nothing
o, s = L["/blocks/0/attn/qkv/w"]
assert max(abs(x) for x in g10[o:o + s]) > 1e-2 * big
assert max(abs(a - b) for a, b in zip(g21[o:o + s], g11[o:o + s])) > 1e-2 * big
o, s = L["/tasks/beta/head/w"]
assert all(x == 0 for x in g10[o:o + s])
o, s = L["/tasks/alpha/head/w"]
assert all(close(b, 2 * c, 1e-3, 1e-3 * big) for b, c in zip(g21[o:o + s], g10[o:o + s]))
print("ok")' "$TMP/w11.h5" "$TMP/w21.h5" "$TMP/w10.h5"
}

@test "--task-lr-mult: the task's own FFNs and head move at that multiple of the rate, nothing else does" {
  # One step at a rate of exactly 0.01 with weight decay 0.5. In step 1 only the heads have a
  # gradient (they start at zero); every other tensor just decays, by exactly 1 - rate * 0.5.
  local opt=(--steps 1 "${EXACT[@]}" --weight-decay 0.5)
  "${MT[@]}" --steps 1 --lr 0 --min-lr 0 -o "$TMP/p0.h5" >/dev/null 2>&1
  "${MT[@]}" "${opt[@]}" -o "$TMP/m1.h5" >/dev/null 2>&1
  "${MT[@]}" "${opt[@]}" --task-lr-mult alpha=3 -o "$TMP/m3.h5" >/dev/null 2>&1
  py '
p0f, m1f, m3f = sys.argv[1:4]
lr, wd = f32(0.01), f32(0.5)
keep = lambda mult: f32(1 - f32(f32(lr * mult) * wd))
owned = lambda n: "/ffn/alpha/" in n or n.startswith("/tasks/alpha/head/")
for name, off, n, decayed in layout(p0f):
    p0, a, b = T(p0f, name), T(m1f, name), T(m3f, name)
    if name.startswith("/tasks/") and "/head/" in name:
        mult = 3 if owned(name) else 1
        for i in range(n):   # p0 * keep - rate * g/(|g|+eps): its move from p0 scales with the rate
            assert close(b[i] - p0[i], mult * (a[i] - p0[i]), 1e-4, 1e-9), (name, i, p0[i], a[i], b[i])
        assert any(x != y for x, y in zip(a, p0))
        continue
    if not owned(name):
        assert a == b, name          # bit-identical: the multiplier does not reach it
    for mult, got in ((1, a), (3 if owned(name) else 1, b)):
        want = [f32(x * keep(mult)) if decayed else x for x in p0]
        assert got == want, (name, mult)
print("ok")' "$TMP/p0.h5" "$TMP/m1.h5" "$TMP/m3.h5"
}

@test "--router-lr: the routers' rate (0: fixed); --router-init: their start, p(own) and route" {
  # --beta1 0 --beta2 0: an Adam step moves every parameter with a gradient by exactly its rate.
  # The routers' first gradient comes in step 2 (the heads start at zero), so after 2 steps
  # every router logit is +-(its rate) from its start.
  local opt=(--steps 2 "${EXACT[@]}" --beta1 0 --beta2 0)
  "${MT[@]}" "${opt[@]}" --router-lr 0.05 -o "$TMP/r05.h5" >/dev/null 2>&1
  "${MT[@]}" "${opt[@]}" -o "$TMP/rdef.h5" >/dev/null 2>&1
  "${MT[@]}" "${opt[@]}" --router-lr 0.05 --router-init 0.5 -o "$TMP/ri.h5" >/dev/null 2>&1
  py '
for f, rate, init in ((sys.argv[1], 0.05, 0.0), (sys.argv[2], 0.01, 0.0), (sys.argv[3], 0.05, 0.5)):
    for t in ("alpha", "beta"):
        r = T(f, "/tasks/%s/router" % t)
        assert len(r) == 4
        for i, x in enumerate(r):
            start = init if i % 2 else 0.0
            assert close(abs(x - start), rate, 1e-2), (f, t, i, x, rate, init)   # 1%: Adam eps / |g|
print("ok")' "$TMP/r05.h5" "$TMP/rdef.h5" "$TMP/ri.h5"
  # --router-lr 0: the logits stay at (shared 0, own INIT); p(own) = 1/(1+exp(-INIT)), and the
  # route is their argmax (ties go to the shared FFN)
  local init want_p want_route
  for init in 0.5 -0.5 0; do
    run --separate-stderr "${MT[@]}" --steps 4 --log-every 4 --lr 0.01 --router-lr 0 --router-init "$init" -o "$TMP/f.h5"
    assert_success
    py '
init = float(sys.argv[2])
for t in ("alpha", "beta"): assert T(sys.argv[1], "/tasks/%s/router" % t) == [0.0, f32(init)] * 2
p = "%.3f" % (1 / (1 + math.exp(-init)))
route = "own" if init > 0 else "shared"
for r in log(sys.argv[3]):
    assert r["p_own"] == p + "," + p and r["route"] == route + "," + route, r
assert I(sys.argv[1], "/tasks/alpha/route") == [1 if init > 0 else 0] * 2
' "$TMP/f.h5" "$init" "$output"
  done
}

@test "--gumbel-noise batch: one draw per task, block and step (whole FFNs idle); sample: per image" {
  # Step 2 is the first with a gradient below the heads. With --weight-decay 0 an FFN that no image
  # of the step went through keeps its initial weights exactly. Per sample (16 images, p = 1/2)
  # every FFN is used; per batch each task's images all take the same FFN in a block.
  local opt=(--steps 2 --lr 0.01 --weight-decay 0 --seed 2)
  "$BIN/ufo-train" --task "alpha=$D/d.h5" --task "beta=$D/b.h5" --preset tiny -b 16 -t 1 --steps 1 --lr 0 --min-lr 0 \
      --seed 2 -o "$TMP/p0.h5" >/dev/null 2>&1
  local mt=("$BIN/ufo-train" --task "alpha=$D/d.h5" --task "beta=$D/b.h5" --preset tiny -b 16 -t 1)
  "${mt[@]}" "${opt[@]}" --gumbel-noise batch -o "$TMP/batch.h5" >/dev/null 2>&1
  "${mt[@]}" "${opt[@]}" --gumbel-noise sample -o "$TMP/sample.h5" >/dev/null 2>&1
  "${mt[@]}" "${opt[@]}" -o "$TMP/default.h5" >/dev/null 2>&1
  h5same --exclude-attribute / "$TMP/sample.h5" "$TMP/default.h5"
  py '
p0, batch, sample = sys.argv[1:4]
def used(f, s, l):   # did any image of step 2 go through FFN set s of block l?
    names = ["/blocks/%d/ffn/%s/%s" % (l, s, x) for x in ("fc1/w", "fc1/b", "fc2/w", "fc2/b")]
    moved = [T(f, n) != T(p0, n) for n in names]
    assert all(moved) or not any(moved), (f, s, l, moved)     # a whole FFN, or none of it
    return moved[0]
idle = 0
for l in range(2):
    for s in ("shared", "alpha", "beta"): assert used(sample, s, l), ("sample", s, l)
    own = {t: used(batch, t, l) for t in ("alpha", "beta")}
    # the shared FFN ran iff some task drew it for the whole batch
    assert used(batch, "shared", l) == (not own["alpha"] or not own["beta"]), (l, own)
    idle += sum(not x for x in own.values())
assert idle > 0, "seed 2 drew the own FFN for every task and block: no FFN was idle"
print(idle)' "$TMP/p0.h5" "$TMP/batch.h5" "$TMP/sample.h5"
}

@test "--tau, --tau-start/--tau-end/--tau-anneal-steps: the temperature of the routers' gradient" {
  # The hard gates do not depend on the temperature, the routers' straight-through gradient does:
  # routers that trained 6 steps compare equal exactly when their temperature schedules are equal.
  local mt=("${MT[@]}" --steps 6 --lr 0.01 --router-lr 0.3)
  "${mt[@]}" -o "$TMP/def.h5" >/dev/null 2>&1                                         # tau 5
  "${mt[@]}" --tau 5 -o "$TMP/t5.h5" >/dev/null 2>&1
  "${mt[@]}" --tau 1 -o "$TMP/t1.h5" >/dev/null 2>&1
  "${mt[@]}" --tau-start 1 --tau-end 1 -o "$TMP/s1.h5" >/dev/null 2>&1
  "${mt[@]}" --tau-start 1 --tau-end 5 --tau-anneal-steps 0 -o "$TMP/a0.h5" >/dev/null 2>&1   # fixed at start
  "${mt[@]}" --tau-start 1 --tau-end 5 --tau-anneal-steps 4 -o "$TMP/a4.h5" >/dev/null 2>&1
  "${mt[@]}" --tau-start 1 --tau-end 3 --tau-anneal-steps 4 -o "$TMP/e3.h5" >/dev/null 2>&1
  "${mt[@]}" --tau-start 1 --tau-end 5 --tau-anneal-steps 100 -o "$TMP/a100.h5" >/dev/null 2>&1
  "${mt[@]}" --tau-start 5 --tau-end 1 --tau-anneal-steps 1 -o "$TMP/r1.h5" >/dev/null 2>&1  # 1 from step 1 on
  local R=(/tasks/alpha/router /tasks/alpha/router)
  h5same "$TMP/def.h5" "$TMP/t5.h5" "${R[@]}"
  h5differ "$TMP/t5.h5" "$TMP/t1.h5" "${R[@]}"
  h5same "$TMP/t1.h5" "$TMP/s1.h5" "${R[@]}"
  h5same "$TMP/t1.h5" "$TMP/a0.h5" "${R[@]}"
  h5differ "$TMP/t1.h5" "$TMP/a4.h5" "${R[@]}"
  h5differ "$TMP/t5.h5" "$TMP/a4.h5" "${R[@]}"
  h5differ "$TMP/a4.h5" "$TMP/e3.h5" "${R[@]}"
  h5differ "$TMP/a4.h5" "$TMP/a100.h5" "${R[@]}"
  # step 0 has no router gradient (zero heads), so a schedule at 1 from step 1 on is tau 1
  h5same "$TMP/t1.h5" "$TMP/r1.h5" "${R[@]}"
}

@test "option values that cannot mean anything: exit 2, one line naming the option, no output" {
  bad=("-t -1" "--steps -1" "--epochs 0" "--lr -1" "--lr nan" "--min-lr -1" "--warmup -5" "--weight-decay -1"
       "--beta1 1" "--beta2 -0.1" "--clip -1" "--label-smoothing 1.5" "--crop-pad -1" "--erase 2" "--log-every -1"
       "--ckpt-every -1" "--stop-after -1" "--img 8x8" "--img 8x8x2" "--depth 0" "--dim 100000" "--heads 3"
       "--mlp-ratio -1" "--patch 0" "--classes 0")
  for b in "${bad[@]}"; do
    run --separate-stderr "${TR[@]}" $b -o "$TMP/bad.h5"
    [ "$status" -eq 2 ] || { echo "$b -> $status: $stderr"; false; }
    assert_one_line_error
    opt=${b%% *}
    [[ "$stderr" == *"${opt#-}"* || "$b" == "--heads 3" ]] || { echo "$b: $stderr"; false; }
    assert_no_output_file "$TMP/bad.h5"
  done
  for b in "beta=0" "beta=-4"; do
    run --separate-stderr "${MT[@]}" --task-batch "$b" -o "$TMP/bad.h5"
    [ "$status" -eq 2 ]
    assert_one_line_error "--task-batch"
  done
  run --separate-stderr "${MT[@]}" --task-weight alpha=-1 -o "$TMP/bad.h5"
  [ "$status" -eq 2 ]
  run --separate-stderr "${MT[@]}" --lr 0 --router-lr 0.5 -o "$TMP/bad.h5"
  [ "$status" -eq 2 ]
  assert_one_line_error "--router-lr needs --lr > 0"
  assert_no_output_file "$TMP/bad.h5"
}
