#!/usr/bin/env bash
# kdcc MODEL --report and kdcc train --report against figures worked out by hand,
# and the lower bound recomputed here (awk) from the report's own rows on real models.
set -u
KDCC=$1
W=$2
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=${KDCC_SOURCE:-$HERE/../..}
M=${KDCC_SHARED:-/nonexistent}/onnx-tests/models
rm -rf "$W" && mkdir -p "$W"
fails=0 passes=0 skips=0
check() { # NAME COMMAND...
  local name=$1; shift
  if "$@" >"$W/log" 2>&1; then passes=$((passes + 1)); echo "ok   $name"
  else fails=$((fails + 1)); echo "FAIL $name: $(head -c 800 "$W/log")"; fi
}
skip() { skips=$((skips + 1)); echo "skip $1: $2"; }

# the value of a totals line: "  arena          768 bytes (...)" -> 768
total() { sed -n "s|^  $2  *~\\{0,1\\}\\([0-9.]*\\).*|\\1|p" "$1" | head -1; }
# REPORT KEY VALUE: the totals line KEY says VALUE
expect() { local got; got=$(total "$1" "$2"); [ "$got" = "$3" ] || { echo "$2: got '$got', want '$3'"; return 1; }; }
# a node row with its spacing squeezed
row() { grep -E "^ *$2  " "$1" | head -1 | tr -s ' ' | sed 's/^ //; s/ $//'; }
expect_row() { local got; got=$(row "$1" "$2"); [ "$got" = "$3" ] || { echo "row $2: got '$got', want '$3'"; return 1; }; }

# The lower bound recomputed from the rows: for every node i, the sum of the bytes
# of the rows whose live range a..b holds i; the largest such sum. Columns are
# found from the header (bytes is right-aligned, live left-aligned).
awk_bound() {
  awk '
    NR == 1 { be = index($0, "bytes") + 4; ls = index($0, "live"); next }
    /^$/ { exit }
    {
      b = substr($0, 1, be); sub(/.* /, "", b)
      l = substr($0, ls); gsub(/ /, "", l)
      if (l == "") next
      split(l, r, /\.\./)
      for (i = r[1]; i <= r[2]; i++) live[i] += b
      if (r[2] > n) n = r[2]
    }
    END { m = 0; for (i = 0; i <= n; i++) if (live[i] > m) m = live[i]; print m }' "$1"
}

export -f total expect row expect_row awk_bound

B=$HERE/branch.txt
# ---- a model worked out by hand ----
# c = Conv(x[1,2,4,4], w[4,2,3,3], pads 1): [1,4,4,4] = 256 bytes, MACs 64 x 2*3*3 = 1152
# (no scratch: the Conv's 1152-byte im2col panel is more than its own tensors' bytes)
# r = Relu(c), s = Sigmoid(c), m = Mul(r, s): the fusion pass makes Relu and Mul one
# node m = kdcc.Fused(c, s) (r has one consumer; s is computed before it): 256 bytes each
# f = Reshape(m) is a view of m; y = Gemm(f[1,64], w2[64,2], b2): the output, MACs 2 x 64 = 128
# nodes: c s m f y; c dies at the Fused node, which reads c[i] before writing m[i]: m is
# written in place of c (no bytes of its own), so c's storage lives 0..4 (through m and
# its view f, read at 4), s 1..2
# live bytes per node: 256, 512 (c s), 512, 256, 256 -> bound 512 at node 1
# planner (largest first, then by id): c@0, s@256 -> arena 512 (768 without in place)
# no reuse: c s m = 768 (the view costs nothing); weights w 288 + w2 512 + b2 8 = 808
mkdir -p "$W/empty"
check report_only_writes_nothing bash -c "cd '$W/empty' && '$KDCC' '$B' --report > ../b.rep && [ -z \"\$(ls -A .)\" ]"
R=$W/b.rep
check row_conv expect_row "$R" 0 "0 #0 Conv c float[1,4,4,4] 1152 256 0 0..4"
check row_sigmoid expect_row "$R" 1 "1 #1 Sigmoid s float[1,4,4,4] - 256 256 1..2"
check row_fused expect_row "$R" 2 "2 #2 kdcc.Fused m float[1,4,4,4] - 256 in place of c"
check row_view expect_row "$R" 3 "3 #3 Reshape f float[1,64] - 256 view of m"
check row_output expect_row "$R" 4 "4 #4 Gemm y float[1,2] 128 8 output"
check macs expect "$R" "MACs          " 1280
check weights expect "$R" "weights       " 808
check arena expect "$R" "arena         " 512
check lower_bound expect "$R" "lower bound   " 512
check ratio expect "$R" "arena / bound " 1.000
check no_reuse_views_free expect "$R" "no reuse      " 768
check in_place expect "$R" "in place      " 256
check peak bash -c "grep -qx 'peak at node 1 (#1): c 256 + s 256 = 512 bytes' '$R'"
check inputs_outputs bash -c "grep -q '^  inputs         128 bytes, outputs 8 bytes' '$R'"
check awk_bound_branch bash -c "[ \$(awk_bound '$R') = 512 ]"
# the checks can fail: a wrong figure, a wrong row
check expect_rejects_wrong_bound bash -c "! expect '$R' 'lower bound   ' 511"
check expect_rejects_wrong_row bash -c "! expect_row '$R' 2 '2 #2 kdcc.Fused m float[1,4,4,4] - 256 0 2..4'"

