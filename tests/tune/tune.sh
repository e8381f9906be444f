#!/usr/bin/env bash
# --tune times candidate register blocks per Conv layer and records them; --tune-file
# reproduces the build without timing; every block computes the same numbers as the
# scratch-free Conv path (--target cortex-m4 gives no kernel scratch memory, so its
# layers take the per-row and generic paths that the conformance suite checks).
set -u
KDCC=$1
W=$2
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=${KDCC_SOURCE:-$HERE/../..}
MODEL=$SRC/examples/fashion-mnist/cnn.onnx
CC=${CC:-cc}
rm -rf "$W" && mkdir -p "$W"
fails=0 passes=0
check() { # NAME COMMAND...
  local name=$1; shift
  if "$@" >"$W/log" 2>&1; then passes=$((passes + 1)); echo "ok   $name"
  else fails=$((fails + 1)); echo "FAIL $name: $(head -c 800 "$W/log")"; fi
}

# a harness that runs model m on fixed inputs and prints every output value
cat > "$W/main.c" <<'C'
#include "m.h"
#include <stdio.h>
static float in[M_IN0_COUNT], out[M_OUT0_COUNT];
int main(void)
{
    for (long k = 0; k < (long)M_IN0_COUNT; k++)
        in[k] = (float)(k % 13) / 13.0f - 0.5f;
    if (m_run(in, out) != 0)
        return 1;
    for (long k = 0; k < (long)M_OUT0_COUNT; k++)
        printf("%.9g\n", out[k]);
    return 0;
}
C
# build DIR [kdcc options...]: compile the model into DIR, build and run, outputs in DIR/out.txt
build() {
  local d=$1; shift
  mkdir -p "$d" &&
  "$KDCC" "$MODEL" --batch 2 --name m -o "$d/m.c" "$@" &&
  $CC -std=c99 -O2 -ffp-contract=off -Wall -Wextra -Werror -I"$d" -o "$d/run" "$d/m.c" "$W/main.c" -lm &&
  "$d/run" > "$d/out.txt"
}
# close A B: the same count of values, each within 1e-5 relative (1e-6 absolute)
close() {
  paste "$1" "$2" | awk 'NF != 2 { bad = 1 } { d = $1 - $2; if (d < 0) d = -d; m = $2 < 0 ? -$2 : $2;
    if (d > 1e-6 + 1e-5 * m) { bad = 1; print "value " NR ": " $1 " vs " $2 } } END { exit bad || NR == 0 }'
}

check reference_without_scratch build "$W/ref" --target cortex-m4
check reference_has_no_scratch bash -c "! grep -q 'scratch' '$W/ref/m.h' && ! grep -q 'float acc\[8\]\[16\]' '$W/ref/m.c'"

# --tune: three Conv layers timed, one line each in the tune file
mkdir -p "$W/t" "$W/t3" "$W/bad"
check tune_runs env KDCC_TUNE_CFLAGS="-O2" bash -c "'$KDCC' '$MODEL' --batch 2 --name m -o '$W/t/m.c' --tune 2>'$W/tune.err'"
check tune_file_written bash -c "[ \$(grep -vc '^#' '$W/t/m.tune') -eq 3 ] && [ \$(grep -Ec 'Conv x0=float\[2,[0-9]+,[0-9]+,[0-9]+\].*'\$'\t''[0-9]+x[0-9]+'\$'\t''[0-9]+\$' '$W/t/m.tune') -eq 3 ]"
check tune_reports_each_layer bash -c "[ \$(grep -c 'kdcc: tune: node' '$W/tune.err') -eq 3 ]"
check tuned_build_matches build "$W/t2" --tune-file "$W/t/m.tune"
check tuned_outputs close "$W/t2/out.txt" "$W/ref/out.txt"

# a layer the channel-vector kernel takes (20->12 3x3 on 5x5): a candidate block it
# cannot hold gives the code of the block it takes instead, which is built and timed
# once ("MxN = KxL" in the log), and the block recorded is one that was timed
mkdir -p "$W/cv"
awk 'BEGIN { printf "<\n ir_version: 8,\n opset_import: [\"\" : 17]\n>\ng (float[1,20,5,5] x) => (float[1,12,3,3] y)\n<\n float[12,20,3,3] w = {"
  for (i = 0; i < 2160; i++) printf "%s%.3f", i ? ", " : "", ((i * 37) % 101) / 101.0 - 0.5
  printf "}\n>\n{\n y = Conv(x, w)\n}\n" }' > "$W/cv.txt"
check tune_same_code_timed_once env KDCC_TUNE_CFLAGS=-O1 bash -c "'$KDCC' '$W/cv.txt' -o '$W/cv/m.c' --tune 2>'$W/cv.err' &&
  grep -q 'channel vectors:' '$W/cv/m.c' && grep -Eq ', [0-9]+x[0-9]+ = [0-9]+x[0-9]+' '$W/cv.err' &&
  b=\$(grep -v '^#' '$W/cv/m.tune' | cut -f2) && grep -Eq \"(\\(|, )\$b [0-9.]+ us\" '$W/cv.err'"
