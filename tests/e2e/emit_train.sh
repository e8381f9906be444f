#!/usr/bin/env bash
# Distillation on the device: `kdcc distill --emit-train` writes the training step plus
# a driver without malloc. Built with the flags kdcc used for its own step and run on
# the same samples, cached teacher logits, labels (some -1), seed and recipe (cosine
# schedule with warm-up), the driver must give bit for bit the weights of the
# student.onnx kdcc distill wrote, and the same mean loss per epoch; likewise for
# `kdcc train --emit-train` with SGD (a step without a step-count input), the step
# schedule and no soft targets. The driver also compiles with -ffreestanding and
# references no malloc/free. Bitwise because both sides compile the same C with the
# same compiler and flags (KDCC_TRAIN_CFLAGS=-O2 for kdcc's step, -O2 here), and
# every expression feeding the weights is written as the host trainer computes it.
set -eu
KDCC=$1
W=$2
F=/usr/share/datasets/fashion-mnist
S=$KDCC_SOURCE/examples/fashion-mnist
PY=/usr/bin/python3
CC=${CC:-cc}
if [ ! -f $F/t10k-images-idx3-ubyte.gz ]; then
  echo "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): skipped"
  exit 77
fi
rm -rf "$W" && mkdir -p "$W/kd" "$W/tr"
N=600
# the samples (scaled to [0, 1] here, so kdcc and the device read the same floats) and labels
# with every fourth one unlabelled, as .npy for kdcc and raw for the device
"$PY" - "$F" "$W" $N <<'PYEOF'
import gzip, sys
import numpy as np
f, w, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
x = np.frombuffer(gzip.open(f + "/t10k-images-idx3-ubyte.gz").read()[16:], np.uint8)[:n * 784]
x = (x.astype(np.float32) / np.float32(255)).reshape(n, 1, 28, 28)
y = np.frombuffer(gzip.open(f + "/t10k-labels-idx1-ubyte.gz").read()[8:], np.uint8)[:n].astype(np.int64)
y[::4] = -1
np.save(w + "/x.npy", x)
np.save(w + "/y.npy", y)
x.tofile(w + "/x.f32")
y.tofile(w + "/y.i64")
# the labelled ones alone, for kdcc train (which leaves unlabelled samples out)
np.save(w + "/xl.npy", x[y >= 0])
np.save(w + "/yl.npy", y[y >= 0])
x[y >= 0].tofile(w + "/xl.f32")
y[y >= 0].tofile(w + "/yl.i64")
PYEOF
"$KDCC" soft-targets --teacher $S/cnn.onnx --data "$W/x.npy" -o "$W/t.npy"
"$PY" -c "import numpy as np, sys; np.load(sys.argv[1]).astype(np.float32).tofile(sys.argv[2])" "$W/t.npy" "$W/t.f32"

# kdcc's own step is built with -O2 here, the device program below with the same compiler and -O2
export KDCC_TRAIN_CFLAGS=-O2
"$KDCC" distill --teacher-logits "$W/t.npy" --student $S/student_mlp.onnx --data "$W/x.npy" --labels "$W/y.npy" \
  -T 3 --alpha 0.7 --epochs 3 --batch 32 --lr 0.002 --schedule cosine --warmup 1 --seed 7 --quiet \
  --onnx "$W/kd/student.onnx" --log "$W/kd/log.csv" --emit-train "$W/kd/train.c"
# plain training on the labelled samples: SGD with momentum (no step input), the step schedule, no soft targets
"$KDCC" train --model $S/student_mlp.onnx --data "$W/xl.npy" --labels "$W/yl.npy" --epochs 3 --batch 16 \
  --optimizer sgd --momentum 0.9 --lr 0.05 --schedule step --step-size 1 --gamma 0.5 --seed 3 --quiet \
  --onnx "$W/tr/student.onnx" --log "$W/tr/log.csv" --emit-train "$W/tr/train.c"

cat > "$W/main.c" <<'CEOF'
/* Runs the emitted driver over raw files: twice, once with the static buffers and once
 * with caller-owned state, workspace and permutation, which must agree. */
#include "train_step.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 600
static float x[MAXN * TRAIN_STEP_ROW], logits[MAXN * TRAIN_STEP_CLASSES], soft[MAXN * TRAIN_STEP_CLASSES];
static int64_t y[MAXN];
static int32_t perm[MAXN];
static float w1[TRAIN_STEP_WEIGHT_COUNT], w2[TRAIN_STEP_WEIGHT_COUNT];
static union { unsigned char b[TRAIN_STEP_STATE_BYTES]; float f[TRAIN_STEP_STATE_BYTES / 4 + 1]; double a; } state;
static union { unsigned char b[TRAIN_STEP_WORKSPACE_BYTES]; float f[TRAIN_STEP_WORKSPACE_BYTES / 4 + 1]; double a; } ws;

