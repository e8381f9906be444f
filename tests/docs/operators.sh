#!/usr/bin/env bash
# Writes docs/OPERATORS.md to standard output, from the operator table in the code
# (`kdcc ops --tsv`) and, for the conformance column, the expected-pass list of the
# ONNX backend tests (tests/conformance/expected_passes.txt) with the operators each
# test uses (onnx-tests/MANIFEST.tsv in the shared folder).
#
#   tests/docs/operators.sh KDCC [MANIFEST] > docs/OPERATORS.md
#
# tests/docs/CMakeLists.txt runs it and fails when docs/OPERATORS.md differs.
set -eu
KDCC=$1
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
MANIFEST=${2:-$SRC/../shared/onnx-tests/MANIFEST.tsv}
EXPECTED=$SRC/tests/conformance/expected_passes.txt
[ -f "$MANIFEST" ] || { echo "operators.sh: no $MANIFEST" >&2; exit 77; }

ops=$(mktemp)
trap 'rm -f "$ops"' EXIT
"$KDCC" ops --tsv --internal > "$ops"

cat <<'HEAD'
# Supported operators

Generated from kdcc's operator table (`compiler/ops/`, one `OpDef` per operator) by
`tests/docs/operators.sh build/kdcc > docs/OPERATORS.md`; the test `operators_doc`
fails when this file and the code disagree, so do not edit it by hand.
`kdcc ops` prints the same table (`--markdown`, `--tsv`; `--internal` adds the
domain-kdcc operators of training graphs).

Columns:

- **since**: the first opset version kdcc handles (a model importing an older opset for
  the operator's domain is refused with "opset N of OP is not supported").
- **inputs**, **outputs**: how many the operator takes and gives (`2+`: variadic).
- **fold**: evaluated at compile time when its inputs are constant (constant folding).
- **grad**: has a gradient rule, so a student that contains it can be trained by
  `kdcc distill` and `kdcc train`; a model with an operator without one trains only
  if no trainable weight lies before it.
- **view**: its output can share its input's bytes (no copy, no arena bytes).
- **backend tests**: of the node tests of the ONNX backend test suite whose graph uses
  the operator (its top-level nodes, as listed in `onnx-tests/MANIFEST.tsv`), how many
  kdcc passes end to end (import, emit C, compile, run, compare; the list in
  `tests/conformance/expected_passes.txt`), out of how many. A test counts for every
  operator its graph uses, so a failing test that also uses Add lowers Add's count.

Element types: each operator accepts the types its shape inference accepts; a model
with an unsupported type is refused with a message naming the node and the type.
HEAD

awk -F'\t' -v expected="$EXPECTED" '
  BEGIN {
    while ((getline line < expected) > 0)
      if (line ~ /^node\//) { sub(/^node\//, "", line); pass[line] = 1 }
  }
  FNR == 1 { next }
  FILENAME != ARGV[ARGC - 1] {            # the manifest: test name, operators used
    n = split($2, o, ",")
    delete seen
    for (i = 1; i <= n; i++) {
      if (o[i] == "" || (o[i] in seen)) continue
      seen[o[i]] = 1
      total[o[i]]++
      if ($1 in pass) passed[o[i]]++
    }
    next
  }
  {                                        # kdcc ops --tsv
    dom = $1; cell = ""
    if (dom != "kdcc") {
      t = ($2 in total) ? total[$2] : 0
      p = ($2 in passed) ? passed[$2] : 0
      cell = t ? p " / " t : "-"
    }
    s = $9; gsub(/\|/, "\\|", s)
    row = "| " $2 " | " $3 " | " $4 " | " $5 " | " ($6 == "yes" ? "yes" : "") " | " ($7 == "yes" ? "yes" : "") " | " ($8 == "yes" ? "yes" : "") " | "
    if (dom != "kdcc") row = row cell " | "
    row = row s " |"
    if (dom != last) {
      if (dom == "kdcc")
        printf "\n## Domain kdcc (training graphs)\n\nOperators that `kdcc distill` and `kdcc train` put into the training step: gradients, the distillation loss, optimizer updates. A model file cannot use them.\n\n| operator | since | inputs | outputs | fold | grad | view | what it does |\n| --- | ---: | :---: | :---: | :---: | :---: | :---: | --- |\n"
      else
        printf "\n## Domain %s\n\n| operator | since | inputs | outputs | fold | grad | view | backend tests | what it does |\n| --- | ---: | :---: | :---: | :---: | :---: | :---: | ---: | --- |\n", dom
      last = dom
    }
    print row
    count[dom == "kdcc" ? "internal" : "model"]++
    if ($7 == "yes" && dom != "kdcc") ngrad++
  }
  END {
    printf "\n%d operators that models can use (%d with a gradient rule), %d internal ones.\n", count["model"], ngrad, count["internal"]
  }' "$MANIFEST" "$ops"
