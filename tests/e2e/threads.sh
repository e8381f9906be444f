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
common=(--teacher $S/cnn.onnx --student $S/student_mlp.onnx --data $F/t10k-images-idx3-ubyte.gz
        --scale 0.00392156862745098 --labels $F/t10k-labels-idx1-ubyte.gz --limit 640
        -T 4 --alpha 0.9 --epochs 2 --batch 64 --no-teacher-cache --quiet)
fails=0
"$KDCC" distill "${common[@]}" --onnx "$W/one.onnx"

TMPDIR_BEFORE=$(ls -d /tmp/kdcc-train-* 2>/dev/null | sort)
KDCC_KEEP_TRAIN_DIR=1 "$KDCC" distill "${common[@]}" --threads 2 --onnx "$W/two.onnx"
kept=$(comm -13 <(echo "$TMPDIR_BEFORE") <(ls -d /tmp/kdcc-train-* 2>/dev/null | sort) | tail -1)
if [ -z "$kept" ] || ! grep -q '#pragma omp parallel for' "$kept/train_step.c"; then
  echo "FAIL pragmas: the --threads 2 step has no OpenMP pragmas"; fails=$((fails + 1))
elif ! readelf -d "$kept/train_step.so" | grep -q 'libgomp'; then
  echo "FAIL fopenmp: the --threads 2 step was not built with -fopenmp"; fails=$((fails + 1))
else
  echo "ok   openmp_step"
fi
# the teacher's Winograd layer splits the batch of 64 over the 2 threads
if [ -n "$kept" ] && grep -q 'num_threads(2)' "$kept/train_step.c"; then
  echo "ok   batch_split"
else
  echo "FAIL batch_split: no 'num_threads(2)' batch loop in the --threads 2 step"; fails=$((fails + 1))
fi
[ -n "$kept" ] && rm -rf "$kept"
if cmp "$W/one.onnx" "$W/two.onnx"; then echo "ok   same_weights"; else echo "FAIL same_weights"; fails=$((fails + 1)); fi
# and the comparison can fail: a run with another seed differs
"$KDCC" distill "${common[@]}" --seed 2 --onnx "$W/seed2.onnx"
if cmp -s "$W/one.onnx" "$W/seed2.onnx"; then echo "FAIL seed_differs"; fails=$((fails + 1)); else echo "ok   seed_differs"; fi
# a bad thread count is refused
if "$KDCC" distill "${common[@]}" --threads 0 --onnx "$W/x.onnx" 2>"$W/err"; then
  echo "FAIL threads_0 accepted"; fails=$((fails + 1))
else
  grep -q -- "--threads wants" "$W/err" && echo "ok   threads_0" || { echo "FAIL threads_0 message"; fails=$((fails + 1)); }
fi
echo "$((4 - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
