#!/usr/bin/env bash
# kdcc info, kdcc dot, compile --depfile, and the man page against the help texts.
set -u
KDCC=$1
W=$2
SRC=$KDCC_SOURCE
rm -rf "$W" && mkdir -p "$W"
fails=0 passes=0 skips=0
check() { # NAME COMMAND...
  local name=$1; shift
  if "$@" >"$W/log" 2>&1; then passes=$((passes + 1)); echo "ok   $name"
  else fails=$((fails + 1)); echo "FAIL $name: $(head -c 800 "$W/log")"; fi
}
skip() { skips=$((skips + 1)); echo "skip $1: $2"; }
KWS=$SRC/examples/cmake/kws.txt
D=$SRC/tests/examples/data
M=${KDCC_SHARED:-/nonexistent}/onnx-tests/models
CNN=$SRC/examples/fashion-mnist/cnn.onnx

# ---- info ----
check info_help bash -c "'$KDCC' info --help | grep -q -- '--batch'"
check info_no_model bash -c "'$KDCC' info; [ \$? -eq 2 ]"
check info_missing_file bash -c "'$KDCC' info '$W/nope.onnx' 2>&1 >/dev/null | grep -q 'cannot open'; [ \${PIPESTATUS[0]} -eq 1 ]"
"$KDCC" info "$KWS" >"$W/kws.info" 2>&1
check info_io bash -c "grep -q '^  features  float\[1,8\]' '$W/kws.info' && grep -q '^  probs  float\[1,4\]' '$W/kws.info'"
check info_header bash -c "grep -q '^ir_version   8' '$W/kws.info' && grep -q '^opsets       ai.onnx 13' '$W/kws.info' && grep -q '^producer     kdcc examples' '$W/kws.info'"
# 8*6 + 6 + 6*4 + 4 = 82 parameters, 328 bytes; MACs 8*6 + 6*4 = 72
check info_params bash -c "grep -q '^parameters   82 in 4 tensors, 328 bytes' '$W/kws.info'"
check info_ops bash -c "grep -Eq '^  Gemm +2  yes +72$' '$W/kws.info' && grep -Eq '^  Softmax +1  yes +-$' '$W/kws.info'"
check info_macs bash -c "grep -q '^  MACs       72 ' '$W/kws.info' && grep -q 'other operators count as 0' '$W/kws.info'"
check info_flash_matches_c bash -c "'$KDCC' '$KWS' -o '$W/kws.c' && grep -q '^  flash      328 bytes' '$W/kws.info' && [ \$(grep -c '^static const float' '$W/kws.c') -eq 4 ]"
check info_arena_matches_header bash -c "a=\$(sed -n 's/^#define KWS_WORKSPACE_BYTES //p' '$W/kws.h'); grep -q \"^  arena      \$a bytes\" '$W/kws.info'"
check info_deterministic bash -c "'$KDCC' info '$KWS' | cmp - '$W/kws.info'"
check info_unsupported bash -c "'$KDCC' info '$D/unsupported.txt' > '$W/u.info' && grep -Eq '^  NoSuchOp +1  no \(unsupported operator\)' '$W/u.info' && grep -Eq '^  com.example.Frobnicate +1  no' '$W/u.info' && grep -Eq '^  Relu +1  yes' '$W/u.info' && grep -q 'did not run: 2 operators are not supported' '$W/u.info'"
check info_external bash -c "'$KDCC' info '$D/ext.onnx' | grep -q 'ext.weights (60 bytes)'"
check info_batch_assumed bash -c "'$KDCC' info '$D/ext.onnx' | grep -q 'symbolic first dims taken as 1'"
check info_batch bash -c "'$KDCC' info '$D/ext.onnx' --batch 4 > '$W/e.info' && grep -Eq '^    x +float\[4,4\]' '$W/e.info' && grep -q '^  MACs       48 ' '$W/e.info' && ! grep -q 'taken as 1' '$W/e.info'"
check info_shape bash -c "'$KDCC' info '$D/ext.onnx' --shape x=3x4 | grep -Eq '^    y +float\[3,3\]'"
check info_bad_shape bash -c "'$KDCC' info '$D/ext.onnx' --shape x=3x5 | grep -q 'did not run: .*dim 1'"
# Einsum ij,jk->ik 2*4*3 + bij,bjk->bik 5*2*4*3 + ij->i 2*3; ConvTranspose 1*2*4*4 inputs x 3*3*3; MatMul 5*2*4*3
check info_macs_by_op bash -c "'$KDCC' info '$D/macs.txt' > '$W/m.info' && grep -Eq '^  Einsum +3  yes +150$' '$W/m.info' && grep -Eq '^  ConvTranspose +1  yes +864$' '$W/m.info' && grep -Eq '^  MatMul +1  yes +120$' '$W/m.info' && grep -q '^  MACs       1134 ' '$W/m.info' && grep -q '(1 weight array as' '$W/m.info'"
if [ -f "$M/mnist-8/model.onnx" ]; then
  # conv1 8x28x28x(1x5x5) + conv2 16x14x14x(8x5x5) + MatMul 256x10
  check info_mnist_macs bash -c "'$KDCC' info '$M/mnist-8/model.onnx' | grep -q '^  MACs       786560 '"
