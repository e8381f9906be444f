#!/usr/bin/env bash
# The Cortex-M cross-build of kdcc's output, run on QEMU's MPS2 boards.
#
# embedded.sh KDCC WORKDIR [NAME_REGEX]
#
# For each model of the list below: kdcc compiles it (--name model); the program
# examples/baremetal/run_model.c is built with examples/baremetal/Makefile for
# Cortex-M4 (mps2-an386, -mfpu=fpv4-sp-d16) and Cortex-M7 (mps2-an500,
# -mfpu=fpv5-d16), hard-float, newlib's libm, and on the host with cc; the two
# board builds run under qemu-system-arm (semihosting output, timeout 60 s each) and
# their outputs are compared with the host's by compare_outputs.c (rtol 1e-5, atol
# 1e-6 x the output's largest magnitude). Prints the sizes (arm-none-eabi-size -A)
# and results as a Markdown table (also WORKDIR/table.md): docs/EMBEDDED.md holds it.
#
# Fails when a tool is missing (arm-none-eabi-gcc, newlib's libm for the hard-float
# Cortex-M multilibs, qemu-system-arm), a build fails, qemu fails or times out, or
# an output is out of tolerance. Models that cannot run on the boards (4 MiB for
# code and constants, 4 MiB of RAM) are listed with the reason; one of them is
# built for its sizes ("size only"). Environment: KDCC_SOURCE (the source tree),
# KDCC_SHARED (the shared folder with onnx-tests/models).
set -u
KDCC=$1
W=$2
ONLY=${3:-}
SRC=${KDCC_SOURCE:?KDCC_SOURCE must name the source tree}
SHARED=${KDCC_SHARED:-$SRC/../shared}
E=$SRC/examples/baremetal
M=$SHARED/onnx-tests/models
JOBS=2
RUN_TIMEOUT=60
rm -rf "$W" && mkdir -p "$W"

# --- the tools: missing ones fail the test (CI installs them: scripts/install-deps.sh)
missing=""
for t in arm-none-eabi-gcc arm-none-eabi-size qemu-system-arm make cc; do
  command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
if command -v arm-none-eabi-gcc >/dev/null 2>&1; then
  for fpu in "-mcpu=cortex-m4 -mfpu=fpv4-sp-d16" "-mcpu=cortex-m7 -mfpu=fpv5-d16"; do
    # shellcheck disable=SC2086
    lib=$(arm-none-eabi-gcc -mthumb -mfloat-abi=hard $fpu -print-file-name=libm.a)
    [ -f "$lib" ] || missing="$missing newlib-libm($fpu)"
  done
fi
if [ -n "$missing" ]; then
  echo "FAIL: not installed:$missing"
  echo "      the Cortex-M test needs Debian's gcc-arm-none-eabi, libnewlib-arm-none-eabi and"
  echo "      qemu-system-arm (bash scripts/install-deps.sh installs them)"
  echo "0 passed, 1 failed"
  exit 1
fi

# --- the models: NAME|FILE|KDCC FLAGS|MODE|WHY
#   run:  M4 and M7 built, run on qemu, compared with the host
#   size: built for M4 for its sizes only (does not fit the board)
#   skip: not built; WHY says why
#   large: fits and runs, but its C takes long to compile: run only with
#         KDCC_EMBEDDED_ALL=1 (as for the table of docs/EMBEDDED.md), else skipped
MODELS="
kws|$E/kws.txt||run|
fashion-student-mlp|$SRC/examples/fashion-mnist/student_mlp.onnx|--batch 1|run|
fashion-cnn|$SRC/examples/fashion-mnist/cnn.onnx|--batch 1|run|
bench-overhead|$SRC/bench/models/overhead.onnx||run|
bench-mlp|$SRC/bench/models/mlp.onnx||run|
bench-lenet5|$SRC/bench/models/lenet5.onnx||run|
bench-dscnn|$SRC/bench/models/dscnn.onnx||run|
bench-resnet8|$SRC/bench/models/resnet8.onnx||run|
bench-mobilenet025|$SRC/bench/models/mobilenet025.onnx||run|
bench-autoencoder|$SRC/bench/models/autoencoder.onnx||large|1.03 MiB of weights, 4.4 MB of C (its Gemm, BatchNormalization and Relu are covered by smaller models); KDCC_EMBEDDED_ALL=1 builds and runs it
tflm-hello-world-sine|$M/tflm-hello-world-sine/model.onnx|--batch 1|run|
mnist-14x14-atmega|$M/mnist-14x14-atmega/model.onnx||run|
mnist-8|$M/mnist-8/model.onnx||run|
mnist-8-gemm-optimized|$M/mnist-8-gemm-optimized/model.onnx||run|
mnist-mlp-batchnorm|$M/mnist-mlp-batchnorm/model.onnx||run|
audio-genre-mlp|$M/audio-genre-mlp/model.onnx|--batch 1|large|3.87 MiB of weights, 17 MB of C: about a minute of compiling; KDCC_EMBEDDED_ALL=1 builds and runs it
ultraface-slim-320-simplified|$M/ultraface-slim-320-simplified/model.onnx||size|arena 4.69 MiB > 4 MiB RAM
ultraface-rfb-320|$M/ultraface-rfb-320/model.onnx||skip|arena 4.69 MiB > 4 MiB RAM (as ultraface-slim-320-simplified); 100 M MACs
super-resolution-10|$M/super-resolution-10/model.onnx|--batch 1|skip|arena 24.5 MiB > 4 MiB RAM; 2.98 G MACs
mnist-8-quantized|$M/mnist-8-quantized/model.onnx||run|
"

