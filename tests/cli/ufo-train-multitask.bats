#!/usr/bin/env bats
# ufo-train with two or more --task: the Task-MoE supernet. Log format (one row per task),
# checkpoint contents, determinism for a seed, bit-exact resume, route freezing, per-task
# options, and bad input. Seconds each on 8x8 synthetic data with --preset tiny.

load common

export OMP_WAIT_POLICY=passive

setup_file() {
  export TMP="$BATS_FILE_TMPDIR"
  make_synth_dataset "$TMP/a.h5" 160 10
  make_synth_dataset "$TMP/b.h5" 96 4
  make_synth_dataset "$TMP/big.h5" 40 4 12 12
}

setup() {
  A="$BATS_FILE_TMPDIR/a.h5"
  B="$BATS_FILE_TMPDIR/b.h5"
  MT=("$BIN/ufo-train" --task "alpha=$A,$A" --task "beta=$B" --task-batch beta=8 --preset tiny -b 16 --lr 0.01
      --router-lr 0.3)
}

# Columns a rerun or a resumed run must reproduce: all but img_per_s and elapsed_s.
det_cols() { cut -f1-10 "$@"; }

@test "two tasks: one log row per task with routes, a supernet checkpoint" {
  run --separate-stderr "${MT[@]}" --steps 20 --log-every 10 --seed 1 -t 1 -o "$TMP/s.h5"
  assert_success
  assert_line --index 0 $'step\tepoch\ttask\tlr\ttrain_loss\ttrain_acc\tval_loss\tval_acc\troute\tp_own\timg_per_s\telapsed_s'
  [ "${#lines[@]}" -eq 5 ]
  assert_line --index 1 --regexp $'^10\t[0-9.]+\talpha\t[0-9.e-]+\t[0-9.]+\t[0-9.]+\t[0-9.]+\t[0-9.]+\t(shared|own),(shared|own)\t0\\.[0-9]{3},0\\.[0-9]{3}\t'
  assert_line --index 2 --regexp $'^10\t[0-9.]+\tbeta\t.*\tnan\tnan\t'
  [[ "$stderr" == *"Task-MoE supernet"* ]]
  run h5dump -a /kind "$TMP/s.h5"
  assert_output --partial '"supernet"'
  run h5ls -r "$TMP/s.h5"
  for d in /tasks/alpha/router /tasks/beta/router /tasks/alpha/route /blocks/1/ffn/shared/fc1/w \
           /blocks/1/ffn/alpha/fc1/w /blocks/1/ffn/beta/fc2/b /tasks/beta/head/w; do
    assert_output --partial "$d "
  done
  # JSON Lines carry the same, with arrays for the route and p_own.
  run --separate-stderr "${MT[@]}" --steps 10 --log-every 10 --seed 1 -t 1 --json -o "$TMP/j.h5"
  assert_success
  python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
assert [r["task"] for r in rows] == ["alpha", "beta"], rows
assert len(rows[0]["p_own"]) == 2 and all(0 < p < 1 for p in rows[0]["p_own"])
assert rows[1]["val_acc"] is None and rows[0]["val_acc"] is not None
' <<<"$output"
}

@test "routing and training are deterministic for a seed and thread count" {
  "${MT[@]}" --steps 12 --log-every 4 --seed 5 -t 2 -o "$TMP/x.h5" >"$TMP/X.tsv" 2>/dev/null
  "${MT[@]}" --steps 12 --log-every 4 --seed 5 -t 2 -o "$TMP/y.h5" >"$TMP/Y.tsv" 2>/dev/null
  diff <(det_cols "$TMP/X.tsv") <(det_cols "$TMP/Y.tsv")
  h5diff -q --exclude-attribute / "$TMP/x.h5" "$TMP/y.h5"
  # Another seed draws other Gumbel noise (and other weights).
  "${MT[@]}" --steps 12 --log-every 4 --seed 6 -t 2 -o "$TMP/z.h5" >/dev/null 2>&1
  h5differ "$TMP/x.h5" "$TMP/z.h5" /tasks/alpha/router /tasks/alpha/router
}

