#!/usr/bin/env bash
# Static analysis of the C that kdcc emits: cppcheck and clang-tidy over a sample of
# models must report nothing.
#
# Sample: the bundled models (examples/fashion-mnist/*.onnx, examples/baremetal/kws.txt,
# bench/models/*.onnx) and tests/static/node_sample.txt, one backend node test per
# operator that the conformance suite passes (every operator of expected_passes.txt).
#
# Weights: the initializer lists of the weight arrays are cut to their first line
# (8 values) before the analysis; the declared sizes stay, so both tools still see every
# array with its real bounds. Otherwise cppcheck spends minutes per model in value flow
# over megabytes of float literals that hold no code.
#
# First the script checks that both tools, with these options, flag a file with an
# out-of-bounds write and a division by zero: a test that cannot fail proves nothing.
#
# Usage: static_analysis.sh KDCC WORKDIR   (environment: KDCC_SOURCE, KDCC_SHARED)
set -u
KDCC=$1
W=$2
SRC=${KDCC_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
SHARED=${KDCC_SHARED:-$SRC/../shared}
for tool in cppcheck clang-tidy; do
  command -v $tool >/dev/null || { echo "$tool is not installed (scripts/install-deps.sh): skipped"; exit 77; }
done
rm -rf "$W" && mkdir -p "$W/gen" "$W/trim" "$W/bad"

# cppcheck: the warning, portability and performance classes (errors are always on);
# not style (naming, scope of variables, const-ness: taste, not defects). Suppressed:
#   invalidPointerCast  the emitted run_ws converts `unsigned char *arena + offset` to
#                       `float *` etc. cppcheck reports every conversion between pointers
#                       to types of different representation (meant for float * <-> int *
#                       punning); this one goes from a character pointer into untyped
#                       caller memory or the typed arena union, which C99 6.3.2.3p7
#                       allows when aligned, and the plan aligns every offset to 16.
CPPCHECK=(cppcheck --enable=warning,portability,performance --std=c99 --inline-suppr -q
          --error-exitcode=1 --suppress=invalidPointerCast)
# clang-tidy: bug patterns, CERT C rules, the clang static analyzer, performance and
# portability, every finding an error. Left out:
#   bugprone-easily-swappable-parameters  node functions and NAME_run_ws take several
#                                         pointers of one type (x0, x1, y0; the model's
#                                         inputs) by design; the calls are generated too
TIDY_CHECKS='-*,bugprone-*,cert-*,clang-analyzer-*,performance-*,portability-*'
TIDY_CHECKS+=',-bugprone-easily-swappable-parameters'
tidy() { clang-tidy -quiet -header-filter='.*' -checks="$TIDY_CHECKS" -warnings-as-errors='*' "$@" -- -std=c99; }

fail=0
# 1. the tools can fail
cat >"$W/bad/bad.c" <<'EOF'
int kd_bad(int i);
int kd_bad(int i)
{
    int a[4] = {0, 0, 0, 0};
    int z = 0;
    a[4] = i;
    return a[0] / z;
}
EOF
if "${CPPCHECK[@]}" "$W/bad/bad.c" >"$W/bad/cppcheck.log" 2>&1; then
  echo "FAIL: cppcheck does not flag the injected out-of-bounds write"; fail=1
fi
if tidy "$W/bad/bad.c" >"$W/bad/tidy.log" 2>&1; then
  echo "FAIL: clang-tidy does not flag the injected division by zero"; fail=1
fi
grep -q 'arrayIndexOutOfBounds' "$W/bad/cppcheck.log" || { echo "FAIL: no arrayIndexOutOfBounds from cppcheck"; fail=1; }
grep -q 'clang-analyzer-core.DivideZero' "$W/bad/tidy.log" || { echo "FAIL: no core.DivideZero from clang-tidy"; fail=1; }
[ $fail -eq 0 ] && echo "ok   both tools flag the injected file"

# 2. emit the sample
n=0
compile() { # NAME MODEL [ARGS...]
  local name=$1 model=$2
  shift 2
  if ! "$KDCC" "$model" --no-validate -o "$W/gen/$name.c" "$@" 2>"$W/gen/$name.err"; then
    echo "FAIL: kdcc cannot compile $model: $(cat "$W/gen/$name.err")"; fail=1; return
  fi
  n=$((n + 1))
}
compile fm_cnn "$SRC/examples/fashion-mnist/cnn.onnx" --batch 1
compile fm_student_mlp "$SRC/examples/fashion-mnist/student_mlp.onnx" --batch 1
compile kws "$SRC/examples/baremetal/kws.txt"
for m in "$SRC"/bench/models/*.onnx; do
  compile "bench_$(basename "$m" .onnx)" "$m" --batch 1
done
if [ -d "$SHARED/onnx-tests/node" ]; then
  while read -r t consts; do
    case $t in ''|'#'*) continue ;; esac
    args=()
    for c in $consts; do args+=(--const "${c%%=*}=$SHARED/onnx-tests/$t/test_data_set_0/${c#*=}"); done
    compile "$(basename "$t")" "$SHARED/onnx-tests/$t/model.onnx" "${args[@]}"
  done <"$SRC/tests/static/node_sample.txt"
else
  echo "note: $SHARED/onnx-tests is missing: bundled models only"
fi

# 3. cut the weight initializers (see above), keep the headers as they are
for f in "$W"/gen/*.c; do
  awk 'skip && /^};/ {skip=0} skip {next} {print} /^static const .*\] KD_ALIGN = \{$/ {getline; print; skip=1}' \
    "$f" >"$W/trim/$(basename "$f")"
done
cp "$W"/gen/*.h "$W/trim/"

# 4. the analysis
if "${CPPCHECK[@]}" -j 2 "$W"/trim/*.c >"$W/cppcheck.log" 2>&1; then
  echo "ok   cppcheck: no findings in $n emitted files"
else
  echo "FAIL: cppcheck findings:"; head -n 40 "$W/cppcheck.log"; fail=1
fi
if tidy "$W"/trim/*.c >"$W/tidy.log" 2>&1; then
  echo "ok   clang-tidy: no findings in $n emitted files"
else
  echo "FAIL: clang-tidy findings:"; grep -E 'warning|error' "$W/tidy.log" | head -n 40; fail=1
fi
[ $fail -eq 0 ] && echo "static analysis: clean ($n files)"
exit $fail
