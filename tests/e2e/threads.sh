#!/usr/bin/env bash
# kdcc distill --threads 2: the step (the teacher in the loop, whose Conv layers are
# large enough for OpenMP; its Winograd layer splits the batch over the threads) is
# emitted with OpenMP pragmas and built with -fopenmp, and
# the student it trains is byte for byte the one a single-threaded run gives.
set -eu
KDCC=$1
W=$2
F=/usr/share/datasets/fashion-mnist
S=$KDCC_SOURCE/examples/fashion-mnist
if [ ! -f $F/t10k-images-idx3-ubyte.gz ]; then
  echo "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): skipped"
  exit 77
fi
CC=${CC:-cc}
if ! echo 'int main(void){return 0;}' | $CC -fopenmp -x c - -o /dev/null 2>/dev/null; then
  echo "$CC cannot build OpenMP programs: skipped"
  exit 77
fi
rm -rf "$W" && mkdir -p "$W"
# kdcc makes its temporary folders in $TMPDIR: one of this test's own, so that the
# step folder the --threads 2 run keeps is the only kdcc-train-* folder in it (found
# by scanning /tmp, it could be another test's under ctest -j)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export TMPDIR=$T
common=(--teacher $S/cnn.onnx --student $S/student_mlp.onnx --data $F/t10k-images-idx3-ubyte.gz
        --scale 0.00392156862745098 --labels $F/t10k-labels-idx1-ubyte.gz --limit 640
        -T 4 --alpha 0.9 --epochs 2 --batch 64 --no-teacher-cache --quiet)
passes=0 fails=0
ok() { echo "ok   $1"; passes=$((passes + 1)); }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }
"$KDCC" distill "${common[@]}" --onnx "$W/one.onnx"

KDCC_KEEP_TRAIN_DIR=1 "$KDCC" distill "${common[@]}" --threads 2 --onnx "$W/two.onnx"
kept=$(ls -d "$T"/kdcc-train-* 2>/dev/null || true)
if [ -n "$kept" ] && [ "$(echo "$kept" | wc -l)" -eq 1 ]; then
  ok tmpdir
else
  fail "tmpdir: want one kdcc-train-* folder in TMPDIR=$T, got: ${kept:-none}"; kept=
fi
if [ -z "$kept" ] || ! grep -q '#pragma omp parallel for' "$kept/train_step.c"; then
  fail "pragmas: the --threads 2 step has no OpenMP pragmas"
elif ! readelf -d "$kept/train_step.so" | grep -q 'libgomp'; then
  fail "fopenmp: the --threads 2 step was not built with -fopenmp"
else
  ok openmp_step
fi
# the teacher's Winograd layer splits the batch of 64 over the 2 threads
if [ -n "$kept" ] && grep -q 'num_threads(2)' "$kept/train_step.c"; then
  ok batch_split
else
  fail "batch_split: no 'num_threads(2)' batch loop in the --threads 2 step"
fi
[ -n "$kept" ] && rm -rf "$kept"
if cmp "$W/one.onnx" "$W/two.onnx"; then ok same_weights; else fail same_weights; fi
# and the comparison can fail: a run with another seed differs
"$KDCC" distill "${common[@]}" --seed 2 --onnx "$W/seed2.onnx"
if cmp -s "$W/one.onnx" "$W/seed2.onnx"; then fail seed_differs; else ok seed_differs; fi
# a bad thread count is refused
if "$KDCC" distill "${common[@]}" --threads 0 --onnx "$W/x.onnx" 2>"$W/err"; then
  fail "threads_0 accepted"
else
  grep -q -- "--threads wants" "$W/err" && ok threads_0 || fail "threads_0 message"
fi
# a TMPDIR that does not exist: exit 1 and one line naming the folder
if TMPDIR=$T/missing "$KDCC" distill "${common[@]}" --onnx "$W/x.onnx" 2>"$W/err"; then
  fail "bad_tmpdir accepted"
elif [ "$(wc -l <"$W/err")" -eq 1 ] &&
     grep -q "^kdcc: error: cannot make the temporary folder $T/missing/kdcc-train-XXXXXX: " "$W/err"; then
  ok bad_tmpdir
else
  fail "bad_tmpdir message: $(head -c 300 "$W/err")"
fi
# the runs without KDCC_KEEP_TRAIN_DIR removed their folders
left=$(ls -d "$T"/kdcc-* 2>/dev/null || true)
if [ -z "$left" ]; then ok removed; else fail "removed: left in TMPDIR: $left"; fi
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