# the file is honoured without timing anything, and gives the same C every time
check tune_file_deterministic bash -c "'$KDCC' '$MODEL' --batch 2 --name m -o '$W/t3/m.c' --tune-file '$W/t/m.tune' 2>'$W/t3.err' && cmp <(sed 3d '$W/t2/m.c') <(sed 3d '$W/t3/m.c') && ! grep -q 'tune: node' '$W/t3.err'"

# has_block FILE M N: the C holds an M x N register block, as acc[M][N] or as a run of
# named arrays c{row}_{q}[lanes] (M rows, N / lanes vectors)
has_block() {
  grep -q "float acc\[$2\]\[$3\]" "$1" || /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
for run in re.findall(r"(?:[ \t]*float c\d+_\d+\[\d+\];\n)+", src):
    a = [tuple(map(int, t)) for t in re.findall(r"c(\d+)_(\d+)\[(\d+)\]", run)]
    if (max(i for i, _, _ in a) + 1, (max(q for _, q, _ in a) + 1) * a[0][2]) == (int(sys.argv[2]), int(sys.argv[3])):
        sys.exit(0)
sys.exit(1)
PY
}

# every candidate block, remainders included (16 and 32 channels by 3 or 6 rows),
# computes what the scratch-free path computes
for blk in 8x16 4x24 4x32 6x16 8x8 4x16 8x24 2x32 2x16 3x32 3x8 5x40; do
  sed "s/\t[0-9]*x[0-9]*\t/\t$blk\t/" "$W/t/m.tune" > "$W/b$blk.tune"
  m=${blk%x*} n=${blk#*x}
  check "block_${blk}" bash -c "$(declare -f build has_block); KDCC='$KDCC' MODEL='$MODEL' CC='$CC' W='$W'; build '$W/b$blk' --tune-file '$W/b$blk.tune' && has_block '$W/b$blk/m.c' $m $n"
  check "block_${blk}_outputs" close "$W/b$blk/out.txt" "$W/ref/out.txt"
done

# kernel forms: a pointwise layer whose pixels (10 x 10) are not whole vectors can run
# with vectors over the pixels or over the output channels; --tune times both and
# records the form, and each form forced through the file computes the same numbers
PW=$W/pw
mkdir -p "$PW/ref" "$PW/t"
/usr/bin/python3 - "$PW/model.txt" <<'PY'
import sys, random
random.seed(7)
w = ", ".join("%.6f" % random.uniform(-0.5, 0.5) for _ in range(32 * 32))
b = ", ".join("%.6f" % random.uniform(-0.2, 0.2) for _ in range(32))
open(sys.argv[1], "w").write("""<
   ir_version: 8,
   opset_import: ["" : 17]
>
pw (float[1,32,10,10] x) => (float[1,32,10,10] y)
<
   float[32,32,1,1] w = {%s},
   float[32] b = {%s}
>
{
   c = Conv(x, w, b)
   y = Relu(c)
}
""" % (w, b))
PY
# mbuild MODEL DIR [kdcc options...]: as build, for another model (the same harness)
mbuild() {
  local model=$1 d=$2; shift 2
  mkdir -p "$d" && "$KDCC" "$model" --name m -o "$d/m.c" "$@" &&
  $CC -std=c99 -O2 -ffp-contract=off -Wall -Wextra -Werror -I"$d" -o "$d/run" "$d/m.c" "$W/main.c" -lm && "$d/run" > "$d/out.txt"
}
pwbuild() { mbuild "$PW/model.txt" "$@"; }
check pw_reference pwbuild "$PW/ref" --target cortex-m4
check pw_tune_records_form env KDCC_TUNE_CFLAGS="-O2" bash -c "'$KDCC' '$PW/model.txt' --name m -o '$PW/t/m.c' --tune 2>'$PW/tune.err' && grep -Eq 'FusedConv x0=float\[1,32,10,10\].*'\$'\t''[0-9]+x[0-9]+'\$'\t''[0-9]+'\$'\t''(pixels|channels)\$' '$PW/t/m.tune' && grep -q ' pixels [0-9.]* us.* channels [0-9.]* us' '$PW/tune.err'"
for form in pixels channels; do
  sed -E "s/\t(pixels|channels)\$/\t$form/" "$PW/t/m.tune" > "$PW/$form.tune"
  case $form in pixels) want='pointwise: blocks of [0-9]+ channels x [0-9]+ pixels' ;; *) want='vectors over the channels' ;; esac
  check "pw_form_$form" bash -c "$(declare -f mbuild pwbuild); KDCC='$KDCC' CC='$CC' PW='$PW' W='$W'; pwbuild '$PW/$form' --tune-file '$PW/$form.tune' && grep -Eq '$want' '$PW/$form/m.c'"
  check "pw_form_${form}_outputs" close "$PW/$form/out.txt" "$PW/ref/out.txt"
