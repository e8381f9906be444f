#!/bin/sh
# What kdcc writes, read by the reference tools: onnx.checker accepts the exported
# models (tests/data/test_onnx_export --write) and numpy reads the .npy files.
# Uses Debian's /usr/bin/python3; exit 77 (skipped) when it lacks onnx or numpy.
# and kdcc reads the .npy and CSV files numpy writes.
# usage: check_python.sh TEST_DATA_BINARY EXPORTED_DIR ONNX_TESTS_DIR NPY_OUT_DIR
PY=/usr/bin/python3
if [ ! -x "$PY" ] || ! "$PY" -c "import onnx, numpy" 2>/dev/null; then
    echo "SKIP: $PY has no onnx/numpy"
    exit 77
fi
mkdir -p "$4" || exit 1
"$1" --write "$4" || exit 1
exec "$PY" "$(dirname "$0")/check_python.py" "$2" "$3" "$4" "$1"
