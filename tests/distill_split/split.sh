#!/usr/bin/env bash
# kdcc distill --no-teacher-cache runs the frozen teacher in slices of the batch
# (passes/distill.c: one copy of its layers per slice, one set of weights, the
# logits concatenated), sized from the L2 cache, or --teacher-sub-batch N. The
# emitted step must give the loss, weights and Adam moments after one step that the
# whole-batch teacher gives, within float rounding (1e-5 of each tensor's largest
# value; a permuted or misplaced slice moves them by far more, as does -T 3 instead
# of 4, the control that shows the comparison can fail); the split must happen (the
# report line, per part one Slice node and one call of a shared Winograd function); a teacher
# that cannot be bound to the sub-batch or combines samples runs on the whole batch;
# a sub-batch that does not divide the batch is refused.
set -eu
KDCC=$1
W=$2
F=/usr/share/datasets/fashion-mnist
S=$KDCC_SOURCE/examples/fashion-mnist
CC=${CC:-cc}
if [ ! -f $F/t10k-images-idx3-ubyte.gz ]; then
  echo "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): skipped"
  exit 77
fi
rm -rf "$W" && mkdir -p "$W"
export KDCC_TRAIN_CFLAGS=-O1
common=(--student $S/student_mlp.onnx --data $F/t10k-images-idx3-ubyte.gz
        --scale 0.00392156862745098 --labels $F/t10k-labels-idx1-ubyte.gz --limit 128
        --alpha 0.9 --epochs 1 --batch 64 --no-teacher-cache)
fails=0
ok() { echo "ok   $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }

# variant NAME ARGS...: emit the step, build it with the driver, run one step
variant() {
  local n=$1
  shift
  mkdir -p "$W/$n"
  "$KDCC" distill --teacher $S/cnn.onnx "${common[@]}" "$@" --onnx "$W/$n/s.onnx" --emit-train "$W/$n/train.c" >"$W/$n/out.txt" 2>&1 ||
    { cat "$W/$n/out.txt"; return 1; }
  $CC -std=c99 -O1 -Wall -Wextra -Wpedantic -Werror -I"$W/$n" "$KDCC_SOURCE/tests/distill_split/step.c" \
    "$W/$n/train.c" -o "$W/$n/step" -lm
  "$W/$n/step" >"$W/$n/result.txt"
}
variant off -T 4 --teacher-sub-batch off
variant auto -T 4
variant s16 -T 4 --teacher-sub-batch 16
variant control -T 3

# the largest relative difference over the tensors: max |a - b| / max |a| per tensor
compare() {
  paste -d' ' "$W/$1/result.txt" "$W/$2/result.txt" | awk '
    $1 != $3 { print "mismatched lines"; bad = 1; exit }
    { d = $2 - $4; d = d < 0 ? -d : d; a = $2 < 0 ? -$2 : $2
      if (d > md[$1]) md[$1] = d; if (a > ma[$1]) ma[$1] = a }
    END { if (bad) exit 1; m = 0; for (k in md) { r = md[k] / (ma[k] > 0 ? ma[k] : 1); if (r > m) m = r }; printf "%.3g\n", m }'
}
for v in auto s16; do
  r=$(compare off $v)
  if awk -v r="$r" 'BEGIN { exit !(r <= 1e-5) }'; then ok "same_step_$v (max rel diff $r)"; else fail "same_step_$v: max rel diff $r"; fi
done
r=$(compare off control)
if awk -v r="$r" 'BEGIN { exit !(r > 1e-3) }'; then ok "control_differs (max rel diff $r)"; else fail "control_differs: max rel diff $r"; fi

# the split happened, sized from the L2 of the host's target (the step runs here: 512 KB
# on the generic target, 1 MB on x86-64-v4): S samples of the 64 per part, the most
# whose tensors fit (S x per-sample KB <= L2 KB < 2S x per-sample KB), 64 / S parts
line=$(grep -o "teacher 1 runs in [0-9]* parts of [0-9]* samples ([0-9]* KB of tensors per sample, L2 [0-9]* KB)" "$W/auto/out.txt" || true)
parts=$(echo "$line" | awk '{ print $5 }')
if [ -n "$line" ] && echo "$line" | awk '{ n = $5; s = $8; per = substr($10, 2); l2 = $17
     exit !(n * s == 64 && s * per <= l2 && 2 * s * per > l2 && n > 1) }'; then
  ok "report ($line)"
