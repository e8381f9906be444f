#!/usr/bin/env bash
# kdcc itself under AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer included):
# a separate build dir with -DKDCC_SANITIZE=ON, then
#   1. the unit tests               (ctest -L unit)
#   2. the fuzz corpora/regressions (ctest -L fuzz-replay)
#   3. a sample of the conformance suite with --sanitize, so the emitted C and the
#      runner's harness also run under ASan/UBSan.
# About 10 minutes on 2 cores. Arguments: extra --filter SUBSTR for step 3 (replacing
# the default sample). Environment: CC (gcc or clang; default cc), JOBS (default 2),
# KDCC_SANITIZE_BUILD (default build-sanitize).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${KDCC_SANITIZE_BUILD:-build-sanitize}
jobs=${JOBS:-2}
cc=${CC:-cc}

# -O1 keeps the sanitized tests fast enough; frame pointers for readable stacks.
CC=$cc cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DKDCC_SANITIZE=ON \
  -DCMAKE_C_FLAGS_DEBUG="-g -O1 -fno-omit-frame-pointer" >/dev/null
cmake --build "$build" -j"$jobs" 2>&1 | grep -E 'error|warning|Error' || true
[ -x "$build/kdcc" ] || { echo "test-sanitize: the build failed" >&2; exit 1; }

# Every finding is fatal; leaks are findings (detect_leaks is on by default on Linux x86-64).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# libclang (the output validator) keeps process-lifetime allocations that LSan would
# report as leaks at exit; they are not kdcc's.
supp=$(mktemp)
trap 'rm -f "$supp"' EXIT
printf 'leak:libclang\nleak:libLLVM\n' >"$supp"
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$supp:print_suppressions=0}

fail=0
step() { echo; echo "== test-sanitize: $*"; }

# The slowest unit tests (the whole CLI compiling and running models with cc; exporting
# every model and re-checking it) take longer than the rest together under ASan on 2
# shared cores, so they are left out by default; KDCC_SANITIZE_EXCLUDE= runs them too.
exclude=${KDCC_SANITIZE_EXCLUDE-^(cli|onnx_export_roundtrip|onnx_export_checker)\$}
step "unit tests (ctest -L unit${exclude:+ -E '$exclude'})"
(cd "$build" && ctest -L unit ${exclude:+-E "$exclude"} --output-on-failure -j"$jobs") || fail=1

step "fuzz corpora and regressions (ctest -L fuzz-replay)"
(cd "$build" && ctest -L fuzz-replay --output-on-failure -j"$jobs") || fail=1

step "conformance sample, emitted C built with -fsanitize=address,undefined"
filters=()
if [ $# -gt 0 ]; then
  for f in "$@"; do filters+=(--filter "$f"); done
else
  for f in test_conv test_add test_matmul test_gather test_reshape test_slice test_resize_downsample \
           test_maxpool test_softmax test_layer_normalization test_cast test_where test_einsum \
           models/mnist-8; do
    filters+=(--filter "$f")
  done
fi
# --expect: a test on the expected-pass list that fails under the sanitizers is a regression
"$build/tests/conformance/kdcc-conformance" -j "$jobs" --sanitize --expect tests/conformance/expected_passes.txt \
  "${filters[@]}" >"$build/sanitize-conformance.log" 2>&1 || fail=1
grep -E '^(FAIL|REGRESSION)' "$build/sanitize-conformance.log" | head -n 20 || true
tail -n 3 "$build/sanitize-conformance.log"
# a sanitizer report from an emitted program or the harness, even in a test not expected to pass
if grep -qE 'Sanitizer|runtime error|kdcc crashed' "$build/sanitize-conformance.log"; then
  echo "test-sanitize: sanitizer reports in $build/sanitize-conformance.log"
  fail=1
fi

echo
if [ $fail -eq 0 ]; then echo "test-sanitize: all clean"; else echo "test-sanitize: FAILED"; fi
exit $fail
