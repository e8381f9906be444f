#!/usr/bin/env bash
# The benchmark: kdcc's generated C against ONNX Runtime, on the same machine,
# in the same run. Writes docs/BENCHMARKS.md.
#
#   bash bench/run.sh [--build DIR] [--seconds S] [--rounds R] [--only SUBSTR] [--no-doc]
#                     [--tune] [--target T]
#
#   --build DIR   reuse a kdcc build directory (default: build-bench, configured
#                 and built here if kdcc is missing; Release)
#   --seconds S   timed seconds per model, engine and round (default 1)
#   --rounds R    rounds per model (default 5): kdcc and ORT alternate R times,
#                 so that load changes on a shared machine hit both
#   --only SUBSTR benchmark only the models whose name contains SUBSTR
#   --no-doc      print the table, do not write docs/BENCHMARKS.md
#   --tune        compile with kdcc --tune (Conv register blocks timed on this host,
#                 recorded in bench/tune/TARGET/NAME.tune and reused by later runs)
#   --target T    kdcc's --target (default: this host's, as --target native picks it:
#                 x86-64-v4 with AVX-512, x86-64-v3 with AVX2 and FMA, else generic);
#                 on x86-64-v4 the C is built with -mprefer-vector-width=512, as the
#                 target's flags say
#
# What it installs if missing (apt-get, so root or sudo): node/npm,
# libopenblas0-pthread, python3-onnx; and, with npm --ignore-scripts into
# bench/node_modules (gitignored), onnxruntime-node, which ships the CPU library.
#
# Models: the real models under ../shared/onnx-tests/models and the PyTorch
# exports in bench/models (made by bench/make_models.py; committed).
# Per model: kdcc --batch 1 -> C, built with cc -O3 -march=native into
# bench/harness.c; bench/arena_bound.c for the memory plan; then R rounds of
# [harness, ort.js]. A model kdcc cannot compile is recorded with its error line.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
BUILD=$ROOT/build-bench
SECS=1
ROUNDS=5
ONLY=
DOC=1
TUNE=0
TARGET=
ORT_VERSION=1.30.0
while [ $# -gt 0 ]; do
    case $1 in
        --build) BUILD=$(cd "$2" && pwd); shift 2 ;;
        --seconds) SECS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --no-doc) DOC=0; shift ;;
        --tune) TUNE=1; shift ;;
        --target) TARGET=$2; shift 2 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done

