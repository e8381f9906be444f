#!/usr/bin/env bash
# Distillation helps where it is known to: with few labels. The 784-64-10 student
# trained on 1,000 labelled images alone is compared with the same student distilled
# (T=4, alpha=1) from the bundled CNN teacher over 20,000 unlabelled images; both are
# measured on the 10,000 test images. Fixed seeds; the distilled student must win by
# at least 3 points (measured here: 84.5% against 78.6%).
set -eu
KDCC=$1
W=$2
F=/usr/share/datasets/fashion-mnist
S=$KDCC_SOURCE/examples/fashion-mnist
if [ ! -f $F/train-images-idx3-ubyte.gz ]; then
  echo "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): skipped"
  exit 77
fi
rm -rf "$W" && mkdir -p "$W"
common=(--data $F/train-images-idx3-ubyte.gz --scale 0.00392156862745098 --batch 64 --seed 1
        --val-data $F/t10k-images-idx3-ubyte.gz --val-labels $F/t10k-labels-idx1-ubyte.gz)
"$KDCC" train --model $S/student_mlp.onnx "${common[@]}" --labels $F/train-labels-idx1-ubyte.gz \
  --labelled 1000 --epochs 40 --onnx "$W/scratch.onnx" | tee "$W/scratch.log"
"$KDCC" distill --teacher $S/cnn.onnx --student $S/student_mlp.onnx "${common[@]}" --limit 20000 \
  --alpha 1 -T 4 --epochs 8 --onnx "$W/distilled.onnx" -o "$W/distilled.c" --log "$W/metrics.csv" | tee "$W/distill.log"
scratch=$(sed -n 's/^student val acc \([0-9.]*\)%$/\1/p' "$W/scratch.log")
distilled=$(sed -n 's/^student val acc \([0-9.]*\)%$/\1/p' "$W/distill.log")
teacher=$(sed -n 's/.*teacher 1 val acc \([0-9.]*\)%.*/\1/p' "$W/distill.log")
echo "teacher $teacher%, student from 1,000 labels $scratch%, distilled student $distilled%"
# the outputs exist and the C builds
test -s "$W/distilled.onnx" && test -s "$W/distilled.c" && test -s "$W/distilled.h"
cc -std=c99 -Wall -Wextra -Wpedantic -Werror -c "$W/distilled.c" -o "$W/distilled.o"
[ "$(wc -l < "$W/metrics.csv")" -eq 9 ]
awk -v s="$scratch" -v d="$distilled" 'BEGIN { exit !(s > 70 && d >= s + 3) }'
echo "1 passed, 0 failed"