else
  fail "report: $(grep teacher "$W/auto/out.txt" || true)"
fi
if grep -q "teacher 1 runs in 4 parts of 16 samples" "$W/s16/out.txt"; then ok report_16; else fail report_16; fi
nslice=$(grep -c "^/\* node [0-9]* 'teacher1\.part[0-9]*\.slice0': Slice" "$W/auto/train.c" || true)
ndef=$(grep -c '^static void kd_n[0-9]*_WinogradConv(' "$W/auto/train.c" || true)
ncall=$(grep -c '^ *kd_n[0-9]*_WinogradConv(' "$W/auto/train.c" || true)
if [ -n "$parts" ] && [ "$nslice" = "$parts" ] && [ "$ndef" = 1 ] && [ "$ncall" = "$parts" ]; then
  ok "structure ($parts slices, one Winograd function called $parts times)"
else
  fail "structure: $nslice slices, $ndef Winograd functions, $ncall calls (want ${parts:-?})"
fi
if grep -q 'teacher1\.part' "$W/off/train.c"; then fail "off: the step is split"; else ok off_unsplit; fi
# the split step is strict C99 for clang too (gcc built it above)
if command -v clang >/dev/null; then
  if clang -std=c99 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -I"$W/auto" "$W/auto/train.c"; then
    ok clang_c99
  else
    fail clang_c99
  fi
else
  ok "clang_c99 (no clang here)"
fi

# teachers that must run on the whole batch: one whose Reshape has the batch written in
# (it cannot be bound to 8 samples), one that combines samples (a Softmax along the batch)
/usr/bin/python3 - "$S/cnn.onnx" "$W" <<'PYEOF'
import sys
import numpy as np
import onnx
from onnx import helper, numpy_helper
src, w = sys.argv[1], sys.argv[2]
m = onnx.load(src)
for n in m.graph.node:
    if n.op_type == "Reshape":
        m.graph.initializer.append(numpy_helper.from_array(np.array([64, 1568], np.int64), "fixed_shape"))
        n.input[1] = "fixed_shape"
onnx.save(m, w + "/fixed.onnx")
m = onnx.load(src)
out = m.graph.output[0]
m.graph.node.append(helper.make_node("Softmax", [out.name], ["mixed"], axis=0))
out.name = "mixed"
onnx.save(m, w + "/mixed.onnx")
PYEOF
for t in fixed mixed; do
  mkdir -p "$W/$t"
  if "$KDCC" distill --teacher "$W/$t.onnx" "${common[@]}" --emit-train "$W/$t/train.c" \
      --onnx "$W/$t/s.onnx" >"$W/$t/out.txt" 2>&1 &&
     grep -q "teacher 1 runs on the whole batch" "$W/$t/out.txt" && ! grep -q 'teacher1\.part' "$W/$t/train.c"; then
    ok "whole_batch_$t ($(grep -o 'whole batch: .*' "$W/$t/out.txt" | cut -c14-80))"
  else
    fail "whole_batch_$t: $(grep -v 'left *$' "$W/$t/out.txt" | head -3)"
  fi
done

# a sub-batch that does not divide the batch is refused
if "$KDCC" distill --teacher $S/cnn.onnx "${common[@]}" --teacher-sub-batch 24 --onnx "$W/x.onnx" 2>"$W/err"; then
  fail "sub_batch_24 accepted"
else
  grep -q -- "--teacher-sub-batch 24 does not divide" "$W/err" && ok sub_batch_24 || fail "sub_batch_24 message: $(cat "$W/err")"
fi
echo "$((11 - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
