#!/usr/bin/env bash
# Distillation on the device: `kdcc distill --emit-train` writes the training step plus
# a driver without malloc. Built with the flags kdcc used for its own step and run on
# the same samples, cached teacher logits, labels (some -1), seed and recipe (cosine
# schedule with warm-up), the driver must give bit for bit the weights of the
# student.onnx kdcc distill wrote, and the same mean loss per epoch. The driver also
# compiles with -ffreestanding and references no malloc/free.
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
rm -rf "$W" && mkdir -p "$W"
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
PYEOF
"$KDCC" soft-targets --teacher $S/cnn.onnx --data "$W/x.npy" -o "$W/t.npy"
"$PY" -c "import numpy as np, sys; np.load(sys.argv[1]).astype(np.float32).tofile(sys.argv[2])" "$W/t.npy" "$W/t.f32"

# kdcc's own step is built with -O2 here, the device program below with the same compiler and -O2
export KDCC_TRAIN_CFLAGS=-O2
"$KDCC" distill --teacher-logits "$W/t.npy" --student $S/student_mlp.onnx --data "$W/x.npy" --labels "$W/y.npy" \
  -T 3 --alpha 0.7 --epochs 3 --batch 32 --lr 0.002 --schedule cosine --warmup 1 --seed 7 --quiet \
  --onnx "$W/student.onnx" --log "$W/log.csv" --emit-train "$W/train.c"

cat > "$W/main.c" <<'CEOF'
/* Runs the emitted driver over raw files: twice, once with the static buffers and once
 * with caller-owned state, workspace and permutation, which must agree. */
#include "train_step.h"
#include <stdio.h>
#include <string.h>

#define N 600
static float x[N * TRAIN_STEP_ROW], logits[N * TRAIN_STEP_CLASSES], soft[N * TRAIN_STEP_CLASSES];
static int64_t y[N];
static int32_t perm[N];
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
    const char *dir = argc > 1 ? argv[1] : ".";
    char path[1024];
    double loss[8], loss2[8];
    int e, i;
    sprintf(path, "%s/x.f32", dir);
    if (load(path, x, sizeof x[0], N * TRAIN_STEP_ROW))
        return 2;
    sprintf(path, "%s/t.f32", dir);
    if (load(path, logits, sizeof logits[0], N * TRAIN_STEP_CLASSES))
        return 2;
    sprintf(path, "%s/y.i64", dir);
    if (load(path, y, sizeof y[0], N))
        return 2;
    train_step_soft_targets(logits, N, 1.0, soft);
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
        sprintf(path, "%s/device.f32", dir);
        {
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(w1, sizeof w1[0], TRAIN_STEP_WEIGHT_COUNT, f) != TRAIN_STEP_WEIGHT_COUNT)
                return 5;
            fclose(f);
        }
        sprintf(path, "%s/device.txt", dir);
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
"$CC" "${FLAGS[@]}" -I"$W" -o "$W/device" "$W/train.c" "$W/main.c" -lm
"$W/device" "$W" > "$W/device-loss.csv"

# the same mean loss per epoch as kdcc's log, to its 6 digits
tail -n +2 "$W/log.csv" | cut -d, -f1,2 > "$W/host-loss.csv"
if ! cmp -s "$W/host-loss.csv" "$W/device-loss.csv"; then
  echo "epoch losses differ:"; paste -d' ' "$W/host-loss.csv" "$W/device-loss.csv"; exit 1
fi
# the same weights, bit for bit, and not the initial ones
"$PY" - "$W" $S/student_mlp.onnx <<'PYEOF'
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
        print("weight %s differs: max |diff| %g" % (name, np.abs(h - d).max() if h.size == cnt else -1))
        sys.exit(1)
    if np.array_equal(h, init[name].astype(np.float32).ravel()):
        print("weight %s did not train" % name)
        sys.exit(1)
    n += 1
assert off == dev.size and n == len([k for k in init if init[k].dtype == np.float32 and init[k].ndim >= 1])
print("%d weight tensors (%d floats) equal bit for bit" % (n, off))
PYEOF

# dependency-free: freestanding compile, no allocator
"$CC" "${FLAGS[@]}" -ffreestanding -c -o "$W/train.o" "$W/train.c"
if nm "$W/train.o" | grep -Ew 'malloc|calloc|realloc|free|aligned_alloc'; then
  echo "the emitted training code references the allocator"; exit 1
fi
if command -v clang > /dev/null; then
  clang "${FLAGS[@]}" -ffreestanding -c -o "$W/train-clang.o" "$W/train.c"
fi
echo "1 passed, 0 failed"