static int load(const char *path, void *p, size_t size, size_t n)
{
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(p, size, n, f) : 0;
    if (f)
        fclose(f);
    return got == n ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 2 ? argv[1] : ".", *set = argc > 2 ? argv[2] : "";
    const int N = argc > 3 ? atoi(argv[3]) : MAXN;
    char path[1024];
    double loss[8], loss2[8];
    int e, i;
    if (N < 1 || N > MAXN)
        return 2;
    sprintf(path, "%s/x%s.f32", dir, set);
    if (load(path, x, sizeof x[0], N * TRAIN_STEP_ROW))
        return 2;
    sprintf(path, "%s/y%s.i64", dir, set);
    if (load(path, y, sizeof y[0], N))
        return 2;
#if TRAIN_STEP_HAS_SOFT_TARGETS
    sprintf(path, "%s/t.f32", dir);
    if (load(path, logits, sizeof logits[0], N * TRAIN_STEP_CLASSES))
        return 2;
    train_step_soft_targets(logits, N, 1.0, soft);
#else
    (void)logits;
#endif
    {
        train_step_trainer t;
        train_step_data d = {x, soft, y, N, NULL};
        train_step_trainer_init(&t, NULL, NULL);
        if (t.epochs > 8 || train_step_train(&t, &d, loss) != 0)
            return 3;
        if (train_step_read_weights(&t, w1) != TRAIN_STEP_WEIGHT_COUNT)
            return 4;
        for (e = 0; e < t.epochs; e++)
            printf("%d,%.6f\n", e + 1, loss[e]);
        sprintf(path, "device.f32");
        {
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(w1, sizeof w1[0], TRAIN_STEP_WEIGHT_COUNT, f) != TRAIN_STEP_WEIGHT_COUNT)
                return 5;
            fclose(f);
        }
        sprintf(path, "device.txt");
        {
            FILE *f = fopen(path, "w");
            for (i = 0; f && i < TRAIN_STEP_NUM_WEIGHTS; i++)
                fprintf(f, "%s %ld\n", train_step_weight_table[i].name, (long)train_step_weight_table[i].count);
            if (!f)
                return 5;
            fclose(f);
        }
    }
    {
        /* caller-owned buffers, and the epochs one at a time */
        train_step_trainer t;
        train_step_data d = {x, soft, y, N, perm};
        int64_t cnt = 0;
        const float *p;
        train_step_trainer_init(&t, &state, &ws);
        for (e = 0; e < t.epochs; e++)
            if (train_step_epoch(&t, &d, &loss2[e]) != 0 || loss2[e] != loss[e])
                return 6;
        train_step_read_weights(&t, w2);
        if (memcmp(w1, w2, sizeof w1) != 0)
            return 7;
        p = train_step_weight(&t, train_step_weight_table[TRAIN_STEP_NUM_WEIGHTS - 1].name, &cnt);
        if (!p || cnt != train_step_weight_table[TRAIN_STEP_NUM_WEIGHTS - 1].count ||
            memcmp(p, w2 + TRAIN_STEP_WEIGHT_COUNT - cnt, (size_t)cnt * sizeof(float)) != 0 ||
            train_step_weight(&t, "no such weight", &cnt) != NULL)
            return 8;
        /* a data set smaller than a batch is refused */
        d.n = TRAIN_STEP_BATCH - 1;
        if (train_step_epoch(&t, &d, NULL) != -1)
            return 9;
    }
    return 0;
}
CEOF
FLAGS=(-std=c99 -Wall -Wextra -Wpedantic -Werror -O2)
# check RUN SET N: build RUN/train.c with main.c, run it on the data set SET of N samples,
# compare with RUN/student.onnx and RUN/log.csv
check() {
  local R=$W/$1
  "$CC" "${FLAGS[@]}" -I"$R" -o "$R/device" "$R/train.c" "$W/main.c" -lm
  (cd "$R" && ./device "$W" "$2" $3 > device-loss.csv)
  # the same mean loss per epoch as kdcc's log, to its 6 digits
  tail -n +2 "$R/log.csv" | cut -d, -f1,2 > "$R/host-loss.csv"
  if ! cmp -s "$R/host-loss.csv" "$R/device-loss.csv"; then
    echo "$1: epoch losses differ:"; paste -d' ' "$R/host-loss.csv" "$R/device-loss.csv"; exit 1
  fi
  # the same weights, bit for bit, and not the initial ones
  "$PY" - "$R" $S/student_mlp.onnx <<'PYEOF'
import sys
import numpy as np, onnx
from onnx import numpy_helper
w = sys.argv[1]
host = {t.name: numpy_helper.to_array(t) for t in onnx.load(w + "/student.onnx").graph.initializer}
init = {t.name: numpy_helper.to_array(t) for t in onnx.load(sys.argv[2]).graph.initializer}
dev = np.fromfile(w + "/device.f32", np.float32)
off, n = 0, 0
for line in open(w + "/device.txt"):
    name, cnt = line.rsplit(" ", 1)
    cnt = int(cnt)
    d = dev[off:off + cnt]
    off += cnt
    h = host[name].astype(np.float32).ravel()
    if h.size != cnt or not np.array_equal(h.view(np.uint32), d.view(np.uint32)):
        print("%s: weight %s differs: max |diff| %g" % (w, name, np.abs(h - d).max() if h.size == cnt else -1))
        sys.exit(1)
    if np.array_equal(h, init[name].astype(np.float32).ravel()):
        print("%s: weight %s did not train" % (w, name))
        sys.exit(1)
    n += 1
assert off == dev.size and n == len([k for k in init if init[k].dtype == np.float32 and init[k].ndim >= 1])
print("%s: %d weight tensors (%d floats) equal bit for bit" % (w, n, off))
PYEOF
  # dependency-free: freestanding compile, no allocator
  "$CC" "${FLAGS[@]}" -ffreestanding -c -o "$R/train.o" "$R/train.c"
  if nm "$R/train.o" | grep -Ew 'malloc|calloc|realloc|free|aligned_alloc'; then
    echo "$1: the emitted training code references the allocator"; exit 1
  fi
  if command -v clang > /dev/null; then
    clang "${FLAGS[@]}" -ffreestanding -c -o "$R/train-clang.o" "$R/train.c"
  fi
}
check kd "" $N
check tr l $(( N - (N + 3) / 4 ))
echo "1 passed, 0 failed"
