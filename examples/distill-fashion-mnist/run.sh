#!/usr/bin/env bash
# The distillation story on Fashion-MNIST (Debian's dataset-fashion-mnist), end to end:
#  1. the teacher (examples/fashion-mnist/cnn.onnx) compiled to C, built with cc, run on
#     the test set;
#  2. the few-labels setting: a 784-64-10 student trained on LABELLED labels alone, and
#     the same student distilled from the teacher (T=4, alpha=1) over LIMIT unlabelled
#     images, the training step itself compiled to C by kdcc;
#  3. the distilled student as dependency-free C, built and run on the test set: its
#     accuracy must be the one `kdcc eval` gives for the student's ONNX file (the C and
#     the ONNX export predict the same classes), and its flash and RAM are printed.
#
#   bash examples/distill-fashion-mnist/run.sh KDCC OUTDIR     (env: LABELLED=1000
#        SCRATCH_EPOCHS=40 LIMIT=20000 EPOCHS=8; the demo runs it with these)
set -euo pipefail
KDCC=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
M=$here/../fashion-mnist
F=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
LABELLED=${LABELLED:-1000}
SCRATCH_EPOCHS=${SCRATCH_EPOCHS:-40}
LIMIT=${LIMIT:-20000}
EPOCHS=${EPOCHS:-8}
CC=${CC:-cc}
mkdir -p "$out"
step() { printf '\n== %s\n' "$*"; }
acc() { sed -n 's/^accuracy \([0-9.]*\)%.*/\1/p' "$1"; }
test_set=(--data $F/t10k-images-idx3-ubyte.gz --labels $F/t10k-labels-idx1-ubyte.gz --scale 0.00392156862745098)

step "1. the teacher compiled to C and run with cc"
"$KDCC" "$M/cnn.onnx" --batch 1 -o "$out/fashion.c"
$CC -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -c "$out/fashion.c" -o "$out/fashion.o"
$CC -O2 -I"$out" "$here/classify.c" "$out/fashion.o" -lz -lm -o "$out/classify"
"$out/classify" "$F" | tee "$out/teacher_c.txt" | tail -2

common=(--data $F/train-images-idx3-ubyte.gz --scale 0.00392156862745098 --batch 64 --seed 1
        --val-data $F/t10k-images-idx3-ubyte.gz --val-labels $F/t10k-labels-idx1-ubyte.gz --quiet)
step "2a. the student trained on $LABELLED labelled images alone"
"$KDCC" train --model "$M/student_mlp.onnx" "${common[@]}" \
  --labels $F/train-labels-idx1-ubyte.gz --labelled "$LABELLED" --epochs "$SCRATCH_EPOCHS" --onnx "$out/scratch.onnx"
"$KDCC" eval "$out/scratch.onnx" "${test_set[@]}" | tee "$out/scratch.txt" | head -1

step "2b. the same student distilled from the teacher (T=4, alpha=1) over $LIMIT unlabelled images"
"$KDCC" distill --teacher "$M/cnn.onnx" --student "$M/student_mlp.onnx" \
  "${common[@]}" --limit "$LIMIT" --alpha 1 -T 4 --epochs "$EPOCHS" --onnx "$out/student.onnx" -o "$out/student.c"
"$KDCC" eval "$M/cnn.onnx" "${test_set[@]}" | tee "$out/teacher.txt" | head -1
"$KDCC" eval "$out/student.onnx" "${test_set[@]}" | tee "$out/student.txt" | head -1

step "3. the distilled student as C: built with cc, run on the test set"
sed 's/fashion/student/g; s/FASHION/STUDENT/g' "$here/classify.c" > "$out/classify_student.c"
$CC -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -c "$out/student.c" -o "$out/student.o"
$CC -O2 -I"$out" "$out/classify_student.c" "$out/student.o" -lz -lm -o "$out/classify_student"
"$out/classify_student" "$F" | tee "$out/student_c.txt" | tail -2
"$KDCC" info "$out/student.onnx" --batch 1 | grep -E '^  (flash|arena)'

# the C and the ONNX export of each model agree on the test set's accuracy
cacc() { sed -n 's/^accuracy on the .*: \([0-9.]*\)%.*/\1/p' "$1"; }
if [ "$(cacc "$out/student_c.txt")" != "$(acc "$out/student.txt")" ]; then
  echo "the student's C ($(cacc "$out/student_c.txt")%) and its ONNX file ($(acc "$out/student.txt")%) disagree" >&2
  exit 1
fi
if [ "$(cacc "$out/teacher_c.txt")" != "$(acc "$out/teacher.txt")" ]; then
  echo "the teacher's C ($(cacc "$out/teacher_c.txt")%) and kdcc eval ($(acc "$out/teacher.txt")%) disagree" >&2
  exit 1
fi
printf '\nteacher %s%%, student from %s labels %s%%, distilled student %s%%\n' \
  "$(acc "$out/teacher.txt")" "$LABELLED" "$(acc "$out/scratch.txt")" "$(acc "$out/student.txt")"
