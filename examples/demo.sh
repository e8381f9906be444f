#!/usr/bin/env bash
# The demo, end to end on Fashion-MNIST (Debian's dataset-fashion-mnist):
#  1. compile the bundled CNN teacher to C, build it with cc, classify the test set;
#  2. the few-labels story: a 784-64-10 student trained on 1,000 labels alone, and the
#     same student distilled from the teacher over 20,000 unlabelled images, the
#     training step itself compiled to C by kdcc;
#  3. the distilled student as dependency-free C, built and run, with its flash and RAM.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target kdcc >/dev/null
F=/usr/share/datasets/fashion-mnist
out=build/demo
mkdir -p "$out"
step() { printf '\n== %s\n' "$*"; }

step "1. the teacher (examples/fashion-mnist/cnn.onnx) compiled to C and run with cc"
build/kdcc examples/fashion-mnist/cnn.onnx --batch 1 -o "$out/fashion.c"
cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -c "$out/fashion.c" -o "$out/fashion.o"
cc -O2 -I"$out" examples/fashion-mnist/classify.c "$out/fashion.o" -lz -lm -o "$out/classify"
"$out/classify" "$F"

common=(--data $F/train-images-idx3-ubyte.gz --scale 0.00392156862745098 --batch 64 --seed 1
        --val-data $F/t10k-images-idx3-ubyte.gz --val-labels $F/t10k-labels-idx1-ubyte.gz --quiet)
step "2a. the student trained on 1,000 labelled images alone"
build/kdcc train --model examples/fashion-mnist/student_mlp.onnx "${common[@]}" \
  --labels $F/train-labels-idx1-ubyte.gz --labelled 1000 --epochs 40 --onnx "$out/scratch.onnx"
build/kdcc eval "$out/scratch.onnx" --data $F/t10k-images-idx3-ubyte.gz --labels $F/t10k-labels-idx1-ubyte.gz \
  --scale 0.00392156862745098 | tee "$out/scratch.txt"

step "2b. the same student distilled from the teacher (T=4, alpha=1) over 20,000 unlabelled images"
build/kdcc distill --teacher examples/fashion-mnist/cnn.onnx --student examples/fashion-mnist/student_mlp.onnx \
  "${common[@]}" --limit 20000 --alpha 1 -T 4 --epochs 8 --onnx "$out/student.onnx" -o "$out/student.c"
build/kdcc eval examples/fashion-mnist/cnn.onnx --data $F/t10k-images-idx3-ubyte.gz --labels $F/t10k-labels-idx1-ubyte.gz \
  --scale 0.00392156862745098 | tee "$out/teacher.txt"
build/kdcc eval "$out/student.onnx" --data $F/t10k-images-idx3-ubyte.gz --labels $F/t10k-labels-idx1-ubyte.gz \
  --scale 0.00392156862745098 | tee "$out/student.txt"

step "3. the distilled student as C: built with cc, run on the test set"
sed 's/fashion/student/g; s/FASHION/STUDENT/g' examples/fashion-mnist/classify.c > "$out/classify_student.c"
cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -c "$out/student.c" -o "$out/student.o"
cc -O2 -I"$out" "$out/classify_student.c" "$out/student.o" -lz -lm -o "$out/classify_student"
"$out/classify_student" "$F" | tail -2
build/kdcc info "$out/student.onnx" --batch 1 | grep -E '^  (flash|arena)'

acc() { sed -n 's/^accuracy \([0-9.]*\)%.*/\1/p' "$1"; }
printf '\nteacher %s%%, student from 1,000 labels %s%%, distilled student %s%%\n' \
  "$(acc "$out/teacher.txt")" "$(acc "$out/scratch.txt")" "$(acc "$out/student.txt")"
