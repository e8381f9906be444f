#!/usr/bin/env bash
# Every class of bad input: exit code 1, one line on stderr naming the file (and the
# node and operator where there is one), and no output file left behind.
set -u
KDCC=$1
W=$2
rm -rf "$W" && mkdir -p "$W/out"
fails=0 passes=0

# expect_error NAME MODEL PATTERN... : kdcc MODEL must fail with one line matching every PATTERN
expect_error() {
  local name=$1 model=$2
  shift 2
  rm -rf "$W/out" && mkdir -p "$W/out"
  "$KDCC" "$model" -o "$W/out/m.c" >"$W/stdout" 2>"$W/stderr"
  local rc=$? ok=1 why=""
  [ $rc -eq 1 ] || { ok=0; why="exit code $rc"; }
  [ "$(wc -l <"$W/stderr")" -eq 1 ] || { ok=0; why="$why; stderr has $(wc -l <"$W/stderr") lines"; }
  for p in "$@"; do
    grep -q -- "$p" "$W/stderr" || { ok=0; why="$why; no '$p' in the message"; }
  done
  [ -z "$(ls -A "$W/out")" ] || { ok=0; why="$why; left files: $(ls -A "$W/out" | tr '\n' ' ')"; }
  if [ $ok -eq 1 ]; then
    passes=$((passes + 1)); echo "ok   $name: $(cat "$W/stderr")"
  else
    fails=$((fails + 1)); echo "FAIL $name: $why; stderr: $(cat "$W/stderr")"
  fi
}

text_model() { # NAME BODY: a model in the textual syntax
  printf '<ir_version: 8, opset_import: ["" : 17]>\n%s\n' "$2" >"$W/$1.txt"
  echo "$W/$1.txt"
}

REAL="$KDCC_SHARED/onnx-tests/models/mnist-8/model.onnx"

expect_error missing_file "$W/no-such-model.onnx" "no-such-model.onnx"
head -c 9000 "$REAL" >"$W/truncated.onnx"
expect_error truncated "$W/truncated.onnx" "truncated.onnx" "not a valid ONNX model"
printf '\x89PNG\r\n\x1a\n\0\0\0\rIHDR' >"$W/image.onnx"
expect_error not_onnx_png "$W/image.onnx" "image.onnx" "not a valid ONNX model"
head -c 4096 /dev/urandom >"$W/random.onnx"
expect_error random_bytes "$W/random.onnx" "random.onnx"
: >"$W/empty.onnx"
expect_error empty_file "$W/empty.onnx" "empty.onnx"
expect_error unknown_operator "$(text_model unknown_op 'g (float[2] x) => (float[2] y) { y = FrobnicateTensor(x) }')" \
  "unknown_op.txt" "FrobnicateTensor" "unsupported operator"
expect_error unsupported_dtype "$(text_model bad_dtype 'g (complex64[2] x) => (complex64[2] y) { y = Relu(x) }')" \
  "bad_dtype.txt" "complex64"
expect_error unsupported_attribute "$(text_model bad_attr 'g (float[1,1,4,4] x, float[1,1,3,3] w) => (float[1,1,4,4] y) { y = Conv <auto_pad: string = "SIDEWAYS"> (x, w) }')" \
  "bad_attr.txt" "Conv" "SIDEWAYS"
expect_error shape_mismatch "$(text_model shapes 'g (float[2,3] a, float[4] b) => (float[2,3] y) { y = Add(a, b) }')" \
  "shapes.txt" "Add" "broadcast"
expect_error matmul_mismatch "$(text_model mm 'g (float[2,3] a, float[4,5] b) => (float[2,5] y) { y = MatMul(a, b) }')" \
  "mm.txt" "MatMul"
expect_error dim_overflow "$(text_model overflow 'g (float[4611686018427387904,4611686018427387904] x) => (float[4611686018427387904,4611686018427387904] y) { y = Relu(x) }')" \
  "overflow.txt"
expect_error cycle "$(text_model cycle 'g (float[2] x) => (float[2] y) { a = Add(x, b) b = Relu(a) y = Relu(b) }')" \
  "cycle.txt" "cycle"
expect_error undefined_value "$(text_model undef 'g (float[2] x) => (float[2] y) { y = Add(x, nowhere) }')" \
  "undef.txt" "nowhere"
expect_error reshape_count "$(text_model reshape 'g (float[2,3] x) => (float[4] y) <int64[1] s = {4}> { y = Reshape(x, s) }')" \
  "reshape.txt" "Reshape"
expect_error symbolic_dim "$(text_model sym 'g (float[N,3] x) => (float[N,3] y) { y = Relu(x) }')" \
  "sym.txt" "--shape"
expect_error unsupported_operator "$KDCC_SHARED/onnx-tests/node/test_nonmaxsuppression_center_point_box_format/model.onnx" \
  "model.onnx" "NonMaxSuppression_0" "unsupported operator 'NonMaxSuppression'"
# names the textual syntax cannot write, and a domain imported twice (fuzz findings)
REG="${KDCC_SOURCE:-$(dirname "$0")/../..}/fuzz/regressions/onnx"
expect_error optype_not_identifier "$REG/print-optype-not-identifier.onnx" "print-optype-not-identifier.onnx" \
  "operator type 'Aver.gePool' is not an identifier"
expect_error domain_not_identifier "$REG/node-domain-not-identifier.onnx" "node-domain-not-identifier.onnx" \
  "domain 'my-ops' is not a dotted identifier"
expect_error attribute_not_identifier "$REG/attribute-name-not-identifier.onnx" "attribute-name-not-identifier.onnx" \
  "LeakyRelu" "attribute name 'al pha' is not an identifier"
expect_error opset_domain_twice "$REG/opset-import-domain-twice.onnx" "opset-import-domain-twice.onnx" \
  "names the default domain" "twice"
# output directory that does not exist: nothing half-written anywhere
"$KDCC" "$REAL" -o "$W/missing-dir/m.c" 2>"$W/stderr"
rc=$?
if [ $rc -eq 1 ] && [ ! -e "$W/missing-dir" ] && grep -q "missing-dir/m.c" "$W/stderr"; then
  passes=$((passes + 1)); echo "ok   unwritable_output: $(cat "$W/stderr")"
else
  fails=$((fails + 1)); echo "FAIL unwritable_output: rc=$rc $(cat "$W/stderr")"
fi
# a model over --max-model-bytes is refused before it is decoded
rm -rf "$W/out" && mkdir -p "$W/out"
"$KDCC" "$REAL" --max-model-bytes 4k -o "$W/out/m.c" >"$W/stdout" 2>"$W/stderr"
rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l <"$W/stderr")" -eq 1 ] && grep -q "larger than the limit of 4096 bytes" "$W/stderr" &&
   [ -z "$(ls -A "$W/out")" ]; then
  passes=$((passes + 1)); echo "ok   max_model_bytes: $(cat "$W/stderr")"
else
  fails=$((fails + 1)); echo "FAIL max_model_bytes: rc=$rc $(cat "$W/stderr")"
fi
echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