log() { printf '[bench] %s\n' "$*" >&2; }
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
APT_UPDATED=0
apt_install() {
    if [ $APT_UPDATED = 0 ]; then
        $SUDO apt-get update -qq
        APT_UPDATED=1
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# ---- dependencies ----
PY=/usr/bin/python3
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
$PY -c 'import onnx' 2>/dev/null || apt_install python3-onnx
find_openblas() {
    for d in /usr/lib/*-linux-gnu/openblas-pthread /usr/lib/*-linux-gnu /usr/lib64 /usr/lib; do
        for f in "$d"/libopenblas.so.0 "$d"/libopenblasp-r*.so; do
            [ -e "$f" ] && { echo "$f"; return 0; }
        done
    done
    return 1
}
OPENBLAS=$(find_openblas) || { apt_install libopenblas0-pthread; OPENBLAS=$(find_openblas); }
if [ ! -d "$BENCH/node_modules/onnxruntime-node" ]; then
    log "npm install onnxruntime-node@$ORT_VERSION (--ignore-scripts: the CPU library is in the package)"
    npm install --prefix "$BENCH" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
        "onnxruntime-node@$ORT_VERSION" >&2
fi

# ---- kdcc ----
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    log "configuring kdcc in $BUILD"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
# kdcc and the libraries arena_bound links, up to date with the tree
log "building kdcc in $BUILD"
make -C "$BUILD" -j2 kdcc kdcc_frontends kdcc_passes >/dev/null

WORK=$BUILD/bench
mkdir -p "$WORK"
RAW=$WORK/raw.tsv
: > "$RAW"

CC=${CC:-cc}
# the host's target as kdcc's --target native takes it
[ -n "$TARGET" ] || TARGET=$("$BUILD/kdcc" --target list | sed -n 's/^native .*: \(.*\) here$/\1/p')
[ -n "$TARGET" ] || TARGET=generic
CFLAGS_MODEL="-std=c99 -O3 -march=native -ffp-contract=fast"  # -std=c99 alone turns off gcc's FMA contraction
# the host's build of the target: on x86-64-v4, gcc and clang use the zmm registers
# only when told (their default there is 256 bits); --tune then times the same
[ "$TARGET" = x86-64-v4 ] && CFLAGS_MODEL="-std=c99 -O3 -march=native -mprefer-vector-width=512 -ffp-contract=fast"
TUNE_DIR=$BENCH/tune/$TARGET
LAYERS=$WORK/layers/$TARGET   # this run's copies of the tune files, their layers timed again
rm -rf "$WORK/layers"
log "target $TARGET; C built with $CFLAGS_MODEL"
HARNESS_WARN="-Wall -Wextra -Werror=implicit-function-declaration"
$CC -std=c11 -O2 -Wall -Wextra -D_DEFAULT_SOURCE -I"$ROOT" -I"$BUILD" -I"$BUILD/gen" \
    "$BENCH/arena_bound.c" -o "$WORK/arena_bound" "$BUILD/libkdcc_cli.a" "$BUILD/libkdcc_emit.a" \
    "$BUILD/libkdcc_frontends.a" "$BUILD/libkdcc_passes.a" "$BUILD/libkdcc_ops.a" "$BUILD/libkdcc_ir.a" \
    "$BUILD/libkdcc_onnxproto.a" -lprotobuf-c -lz -lm
$CC -std=c11 -O2 -Wall -Wextra -march=native -mprefer-vector-width=512 -ffp-contract=fast "$BENCH/sgemm.c" -o "$WORK/sgemm" "$OPENBLAS" \
    -Wl,-rpath,"$(dirname "$OPENBLAS")"
# the core's multiply-add peak (sgemm --peak), in the target's vectors (16 floats on x86-64-v4, else 8)
PEAK_LANES=8
[ "$TARGET" = x86-64-v4 ] && PEAK_LANES=16

# ---- the models ----
MODELS=()
for m in "$ROOT"/../shared/onnx-tests/models/*/model.onnx; do
    [ -e "$m" ] && MODELS+=("$(basename "$(dirname "$m")")=$(cd "$(dirname "$m")" && pwd)/model.onnx=onnx-tests")
done
for m in mlp lenet5 resnet8 dscnn mobilenet025 autoencoder; do
    MODELS+=("$m=$BENCH/models/$m.onnx=pytorch")
done

record() { (IFS=$'\t'; echo "$*") >> "$RAW"; }
firstline() { grep -m1 -v '^\s*$' "$1" | cut -c1-300 | tr '\t' ' ' || true; }

T_START=$(date +%s)
log "sgemm reference (OpenBLAS, one thread)"
"$WORK/sgemm" "$SECS" 64 256 512 > "$WORK/sgemm.txt"
sed -n 's/^# //p' "$WORK/sgemm.txt" | while read -r line; do record openblas "$line"; done
grep -v '^#' "$WORK/sgemm.txt" | while read -r n med g gbest; do record sgemm "$n" "$med" "$g" "$gbest"; done
log "multiply-add peak ($PEAK_LANES-float vectors)"
"$WORK/sgemm" --peak "$PEAK_LANES" "$SECS" | while read -r lanes med best; do record peak "$lanes" "$med" "$best"; done

for spec in "${MODELS[@]}"; do
    IFS='=' read -r name path src <<< "$spec"
    [ -z "$ONLY" ] || [[ $name == *"$ONLY"* ]] || continue
    W=$WORK/$name
    rm -rf "$W"
    mkdir -p "$W"
    read -r _ macs conv_macs < <($PY "$BENCH/macs.py" "$path" 2>/dev/null || echo "- 0 0")
    record model "$name" "$src" "${macs:-0}" "${conv_macs:-0}"
    log "$name: kdcc"
    t0=$(date +%s.%N)
    tune=()
    if [ "$TUNE" = 1 ]; then
        mkdir -p "$TUNE_DIR"
        tune=(--tune --tune-file "$TUNE_DIR/$name.tune")
    fi
    if ! "$BUILD/kdcc" "$path" -o "$W/m.c" --name m --batch 1 --target "$TARGET" "${tune[@]}" 2> "$W/kdcc.err"; then
        record error "$name" kdcc "$(firstline "$W/kdcc.err")"
        log "$name: $(firstline "$W/kdcc.err")"
        continue
    fi
    t1=$(date +%s.%N)
    # the tuned layers timed again now, in their recorded blocks, for the layer table:
    # figures from this run, beside this run's sgemm (the tune file's own are from
    # whenever the layer was tuned)
    if [ "$TUNE" = 1 ]; then
        mkdir -p "$LAYERS"
        cp "$TUNE_DIR/$name.tune" "$LAYERS/$name.tune" 2>/dev/null &&
            "$BUILD/kdcc" "$path" -o "$W/retime.c" --name m --batch 1 --target "$TARGET" --tune-file "$LAYERS/$name.tune" \
                --tune-retime 2> "$W/retime.err" || rm -f "$LAYERS/$name.tune"
    fi
    if ! $PY "$BENCH/glue.py" "$W/m.h" "$W/glue.h" "$W/meta.json" 2> "$W/glue.err"; then
        record error "$name" harness "$(firstline "$W/glue.err")"
        continue
    fi
    if ! $CC $CFLAGS_MODEL $HARNESS_WARN -DKD_GLUE='"glue.h"' -I"$W" "$BENCH/harness.c" "$W/m.c" -o "$W/harness" -lm 2> "$W/cc.err"; then
        record error "$name" cc "$(firstline "$W/cc.err")"
        continue
    fi
    t2=$(date +%s.%N)
    record compile "$name" "$(awk "BEGIN{printf \"%.2f\", $t1 - $t0}")" "$(awk "BEGIN{printf \"%.2f\", $t2 - $t1}")" "$(stat -c %s "$W/m.c")"
    # cross-check: kdcc's own MAC count of the compiled graph (kdcc info)
    info_macs=$("$BUILD/kdcc" info "$path" --batch 1 2>/dev/null | sed -n 's/^ *MACs *\([0-9]*\).*/\1/p' | head -1 || true)
    record info "$name" "${info_macs:--}"
    ws=$(sed -n 's/^#define M_WORKSPACE_BYTES \([0-9]*\).*/\1/p' "$W/m.h")
    if "$WORK/arena_bound" "$path" 1 "$TARGET" ${tune[@]:+"$TUNE_DIR/$name.tune"} > "$W/arena.txt" 2> "$W/arena.err"; then
        record arena "$name" "$ws" $(cat "$W/arena.txt")
    else
        record arena "$name" "$ws" - - - -
    fi
    for r in $(seq 1 "$ROUNDS"); do
        dump=()
        [ "$r" = 1 ] && dump=(-d "$W")
        if ! kout=$("$W/harness" -s "$SECS" -n 5 "${dump[@]}" 2> "$W/run.err"); then
            record error "$name" run "$(firstline "$W/run.err")"
            break
        fi
        record kdcc "$name" "$r" $kout
        if ! oout=$(node "$BENCH/ort.js" "$path" "$BENCH/models/overhead.onnx" "$W" "$SECS" 5 2> "$W/ort.err"); then
            record error "$name" ort "$(firstline "$W/ort.err")"
            break
        fi
        record ort "$name" "$r" "$oout"
        log "$name round $r: kdcc ${kout%%$'\t'*} us; ORT $(echo "$oout" | sed 's/.*"median_us":\([0-9.]*\).*"overhead_median_us":\([0-9.]*\).*/\1 us (binding \2 us)/')"
    done
done
T_END=$(date +%s)
record elapsed "$((T_END - T_START))"

KFLAGS="--batch 1 --target $TARGET"
[ "$TUNE" = 1 ] && KFLAGS="--batch 1 --target $TARGET --tune (blocks in bench/tune/$TARGET/)"
args=(--raw "$RAW" --ort-version "$ORT_VERSION" --seconds "$SECS" --rounds "$ROUNDS" --cflags "$CFLAGS_MODEL" --cc "$CC"
      --kdcc-flags "$KFLAGS")
[ "$TUNE" = 1 ] && args+=(--tune-dir "$LAYERS")
if [ $DOC = 1 ] && [ -z "$ONLY" ]; then
    $PY "$BENCH/report.py" "${args[@]}" --out "$ROOT/docs/BENCHMARKS.md"
    log "wrote docs/BENCHMARKS.md"
else
    $PY "$BENCH/report.py" "${args[@]}"
fi
