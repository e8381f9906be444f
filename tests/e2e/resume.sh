#!/usr/bin/env bash
# A run stopped after an epoch and resumed from its checkpoint ends with exactly the
# weights of an uninterrupted run (byte-identical ONNX), and a corrupt checkpoint is refused.
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
common=(--teacher $S/cnn.onnx --student $S/student_mlp.onnx --data $F/t10k-images-idx3-ubyte.gz
        --labels $F/t10k-labels-idx1-ubyte.gz --limit 2000 --scale 0.00392156862745098 --batch 32 --seed 7
        --alpha 0.5 -T 3 --optimizer adamw --weight-decay 0.01 --quiet)
# (the schedule must be the same in both runs: with a constant learning rate, the
# 1-epoch run is the first epoch of the 3-epoch run)
"$KDCC" distill "${common[@]}" --epochs 3 --checkpoint "$W/full.ckpt" --onnx "$W/full.onnx"
"$KDCC" distill "${common[@]}" --epochs 1 --checkpoint "$W/part.ckpt" --onnx "$W/part1.onnx"
"$KDCC" distill "${common[@]}" --epochs 3 --checkpoint "$W/part.ckpt" --resume --onnx "$W/resumed.onnx"
cmp "$W/full.onnx" "$W/resumed.onnx"
cmp "$W/full.ckpt" "$W/part.ckpt"
! cmp -s "$W/part1.onnx" "$W/full.onnx"
head -c 100 "$W/full.ckpt" > "$W/bad.ckpt"
if "$KDCC" distill "${common[@]}" --epochs 3 --checkpoint "$W/bad.ckpt" --resume --onnx "$W/x.onnx" 2> "$W/err"; then
  echo "a truncated checkpoint was accepted"; exit 1
fi
grep -q "not a valid kdcc checkpoint" "$W/err"
test ! -e "$W/x.onnx"

# Interrupted for real: Ctrl-C (SIGINT) in the middle of a run saves a checkpoint inside
# the epoch; SIGKILL loses the epoch in progress. Either way --resume ends with the
# uninterrupted run's weights. The teachers run in the loop here so that an epoch takes
# long enough to be interrupted.
slow=(--teacher $S/cnn.onnx --student $S/student_mlp.onnx --data $F/t10k-images-idx3-ubyte.gz
      --labels $F/t10k-labels-idx1-ubyte.gz --limit 2048 --scale 0.00392156862745098 --batch 32 --seed 3
      --alpha 0.5 -T 3 --no-teacher-cache --epochs 3 --quiet)
"$KDCC" distill "${slow[@]}" --onnx "$W/slow-full.onnx"
for sig in INT KILL; do
  rm -f "$W/$sig.ckpt" "$W/$sig.csv"
  "$KDCC" distill "${slow[@]}" --checkpoint "$W/$sig.ckpt" --log "$W/$sig.csv" --onnx "$W/$sig.onnx" 2> "$W/$sig.err" &
  pid=$!
  for _ in $(seq 600); do  # until the first epoch is logged (at most a minute)
    [ -s "$W/$sig.csv" ] && [ "$(wc -l < "$W/$sig.csv")" -ge 2 ] && break
    sleep 0.1
  done
  kill -$sig $pid 2>/dev/null || true
  wait $pid || true
  if [ $sig = INT ] && grep -q interrupted "$W/$sig.err"; then
    grep -q "the checkpoint is saved" "$W/$sig.err"
  fi
  test -s "$W/$sig.ckpt"
  "$KDCC" distill "${slow[@]}" --checkpoint "$W/$sig.ckpt" --resume --onnx "$W/$sig-resumed.onnx"
  cmp "$W/slow-full.onnx" "$W/$sig-resumed.onnx"
  echo "interrupted with SIG$sig and resumed: the same weights"
done
echo "1 passed, 0 failed"