@test "supernet resume is bit-exact, log rows of every task included" {
  local cmd=("${MT[@]}" --steps 16 --log-every 3 --seed 2 -t 2)
  "${cmd[@]}" -o "$TMP/a1.h5" >"$TMP/A.tsv" 2>/dev/null
  "${cmd[@]}" -o "$TMP/c1.h5" --stop-after 7 >/dev/null 2>&1
  [ -f "$TMP/c1.ckpt.h5" ]
  "${cmd[@]}" -o "$TMP/c1.h5" --resume "$TMP/c1.ckpt.h5" >"$TMP/C.tsv" 2>/dev/null
  # rows at steps 3 and 6 come before the stop (2 tasks each), the rest after the resume
  diff <(det_cols "$TMP/A.tsv" | tail -n +6) <(det_cols "$TMP/C.tsv" | tail -n +2)
  h5diff -q --exclude-attribute / "$TMP/a1.h5" "$TMP/c1.h5"
}

@test "--route-freeze-at: the routes of the freeze step stay; routers and off-route FFNs stop; STEP and Nep" {
  # --beta1 0 --weight-decay 0: a tensor whose gradient is zero does not move at all (no momentum,
  # no decay), so "stops" can be checked bit for bit.
  local cmd=("${MT[@]}" --steps 12 --log-every 1 --seed 3 -t 1 --route-freeze-at 6 --beta1 0 --weight-decay 0)
  run --separate-stderr "${cmd[@]}" --ckpt-every 6 -o "$TMP/f.h5"
  assert_success
  [[ "$stderr" == *"routes frozen at step 6"* ]]
  local log=$output
  # The checkpoint of step 6 is the state the freeze starts from (not frozen yet); its stored routes
  # are its routers' argmax. The final model keeps exactly those routes and router logits.
  run h5dump -a /train_state/step "$TMP/f.ckpt.h5"
  assert_output --partial '(0): 6'
  run h5dump -a /train_state/routes_frozen "$TMP/f.ckpt.h5"
  assert_output --partial '(0): 0'
  local t
  for t in alpha beta; do
    h5same "$TMP/f.h5" "$TMP/f.ckpt.h5" "/tasks/$t/route" "/tasks/$t/route"
    h5same "$TMP/f.h5" "$TMP/f.ckpt.h5" "/tasks/$t/router" "/tasks/$t/router"
  done
  python3 - "$TMP/f.h5" "$TMP/f.ckpt.h5" "$log" <<'PY'
import re, subprocess, sys
final, ck, out = sys.argv[1:4]
def values(f, d):
    t = subprocess.run(["h5dump", "-y", "-w", "0", "-m", "%.9g", "-d", d, f], check=True, capture_output=True, text=True).stdout
    return t.split("DATA {")[1].split("}")[0].split()
route = {t: [int(x.strip(",")) for x in values(final, "/tasks/%s/route" % t)] for t in ("alpha", "beta")}
# the log: from step 6 on every row shows the stored route and the same p(own)
rows = [l.split("\t") for l in out.strip().split("\n")]
head = rows[0]
rows = [dict(zip(head, r)) for r in rows[1:]]
for t in route:
    want = ",".join("own" if x else "shared" for x in route[t])
    late = [r for r in rows if r["task"] == t and int(r["step"]) >= 6]
    assert len(late) == 7 and all(r["route"] == want for r in late), (t, want, late)
    assert len({r["p_own"] for r in late}) == 1, late
# FFN set s of block l is on a route when some task runs it there; the others got no gradient
# after the freeze and kept their weights of step 6 exactly, the used ones changed
on = off = 0
for l in range(2):
    for s in ("shared", "alpha", "beta"):
        used = any((route[t][l] == 0) if s == "shared" else (t == s and route[t][l] == 1) for t in route)
        for x in ("fc1/w", "fc1/b", "fc2/w", "fc2/b"):
            d = "/blocks/%d/ffn/%s/%s" % (l, s, x)
            same = values(final, d) == values(ck, d)
            assert same != used, (d, "used" if used else "off-route", "same" if same else "changed")
        on += used
        off += not used
assert on >= 2 and off >= 2, (on, off)
print(route, on, off)
PY
  # a checkpoint after the freeze says so, and holds the same routes
  "${cmd[@]}" --stop-after 8 --checkpoint "$TMP/f8.h5" -o "$TMP/f8-final.h5" >/dev/null 2>&1
  run h5dump -a /train_state/routes_frozen "$TMP/f8.h5"
  assert_output --partial '(0): 1'
  h5same "$TMP/f.h5" "$TMP/f8.h5" /tasks/beta/route /tasks/beta/route
  # An epoch is a pass over the task with the most steps: beta, 96 images / batch 8 = 12 steps
  # (alpha has 160 / 16 = 10), so "1ep" freezes at step 12.
  run --separate-stderr "${MT[@]}" --steps 14 --log-every 14 --seed 3 -t 1 --route-freeze-at 1ep -o "$TMP/g.h5"
  assert_success
  [[ "$stderr" == *"routes frozen at step 12"* ]]
}