fails=0 passes=0
pass() { passes=$((passes + 1)); }
fail() { fails=$((fails + 1)); echo "FAIL $1"; }

cc -std=c99 -O2 -Wall -Wextra "$SRC/tests/embedded/compare_outputs.c" -lm -o "$W/compare_outputs" || {
  echo "FAIL: compare_outputs.c does not build"; echo "0 passed, 1 failed"; exit 1; }

# --- kdcc, and the list of (model, target) builds
: >"$W/jobs"
while IFS='|' read -r name file flags mode why; do
  [ -n "$name" ] || continue
  [ -z "$ONLY" ] || [[ $name =~ $ONLY ]] || continue
  if [ "$mode" = large ]; then
    if [ "${KDCC_EMBEDDED_ALL:-0}" = 1 ]; then mode=run; else mode=skip; fi
  fi
  echo "$name|$file|$mode|$why" >>"$W/models"
  [ "$mode" = skip ] && continue
  if [ ! -f "$file" ]; then fail "$name: $file is missing"; continue; fi
  mkdir -p "$W/$name/gen"
  echo "$name|$file|$flags" >>"$W/kdcc_jobs"
done <<<"$MODELS"
kdcc_job() { # NAME|FILE|FLAGS
  local name file flags
  IFS='|' read -r name file flags <<<"$1"
  # shellcheck disable=SC2086
  # --target cortex-m4: kernels that need no scratch memory (the least RAM); the same C
  # is built for the M4, the M7 and the host
  "$KDCC" "$file" -o "$W/$name/gen/model.c" --name model --target cortex-m4 $flags >"$W/$name/kdcc.log" 2>&1 || echo failed >"$W/$name/kdcc.failed"
}
export -f kdcc_job
export KDCC W
touch "$W/kdcc_jobs"
start=$(date +%s)
# shellcheck disable=SC2016
tr '\n' '\0' <"$W/kdcc_jobs" | xargs -0 -r -P "$JOBS" -n 1 bash -c 'kdcc_job "$0"'
echo "kdcc: $(($(date +%s) - start)) s"
while IFS='|' read -r name file flags; do
  mode=$(grep "^$name|" "$W/models" | cut -d'|' -f3)
  if [ -f "$W/$name/kdcc.failed" ]; then
    fail "$name: kdcc: $(tail -n 3 "$W/$name/kdcc.log")"; rm -f "$W/$name/gen/model.h"; continue
  fi
  if grep -E '^/\* (in|out)put [0-9]+:' "$W/$name/gen/model.h" | grep -vq "' float\["; then
    fail "$name: run_model.c handles float inputs and outputs only"; continue
  fi
  if [ "$mode" = size ]; then echo "$name m4" >>"$W/jobs"; continue; fi
  for t in m4 m7 host; do echo "$name $t" >>"$W/jobs"; done
done <"$W/kdcc_jobs"
echo "$(wc -l <"$W/jobs") builds of $(grep -vc '|skip|' "$W/models") models"

# --- one build (and run) per job, $JOBS at a time: NAME TARGET
job() {
  local name=$1 t=$2 d="$W/$1/$2"
  mkdir -p "$d" && cp -p "$W/$name/gen/model.c" "$W/$name/gen/model.h" "$d/"
  local mk=(make -s -f "$E/Makefile" "BUILD=$d" "MODEL=$W/$name/gen/model.c" "KDCC=false")
  if [ "$t" = host ]; then
    "${mk[@]}" host >"$d/build.log" 2>&1 || { echo "build failed" >"$d/status"; return; }
    "$d/run-host" >"$d/out.txt" 2>"$d/run.log" || { echo "host run failed" >"$d/status"; return; }
    echo ok >"$d/status"; return
  fi
  if ! "${mk[@]}" "CPU=$t" all >"$d/build.log" 2>&1; then
    if grep -q "will not fit in region\|overflowed by" "$d/build.log" &&
       "${mk[@]}" "CPU=$t" all EXTRA_LDFLAGS=-Wl,--noinhibit-exec >/dev/null 2>&1; then
      echo "does not fit" >"$d/status"
    else
      echo "build failed" >"$d/status"
    fi
    return
  fi
  if grep -q "|size|" <(grep "^$name|" "$W/models"); then echo "size only" >"$d/status"; return; fi
  local rc=0
  timeout "$RUN_TIMEOUT" "${mk[@]}" "CPU=$t" run \
    >"$d/out.txt" 2>"$d/run.log" </dev/null || rc=$?
  if [ $rc -eq 124 ]; then echo "qemu timed out (${RUN_TIMEOUT} s)" >"$d/status"
  elif [ $rc -ne 0 ]; then echo "qemu failed (exit $rc)" >"$d/status"
  else echo ok >"$d/status"; fi
}
export -f job
export E RUN_TIMEOUT
start=$(date +%s)
# shellcheck disable=SC2016
xargs -r -P "$JOBS" -L 1 bash -c 'job "$0" "$1"' <"$W/jobs"
echo "builds and runs: $(($(date +%s) - start)) s"