# with -o: the same files as without --report, the header's workspace = the report's arena
mkdir -p "$W/o1" "$W/o2"
check report_with_output bash -c "'$KDCC' '$B' -o '$W/o1/b.c' --report > '$W/o1.rep' && [ -f '$W/o1/b.c' ] && [ -f '$W/o1/b.h' ]"
check same_c_without_report bash -c "'$KDCC' '$B' -o '$W/o2/b.c' && cmp '$W/o1/b.c' '$W/o2/b.c' && cmp '$W/o1/b.h' '$W/o2/b.h'"
check same_report_with_output bash -c "cmp '$W/o1.rep' '$R'"
check header_workspace bash -c "grep -q '^#define B_WORKSPACE_BYTES 512\$' '$W/o1/b.h'"
check depfile_needs_output bash -c "'$KDCC' '$B' --report --depfile '$W/x.d' 2>&1 | grep -q 'needs -o'; [ \${PIPESTATUS[0]} -eq 1 ] && [ ! -e '$W/x.d' ]"

# kws: Gemm and Relu fuse into one node writing act; act 24 + logits 16 live at the second
# Gemm = 40; the planner rounds to 16: act@0 (32), logits@32 -> 48
KWS=$SRC/examples/cmake/kws.txt
"$KDCC" "$KWS" --report > "$W/kws.rep" 2>&1
check kws_bound expect "$W/kws.rep" "lower bound   " 40
check kws_arena expect "$W/kws.rep" "arena         " 48
check kws_ratio expect "$W/kws.rep" "arena / bound " 1.200
check kws_macs expect "$W/kws.rep" "MACs          " 72

# the MACs of the benchmark's PyTorch models against bench/models/macs.tsv (bench/macs.py,
# from ONNX shape inference): counted on the compiled graph, whose layers keep weights in
# the orders passes/layout.c stores (MobileNet's pointwise [C][Mp] with M > C, LeNet-5's
# 5x5 layer [C][K0][K1][Mp]), on both targets
while IFS=$'\t' read -r name macs; do
  [ "$name" = model ] && continue
  for t in generic x86-64-v4; do
    "$KDCC" "$SRC/bench/models/$name.onnx" --batch 1 --target $t --report -o "$W/$name-$t.c" > "$W/$name-$t.rep" 2>&1
    check "macs_${name}_$t" expect "$W/$name-$t.rep" "MACs          " "$macs"
  done
done < "$SRC/bench/models/macs.tsv"