done
# --tune-retime: each recorded choice timed again, the choices and the C unchanged
cp "$PW/t/m.tune" "$PW/retime.tune"
check pw_retime env KDCC_TUNE_CFLAGS="-O2" bash -c "'$KDCC' '$PW/model.txt' --name m -o '$PW/retime.c' --tune-file '$PW/retime.tune' --tune-retime 2>'$PW/retime.err' && grep -q 'again: [0-9.]* us' '$PW/retime.err' && cmp <(cut -f1,2,4 '$PW/t/m.tune' | sed 1d) <(cut -f1,2,4 '$PW/retime.tune' | sed 1d) && cmp <(sed 3d '$PW/t/m.c') <(sed 3d '$PW/retime.c')"
# a form the kernel does not have is refused with one line naming the file
sed -E "s/\t(pixels|channels)\$/\trows/" "$PW/t/m.tune" > "$PW/bad.tune"
check pw_bad_form bash -c "'$KDCC' '$PW/model.txt' --name m -o '$PW/bad.c' --tune-file '$PW/bad.tune' 2>'$PW/bad.err'; [ \$? -eq 1 ] && grep -q \"bad.tune': form 'rows' is not one of\" '$PW/bad.err' && [ \$(wc -l < '$PW/bad.err') -eq 1 ] && [ ! -e '$PW/bad.c' ]"

# a depthwise-separable stack whose activations are stored channels-last: the
# pointwise layers' keys say so (/nhwc: there the kernel has one form, blocks of pixels x
# channels, which a layer of the same shape elsewhere in NCHW would read otherwise), and
# the tuned build computes what the scratch-free path does
SEP=$W/sep
mkdir -p "$SEP/ref" "$SEP/t"
/usr/bin/python3 - "$SEP/model.txt" <<'PY'
import sys, random
random.seed(11)
def r(n, s):
    return ", ".join("%.6f" % random.uniform(-s, s) for _ in range(n))
open(sys.argv[1], "w").write("""<
   ir_version: 8,
   opset_import: ["" : 17]
>
sep (float[1,16,6,5] x) => (float[1,16,1,1] y)
<
   float[16,16,1,1] w1 = {%s}, float[16] b1 = {%s},
   float[16,1,3,3] w2 = {%s}, float[16] b2 = {%s},
   float[16,16,1,1] w3 = {%s}, float[16] b3 = {%s}
>
{
   c1 = Conv(x, w1, b1)
   a1 = Relu(c1)
   c2 = Conv<group = 16, pads = [1, 1, 1, 1]>(a1, w2, b2)
   a2 = Relu(c2)
   c3 = Conv(a2, w3, b3)
   a3 = Relu(c3)
   y = GlobalAveragePool(a3)
}
""" % (r(256, 0.5), r(16, 0.2), r(144, 0.5), r(16, 0.2), r(256, 0.5), r(16, 0.2)))
PY
check sep_reference mbuild "$SEP/model.txt" "$SEP/ref" --target cortex-m4
check sep_tune_keys_nhwc env KDCC_TUNE_CFLAGS="-O1" bash -c "'$KDCC' '$SEP/model.txt' --name m -o '$SEP/t/m.c' --tune 2>'$SEP/tune.err' &&
  [ \$(grep -Ec 'x0=float\[1,16,6,5\](/nhwc)? .* y=float\[1,16,6,5\]/nhwc .*'\$'\t''[0-9]+x[0-9]+'\$'\t''[0-9]+\$' '$SEP/t/m.tune') -eq 2 ] &&
  grep -q 'x0=float\[1,16,6,5\]/nhwc' '$SEP/t/m.tune' && grep -q 'channels last, vectors over' '$SEP/t/m.c'"
check sep_tuned_build mbuild "$SEP/model.txt" "$SEP/t2" --tune-file "$SEP/t/m.tune"
check sep_tuned_outputs close "$SEP/t2/out.txt" "$SEP/ref/out.txt"

# a malformed tune file is refused with one line naming it
printf 'kdcc.FusedConv x0=float[1]\t8by16\t12\n' > "$W/bad.tune"
check bad_tune_file bash -c "'$KDCC' '$MODEL' --batch 2 --name m -o '$W/bad/m.c' --tune-file '$W/bad.tune' 2>'$W/bad.err'; [ \$? -eq 1 ] && grep -q 'bad.tune:1: not a tune line' '$W/bad.err' && [ \$(wc -l < '$W/bad.err') -eq 1 ] && [ ! -e '$W/bad/m.c' ]"
# and the comparison can fail: a perturbed output is caught
awk 'NR == 3 { $1 = $1 * 1.001 } { print }' "$W/ref/out.txt" > "$W/perturbed.txt"
check compare_can_fail bash -c "$(declare -f close); ! close '$W/perturbed.txt' '$W/ref/out.txt'"

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
