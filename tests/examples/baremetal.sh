#!/usr/bin/env bash
# examples/baremetal: the hosted variant runs and matches numpy; main.c and the
# emitted C compile with -ffreestanding under gcc and clang; the emitted object needs
# only string.h and math.h functions; on x86-64 Linux a -nostdlib -static link runs.
set -u
KDCC=$1
W=$2
SRC=$KDCC_SOURCE
E=$SRC/examples/baremetal
rm -rf "$W" && mkdir -p "$W"
fails=0 passes=0 skips=0
check() { # NAME COMMAND...
  local name=$1; shift
  if "$@" >"$W/log" 2>&1; then passes=$((passes + 1)); echo "ok   $name"
  else fails=$((fails + 1)); echo "FAIL $name: $(tail -c 1500 "$W/log")"; fi
}
skip() { skips=$((skips + 1)); echo "skip $1: $2"; }
STRICT="-std=c99 -Wall -Wextra -Wpedantic -Werror"
check kdcc bash -c "'$KDCC' '$E/kws.txt' -o '$W/kws.c'"
check hosted bash -c "cc -std=c99 -O2 -I'$W' '$E/main.c' '$W/kws.c' -lm -o '$W/hosted' && '$W/hosted'"
for cc in gcc clang; do
  if ! command -v $cc >/dev/null 2>&1; then skip "freestanding_$cc" "$cc is not installed"; continue; fi
  check "freestanding_$cc" bash -c "$cc $STRICT -O2 -ffreestanding -I'$W' -c '$E/main.c' -o '$W/main_$cc.o' && $cc $STRICT -O2 -ffreestanding -c '$W/kws.c' -o '$W/kws_$cc.o' && $cc $STRICT -O0 -ffreestanding -c '$E/support.c' -o '$W/support_$cc.o'"
  # main.o needs only the model; kws.o only functions of string.h and math.h
  check "undefined_symbols_$cc" bash -c "[ \"\$(nm -u '$W/main_$cc.o' | awk '{print \$2}')\" = kws_run ] && nm -u '$W/kws_$cc.o' | awk '{print \$2}' | grep -vxE 'mem(cpy|set|move)|(exp|log|sqrt|tanh|pow|floor|ceil|round|fabs|fmod|sin|cos|erf|fmin|fmax|nearbyint|rint|trunc|atan|asin|acos|sinh|cosh|asinh|acosh|atanh|log1p|expm1)f?' | { ! grep .; }"
done
if [ "$(uname -m)" = x86_64 ] && [ "$(uname -s)" = Linux ]; then
  check nostdlib_static_run bash -c "gcc -std=c99 -O2 -ffreestanding -c '$E/start_x86_64_linux.c' -o '$W/start.o' && gcc -nostdlib -static '$W/main_gcc.o' '$W/kws_gcc.o' '$W/support_gcc.o' '$W/start.o' -o '$W/bare' && '$W/bare' && [ -z \"\$(nm -u '$W/bare')\" ]"
else skip nostdlib_static_run "not x86-64 Linux"; fi
echo "$passes passed, $fails failed, $skips skipped"
[ $fails -eq 0 ]
