#!/bin/sh
# Distillation benchmark (issue 3, part 10): kdcc distill vs PyTorch, same
# teacher/student/recipe on Fashion-MNIST, one thread each on the same core,
# run alternately; writes the distill-benchmark section of docs/BENCHMARKS.md.
#   bench/distill/run.sh                 (env: KDCC, EPOCHS=2, LIMIT=20000, ROUNDS=2, CORE=0, THREADS=1)
# kdcc tunes its Conv register blocks once (--tune, recorded in $OUT/kdcc.tune and
# reused by every later run; not counted, like the compilation of the step).
# THREADS=2 runs both tools on two threads (cores CORE and CORE+1): kdcc's step with
# OpenMP, PyTorch with torch.set_num_threads(2).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
KDCC=${KDCC:-$ROOT/build-benchkd/kdcc}
EPOCHS=${EPOCHS:-2}
LIMIT=${LIMIT:-20000}
ROUNDS=${ROUNDS:-2}
CORE=${CORE:-0}
THREADS=${THREADS:-1}
OUT=${OUT:-/tmp/kdcc-benchkd}
D=/usr/share/datasets/fashion-mnist
mkdir -p "$OUT"
rm -f "$OUT"/*.csv "$OUT"/*.json "$OUT"/kdcc.tune
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
CORES=$CORE
[ "$THREADS" -gt 1 ] && CORES="$CORE-$((CORE + THREADS - 1))"
PIN=""
command -v taskset >/dev/null 2>&1 && PIN="taskset -c $CORES"
LIM=""
[ "$LIMIT" -gt 0 ] && LIM="--limit $LIMIT"

kd() { # variant round
    extra=""
    [ "$1" = loop ] && extra="--no-teacher-cache"
    # shellcheck disable=SC2086
    $PIN "$KDCC" distill --teacher "$ROOT/examples/fashion-mnist/cnn.onnx" \
        --student "$ROOT/examples/fashion-mnist/student_mlp.onnx" \
        --data $D/train-images-idx3-ubyte.gz --labels $D/train-labels-idx1-ubyte.gz \
        --scale 0.00392156862745098 \
        --val-data $D/t10k-images-idx3-ubyte.gz --val-labels $D/t10k-labels-idx1-ubyte.gz \
        -T 4 --alpha 0.9 --epochs "$EPOCHS" --batch 64 --lr 1e-3 --threads "$THREADS" $LIM $extra \
        --tune --tune-file "$OUT/kdcc.tune" \
        --onnx "$OUT/kdcc-$1-$2.onnx" --log "$OUT/kdcc-$1-$2.csv" >"$OUT/kdcc-$1-$2.txt" 2>&1
    tr '\r' '\n' <"$OUT/kdcc-$1-$2.txt" | grep -v 'left *$' | sed 's/^/  kdcc    /'
}
pt() { # variant round
    # shellcheck disable=SC2086
    $PIN /usr/bin/python3 "$ROOT/bench/distill/torch_distill.py" --variant "$1" \
        --epochs "$EPOCHS" $LIM --threads "$THREADS" >"$OUT/torch-$1-$2.txt" 2>&1
    grep -v '^RESULT' "$OUT/torch-$1-$2.txt" | sed 's/^/  pytorch /'
    grep '^RESULT' "$OUT/torch-$1-$2.txt" | sed 's/^RESULT //' >"$OUT/torch-$1-$2.json"
}

r=1
while [ "$r" -le "$ROUNDS" ]; do
    for v in loop cached; do
        echo "round $r, $v: kdcc"; kd "$v" "$r"
        echo "round $r, $v: pytorch"; pt "$v" "$r"
    done
    r=$((r + 1))
done
/usr/bin/python3 "$ROOT/bench/distill/report.py" --dir "$OUT" --epochs "$EPOCHS" --limit "$LIMIT" \
    --rounds "$ROUNDS" --pin "${PIN:-none}" --threads "$THREADS" --md "$ROOT/docs/BENCHMARKS.md"
