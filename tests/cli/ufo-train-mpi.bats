#!/usr/bin/env bats
# Data-parallel training over MPI (mpirun): N processes at one global batch against one
# process (dense, Task-MoE, distillation), --resume with another process count, signals and a
# killed rank, ufo-bench --train's all-reduce column, and bad input. Skipped when the tools were
# built without MPI (make MPI=0) or mpirun is missing.
#
# Tolerances. With one pass per step (dense, distillation), 2 processes x 1 thread split each
# batch exactly as 1 process x 2 threads does (rows 0..B/2-1 and B/2..B-1), and a sum of two
# floats does not depend on its order, so those runs are compared bit for bit. Otherwise the
# shares are added in another order: with 3 processes Open MPI adds them in its own order, and
# a Task-MoE step (one pass per task) sums per process first, (a0 + b0) + (a1 + b1), where one
# process sums ((a0 + a1) + b0) + b1. The gradients then differ by rounding (about 1e-7
# relative). AdamW divides each update by the root of its second moment, so a weight whose
# gradient is near zero can move by up to lr per step on such a difference: one process at 1
# and 3 threads differs by as much (2.8e-4 on the Task-MoE run below, 20 steps at lr 1e-3).
# The bound is 2e-3, a tenth of 20 steps x lr; measured: dense 1.3e-5, Task-MoE 5.7e-4.

load common

export OMP_WAIT_POLICY=passive

setup_file() {
  export D="$BATS_FILE_TMPDIR"
  if command -v mpirun >/dev/null && ldd "$BIN/ufo-train" | grep -q libmpi; then
    make_synth_dataset "$D/a.h5" 200 10
    make_synth_dataset "$D/v.h5" 60 10
    make_synth_dataset "$D/b.h5" 120 4
  fi
}

setup() {
  command -v mpirun >/dev/null || skip "mpirun is not installed"
  ldd "$BIN/ufo-train" | grep -q libmpi || skip "built without MPI (make MPI=0)"
  DENSE=("$D/a.h5" --val "$D/v.h5" --preset tiny --steps 20 -b 24 --log-every 5 --seed 1)
  MOE=(--task alpha="$D/a.h5,$D/v.h5" --task beta="$D/b.h5" --preset tiny -b 24 --steps 20 --log-every 10 --seed 1)
}

@test "dense: 2 processes equal 1 process x 2 threads bit for bit; 3 processes are within 2e-3 and repeat exactly" {
  "$BIN/ufo-train" "${DENSE[@]}" -t 2 -o "$TMP/one.h5" > "$TMP/one.tsv" 2>/dev/null
  mpi_run 2 "$BIN/ufo-train" "${DENSE[@]}" -t 1 -o "$TMP/two.h5" > "$TMP/two.tsv" 2> "$TMP/two.err"
  grep -q '; 2 processes, 1 thread each' "$TMP/two.err"
  [ "$(wc -l < "$TMP/two.tsv")" -eq 5 ]   # rank 0 alone logs: a header and 4 rows
  cmp <(cut -f1-7 "$TMP/one.tsv") <(cut -f1-7 "$TMP/two.tsv")
  [ "$(weights_max_diff "$TMP/one.h5" "$TMP/two.h5")" = 0 ]
  "$BIN/ufo-train" "${DENSE[@]}" -t 3 -o "$TMP/one3.h5" > "$TMP/one3.tsv" 2>/dev/null
  mpi_run 3 "$BIN/ufo-train" "${DENSE[@]}" -t 1 -o "$TMP/three.h5" > "$TMP/three.tsv" 2>/dev/null
  # For a given process count the run repeats bit for bit.
  mpi_run 3 "$BIN/ufo-train" "${DENSE[@]}" -t 1 -o "$TMP/three-again.h5" > /dev/null 2>&1
  [ "$(weights_max_diff "$TMP/three.h5" "$TMP/three-again.h5")" = 0 ]
  d=$(weights_max_diff "$TMP/one3.h5" "$TMP/three.h5")
  awk -v d="$d" 'BEGIN { exit !(d <= 2e-3) }'
  # Accuracy columns are counts: equal; losses agree to rounding.
  cmp <(cut -f1,5,7 "$TMP/one3.tsv") <(cut -f1,5,7 "$TMP/three.tsv")
  paste "$TMP/one3.tsv" "$TMP/three.tsv" | awk -F'\t' 'NR > 1 { d = $4 - $13; if (d < 0) d = -d; if (d > 1e-4) exit 1 }'
}

