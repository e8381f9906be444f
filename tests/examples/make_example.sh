#!/usr/bin/env bash
# examples/make: the pattern rule and --depfile, with plain Make, on a copy of the example.
set -u
KDCC=$1
W=$2
SRC=$KDCC_SOURCE
rm -rf "$W" && mkdir -p "$W"
fails=0 passes=0
check() { # NAME COMMAND...
  local name=$1; shift
  if "$@" >"$W/log" 2>&1; then passes=$((passes + 1)); echo "ok   $name"
  else fails=$((fails + 1)); echo "FAIL $name: $(tail -c 1500 "$W/log")"; fi
}
cp -r "$SRC/examples/make" "$W/src"
E=$W/src
check build bash -c "make -C '$E' KDCC='$KDCC' && test -f '$E/build/kws.c' && test -f '$E/build/kws.h'"
check run bash -c "make -s -C '$E' KDCC='$KDCC' run | grep -q '^ok: class 0'"
check depfile bash -c "[ \"\$(cat '$E/build/kws.d')\" = 'build/kws.c build/kws.h: kws.txt' ]"
check up_to_date bash -c "make -q -C '$E' KDCC='$KDCC'"
check rebuild_when_model_changes bash -c "touch '$E/kws.txt' && ! make -q -C '$E' KDCC='$KDCC' && make -C '$E' KDCC='$KDCC' > '$W/m3' && grep -q 'kdcc kws.txt -o build/kws.c --depfile build/kws.d' '$W/m3' && make -q -C '$E' KDCC='$KDCC'"
check out_of_tree_build_dir bash -c "make -C '$E' KDCC='$KDCC' BUILD='$W/b2' && '$W/b2/classify' | grep -q '^ok'"
# a binary .onnx model with external weights goes through the other pattern rule
check onnx_model_with_external_data bash -c "cp '$SRC/tests/examples/data/ext.onnx' '$SRC/tests/examples/data/ext.weights' '$E/' && make -C '$E' KDCC='$KDCC' MODELS='kws.txt ext.onnx' && make -q -C '$E' KDCC='$KDCC' MODELS='kws.txt ext.onnx' && grep -q 'ext.weights' '$E/build/ext.d' && touch '$E/ext.weights' && ! make -q -C '$E' KDCC='$KDCC' MODELS='kws.txt ext.onnx'"
echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