# real models: bound <= arena, the arena is the header's, the bound is what awk finds
for m in mnist-8 mnist-14x14-atmega super-resolution-10 ultraface-rfb-320; do
  f=$M/$m/model.onnx
  if [ ! -f "$f" ]; then skip "model_$m" "no $f"; continue; fi
  mkdir -p "$W/$m"
  if ! "$KDCC" "$f" --batch 1 -o "$W/$m/m.c" --name m --no-validate --report > "$W/$m.rep" 2> "$W/$m.err"; then
    skip "model_$m" "$(head -1 "$W/$m.err")"; continue
  fi
  check "bound_le_arena_$m" bash -c "[ \$(total '$W/$m.rep' 'lower bound   ') -le \$(total '$W/$m.rep' 'arena         ') ]"
  check "arena_is_header_$m" bash -c "[ \$(total '$W/$m.rep' 'arena         ') = \$(sed -n 's/^#define M_WORKSPACE_BYTES //p' '$W/$m/m.h') ]"
  check "awk_bound_$m" bash -c "[ \$(awk_bound '$W/$m.rep') = \$(total '$W/$m.rep' 'lower bound   ') ]"
done

# ---- a training step worked out by hand (kdcc train --report, no epochs) ----
# h = Gemm(x[2,4], w1[4,5], b1) [2,5]; a = Relu(h); z = Gemm(a, w2[5,3], b2) [2,3]
# weights w1 80 + b1 20 + w2 60 + b2 12 = 172 bytes; their gradients the same 172;
# Adam: m and v per weight = 344; SGD without momentum: none.
# kept for backward: a (w2's gradient, and Relu's, which reads Relu's output) = 40;
# h is never stored (Relu fused into the first Gemm, passes/fuse.c);
# other intermediates: d logits [2,3] 24, d h [2,5] 40 = 64 (d a is never stored:
# the Gemm computing it applies Relu's derivative at its store, passes/fuse.c)
T=$HERE/mlp.txt
printf '0.1,0.2,0.3,0.4\n0.5,0.1,0.0,0.2\n0.9,0.8,0.1,0.3\n0.2,0.2,0.7,0.1\n' > "$W/x.csv"
printf '0\n1\n2\n1\n' > "$W/y.csv"
tr_class() { sed -n "s/^  $2  *\([0-9]*\) bytes *\([0-9]*\) .*/\1 \2/p" "$1" | head -1; }
expect_class() { local got; got=$(tr_class "$1" "$2"); [ "$got" = "$3" ] || { echo "$2: got '$got', want '$3'"; return 1; }; }
export -f tr_class expect_class
check train_report bash -c "'$KDCC' train --model '$T' --data '$W/x.csv' --labels '$W/y.csv' --batch 2 --epochs 0 --quiet --report -o '$W/t.c' > '$W/t.rep'"
check train_weights expect_class "$W/t.rep" "weights     " "172 4"
check train_gradients expect_class "$W/t.rep" "gradients   " "172 4"
check train_optimizer expect_class "$W/t.rep" "optimizer state" "344 8"
check train_activations expect_class "$W/t.rep" "activations " "40 1"
check train_other expect_class "$W/t.rep" "other intermediates" "64 2"
check train_bound_le_arena bash -c "b=\$(sed -n 's/^  lower bound  *\([0-9]*\).*/\1/p' '$W/t.rep'); a=\$(sed -n 's/^  arena  *\([0-9]*\).*/\1/p' '$W/t.rep'); [ \$b -le \$a ] && [ \$b -ge 80 ]"
check train_sgd_no_moments bash -c "'$KDCC' train --model '$T' --data '$W/x.csv' --labels '$W/y.csv' --batch 2 --epochs 0 --quiet --report --optimizer sgd -o '$W/t2.c' > '$W/t2.rep' && expect_class '$W/t2.rep' 'optimizer state' '0 0' && expect_class '$W/t2.rep' 'gradients   ' '172 4'"
check train_expect_can_fail bash -c "! expect_class '$W/t.rep' 'activations ' '120 3'"

echo "$passes passed, $fails failed, $skips skipped"
[ $fails -eq 0 ]