@test "Task-MoE supernet: 2 and 3 processes within 2e-3 of one (Gumbel noise per global sample)" {
  "$BIN/ufo-train" "${MOE[@]}" -t 2 -o "$TMP/one.h5" > "$TMP/one.tsv" 2>/dev/null
  mpi_run 2 "$BIN/ufo-train" "${MOE[@]}" -t 1 -o "$TMP/two.h5" > "$TMP/two.tsv" 2>/dev/null
  cmp <(cut -f1-3 "$TMP/one.tsv") <(cut -f1-3 "$TMP/two.tsv")
  paste "$TMP/one.tsv" "$TMP/two.tsv" | awk -F'\t' 'NR > 1 { d = $5 - $(5 + NF / 2); if (d < 0) d = -d; if (d > 1e-3) exit 1 }'
  d=$(weights_max_diff "$TMP/one.h5" "$TMP/two.h5")
  awk -v d="$d" 'BEGIN { exit !(d <= 2e-3) }'
  "$BIN/ufo-train" "${MOE[@]}" -t 3 -o "$TMP/one3.h5" >/dev/null 2>&1
  mpi_run 3 "$BIN/ufo-train" "${MOE[@]}" -t 1 -o "$TMP/three.h5" >/dev/null 2>&1
  d=$(weights_max_diff "$TMP/one3.h5" "$TMP/three.h5")
  awk -v d="$d" 'BEGIN { exit !(d <= 2e-3) }'
}

@test "ufo-distill under mpirun: a ViT student from a ViT teacher equals one process" {
  "$BIN/ufo-train" "$D/a.h5" --preset tiny --steps 10 -b 24 -t 1 --seed 2 -o "$TMP/teacher.h5" >/dev/null 2>&1
  S=(-m "$TMP/teacher.h5" "$D/a.h5" --val "$D/v.h5" --preset tiny --depth 1 --steps 12 -b 24 --log-every 6 --seed 1
     --crop-pad 1 --hflip)
  "$BIN/ufo-distill" "${S[@]}" -t 2 -o "$TMP/one.h5" > "$TMP/one.tsv" 2>/dev/null
  mpi_run 2 "$BIN/ufo-distill" "${S[@]}" -t 1 -o "$TMP/two.h5" > "$TMP/two.tsv" 2>/dev/null
  cmp <(cut -f1-8 "$TMP/one.tsv") <(cut -f1-8 "$TMP/two.tsv")
  [ "$(weights_max_diff "$TMP/one.h5" "$TMP/two.h5")" = 0 ]
}

@test "--resume with another process count: 2 processes stop, 1 process goes on, as one run" {
  "$BIN/ufo-train" "${DENSE[@]}" -t 2 -o "$TMP/whole.h5" > "$TMP/whole.tsv" 2>/dev/null
  mpi_run 2 "$BIN/ufo-train" "${DENSE[@]}" -t 1 --stop-after 8 -o "$TMP/r.h5" > "$TMP/r.tsv" 2>/dev/null
  [ ! -e "$TMP/r.h5" ]
  "$BIN/ufo-train" "${DENSE[@]}" -t 2 --resume "$TMP/r.ckpt.h5" -o "$TMP/r.h5" 2>/dev/null | tail -n +2 >> "$TMP/r.tsv"
  cmp <(cut -f1-7 "$TMP/whole.tsv") <(cut -f1-7 "$TMP/r.tsv")
  [ "$(weights_max_diff "$TMP/whole.h5" "$TMP/r.h5")" = 0 ]
}

# The ranks of one job: the ufo-train processes whose command line names its output file.
ranks_of() {
  local p
  for p in $(pgrep -x ufo-train); do
    tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -qF -- "-o $1" && echo "$p"
  done
  return 0
}

