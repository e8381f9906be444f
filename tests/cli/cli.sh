#!/usr/bin/env bash
# The command line as a user meets it: help, version, output naming, --shape/--batch,
# print, the textual syntax, determinism, and that the output builds and runs.
set -u
KDCC=$1
W=$2
rm -rf "$W" && mkdir -p "$W"
fails=0 passes=0
check() { # NAME COMMAND...
  local name=$1; shift
  if "$@" >"$W/log" 2>&1; then passes=$((passes + 1)); echo "ok   $name"
  else fails=$((fails + 1)); echo "FAIL $name: $(head -c 600 "$W/log")"; fi
}
M=$KDCC_SHARED/onnx-tests/models
check help bash -c "'$KDCC' --help | grep -q 'usage'"
check version bash -c "'$KDCC' --version | grep -q '^kdcc [0-9]'"
check compile_help bash -c "'$KDCC' compile --help | grep -q -- '--shape'"
check no_model bash -c "'$KDCC' -o x.c; [ \$? -eq 2 ]"
check out_file bash -c "'$KDCC' '$M/mnist-8/model.onnx' -o '$W/student.c' && grep -q 'int student_run(' '$W/student.h' && grep -q '#include \"student.h\"' '$W/student.c'"
check out_dir_name bash -c "mkdir -p '$W/out' && '$KDCC' '$M/mnist-8/model.onnx' -o '$W/out/' --name kws && test -f '$W/out/kws.c' && grep -q 'KWS_WORKSPACE_BYTES' '$W/out/kws.h'"
check bad_name bash -c "'$KDCC' '$M/mnist-8/model.onnx' -o '$W/x.c' --name 9lives; [ \$? -eq 1 ]"
check shape_binding bash -c "'$KDCC' '$M/super-resolution-10/model.onnx' --shape input=1x1x224x224 -o '$W/sr.c' && grep -q 'SR_IN0_SHAPE {1, 1, 224, 224}' '$W/sr.h'"
check batch_binding bash -c "'$KDCC' '$M/tflm-hello-world-sine/model.onnx' --batch 5 -o '$W/sine.c' && grep -q 'SINE_OUT0_COUNT 5' '$W/sine.h'"
check shape_conflict bash -c "'$KDCC' '$M/mnist-8/model.onnx' --shape Input3=2x1x28x28 -o '$W/c.c' 2>&1 | grep -q 'dim 0'"
# determinism: the same model and options give byte-identical C
check deterministic bash -c "mkdir -p '$W/d1' '$W/d2' && '$KDCC' '$M/ultraface-rfb-320/model.onnx' -o '$W/d1/' --name m && '$KDCC' '$M/ultraface-rfb-320/model.onnx' -o '$W/d2/' --name m && cmp '$W/d1/m.c' '$W/d2/m.c' && cmp '$W/d1/m.h' '$W/d2/m.h'"
# print and the textual syntax: text -> C gives the same C as binary -> C
check print bash -c "'$KDCC' print '$M/mnist-8/model.onnx' > '$W/mnist.txt' && grep -q 'Conv' '$W/mnist.txt'"
check text_compiles_same bash -c "mkdir -p '$W/t1' '$W/t2' && '$KDCC' '$M/mnist-8/model.onnx' -o '$W/t1/' --name m && '$KDCC' '$W/mnist.txt' -o '$W/t2/' --name m && diff <(grep -v '^/\\* model:' '$W/t1/m.c') <(grep -v '^/\\* model:' '$W/t2/m.c') >/dev/null"
# --target native: the target --target list names for this host, the same C as that target's
check target_native bash -c "t=\$('$KDCC' --target list | sed -n 's/^native .*: \\(.*\\) here\$/\\1/p') && [ -n \"\$t\" ] && mkdir -p '$W/n1' '$W/n2' && '$KDCC' '$M/mnist-8/model.onnx' -o '$W/n1/' --name m --target native && '$KDCC' '$M/mnist-8/model.onnx' -o '$W/n2/' --name m --target \$t && cmp '$W/n1/m.c' '$W/n2/m.c'"
check target_unknown bash -c "'$KDCC' '$M/mnist-8/model.onnx' -o '$W/u.c' --target nosuch 2>&1 | grep -q 'no target named .nosuch. (targets: .*native)'"
check dump_after bash -c "'$KDCC' '$M/mnist-8/model.onnx' -o '$W/dump.c' --dump-after infer 2>&1 >/dev/null | grep -q '# after infer'"
check dump_unknown_pass bash -c "'$KDCC' '$M/mnist-8/model.onnx' -o '$W/dump2.c' --dump-after nosuchpass; [ \$? -eq 1 ]"
# the emitted C builds as C99 with warnings as errors under gcc and clang, and the reentrant form links
for cc in gcc clang; do
  check "strict_$cc" bash -c "$cc -std=c99 -Wall -Wextra -Wpedantic -Werror -c '$W/student.c' -o '$W/student_$cc.o'"
done
cat >"$W/use.c" <<'C'
#include "student.h"
#include <stdio.h>
#include <stdlib.h>
int main(void)
{
    static float x[STUDENT_IN0_COUNT], y1[STUDENT_OUT0_COUNT], y2[STUDENT_OUT0_COUNT];
    void *ws = malloc(STUDENT_WORKSPACE_BYTES);
    int i;
    for (i = 0; i < STUDENT_IN0_COUNT; i++)
        x[i] = (float)(i % 7) / 7.0f;
    if (student_run(x, y1) || student_run_ws(ws, x, y2) || student_run_ws(NULL, x, y2) != -1)
        return 1;
    for (i = 0; i < STUDENT_OUT0_COUNT; i++)
        if (y1[i] != y2[i])
            return 2;
    free(ws);
    puts("same");
    return 0;
}
C
check run_and_run_ws bash -c "cc -std=c99 -O1 -I'$W' '$W/use.c' '$W/student.c' -lm -o '$W/use' && '$W/use' | grep -q same"
echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