else skip info_mnist_macs "no $M/mnist-8"; fi
if [ -f "$CNN" ]; then
  check info_cnn bash -c "'$KDCC' info '$CNN' --batch 2 | grep -Eq '^  Conv +3  yes +4290048$'"
fi

# ---- dot ----
check dot_help bash -c "'$KDCC' dot --help | grep -q -- '--dump-after'"
check dot_kws bash -c "'$KDCC' dot '$KWS' > '$W/kws.dot' && head -1 '$W/kws.dot' | grep -q '^digraph \"kws\" {' && tail -1 '$W/kws.dot' | grep -q '^}'"
check dot_edges bash -c "grep -q 'v0 -> n0 \[label=\"float\[1,8\]\", tooltip=\"features\"\]' '$W/kws.dot' && grep -q 'n2 -> out0 \[label=\"float\[1,4\]\"' '$W/kws.dot' && [ \$(grep -c -- ' -> ' '$W/kws.dot') -eq 4 ]"
check dot_const_folded_in_label bash -c "grep -q 'n0 \[label=\"Gemm\\\\\\\\nx1 w1: float\[8,6\]\\\\\\\\lx2 b1: float\[6\] = ' '$W/kws.dot' || grep -q 'x1 w1: float\[8,6\]' '$W/kws.dot'"
check dot_small_const_values bash -c "grep -q 'x2 b2 = \[0.139, -0.709, -0.615, 0.856\]' '$W/kws.dot'"
check dot_deterministic bash -c "'$KDCC' dot '$KWS' | cmp - '$W/kws.dot'"
check dot_output_file bash -c "'$KDCC' dot '$KWS' -o '$W/kws2.dot' && cmp '$W/kws.dot' '$W/kws2.dot'"
check dot_balanced bash -c "[ \$(grep -o '{' '$W/kws.dot' | wc -l) -eq \$(grep -o '}' '$W/kws.dot' | wc -l) ] && ! grep -v '^ *\$' '$W/kws.dot' | sed 's/\\\\\\\\\"//g' | awk -F'\"' 'NF % 2 == 0' | grep -q ."
check dot_unsupported_falls_back bash -c "'$KDCC' dot '$D/unsupported.txt' 2>'$W/u.err' > '$W/u.dot' && grep -q 'as imported' '$W/u.err' && grep -q 'NoSuchOp (unsupported)' '$W/u.dot' && grep -q 'n0 -> n1 \[label=\"?\"' '$W/u.dot'"
check dot_dump_after_import bash -c "'$KDCC' dot '$D/unsupported.txt' --dump-after import 2>/dev/null | grep -q 'label=\"unsupported.txt after import\"'"
check dot_dump_after_infer bash -c "'$KDCC' dot '$D/ext.onnx' --batch 3 --dump-after infer | grep -q 'label=\"float\[3,3\]\"'"
check dot_unknown_pass bash -c "'$KDCC' dot '$KWS' --dump-after nosuch 2>&1 | grep -q \"no pass named 'nosuch'\""
check dot_no_model bash -c "'$KDCC' dot; [ \$? -eq 2 ]"
if command -v dot >/dev/null 2>&1; then
  for f in kws u; do check "graphviz_accepts_$f" bash -c "dot -Tsvg '$W/$f.dot' -o '$W/$f.svg' && grep -q '<svg' '$W/$f.svg'"; done
  if [ -f "$M/ultraface-rfb-320/model.onnx" ]; then
    check graphviz_big_model bash -c "'$KDCC' dot '$M/ultraface-rfb-320/model.onnx' | dot -Tsvg >/dev/null"
  fi
