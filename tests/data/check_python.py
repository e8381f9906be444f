"""onnx.checker on the models kdcc exported, numpy on the .npy files it wrote.

usage: check_python.py EXPORTED_DIR ONNX_TESTS_DIR NPY_DIR

An exported model must pass onnx.checker.check_model (with full_check, i.e. strict
shape inference, too) whenever the original model does. Models whose opset or IR
version is newer than the installed onnx knows are skipped, and counted.
"""
import os
import sys

import numpy as np
import onnx
import onnx.checker
from onnx import defs, helper, numpy_helper
from onnx.helper import VERSION_TABLE

exported, tests, npy = sys.argv[1:4]
max_opset = defs.onnx_opset_version()
max_ir = max(row[1] for row in VERSION_TABLE)


def default_opset(m):
    for o in m.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    return 0


def check(m, full):
    try:
        onnx.checker.check_model(m, full_check=full)
        return None
    except Exception as e:  # checker, shape inference: one line of why
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def same_array(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return a.tobytes() == b.tobytes()


def same_attr_value(a, b):
    if isinstance(a, onnx.TensorProto):
        return same_array(numpy_helper.to_array(a), numpy_helper.to_array(b))
    if isinstance(a, float):
        return (np.isnan(a) and np.isnan(b)) or np.float32(a).tobytes() == np.float32(b).tobytes()
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_attr_value(x, y) for x, y in zip(a, b))
    return a == b


def tensor_type(vi):
    t = vi.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else "?"
            for d in t.shape.dim] if t.HasField("shape") else None
    return (t.elem_type, dims)


def compare(o, m):
    """The export read by onnx's own loader says what the original says. Returns why not, or None."""
    og, mg = o.graph, m.graph
    if len(og.node) != len(mg.node):
        return f"{len(mg.node)} nodes, the original has {len(og.node)}"
    for i, (a, b) in enumerate(zip(og.node, mg.node)):
        if (a.op_type, "" if a.domain == "ai.onnx" else a.domain, list(a.input), list(a.output)) != \
                (b.op_type, b.domain, list(b.input), list(b.output)):
            return f"node {i} ({a.op_type}) differs"
        if a.name and a.name != b.name:
            return f"node {i} ({a.op_type}) is named '{b.name}', not '{a.name}'"
        aa = {x.name: helper.get_attribute_value(x) for x in a.attribute}
        ba = {x.name: helper.get_attribute_value(x) for x in b.attribute}
        if set(aa) != set(ba):
            return f"node {i} ({a.op_type}) attributes {sorted(ba)}, expected {sorted(aa)}"
        for k in aa:
            if not same_attr_value(aa[k], ba[k]):
                return f"node {i} ({a.op_type}) attribute '{k}' differs"
    oinit = {t.name: t for t in og.initializer}
    for t in mg.initializer:
        if t.name not in oinit:
            return f"initializer '{t.name}' is not in the original"
        if not same_array(numpy_helper.to_array(oinit[t.name]), numpy_helper.to_array(t)):
            return f"initializer '{t.name}' differs"
    oin = {v.name: v for v in og.input}
    for v in mg.input:
        if v.name not in oin or tensor_type(v) != tensor_type(oin[v.name]):
            return f"graph input '{v.name}' differs"
    if [v.name for v in og.input if v.name not in oinit] != [v.name for v in mg.input]:
        return "graph inputs differ"
    if [(v.name, tensor_type(v)) for v in og.output] != [(v.name, tensor_type(v)) for v in mg.output]:
        return "graph outputs differ"
    return None


fails = ok = both = skipped = same = 0
for name in sorted(os.listdir(exported)):
    if not name.endswith(".onnx"):
        continue
    base = name[:-5]
    orig = None
    for sub in ("node", "models"):
        p = os.path.join(tests, sub, base, "model.onnx")
        if os.path.exists(p):
            orig = p
            break
    m = onnx.load(os.path.join(exported, name))
    if orig is None:
        skipped += 1
        continue
    o = onnx.load(orig)
    why = compare(o, m)
    if why:
        fails += 1
        print(f"FAIL {base}: onnx reads the export differently from the original: {why}")
    else:
        same += 1
    if default_opset(m) > max_opset or m.ir_version > max_ir:
        skipped += 1
        continue
    for full in (False, True):
        e_err = check(m, full)
        if e_err is None:
            continue
        o_err = check(o, full)
        if o_err is None:
            fails += 1
            print(f"FAIL {base}: onnx.checker{' (full_check)' if full else ''} refuses the export, "
                  f"not the original: {e_err}")
        else:
            both += 1
        break
    else:
        ok += 1
print(f"onnx {onnx.__version__}: {same} exported models say what their originals say; {ok} exported models pass onnx.checker (full_check), {fails} fail, "
      f"{both} refused like their originals, {skipped} not checked (opset > {max_opset} or IR > {max_ir}, newer than this onnx)")

# .npy files written by test_data --write
want = {
    "f32.npy": np.array([[0.5, -1.25, 3e-8], [1e30, 7, 8]], dtype=np.float32),
    "i64.npy": np.array([0, 9, -5], dtype=np.int64),
    "u8.npy": np.array([0, 1, 254, 255], dtype=np.uint8).reshape(1, 2, 2),
    "f64.npy": np.array(0.1, dtype=np.float64),
}
for f, w in want.items():
    a = np.load(os.path.join(npy, f), allow_pickle=False)
    if a.dtype != w.dtype or a.shape != w.shape or not np.array_equal(a, w):
        fails += 1
        print(f"FAIL {f}: numpy reads {a.dtype}{list(a.shape)} {a.ravel()[:6]}, expected {w.dtype}{list(w.shape)}")
    elif not a.flags.c_contiguous:
        fails += 1
        print(f"FAIL {f}: not C order")
print(f"numpy {np.__version__}: {len(want)} .npy files checked")
sys.exit(1 if fails else 0)
