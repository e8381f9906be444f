#!/usr/bin/env bash
# kdcc itself under AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer included):
# a separate build dir with -DKDCC_SANITIZE=ON (every kdcc library and test program
# instrumented, -fno-sanitize-recover), then the whole ctest suite in it, except what
# `exclude` below leaves out (with the reason). That suite includes
# conformance_sanitize_sample, where the emitted C of every 16th conformance test is
# also built and run with -fsanitize=address,undefined.
# Any sanitizer report in any test's output fails the script, even from a test that
# expected its program to fail.
# Arguments: --filter SUBSTR... runs those conformance tests with --sanitize as well.
# Environment: CC (gcc or clang; default cc), JOBS (default 2), KDCC_SANITIZE_BUILD
# (default build-sanitize), KDCC_SANITIZE_EXCLUDE (a ctest -E regex; empty runs all).
# About 10 minutes on 2 shared cores after the build (docs/RELIABILITY.md has the measured time).
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

# Every finding is fatal, with its own exit code (86), so that a test expecting kdcc to
# exit 1 on bad input cannot mistake a sanitizer report for a clean refusal; leaks are
# findings (detect_leaks is on by default on Linux x86-64).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1:exitcode=86}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=86}
# libclang (the output validator) keeps process-lifetime allocations that LSan would
# report as leaks at exit; they are not kdcc's.
supp=$(mktemp)
trap 'rm -f "$supp"' EXIT
printf 'leak:libclang\nleak:libLLVM\n' >"$supp"
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$supp:print_suppressions=0:exitcode=86}

fail=0
step() { echo; echo "== test-sanitize: $*"; }

# Left out under the sanitizers:
#   conformance  the whole backend suite (about 1950 tests, 1330 of them compiled and run) runs
#                kdcc's pipeline in-process for each; under ASan on 2 cores that alone
#                would take longer than the rest together. conformance_sanitize_sample
#                (in this run) covers every 16th test with kdcc and the emitted code both
#                instrumented; the whole suite with --sanitize is run by hand (see
#                docs/RELIABILITY.md for the last result).
#   static_analysis  its time goes to cppcheck and clang-tidy, which are not instrumented
#                (3 of the 12 minutes); scripts/test.sh runs it.
#   embedded_cortexm  its time goes to arm-none-eabi-gcc and qemu (another 3 minutes);
#                kdcc compiles the same kind of models in the other tests.
exclude=${KDCC_SANITIZE_EXCLUDE-^(conformance|static_analysis|embedded_cortexm)\$}
step "the ctest suite${exclude:+ except -E '$exclude'}"
log="$build/sanitize-ctest.log"
(cd "$build" && ctest ${exclude:+-E "$exclude"} --output-on-failure -j"$jobs" --output-log "$PWD/sanitize-ctest.log") ||
  fail=1
# a report in a test that still passed (a script that ignores an exit code, a child process)
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
  echo "test-sanitize: sanitizer reports in $log:"
  grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log" | head -n 20
  fail=1
fi

if [ $# -gt 0 ]; then
  step "conformance tests $*, emitted C built with -fsanitize=address,undefined"
  filters=()
  for f in "$@"; do
    [ "$f" = --filter ] || filters+=(--filter "$f")
  done
  # --expect: a test on the expected-pass list that fails under the sanitizers is a regression
  "$build/tests/conformance/kdcc-conformance" -j "$jobs" --sanitize --work "$build/sanitize-conformance-work" \
    --expect tests/conformance/expected_passes.txt "${filters[@]}" >"$build/sanitize-conformance.log" 2>&1 || fail=1
  grep -E '^(FAIL|REGRESSION|SANITIZER)' "$build/sanitize-conformance.log" | head -n 20 || true
  tail -n 3 "$build/sanitize-conformance.log"
fi

echo
if [ $fail -eq 0 ]; then echo "test-sanitize: all clean"; else echo "test-sanitize: FAILED"; fi
exit $fail
