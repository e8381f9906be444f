#!/usr/bin/env bash
# kdcc distill --no-teacher-cache runs the frozen teacher in slices of the batch
# (passes/distill.c: one copy of its layers per slice, one set of weights, the
# logits concatenated), sized from the L2 cache, or --teacher-sub-batch N. The
# emitted step must give the loss, weights and Adam moments after one step that the
# whole-batch teacher gives, within float rounding (1e-5 of each tensor's largest
# value; a permuted or misplaced slice moves them by far more, as does -T 3 instead
# of 4, the control that shows the comparison can fail); the split must happen (the
# report line, 8 Slice nodes, 8 calls of one shared Winograd function) and a
# sub-batch that does not divide the batch is refused.
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
common=(--teacher $S/cnn.onnx --student $S/student_mlp.onnx --data $F/t10k-images-idx3-ubyte.gz
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
  "$KDCC" distill "${common[@]}" "$@" --onnx "$W/$n/s.onnx" --emit-train "$W/$n/train.c" >"$W/$n/out.txt" 2>&1 ||
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

# the split happened: 8 parts of 8 samples at the default target's 512 KB of L2
if grep -q "teacher 1 runs in 8 parts of 8 samples" "$W/auto/out.txt"; then ok report; else fail "report: $(grep teacher "$W/auto/out.txt" || true)"; fi
if grep -q "teacher 1 runs in 4 parts of 16 samples" "$W/s16/out.txt"; then ok report_16; else fail report_16; fi
nslice=$(grep -c "^/\* node [0-9]* 'teacher1\.part[0-7]\.slice0': Slice" "$W/auto/train.c" || true)
ndef=$(grep -c '^static void kd_n[0-9]*_WinogradConv(' "$W/auto/train.c" || true)
ncall=$(grep -c '^ *kd_n[0-9]*_WinogradConv(' "$W/auto/train.c" || true)
if [ "$nslice" = 8 ] && [ "$ndef" = 1 ] && [ "$ncall" = 8 ]; then
  ok "structure (8 slices, one Winograd function called 8 times)"
else
  fail "structure: $nslice slices, $ndef Winograd functions, $ncall calls"
fi
if grep -q 'teacher1\.part' "$W/off/train.c"; then fail "off: the step is split"; else ok off_unsplit; fi

# a sub-batch that does not divide the batch is refused
if "$KDCC" distill "${common[@]}" --teacher-sub-batch 24 --onnx "$W/x.onnx" 2>"$W/err"; then
  fail "sub_batch_24 accepted"
else
  grep -q -- "--teacher-sub-batch 24 does not divide" "$W/err" && ok sub_batch_24 || fail "sub_batch_24 message: $(cat "$W/err")"
fi
echo "$((8 - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