@test "per-task batch, weight, lr multiplier and tau options are accepted and recorded" {
  run --separate-stderr "${MT[@]}" --steps 4 --log-every 4 --seed 1 -t 1 --task-weight alpha=2,beta=0.5 \
      --task-lr-mult beta=3 --tau-start 5 --tau-end 1 --tau-anneal-steps 4 --gumbel-noise batch --router-init 0.5 \
      --ckpt-every 2 -o "$TMP/o.h5"
  assert_success
  run h5dump -a /train_state/train_options "$TMP/o.ckpt.h5"
  assert_output --partial '"weight":2.0'
  assert_output --partial '"lr_mult":3.0'
  assert_output --partial '"gumbel_noise":"batch"'
  assert_output --partial '"tau_anneal_steps":4'
}

@test "bad multi-task input: one stderr line, exit 2 (usage) or 1 (data), no output" {
  run --separate-stderr "$BIN/ufo-train" --task alpha "$A" -o "$TMP/bad.h5"
  assert_exit_error 2 "--task takes NAME=TRAIN.h5"
  run --separate-stderr "${MT[@]}" --val "$A" --steps 2 -o "$TMP/bad.h5"
  assert_exit_error 2 "--val and --task-name apply to one dataset"
  run --separate-stderr "${MT[@]}" --task-batch gamma=4 --steps 2 -o "$TMP/bad.h5"
  assert_exit_error 2 "--task-batch" "no --task named 'gamma'"
  run --separate-stderr "${MT[@]}" --task-weight alpha=heavy --steps 2 -o "$TMP/bad.h5"
  assert_exit_error 2 "'heavy' is not a number"
  run --separate-stderr "${MT[@]}" --task-lr-mult beta --steps 2 -o "$TMP/bad.h5"
  assert_exit_error 2 "--task-lr-mult takes NAME=VALUE"
  run --separate-stderr "${MT[@]}" --route-freeze-at soon --steps 2 -o "$TMP/bad.h5"
  assert_exit_error 2 "--route-freeze-at" "soon"
  run --separate-stderr "${MT[@]}" --gumbel-noise pixel --steps 2 -o "$TMP/bad.h5"
  assert_exit_error 2 "--gumbel-noise"
  run --separate-stderr "${MT[@]}" --tau 0 --steps 2 -o "$TMP/bad.h5"
  assert_exit_error 2 "--tau must be positive"
  run --separate-stderr "${MT[@]}" --tau-start -1 --steps 2 -o "$TMP/bad.h5"
  assert_exit_error 2 "temperature must be positive"
  run --separate-stderr "${MT[@]}" --classes 10 --steps 2 -o "$TMP/bad.h5"
  assert_exit_error 2 "--classes applies to one task"
  run --separate-stderr "$BIN/ufo-train" --task alpha="$A" --task alpha="$B" --preset tiny -b 8 --steps 2 -t 1 \
      -o "$TMP/bad.h5"
  assert_exit_error 2 "task 'alpha' appears twice"
  run --separate-stderr "$BIN/ufo-train" --task shared="$A" --task beta="$B" --preset tiny -b 8 --steps 2 -t 1 \
      -o "$TMP/bad.h5"
  assert_exit_error 2 "reserved"
  run --separate-stderr "$BIN/ufo-train" --task alpha="$A" --task beta="$BATS_FILE_TMPDIR/big.h5" --preset tiny \
      -b 8 --steps 2 -t 1 -o "$TMP/bad.h5"
  assert_exit_error 1 "big.h5" "images are 12x12x1 but task alpha's are 8x8x1"
  run --separate-stderr "$BIN/ufo-train" --task alpha="$A" --task beta="$TMP/nosuch.h5" --preset tiny -o "$TMP/bad.h5"
  assert_exit_error 1 "nosuch.h5: no such file"
  assert_no_output_file "$TMP/bad.h5" "$TMP/bad.ckpt.h5"
  # A dense checkpoint cannot resume a multi-task run.
  "$BIN/ufo-train" "$A" --preset tiny -b 16 --steps 2 -t 1 --stop-after 1 -o "$TMP/d.h5" >/dev/null 2>&1
  run --separate-stderr "${MT[@]}" --steps 4 -t 1 --resume "$TMP/d.ckpt.h5" -o "$TMP/bad.h5"
  assert_exit_error 1 "d.ckpt.h5" "not a supernet one"
  assert_no_output_file "$TMP/bad.h5" "$TMP/bad.ckpt.h5"
}
