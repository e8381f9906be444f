"""onnx.checker on the models kdcc exported, numpy on the .npy files it wrote.

usage: check_python.py EXPORTED_DIR ONNX_TESTS_DIR NPY_DIR TEST_DATA_BINARY

An exported model must pass onnx.checker.check_model (with full_check, i.e. strict
shape inference, too) whenever the original model does. Models whose opset or IR
version is newer than the installed onnx knows are skipped, and counted.
"""
import os
import subprocess
import sys

import numpy as np
import onnx
import onnx.checker
from onnx import defs, helper, numpy_helper
from onnx.helper import VERSION_TABLE

exported, tests, npy, test_data = sys.argv[1:5]
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
print(f"numpy {np.__version__}: {len(want)} .npy files kdcc wrote read back")

# files numpy writes, read by kdcc: every dtype, both byte orders, format 1.0/2.0/3.0
rng = np.random.default_rng(7)
cases = []  # (path, array or None for an expected refusal, what the error must say)
for code in ("f4", "f8", "f2", "u1", "i1", "i2", "i4", "i8", "u2", "u4", "u8", "b1"):
    for order in ("<", ">"):
        for version in ((1, 0), (2, 0), (3, 0)):
            for shape in ((2, 3, 4), (), (0, 3)):
                dt = np.dtype(order + code)
                a = (rng.integers(0, 2, shape) if code == "b1" else rng.integers(-100, 100, shape)
                     if code[0] in "if" else rng.integers(0, 200, shape)).astype(dt)
                p = os.path.join(npy, f"np_{'le' if order == '<' else 'be'}_{code}_v{version[0]}_{len(shape)}.npy")
                with open(p, "wb") as f:
                    np.lib.format.write_array(f, a, version=version)
                cases.append((p, a, None))
p = os.path.join(npy, "np_fortran.npy")
np.save(p, np.asfortranarray(np.ones((3, 2), dtype=np.float32)))
cases.append((p, None, "Fortran order"))
p = os.path.join(npy, "np_savetxt.csv")
t = rng.normal(size=(5, 3))
np.savetxt(p, t, delimiter=",", header="a,b,c")
cases.append((p, t.astype(np.float32), None))
out = subprocess.run([test_data, "--dump"] + [c[0] for c in cases], capture_output=True, text=True, check=True)
lines = out.stdout.splitlines()
names = {"f4": "float", "f8": "double", "f2": "float16", "u1": "uint8", "i1": "int8", "i2": "int16", "i4": "int32",
         "i8": "int64", "u2": "uint16", "u4": "uint32", "u8": "uint64", "b1": "bool"}
for (p, a, err), line in zip(cases, lines):
    if a is None:
        if not (line.startswith("error: ") and err in line and p in line):
            fails += 1
            print(f"FAIL {os.path.basename(p)}: expected a refusal saying '{err}', got: {line}")
        continue
    f = a.astype(np.float64).ravel()
    want_line = (names[a.dtype.str[1:]], list(a.shape), f[0] if f.size else 0.0, f[-1] if f.size else 0.0, f.sum())
    got = line.split()
    try:
        ok_line = (got[0] == want_line[0] and got[1] == "[" + ",".join(map(str, want_line[1])) + "]" and
                   float(got[2]) == want_line[2] and float(got[3]) == want_line[3] and
                   abs(float(got[4]) - want_line[4]) <= 1e-9 * max(1.0, abs(want_line[4])))
    except (IndexError, ValueError):
        ok_line = False
    if not ok_line:
        fails += 1
        print(f"FAIL {os.path.basename(p)}: kdcc reads '{line}', numpy has {want_line}")
if len(lines) != len(cases):
    fails += 1
    print(f"FAIL: {len(lines)} results for {len(cases)} files")
print(f"kdcc read {len(cases)} files numpy wrote")
sys.exit(1 if fails else 0)
