#!/usr/bin/env bash
# The docs cannot drift from the code: docs/OPERATORS.md is what operators.sh makes
# from the operator table now; every command has --help; the user guide and the
# man page name every command and every option the help texts print.
set -u
KDCC=$1
W=$2
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
rm -rf "$W" && mkdir -p "$W"
fails=0 passes=0 skips=0
check() { # NAME COMMAND...
  local name=$1; shift
  if "$@" >"$W/log" 2>&1; then passes=$((passes + 1)); echo "ok   $name"
  else fails=$((fails + 1)); echo "FAIL $name: $(head -c 1500 "$W/log")"; fi
}
skip() { skips=$((skips + 1)); echo "skip $1: $2"; }

# ---- docs/OPERATORS.md from the operator table ----
bash "$HERE/operators.sh" "$KDCC" ${KDCC_SHARED:+"$KDCC_SHARED/onnx-tests/MANIFEST.tsv"} > "$W/OPERATORS.md" 2> "$W/ops.err"
rc=$?
if [ $rc -eq 77 ]; then skip operators_doc "$(cat "$W/ops.err")"
else
  check operators_doc bash -c "[ $rc -eq 0 ] && diff -u '$SRC/docs/OPERATORS.md' '$W/OPERATORS.md' || { echo; echo 'docs/OPERATORS.md is out of date: tests/docs/operators.sh BUILD/kdcc > docs/OPERATORS.md'; exit 1; }"
fi
# every operator of the table has its row, and no other row is there
check operators_rows bash -c "'$KDCC' ops --tsv --internal | tail -n +2 | cut -f2 | sort > '$W/a' && grep -E '^\| [A-Za-z0-9]+ \| [0-9]+ \|' '$SRC/docs/OPERATORS.md' | cut -d' ' -f2 | sort > '$W/b' && diff '$W/a' '$W/b'"
check ops_markdown bash -c "[ \$('$KDCC' ops --markdown | grep -c '^| ai.onnx | ') -eq \$('$KDCC' ops --tsv | grep -c '^ai.onnx	') ]"
check ops_bad_option bash -c "'$KDCC' ops --nope 2>/dev/null; [ \$? -eq 2 ]"

# ---- every command has --help (exit 0, a usage line on stdout) ----
CMDS="compile print distill train eval soft-targets info dot ops"
for c in $CMDS; do
  check "help_$c" bash -c "out=\$('$KDCC' $c --help) && echo \"\$out\" | grep -q '^usage: kdcc'"
done
check help_lists_commands bash -c "for c in $CMDS; do '$KDCC' --help | grep -q \"kdcc \$c\\b\\|\$c,\\|\$c)\\| \$c\$\" || { echo \"kdcc --help lacks \$c\"; exit 1; }; done"

# ---- the guide names every command and every option of the help texts ----
G=$SRC/docs/GUIDE.md
opts=$( { "$KDCC" --help; for c in $CMDS; do "$KDCC" $c --help; done; } 2>/dev/null | grep -oE -- '--[a-z][a-z-]+' | sort -u)
check guide_has_every_option bash -c "for o in $(echo $opts); do grep -q -- \"\$o\\b\" '$G' || { echo \"docs/GUIDE.md lacks \$o\"; exit 1; }; done"
check guide_has_every_command bash -c "for c in $CMDS; do grep -q \"kdcc \$c\" '$G' || { echo \"docs/GUIDE.md lacks kdcc \$c\"; exit 1; }; done"
check guide_links bash -c "for f in \$(grep -oE '\\]\\([A-Za-z0-9_./-]+\\.md' '$G' | sed 's/^](//'); do [ -f '$SRC/docs/'\$f ] || [ -f '$SRC/'\$f ] || { echo \"broken link \$f\"; exit 1; }; done"

echo "$passes passed, $fails failed, $skips skipped"
[ $fails -eq 0 ]
