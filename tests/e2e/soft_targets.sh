#!/usr/bin/env bash
# The teacher's part of distillation scaled out: kdcc soft-targets computes the teacher's
# logits in 3 independent shards; distilling from those files gives byte for byte the
# student that distilling from the teacher model gives.
set -eu
KDCC=$1
W=$2
F=/usr/share/datasets/fashion-mnist
S=$KDCC_SOURCE/examples/fashion-mnist
if [ ! -f $F/t10k-images-idx3-ubyte.gz ]; then
  echo "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): skipped"
  exit 77
fi
rm -rf "$W" && mkdir -p "$W"
X=(--data $F/t10k-images-idx3-ubyte.gz --scale 0.00392156862745098)
for i in 0 1 2; do
  "$KDCC" soft-targets --teacher $S/cnn.onnx "${X[@]}" --shard $i/3 -o "$W/part$i.npy"
done
common=(--student $S/student_mlp.onnx "${X[@]}" --labels $F/t10k-labels-idx1-ubyte.gz --limit 3000
        -T 4 --alpha 0.9 --epochs 2 --batch 64 --quiet)
"$KDCC" distill --teacher $S/cnn.onnx "${common[@]}" --onnx "$W/from-model.onnx"
"$KDCC" distill --teacher-logits "$W/part0.npy,$W/part1.npy,$W/part2.npy" "${common[@]}" --onnx "$W/from-shards.onnx"
cmp "$W/from-model.onnx" "$W/from-shards.onnx"
# too few rows is an error, not a silent truncation
if "$KDCC" distill --teacher-logits "$W/part0.npy" "${common[@]}" --limit 5000 --onnx "$W/x.onnx" 2> "$W/err"; then
  echo "short teacher logits were accepted"; exit 1
fi
grep -q "rows for" "$W/err"
echo "1 passed, 0 failed"
