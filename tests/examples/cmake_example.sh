#!/usr/bin/env bash
# examples/cmake against an install of kdcc: cmake --install into BUILD/stage, then
# configure, build and run the example with -DCMAKE_PREFIX_PATH; check that kdcc runs
# again when the model changes (and only then), that the depfile makes a change to
# external weights rebuild (Makefiles and Ninja), and that the install is relocatable.
set -u
BUILD=$1   # kdcc's build dir
W=$2       # work dir
SRC=$KDCC_SOURCE
STAGE=$BUILD/stage
rm -rf "$W" && mkdir -p "$W"
fails=0 passes=0
check() { # NAME COMMAND...
  local name=$1; shift
  if "$@" >"$W/log" 2>&1; then passes=$((passes + 1)); echo "ok   $name"
  else fails=$((fails + 1)); echo "FAIL $name: $(tail -c 1500 "$W/log")"; fi
}
check install bash -c "rm -rf '$STAGE' && cmake --install '$BUILD' --prefix '$STAGE' && test -x '$STAGE/bin/kdcc' && test -f '$STAGE/share/man/man1/kdcc.1' && test -f '$STAGE/lib/cmake/kdcc/kdccConfig.cmake' && test -f '$STAGE/lib/cmake/kdcc/kdccConfigVersion.cmake' && test -f '$STAGE/lib/cmake/kdcc/kdcc.cmake'"
check installed_kdcc_runs bash -c "'$STAGE/bin/kdcc' --version | grep -q '^kdcc '"

cp -r "$SRC/examples/cmake" "$W/src"
B=$W/build
check configure bash -c "cmake -S '$W/src' -B '$B' -DCMAKE_PREFIX_PATH='$STAGE' -DCMAKE_BUILD_TYPE=Release"
check build bash -c "cmake --build '$B' 2>&1 | tee '$W/b1' && grep -q 'kdcc: kws.txt' '$W/b1'"
check run bash -c "'$B/classify' | grep -q '^ok: class 0'"
check no_rerun_when_unchanged bash -c "cmake --build '$B' 2>&1 | tee '$W/b2' && ! grep -q 'kdcc: kws.txt' '$W/b2'"
check rerun_when_model_changes bash -c "touch '$W/src/kws.txt' && cmake --build '$B' 2>&1 | tee '$W/b3' && grep -q 'kdcc: kws.txt' '$W/b3' && '$B/classify' >/dev/null"
check version_check bash -c "mkdir -p '$W/v' && printf 'cmake_minimum_required(VERSION 3.18)\nproject(v LANGUAGES C)\nfind_package(kdcc 9.0 QUIET)\nif(kdcc_FOUND)\n  message(FATAL_ERROR \"version 9.0 accepted\")\nendif()\n' > '$W/v/CMakeLists.txt' && cmake -S '$W/v' -B '$W/v/b' -DCMAKE_PREFIX_PATH='$STAGE'"

# a model with external weights: the depfile makes a weights change rebuild
mkdir -p "$W/ext"
cp "$SRC/tests/examples/data/ext.onnx" "$SRC/tests/examples/data/ext.weights" "$W/ext/"
cat >"$W/ext/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(ext LANGUAGES C)
find_package(kdcc REQUIRED)
kdcc_add_model(TARGET extmodel MODEL ext.onnx NAME ext OPTIONS --batch 2)
add_executable(use_ext main.c)
target_link_libraries(use_ext PRIVATE extmodel)
CM
cat >"$W/ext/main.c" <<'C'
#include "ext.h"
#include <stdio.h>
int main(void)
{
    float x[EXT_IN0_COUNT], y[EXT_OUT0_COUNT];
    int i;
    for (i = 0; i < EXT_IN0_COUNT; i++)
        x[i] = (float)i;
    if (ext_run(x, y))
        return 1;
    printf("%g\n", (double)y[0]);
    return 0;
}
C
gens=("Unix Makefiles")
command -v ninja >/dev/null 2>&1 && gens+=("Ninja")
for gen in "${gens[@]}"; do
  g=${gen// /_}
  EB=$W/ext/build-$g
  check "ext_build_$g" bash -c "cmake -G '$gen' -S '$W/ext' -B '$EB' -DCMAKE_PREFIX_PATH='$STAGE' && cmake --build '$EB' && '$EB/use_ext' | tee '$W/ext/y1'"
  # x = [0 1 2 3] (row 0); y[0] = sum_k x_k W[k,0] + B[0] = 0*-0.5 + 1*-0.2 + 2*0.1 + 3*0.4 + 0.5 = 1.7
  check "ext_value_$g" bash -c "grep -qx '1.7' '$W/ext/y1'"
  check "ext_rebuild_on_weights_$g" bash -c "cmake --build '$EB' 2>&1 | tee '$W/e2' && ! grep -q 'kdcc: ext.onnx' '$W/e2' && touch '$W/ext/ext.weights' && cmake --build '$EB' 2>&1 | tee '$W/e3' && grep -q 'kdcc: ext.onnx' '$W/e3'"
done

# relocatable: a copy of the install works from its new place
check relocatable bash -c "cp -r '$STAGE' '$W/moved' && cmake -S '$W/src' -B '$W/build-moved' -DCMAKE_PREFIX_PATH='$W/moved' && grep -q 'kdcc_DIR:PATH=$W/moved/lib/cmake/kdcc' '$W/build-moved/CMakeCache.txt' && cmake --build '$W/build-moved' && grep -rq '$W/moved/bin/kdcc' '$W/build-moved/CMakeFiles' && '$W/build-moved/classify' >/dev/null"

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