else skip graphviz "graphviz (dot) is not installed"; fi

# ---- --depfile ----
check depfile_text bash -c "'$KDCC' '$KWS' -o '$W/dep/kws.c' --depfile '$W/dep/kws.d' 2>/dev/null || { mkdir -p '$W/dep' && '$KDCC' '$KWS' -o '$W/dep/kws.c' --depfile '$W/dep/kws.d'; } && [ \"\$(cat '$W/dep/kws.d')\" = '$W/dep/kws.c $W/dep/kws.h: $KWS' ]"
mkdir -p "$W/with space"
cp "$D/ext.onnx" "$D/ext.weights" "$W/with space/"
check depfile_external_and_escapes bash -c "cd '$W' && '$KDCC' 'with space/ext.onnx' --batch 1 -o 'out\$1.c' --depfile ext.d && printf '%s\n' 'out\$\$1.c out\$\$1.h: with\\ space/ext.onnx \\' '  with\\ space/ext.weights' | cmp - ext.d"
check depfile_no_file_on_error bash -c "'$KDCC' '$D/unsupported.txt' -o '$W/bad.c' --depfile '$W/bad.d'; [ \$? -eq 1 ] && [ ! -e '$W/bad.d' ]"
# Make re-runs kdcc when the external weights change
mkdir -p "$W/mk"
cp "$D/ext.onnx" "$D/ext.weights" "$W/mk/"
printf 'all: ext.c\n%%.c %%.h: %%.onnx\n\t%s $< --batch 1 -o $*.c --depfile $*.d\n-include ext.d\n' "$KDCC" > "$W/mk/Makefile"
check depfile_make_rebuilds bash -c "cd '$W/mk' && make -s && touch -d @1000000000 ext.onnx ext.weights && touch -d @1000000100 ext.c ext.h ext.d && make -q && touch ext.weights && ! make -q && make -s && make -q"

# ---- the man page says what the help texts say ----
MAN=$SRC/docs/kdcc.1
helps() { "$KDCC" --help; for c in compile print info dot distill train eval soft-targets ops; do "$KDCC" $c --help; done; }
check help_commands bash -c "'$KDCC' --help | grep -q 'kdcc info MODEL' && '$KDCC' --help | grep -q 'kdcc dot MODEL'"
opts_help=$(helps 2>/dev/null | grep -oE -- '--[a-z][a-z-]+' | sort -u)
opts_man=$(sed -n '1,/^\.SH EXIT STATUS/p' "$MAN" | sed 's/\\-/-/g' | grep -oE -- '--[a-z][a-z-]+' | sort -u)
check man_has_every_help_option bash -c "for o in $(echo $opts_help); do echo \"$opts_man\" | grep -qx -- \"\$o\" || { echo \"man page lacks \$o\"; exit 1; }; done"
check help_has_every_man_option bash -c "for o in $(echo $opts_man); do echo \"$opts_help\" | grep -qx -- \"\$o\" || { echo \"no help text has \$o\"; exit 1; }; done"
check man_has_every_command bash -c "for c in print info dot compile; do grep -q \"^\\.BI* \\\"*kdcc \$c\" '$MAN' || grep -q \"^\\.B kdcc \$c\" '$MAN' || { echo \"man page lacks \$c\"; exit 1; }; done"
if command -v groff >/dev/null 2>&1; then
  check man_renders_cleanly bash -c "out=\$(groff -man -Tutf8 -ww -z '$MAN' 2>&1); [ -z \"\$out\" ] || { echo \"\$out\"; exit 1; }"
else skip man_renders_cleanly "groff is not installed"; fi

echo "$passes passed, $fails failed, $skips skipped"
[ $fails -eq 0 ]