@test "SIGTERM to one rank: every rank stops at the same step, rank 0 writes the checkpoint, exit 143" {
  mpi_run 2 "$BIN/ufo-train" "$D/a.h5" --preset tiny --steps 200000 -b 24 -t 1 --seed 1 -o "$TMP/s.h5" \
    > "$TMP/s.tsv" 2> "$TMP/s.err" &
  job=$!
  for _ in $(seq 100); do [ "$(ranks_of "$TMP/s.h5" | wc -l)" -eq 2 ] && break; sleep 0.1; done
  sleep 2
  kill -TERM "$(ranks_of "$TMP/s.h5" | tail -1)"
  status=0
  timeout 60 tail --pid=$job -f /dev/null || true
  wait $job || status=$?
  [ "$status" -eq 143 ]
  grep -q 'ufo-train: stopped by signal 15 at step' "$TMP/s.err"
  [ -f "$TMP/s.ckpt.h5" ] && [ ! -e "$TMP/s.h5" ]
  "$BIN/ufo-infer" -m "$TMP/s.ckpt.h5" "$D/v.h5" --summary-only >/dev/null 2>&1
}

@test "a rank killed mid-run: the others end within 30 s, non-zero; the last periodic checkpoint resumes" {
  mpi_run 2 "$BIN/ufo-train" "$D/a.h5" --preset tiny --steps 200000 -b 24 -t 1 --seed 1 --ckpt-every 50 \
    -o "$TMP/k.h5" > /dev/null 2> "$TMP/k.err" &
  job=$!
  for _ in $(seq 100); do [ -f "$TMP/k.ckpt.h5" ] && break; sleep 0.1; done
  [ -f "$TMP/k.ckpt.h5" ]
  kill -KILL "$(ranks_of "$TMP/k.h5" | tail -1)"
  start=$SECONDS
  status=0
  timeout 30 tail --pid=$job -f /dev/null
  wait $job || status=$?
  [ "$status" -ne 0 ]
  [ $((SECONDS - start)) -le 30 ]
  [ -z "$(ranks_of "$TMP/k.h5")" ]
  step=$(h5dump -a /train_state/step "$TMP/k.ckpt.h5" | sed -n 's/.*(0): *//p')
  "$BIN/ufo-train" "$D/a.h5" --preset tiny --steps $((step + 10)) -b 24 -t 2 --seed 1 --resume "$TMP/k.ckpt.h5" \
    -o "$TMP/k.h5" >/dev/null 2>&1
  [ -f "$TMP/k.h5" ]
}

@test "ufo-bench --train under mpirun: the all-reduce time is a column; inference is refused" {
  run --separate-stderr mpi_run 2 "$BIN/ufo-bench" --preset tiny --img 8x8x1 --train -b 24 -t 1 --reps 3 -o csv
  assert_success
  [ "${#lines[@]}" -eq 2 ]   # rank 0 alone prints
  IFS=, read -r -a r <<< "${lines[1]}"
  [ "${r[1]}" = train ] && [ "${r[12]}" = 2 ]
  awk -v a="${r[13]}" -v m="${r[5]}" 'BEGIN { exit !(a > 0 && a < m) }'
  [[ "$stderr" == *"2 processes, all-reduce "* ]]
  run --separate-stderr mpi_run 2 "$BIN/ufo-bench" --preset tiny --img 8x8x1 -b 24 -t 1 --reps 1
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"ufo-bench: under mpirun only --train is timed"* ]]
}

@test "bad input under mpirun: the error names the file, the job ends with status 1; a batch smaller than the job" {
  run --separate-stderr mpi_run 2 "$BIN/ufo-train" "$TMP/missing.h5" --preset tiny --steps 2 -t 1 -o "$TMP/m.h5"
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"ufo-train: "*"$TMP/missing.h5"* ]]
  assert_no_output_file "$TMP/m.h5"
  run --separate-stderr mpi_run 3 "$BIN/ufo-train" "$D/a.h5" --preset tiny --steps 2 -b 2 -t 1 -o "$TMP/m.h5"
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"a batch of 2 cannot be split across 3 processes"* ]]
  assert_no_output_file "$TMP/m.h5"
}