# --- sizes, comparisons, table
sec() { # ELF SECTION-REGEX: sum of the sizes of the matching sections
  arm-none-eabi-size -A "$1" 2>/dev/null | awk -v re="$2" '$1 ~ re {s += $2} END {print s + 0}'
}
kib() { awk -v b="$1" 'BEGIN {if (b < 1024) printf "%d B", b; else printf "%.1f KiB", b / 1024}'; }
T=$W/table.md
{
  echo "| model | core | code | of which model | rodata | of which weights | data | bss | of which arena | flash | RAM | stack used | qemu | outputs vs host |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
} >"$T"
while IFS='|' read -r name file mode why; do
  if [ "$mode" = skip ]; then
    echo "| $name | - | | | | | | | | | | | not built: $why | |" >>"$T"
    echo "skip $name: $why"
    continue
  fi
  [ -f "$W/$name/gen/model.h" ] || continue
  if [ "$mode" = run ]; then cores="m4 m7"; else cores="m4"; fi
  arena=$(awk '$1 == "#define" && $2 ~ /_WORKSPACE_BYTES$/ {print $3}' "$W/$name/gen/model.h")
  for t in $cores; do
    d=$W/$name/$t
    st=$(cat "$d/status" 2>/dev/null || echo "not built")
    elf=$d/run.elf
    code=$(sec "$elf" '^\.text$') rodata=$(sec "$elf" '^\.(rodata|ARM\.exidx)$')
    data=$(sec "$elf" '^\.data$') bss=$(sec "$elf" '^\.bss$')
    mcode=$(sec "$d/model.o" '^\.text') mrod=$(sec "$d/model.o" '^\.rodata')
    flash=$((code + rodata + data)) ram=$((data + bss))
    core=$([ "$t" = m4 ] && echo "Cortex-M4" || echo "Cortex-M7")
    match="" stack=""
    case $st in
      ok)
        if [ "$(cat "$W/$name/host/status" 2>/dev/null)" != ok ]; then
          match="host: $(cat "$W/$name/host/status" 2>/dev/null || echo 'not built')"
          fail "$name $t: host build or run: $(tail -n 5 "$W/$name/host/build.log" "$W/$name/host/run.log" 2>/dev/null)"
        elif cmp_out=$("$W/compare_outputs" "$W/$name/host/out.txt" "$d/out.txt"); then
          match=$(echo "$cmp_out" | awk '{printf "yes: %d/%d bitwise equal, max %s ulp", $3, $1, $7}')
          pass; echo "ok   $name $t: $cmp_out"
        else
          match="NO: $(echo "$cmp_out" | tail -n 1 | tr '|' '/')"
          fail "$name $t: outputs differ from the host's: $cmp_out"
        fi
        st="ran"
        stack=$(awk '$1 == "stack" {print $2}' "$d/out.txt")
        stack=$([ -n "$stack" ] && kib "$stack");;
      "size only") pass; echo "ok   $name $t: built for its sizes";;
      "does not fit")
        pass; st="does not fit ($why)"; echo "ok   $name $t: does not fit the board: $why";;
      *)
        fail "$name $t: $st: $(tail -n 5 "$d/build.log" "$d/run.log" 2>/dev/null)";;
    esac
    echo "| $name | $core | $(kib "$code") | $(kib "$mcode") | $(kib "$rodata") | $(kib "$mrod") | $(kib "$data") | $(kib "$bss") | $(kib "$arena") | $(kib "$flash") | $(kib "$ram") | $stack | $st | $match |" >>"$T"
  done
done <"$W/models"

# --- the kws example of main.c, which checks its outputs against numpy's itself
if [ -z "$ONLY" ] || [[ kws-main =~ $ONLY ]]; then
  for t in m4 m7; do
    d=$W/kws-main/$t
    if make -s -f "$E/Makefile" "BUILD=$d" "CPU=$t" APP=main.c NAME=kws "KDCC=$KDCC" "MODEL=$E/kws.txt" all >"$W/kws-main.log" 2>&1 &&
       timeout "$RUN_TIMEOUT" make -s -f "$E/Makefile" "BUILD=$d" "CPU=$t" APP=main.c NAME=kws KDCC=false "MODEL=$E/kws.txt" run >>"$W/kws-main.log" 2>&1 </dev/null; then
      pass; echo "ok   kws main.c on $t: exit status 0 (outputs match numpy's)"
    else
      fail "kws main.c on $t: $(tail -n 5 "$W/kws-main.log")"
    fi
  done
fi

echo
cat "$T"
echo
echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
