#!/usr/bin/env bash
# Build (if needed) and run one libFuzzer target, merging new finds into the corpus.
#
#   bash fuzz/run.sh TARGET SECONDS [extra libFuzzer flags...]    TARGET: onnx, text, tensor, data
#   bash fuzz/run.sh TARGET merge DIR...   only merge DIR's inputs into fuzz/corpus/TARGET
#
# Needs clang with libFuzzer (Debian: clang-14, libclang-rt-14-dev). The build dir is
# build-fuzzer beside this folder (KDCC_FUZZ_BUILD overrides). Runs one job on one
# core (the machine is shared); new inputs go to a scratch corpus first, then only
# those that add coverage are merged into fuzz/corpus/TARGET. Crashes, timeouts and
# out-of-memory inputs are written to fuzz/findings/TARGET/ (not committed): minimise
# one with
#   build-fuzzer/fuzz/fuzz-TARGET -minimize_crash=1 -runs=20000 -exact_artifact_path=OUT CRASH
# and add it under fuzz/regressions/TARGET/ so tests/fuzz replays it in every ctest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
target=${1:-}
secs=${2:-}
case "$target" in onnx|text|tensor|data) ;; *) echo "usage: fuzz/run.sh onnx|text|tensor|data SECONDS|merge [args...]" >&2; exit 2 ;; esac
[ -n "$secs" ] || { echo "usage: fuzz/run.sh $target SECONDS|merge [args...]" >&2; exit 2; }
shift 2

build=${KDCC_FUZZ_BUILD:-$root/build-fuzzer}
cc=${CC:-}
if [ -z "$cc" ]; then
  for c in clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14; do
    if command -v $c >/dev/null; then cc=$c; break; fi
  done
fi
[ -n "$cc" ] || { echo "fuzz/run.sh: clang not found" >&2; exit 1; }
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=$cc cmake -S "$root" -B "$build" -DKDCC_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
make -C "$build" -j2 "fuzz-$target" 2>&1 | grep -E 'error|warning' || true
bin=$build/fuzz/fuzz-$target
[ -x "$bin" ] || { echo "fuzz/run.sh: $bin was not built" >&2; exit 1; }

corpus=$here/corpus/$target
findings=$here/findings/$target
scratch=${TMPDIR:-/tmp}/kdcc-fuzz-$target.$$
mkdir -p "$corpus" "$findings" "$scratch"
trap 'rm -rf "$scratch"' EXIT
dict=()
[ "$target" = text ] && dict=(-dict="$here/text.dict")
# ASan: report, do not hang on huge allocations; UBSan: stop at the first finding.
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [ "$secs" = merge ]; then
  "$bin" -merge=1 "${dict[@]}" -max_len=65536 -timeout=30 -rss_limit_mb=4096 "$corpus" "$@"
  exit 0
fi

# The fuzzing run: one worker process (-fork=1) that the parent restarts after a crash,
# timeout or OOM, so one shallow bug does not end the session; every finding is saved.
# New inputs land in the scratch corpus; the committed corpus is the seed.
set +e
"$bin" "${dict[@]}" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
  -max_total_time="$secs" -max_len=65536 -timeout=30 -rss_limit_mb=4096 -malloc_limit_mb=2048 \
  -artifact_prefix="$findings/" "$@" "$scratch" "$corpus" 2>&1 | tee "$findings/last-run.log" |
  grep -E '^#[0-9]+: cov|INFO: fuzzed|ERROR|SUMMARY|Test unit written|kdcc-fuzz|runtime error|crash|timeout|oom'
rc=${PIPESTATUS[0]}
set -e
# keep only the new inputs that add coverage
"$bin" -merge=1 "${dict[@]}" -max_len=65536 -timeout=30 -rss_limit_mb=4096 "$corpus" "$scratch" 2>&1 | grep -E 'MERGE-OUTER: [0-9]+ new files' || true
echo "fuzz/run.sh $target: exit $rc; corpus $(ls "$corpus" | wc -l) files, $(du -sh "$corpus" | cut -f1); findings in $findings"
exit $rc
