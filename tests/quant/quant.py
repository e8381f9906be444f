"""tests/quant: the quantization operators (compiler/ops/quant.c) on cases the ONNX
node tests do not reach, against numpy written here from the operator definitions
(an independent reference): ties rounded half to even under every rounding mode of
the caller (the emitted rounding must not depend on fenv), saturation at both ends,
per-axis (negative axis) and blocked scales whose block does not divide the dim,
output_dtype without a zero point, float16 inputs and scales, int32 dequantization,
constant folding (QuantizeLinear and DequantizeLinear of weights leave no node
function), MatMulInteger with per-row and per-column zero points and batch
broadcasting, ConvInteger with groups, strides, dilations, asymmetric and SAME_LOWER
padding and per-channel weight zero points, QLinearConv with a bias and per-channel
scales, QLinearMatMul with per-column scales, and DynamicQuantizeLinear of an
all-zero and an all-negative input. Each model's C builds with gcc and clang under
-std=c99 -Wall -Wextra -Wpedantic -Werror and with -fsanitize=address,undefined.

usage: quant.py KDCC WORKDIR   (Debian's /usr/bin/python3 with numpy and onnx)
"""
import os
import re
import subprocess
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from kdtest import Checks  # noqa: E402

KDCC, WORK = sys.argv[1], sys.argv[2]
os.makedirs(WORK, exist_ok=True)
rng = np.random.default_rng(2024)
check = Checks()

CTYPE = {np.float32: "float", np.float16: "uint16_t", np.int8: "int8_t", np.uint8: "uint8_t",
         np.int16: "int16_t", np.uint16: "uint16_t", np.int32: "int32_t", np.float64: "double"}
TP = {np.float32: TensorProto.FLOAT, np.float16: TensorProto.FLOAT16, np.int8: TensorProto.INT8,
      np.uint8: TensorProto.UINT8, np.int16: TensorProto.INT16, np.uint16: TensorProto.UINT16,
      np.int32: TensorProto.INT32, np.float64: TensorProto.DOUBLE}
RANGE = {np.int8: (-128, 127), np.uint8: (0, 255), np.int16: (-32768, 32767), np.uint16: (0, 65535)}


def vinfo(name, a):
    return helper.make_tensor_value_info(name, TP[a.dtype.type], list(a.shape))


def make(name, opset, nodes, feeds, outs, inits=()):
    """a model over graph inputs feeds [(name, array)], outputs outs [(name, array like the
    expected one)], initializers inits [(name, array)]"""
    g = helper.make_graph(nodes, name, [vinfo(n, a) for n, a in feeds], [vinfo(n, a) for n, a in outs],
                          [numpy_helper.from_array(a, n) for n, a in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def run(name, model, feeds, outs, modes=("",), flags=()):
    """compile the model (kdcc options flags), build it with gcc, clang and the sanitizers,
    run each build on the input arrays feeds (under each fenv rounding mode in modes) and
    return the outputs, shaped and typed like the arrays outs, of the first run (None after
    a failed check); every run must give the same bytes"""
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    r = subprocess.run([KDCC, path, "-o", os.path.join(d, "m.c")] + list(flags), capture_output=True, text=True)
    if r.returncode:
        check(name + " compiles", False, r.stderr.strip())
        return None
    drv = ["#include <fenv.h>", "#include <stdio.h>", "#include <string.h>", "#include \"m.h\""]
    for k, a in enumerate(feeds):
        drv.append("static %s in%d[%d];" % (CTYPE[a.dtype.type], k, max(a.size, 1)))
    for k, a in enumerate(outs):
        drv.append("static %s out%d[%d];" % (CTYPE[a.dtype.type], k, max(a.size, 1)))
    drv += ["int main(int argc, char **argv) {", "    FILE *f = fopen(argv[1], \"rb\");", "    if (!f) return 2;"]
    for k, a in enumerate(feeds):
        drv.append("    if (fread(in%d, 1, %d, f) != %d) return 3;" % (k, a.nbytes, a.nbytes))
    drv.append("    fclose(f);")
    drv.append("    if (argc > 3) fesetround(strcmp(argv[3], \"up\") == 0 ? FE_UPWARD : strcmp(argv[3], \"down\") == 0 ? FE_DOWNWARD : FE_TOWARDZERO);")
    args = ", ".join(["in%d" % k for k in range(len(feeds))] + ["out%d" % k for k in range(len(outs))])
    drv.append("    if (m_run(%s)) return 4;" % args)
    drv.append("    fesetround(FE_TONEAREST);")
    drv.append("    f = fopen(argv[2], \"wb\");")
    for k, a in enumerate(outs):
        drv.append("    fwrite(out%d, 1, %d, f);" % (k, a.nbytes))
    drv += ["    fclose(f);", "    return 0;", "}"]
    with open(os.path.join(d, "main.c"), "w") as f:
        f.write("\n".join(drv) + "\n")
    with open(os.path.join(d, "in.bin"), "wb") as f:
        for a in feeds:
            f.write(np.ascontiguousarray(a).tobytes())
    builds = [("gcc", ["gcc", "-O2"]), ("clang", ["clang", "-O2"]),
              ("san", ["gcc", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"])]
    results = []
    for tag, cc in builds:
        exe = os.path.join(d, "m_" + tag)
        r = subprocess.run(cc + ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-frounding-math",
                                 "-o", exe, os.path.join(d, "m.c"), os.path.join(d, "main.c"), "-lm"],
                           capture_output=True, text=True)
        if r.returncode:
            check("%s builds (%s)" % (name, tag), False, r.stderr.strip()[:2000])
            return None
        for mode in modes:
            ob = os.path.join(d, "out_%s%s.bin" % (tag, mode))
            r = subprocess.run([exe, os.path.join(d, "in.bin"), ob] + ([mode] if mode else []),
                               capture_output=True, text=True)
            if r.returncode:
                check("%s runs (%s %s)" % (name, tag, mode), False, "exit %d %s" % (r.returncode, r.stderr[:2000]))
                return None
            with open(ob, "rb") as f:
                results.append(f.read())
    check(name + ": every build and rounding mode gives the same bytes", all(x == results[0] for x in results))
    got, off = [], 0
    for a in outs:
        got.append(np.frombuffer(results[0][off:off + a.nbytes], dtype=a.dtype).reshape(a.shape))
        off += a.nbytes
    return got


def same(name, got, want):
    if got is None:
        return
    for k, (g, w) in enumerate(zip(got, want)):
        ok = g.dtype == w.dtype and g.shape == w.shape and np.array_equal(g, w)
        msg = ""
        if not ok:
            bad = np.argwhere(g != w)[:4].tolist() if g.shape == w.shape else "shape %s vs %s" % (g.shape, w.shape)
            msg = "output %d differs at %s: got %s want %s" % (k, bad, g.ravel()[:12], w.ravel()[:12])
        check("%s output %d" % (name, k), ok, msg)


# ---------------------------------------------------------------- references

def rep_axis(v, shape, axis, bs=0):
    """scale or zero point v spread over shape (per tensor, per axis, blocked)"""
    if v.size == 1:
        return v.reshape(())
    axis %= len(shape)
    if not bs:
        dims = [1] * len(shape)
        dims[axis] = v.size
        return v.reshape(dims)
    return np.take(np.repeat(v, bs, axis=axis), range(shape[axis]), axis=axis)


def quantize(x, s, z, dt, axis=1, bs=0):
    with np.errstate(over="ignore"):   # 5e9 / 0.25 in float16 and the like: inf, then saturated
        q = np.rint(x / rep_axis(s, x.shape, axis, bs))  # numpy: in x's and s's common type
    zz = rep_axis(z, x.shape, axis, bs).astype(np.int64) if z is not None else 0
    lo, hi = RANGE[dt]
    return np.clip(q.astype(np.float64) + zz, lo, hi).astype(dt)


def dequantize(x, s, z, axis=1, bs=0):
    dx = x.astype(np.float32) - (rep_axis(z, x.shape, axis, bs).astype(np.float32) if z is not None else np.float32(0))
    return (dx * rep_axis(s, x.shape, axis, bs)).astype(s.dtype)


def conv_int(x, w, groups, strides, pads, dil):
    """direct n-D convolution in int64 of already zero-point-shifted x and w; pads begin..end"""
    N, C = x.shape[:2]
    M = w.shape[0]
    nsp = x.ndim - 2
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pads[i], pads[nsp + i]) for i in range(nsp)])
    ks = w.shape[2:]
    out = [(xp.shape[2 + i] - ((ks[i] - 1) * dil[i] + 1)) // strides[i] + 1 for i in range(nsp)]
    y = np.zeros([N, M] + out, dtype=np.int64)
    Cg, Mg = C // groups, M // groups
    for m in range(M):
        g = m // Mg
        for o in np.ndindex(*out):
            for kk in np.ndindex(*ks):
                idx = tuple(o[i] * strides[i] + kk[i] * dil[i] for i in range(nsp))
                y[(slice(None), m) + o] += (xp[(slice(None), slice(g * Cg, (g + 1) * Cg)) + idx] *
                                            w[(m, slice(None)) + kk]).sum(axis=1)
    return y


def requant(acc, mult, zy, dt):
    lo, hi = RANGE[dt]
    return np.clip(np.rint(acc.astype(np.float64) * mult.astype(np.float64) + float(zy)), lo, hi).astype(dt)


def ints(dt, shape):
    lo, hi = RANGE[dt]
    return rng.integers(lo, hi + 1, size=shape).astype(dt)


# ---------------------------------------------------------------- QuantizeLinear

# ties: quotients exactly k + 1/2 (exact divisions, so no rounding mode changes them)
# go to the even neighbour under every fenv mode; saturation at both ends
x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 300, -300, 0.49999997, 127.5, -128.5,
              1.25, -1.25, 63.75, 5e9], dtype=np.float32)
for dt, s, z in ((np.int8, 1.0, 0), (np.uint8, 0.5, 128), (np.int16, 0.25, -3), (np.uint16, 0.5, 7)):
    sv, zv = np.array(s, np.float32), np.array(z, dt)
    name = "q_ties_%s" % dt.__name__
    m = make(name, 13, [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])],
             [("x", x), ("s", sv), ("z", zv)], [("y", np.zeros(x.shape, dt))])
    same(name, run(name, m, [x, sv, zv], [np.zeros(x.shape, dt)], modes=("", "up", "down", "zero")),
         [quantize(x, sv, zv, dt)])

# the scale and zero point as constants (the form of quantized models, where the C
# compiler sees them), with infinities, signed zeros, tiny and near-half values; NaN
# goes to the low end (kdcc's choice: ONNX leaves it open)
x = np.array([np.inf, -np.inf, -0.0, 0.0, 1e-30, -1e-30, -0.7, 0.50000006, 0.49999997, -0.50000006,
              126.5, 127.49999, -127.5, 255.5, 7.5, -7.5, np.nan, -np.nan], dtype=np.float32)
for dt, s, z in ((np.uint8, 0.5, 113), (np.int8, 1.0, -3)):
    sv, zv = np.array(s, np.float32), np.array(z, dt)
    name = "q_const_%s" % dt.__name__
    m = make(name, 13, [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])],
             [("x", x)], [("y", np.zeros(x.shape, dt))], inits=[("s", sv), ("z", zv)])
    want = quantize(np.nan_to_num(x, nan=-np.inf), sv, zv, dt)
    same(name, run(name, m, [x], [np.zeros(x.shape, dt)], modes=("", "up", "down", "zero")), [want])

# per axis with a negative axis, int8
x = (rng.standard_normal((2, 3, 4)) * 40).astype(np.float32)
s = np.array([0.25, 0.5, 1.0, 0.125], np.float32)
z = np.array([-5, 0, 3, 100], np.int8)
m = make("q_axis", 13, [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=-1)],
         [("x", x), ("s", s), ("z", z)], [("y", np.zeros(x.shape, np.int8))])
same("q_axis", run("q_axis", m, [x, s, z], [np.zeros(x.shape, np.int8)]), [quantize(x, s, z, np.int8, axis=-1)])

# blocked along axis 1 with a block (2) that does not divide the dim (5); uint16 zero points
x = (rng.standard_normal((3, 5)) * 1000).astype(np.float32)
s = np.array([[0.5, 1, 2], [0.25, 4, 8], [1, 1, 0.125]], np.float32)
z = np.array([[0, 100, 30000], [5, 7, 9], [65535, 1, 2]], np.uint16)
m = make("q_block", 21, [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=1, block_size=2)],
         [("x", x), ("s", s), ("z", z)], [("y", np.zeros(x.shape, np.uint16))])
same("q_block", run("q_block", m, [x, s, z], [np.zeros(x.shape, np.uint16)]),
     [quantize(x, s, z, np.uint16, axis=1, bs=2)])

# output_dtype without a zero point, blocked along axis 0 (block 2 over 3 rows)
s = np.array([[0.5, 1, 2, 4, 8], [3, 3, 3, 3, 3]], np.float32)
m = make("q_outdtype", 21, [helper.make_node("QuantizeLinear", ["x", "s"], ["y"], axis=0, block_size=2,
                                             output_dtype=TensorProto.INT16)],
         [("x", x), ("s", s)], [("y", np.zeros(x.shape, np.int16))])
same("q_outdtype", run("q_outdtype", m, [x, s], [np.zeros(x.shape, np.int16)]),
     [quantize(x, s, None, np.int16, axis=0, bs=2)])

# float16 x and scale: the division is float16's (numpy divides in float16)
x = (rng.standard_normal(16) * 30).astype(np.float16)
s16 = np.array(0.3, np.float16)
z = np.array(10, np.uint8)
m = make("q_half", 19, [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])],
         [("x", x), ("s", s16), ("z", z)], [("y", np.zeros(x.shape, np.uint8))])
same("q_half", run("q_half", m, [x, s16, z], [np.zeros(x.shape, np.uint8)]), [quantize(x, s16, z, np.uint8)])

# ---------------------------------------------------------------- DequantizeLinear

x = ints(np.int8, (2, 3))
s = np.array([0.5, 0.03], np.float32)
z = np.array([-7, 100], np.int8)
m = make("dq_axis", 13, [helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], axis=0)],
         [("x", x), ("s", s), ("z", z)], [("y", np.zeros(x.shape, np.float32))])
same("dq_axis", run("dq_axis", m, [x, s, z], [np.zeros(x.shape, np.float32)]), [dequantize(x, s, z, axis=0)])

x = np.array([-2**31, 2**31 - 1, 123456789, -5, 0], np.int32)
s = np.array(0.001, np.float32)
m = make("dq_int32", 13, [helper.make_node("DequantizeLinear", ["x", "s"], ["y"])],
         [("x", x), ("s", s)], [("y", np.zeros(x.shape, np.float32))])
same("dq_int32", run("dq_int32", m, [x, s], [np.zeros(x.shape, np.float32)]), [dequantize(x, s, None)])

x = ints(np.uint8, (7,))
z = np.array(3, np.uint8)
m = make("dq_half", 19, [helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"])],
         [("x", x), ("s", s16), ("z", z)], [("y", np.zeros(x.shape, np.float16))])
same("dq_half", run("dq_half", m, [x, s16, z], [np.zeros(x.shape, np.float16)]), [dequantize(x, s16, z)])

# ---------------------------------------------------------------- folding

# y = DequantizeLinear(QuantizeLinear(W)) + a: both fold at compile time (no node
# function for either), and the folded values are what the operators compute
W = (rng.standard_normal((4, 6)) * 3).astype(np.float32)
ws = np.array([0.05, 0.1, 0.02, 0.3], np.float32)
wz = np.array([1, -2, 0, 5], np.int8)
a = (rng.standard_normal((4, 6))).astype(np.float32)
m = make("fold", 13, [helper.make_node("QuantizeLinear", ["W", "ws", "wz"], ["q"], axis=0),
                      helper.make_node("DequantizeLinear", ["q", "ws", "wz"], ["dq"], axis=0),
                      helper.make_node("Add", ["dq", "a"], ["y"])],
         [("a", a)], [("y", a)], inits=[("W", W), ("ws", ws), ("wz", wz)])
got = run("fold", m, [a], [a])
csrc = open(os.path.join(WORK, "fold", "m.c")).read()
check("fold: no QuantizeLinear or DequantizeLinear node function left",
      not re.search(r"kd_n\d+_(De)?[Qq]uantizeLinear", csrc), "found one in fold/m.c")
same("fold", got, [dequantize(quantize(W, ws, wz, np.int8, axis=0), ws, wz, axis=0) + a])

# ---------------------------------------------------------------- MatMulInteger

A = ints(np.int8, (2, 3, 4))
B = ints(np.uint8, (4, 5))
za = np.array([-3, 0, 7], np.int8)
zb = np.array([0, 255, 128, 3, 9], np.uint8)
want = np.matmul(A.astype(np.int64) - za.reshape(3, 1), B.astype(np.int64) - zb).astype(np.int32)
m = make("mmi_rowcol", 10, [helper.make_node("MatMulInteger", ["A", "B", "za", "zb"], ["y"])],
         [("A", A), ("B", B), ("za", za), ("zb", zb)], [("y", want)])
same("mmi_rowcol", run("mmi_rowcol", m, [A, B, za, zb], [want]), [want])

A = ints(np.uint8, (4,))
B = ints(np.int8, (2, 4, 5))
zb1 = np.array(-4, np.int8)
want = np.matmul(A.astype(np.int64), B.astype(np.int64) - int(zb1)).astype(np.int32)
m = make("mmi_vec", 10, [helper.make_node("MatMulInteger", ["A", "B", "", "zb"], ["y"])],
         [("A", A), ("B", B), ("zb", zb1)], [("y", want)])
same("mmi_vec", run("mmi_vec", m, [A, B, zb1], [want]), [want])

# ---------------------------------------------------------------- ConvInteger / QLinearConv

X = ints(np.uint8, (2, 4, 7, 6))
Wt = ints(np.int8, (6, 2, 3, 3))
zx = np.array(131, np.uint8)
zw = np.array([0, -3, 5, 1, -128, 127], np.int8)
strides, pads, dil = [2, 1], [1, 0, 2, 1], [1, 2]
acc = conv_int(X.astype(np.int64) - int(zx), Wt.astype(np.int64) - zw.reshape(6, 1, 1, 1), 2, strides, pads, dil)
want = acc.astype(np.int32)
m = make("convi_2d", 10, [helper.make_node("ConvInteger", ["x", "w", "zx", "zw"], ["y"], group=2, strides=strides,
                                           pads=pads, dilations=dil)],
         [("x", X), ("w", Wt), ("zx", zx), ("zw", zw)], [("y", want)])
same("convi_2d", run("convi_2d", m, [X, Wt, zx, zw], [want]), [want])

# 1-D, SAME_LOWER with stride 2: total padding 2 on 9 inputs (k 4), 1 before, 1 after
X1 = ints(np.int8, (1, 3, 9))
W1 = ints(np.uint8, (2, 3, 4))
acc1 = conv_int(X1.astype(np.int64), W1.astype(np.int64) - 200, 1, [2], [2, 1], [1])
want = acc1.astype(np.int32)
m = make("convi_1d", 10, [helper.make_node("ConvInteger", ["x", "w", "", "zw"], ["y"], strides=[2],
                                           auto_pad="SAME_LOWER")],
         [("x", X1), ("w", W1), ("zw", np.array(200, np.uint8))], [("y", want)])
same("convi_1d", run("convi_1d", m, [X1, W1, np.array(200, np.uint8)], [want]), [want])

# QLinearConv: int8, bias, per-channel weight scales and zero points; the multiplier
# x_scale * w_scale / y_scale in float32, the product in double
Xq = ints(np.int8, (1, 4, 6, 5))
Wq = ints(np.int8, (4, 2, 2, 3))
xs, xz = np.array(0.02, np.float32), np.array(-9, np.int8)
wsc = np.array([0.01, 0.003, 0.05, 0.02], np.float32)
wzp = np.array([0, 2, -1, 0], np.int8)
ys, yz = np.array(0.07, np.float32), np.array(4, np.int8)
bias = rng.integers(-3000, 3000, size=4).astype(np.int32)
accq = conv_int(Xq.astype(np.int64) - int(xz), Wq.astype(np.int64) - wzp.reshape(4, 1, 1, 1), 2, [1, 2], [1, 1, 0, 1], [1, 1])
accq += bias.reshape(1, 4, 1, 1)
mult = (xs * wsc / ys).astype(np.float32).reshape(1, 4, 1, 1)
want = requant(accq, mult, yz, np.int8)
feeds = [("x", Xq), ("xs", xs), ("xz", xz), ("w", Wq), ("ws", wsc), ("wz", wzp), ("ys", ys), ("yz", yz), ("b", bias)]
m = make("qconv", 10, [helper.make_node("QLinearConv", [n for n, _ in feeds], ["y"], group=2, strides=[1, 2],
                                        pads=[1, 1, 0, 1])], feeds, [("y", want)])
same("qconv", run("qconv", m, [a for _, a in feeds], [want]), [want])

# ---------------------------------------------------------------- integer Conv: the exact-float kernel

# ConvInteger and QLinearConv take a float kernel on exact integers when the node gets
# scratch (compiler/ops/quant.c, emit_qplanes): register blocks of output channels x
# rows x columns over zero-padded planes of (x - zx), the reduction in chunks of input
# channels whose float partial sums stay below 2^24. These cases cover every path of
# it: channel blocks with a remainder (Mg % 8) and blocks narrower than 8 (Mg < 8),
# partial column and row blocks, strides along either dim, dilations, asymmetric pads,
# groups, per-tensor and per-channel weight zero points, uint8/int8 mixes, weights that
# are graph inputs (bounds from the types), a reduction that needs several exact chunks
# (with sums far beyond 2^24 that plain float accumulation gets wrong), and QLinearConv
# with a bias; the same models under --target cortex-m4 (the integer kernels) must
# give the same integers. A side chain o2 = Add(q, q), q = Relu(p), with a 256 KB
# intermediate q (read twice, so no fusion removes it) makes
# the arena's peak large, so the Conv node's scratch budget (the headroom under the
# peak, passes/scratch.c) holds the kernel's planes.
BIG = np.arange(65536, dtype=np.float32)


def qp_model(name, op, node_inputs, feeds, inits, want, **attrs):
    nodes = [helper.make_node(op, node_inputs, ["y"], **attrs),
             helper.make_node("Relu", ["p"], ["q"]), helper.make_node("Add", ["q", "q"], ["o2"])]
    return make(name, 13, nodes, feeds + [("p", BIG)], [("y", want), ("o2", BIG)], inits=inits)


def qp_check(name, m, feeds, want, kernel, chunk=None, vec=True):
    """run m with and without the exact-float kernel (generic and x86-64-v4 targets, and
    cortex-m4); every run must give want. vec: the blocks' accumulators are named arrays
    of the target's lanes (8 floats, 16 on x86-64-v4 where the block row takes them)
    rather than the acc[][][] form that rows read at a stride take"""
    for tag, flags, fast in ((name, (), kernel), (name + "_v4", ("--target", "x86-64-v4"), kernel),
                             (name + "_m4", ("--target", "cortex-m4"), False)):
        got = run(tag, m, [a for _, a in feeds] + [BIG], [want, BIG], flags=flags)
        if got is None:
            continue
        src = open(os.path.join(WORK, tag, "m.c")).read()
        hit = re.search(r"exact-float planes: .*?, (\d+) input channels? per exact chunk", src)
        check("%s: exact-float kernel %s" % (tag, "taken" if fast else "not taken"), bool(hit) == fast,
              "found" if hit else "missing")
        if fast:
            lanes = re.findall(r"float c0_0\[(\d+)\];", src)
            check("%s: accumulators %s" % (tag, "in named arrays" if vec else "in acc[][][]"),
                  bool(lanes) == vec and all(int(v) in ((8, 16) if flags else (8,)) for v in lanes), str(lanes))
        if hit and chunk is not None:
            check("%s: %d input channels per exact chunk" % (tag, chunk), int(hit.group(1)) == chunk, hit.group(0))
        same(tag, got, [want, 2 * BIG])


def qp_conv(name, X, Wt, zx, zw, group, strides, pads, dil, w_input=False, kernel=True, chunk=None, vec=True):
    """ConvInteger(X, Wt, zx, zw) against conv_int; zx None: omitted; Wt a graph input when w_input"""
    M = Wt.shape[0]
    zwv = zw.reshape(-1, 1, 1, 1) if zw.size > 1 else int(zw)
    acc = conv_int(X.astype(np.int64) - (int(zx) if zx is not None else 0), Wt.astype(np.int64) - zwv, group,
                   strides, pads, dil)
    want = acc.astype(np.int32)
    check(name + ": reference fits int32", np.array_equal(acc, want))
    feeds = [("x", X)] + ([("w", Wt)] if w_input else [])
    inits = ([] if w_input else [("w", Wt)]) + ([("zx", zx)] if zx is not None else []) + [("zw", zw)]
    m = qp_model(name, "ConvInteger", ["x", "w", "zx" if zx is not None else "", "zw"], feeds, inits, want,
                 group=group, strides=strides, pads=pads, dilations=dil)
    qp_check(name, m, feeds, want, kernel, chunk, vec)
    return acc


# 11 output channels (a block of 8 and one of 3), 13 x 11 input, 5 x 3 kernel dilated by
# 2 along columns, asymmetric pads: rows of 13 outputs (one block of 16 with 3 spare)
X = ints(np.uint8, (2, 3, 13, 11))
Wt = ints(np.int8, (11, 3, 5, 3))
zw = rng.integers(-128, 128, size=11).astype(np.int8)
qp_conv("qp_blocks", X, Wt, np.array(77, np.uint8), zw, 1, [1, 1], [2, 1, 2, 3], [1, 2])

# strides 2 x 3, two groups of 5 output channels (blocks narrower than 8), a 3 x 2
# kernel, int8 x with uint8 weights that are a graph input (bounds from the types)
X = ints(np.int8, (1, 4, 17, 20))
Wt = ints(np.uint8, (10, 2, 3, 2))
qp_conv("qp_strides", X, Wt, np.array(-20, np.int8), np.array(200, np.uint8), 2, [2, 3], [1, 0, 0, 1], [1, 1],
        w_input=True, vec=False)

# several exact chunks: 24 input channels of 5 x 5 taps at |x - zx| = 255 and
# |w - zw| up to 255 take 10 channels per chunk (25 * 255 * 255 * 10 < 2^24), and
# channels whose weights all sit 255 from their zero point sum to about -4e7
X = rng.choice(np.array([0, 255, 255, 255], np.uint8), size=(1, 24, 7, 9))
Wt = rng.choice(np.array([-128, 127], np.int8), size=(6, 24, 5, 5))
Wt[0] = -128
Wt[3] = 127
zw = np.array([127, 127, 0, -128, -1, 127], np.int8)
acc = qp_conv("qp_chunks", X, Wt, np.array(0, np.uint8), zw, 1, [1, 1], [2, 2, 2, 2], [1, 1], chunk=10)
check("qp_chunks: sums beyond float's exact range", np.abs(acc).max() > 2 ** 24, str(np.abs(acc).max()))

# rows of 5 outputs: blocks of 2 rows x 8 columns, the last block's second row spare (7 rows)
X = ints(np.uint8, (1, 2, 9, 7))
Wt = ints(np.uint8, (9, 2, 3, 3))
qp_conv("qp_rows", X, Wt, None, np.array(3, np.uint8), 1, [1, 1], [0, 0, 0, 0], [1, 1])

# QLinearConv through the kernel: bias, per-channel weight scales and zero points, uint8
Xq = ints(np.uint8, (1, 6, 10, 12))
Wq = ints(np.int8, (10, 3, 3, 3))
xs, xz = np.array(0.02, np.float32), np.array(128, np.uint8)
wsc = (rng.random(10) * 0.01 + 0.001).astype(np.float32)
wzp = rng.integers(-5, 6, size=10).astype(np.int8)
ys, yz = np.array(0.05, np.float32), np.array(120, np.uint8)
bias = rng.integers(-3000, 3000, size=10).astype(np.int32)
accq = conv_int(Xq.astype(np.int64) - int(xz), Wq.astype(np.int64) - wzp.reshape(10, 1, 1, 1), 2, [1, 1], [1, 1, 1, 1],
                [1, 1]) + bias.reshape(1, 10, 1, 1)
want = requant(accq, (xs * wsc / ys).astype(np.float32).reshape(1, 10, 1, 1), yz, np.uint8)
check("qp_qlinear: requantized outputs span the range", len(np.unique(want)) > 50, str(len(np.unique(want))))
feeds = [("x", Xq)]
inits = [("xs", xs), ("xz", xz), ("w", Wq), ("ws", wsc), ("wz", wzp), ("ys", ys), ("yz", yz), ("b", bias)]
m = qp_model("qp_qlinear", "QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], feeds, inits, want,
             group=2, pads=[1, 1, 1, 1])
qp_check("qp_qlinear", m, feeds, want, True)

# ConvInteger -> Cast -> Mul by a scale -> Add of a per-channel bias -> Relu (the
# dequantizing tail of mnist-8-quantized's layers), and -> Mul by a per-channel
# scale -> Sub of a run-time operand of the output's shape -> LeakyRelu: each chain
# becomes one kdcc.FusedConvInteger (passes/fuse.c) whose steps run at the store,
# through either kernel; the float results must be numpy's float32 arithmetic
# in the graph's order, bit for bit.
def fused_case(name, X, Wt, zx, zw, tail, feeds_extra, inits_extra, want_fn, **attrs):
    acc = conv_int(X.astype(np.int64) - int(zx), Wt.astype(np.int64) - (zw.reshape(-1, 1, 1, 1) if zw.size > 1 else int(zw)),
                   attrs.get("group", 1), attrs.get("strides", [1, 1]), attrs.get("pads", [0, 0, 0, 0]), [1, 1])
    want = want_fn(acc.astype(np.int32).astype(np.float32))
    feeds = [("x", X)] + feeds_extra
    nodes = [helper.make_node("ConvInteger", ["x", "w", "zx", "zw"], ["acc"], **attrs),
             helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT)] + tail + \
            [helper.make_node("Relu", ["p"], ["q"]), helper.make_node("Add", ["q", "q"], ["o2"])]
    m = make(name, 13, nodes, feeds + [("p", BIG)], [("y", want), ("o2", BIG)],
             inits=[("w", Wt), ("zx", zx), ("zw", zw)] + inits_extra)
    for tag, flags, fast in ((name, (), True), (name + "_m4", ("--target", "cortex-m4"), False)):
        got = run(tag, m, [a for _, a in feeds] + [BIG], [want, BIG], flags=flags)
        if got is None:
            continue
        src = open(os.path.join(WORK, tag, "m.c")).read()
        fns = re.findall(r"^static void kd_n\d+_(\w+)\(", src, re.M)
        check(tag + ": the chain is one kdcc.FusedConvInteger (beside the side chain's Relu and Add)",
              sorted(fns) == ["Add", "FusedConvInteger", "Relu"], str(fns))
        check(tag + ": exact-float kernel %s" % ("taken" if fast else "not taken"), ("exact-float planes" in src) == fast)
        same(tag, got, [want, 2 * BIG])


X = ints(np.uint8, (1, 3, 15, 13))
Wt = ints(np.uint8, (10, 3, 5, 5))
sc = np.array(0.0037, np.float32)
cb = (rng.standard_normal((1, 10, 1, 1)) * 3).astype(np.float32)
fused_case("fq_scale_bias_relu", X, Wt, np.array(9, np.uint8), np.array(131, np.uint8),
           [helper.make_node("Mul", ["accf", "sc"], ["s1"]), helper.make_node("Add", ["s1", "cb"], ["s2"]),
            helper.make_node("Relu", ["s2"], ["y"])], [], [("sc", sc), ("cb", cb)],
           lambda a: np.maximum((a * sc) + cb, np.float32(0)), pads=[2, 2, 2, 2])

X = ints(np.int8, (2, 4, 9, 11))
Wt = ints(np.int8, (6, 2, 3, 3))
cs = (rng.random((6, 1, 1)) * 0.01).astype(np.float32)
r = (rng.standard_normal((2, 6, 5, 10)) * 2).astype(np.float32)
fused_case("fq_chan_sub_sigmoid", X, Wt, np.array(-3, np.int8), np.array([1, -1, 0, 5, 7, -128], np.int8),
           [helper.make_node("Mul", ["cs", "accf"], ["s1"]), helper.make_node("Sub", ["s1", "r"], ["s2"]),
            helper.make_node("LeakyRelu", ["s2"], ["y"], alpha=0.125)], [("r", r)], [("cs", cs)],
           lambda a: np.where((cs * a) - r < 0, ((cs * a) - r) * np.float32(0.125), (cs * a) - r).astype(np.float32),
           group=2, strides=[2, 1], pads=[1, 0, 1, 1])

# ---------------------------------------------------------------- QLinearMatMul

A = ints(np.uint8, (3, 5))
B = ints(np.int8, (5, 4))
sa, za = np.array([0.04], np.float32), np.array([120], np.uint8)
sb, zb = np.array([0.01, 0.02, 0.005, 0.1], np.float32), np.array([0, 1, -2, 3], np.int8)
sy, zy = np.array([0.3], np.float32), np.array([128], np.uint8)
acc = np.matmul(A.astype(np.int64) - 120, B.astype(np.int64) - zb)
want = requant(acc, (sa * sb / sy).astype(np.float32), zy[0], np.uint8)
feeds = [("a", A), ("sa", sa), ("za", za), ("b", B), ("sb", sb), ("zb", zb), ("sy", sy), ("zy", zy)]
m = make("qmm_col", 10, [helper.make_node("QLinearMatMul", [n for n, _ in feeds], ["y"])], feeds, [("y", want)])
same("qmm_col", run("qmm_col", m, [a for _, a in feeds], [want]), [want])

# ---------------------------------------------------------------- integer MatMul: the exact-float kernel

# MatMulInteger and QLinearMatMul take a float kernel on exact integers when the node
# gets scratch (compiler/ops/quant.c, emit_imm_fast): B - zb as floats with its columns
# padded to the block, blocks of 4 rows x 16 columns, sums in chunks of at most
# 2^24 / (bx * bw) products. Rows with a remainder block, columns that end inside a
# block, batch broadcasting, zero points per tensor, row and column, uint8/int8 mixes,
# a K that needs three exact chunks with sums beyond 2^24, and the requantized form;
# each also under --target cortex-m4 (the integer loops).
def mm_check(name, m, feeds, want, chunk=None):
    for tag, flags, fast in ((name, (), True), (name + "_m4", ("--target", "cortex-m4"), False)):
        got = run(tag, m, [a for _, a in feeds] + [BIG], [want, BIG], flags=flags)
        if got is None:
            continue
        src = open(os.path.join(WORK, tag, "m.c")).read()
        hit = re.search(r"exact-float product: .*?, (\d+) products per exact chunk", src)
        check("%s: exact-float product %s" % (tag, "taken" if fast else "not taken"), bool(hit) == fast)
        if hit and chunk is not None:
            check("%s: %d products per exact chunk" % (tag, chunk), int(hit.group(1)) == chunk, hit.group(0))
        same(tag, got, [want, 2 * BIG])


def mm_model(name, op, node_inputs, feeds, inits, want):
    nodes = [helper.make_node(op, node_inputs, ["y"]),
             helper.make_node("Relu", ["p"], ["q"]), helper.make_node("Add", ["q", "q"], ["o2"])]
    return make(name, 13, nodes, feeds + [("p", BIG)], [("y", want), ("o2", BIG)], inits=inits)


# 7 rows (a block of 4 and one of 3), 37 columns (blocks of 16, the last with 5),
# batch dims [2, 1] x [3]: A broadcast over B's batch, per-row and per-column zero points
A = ints(np.uint8, (2, 1, 7, 45))
B = ints(np.int8, (3, 45, 37))
za = rng.integers(0, 256, size=7).astype(np.uint8)
zb = rng.integers(-128, 128, size=37).astype(np.int8)
want = np.matmul(A.astype(np.int64) - za.reshape(7, 1), B.astype(np.int64) - zb).astype(np.int32)
m = mm_model("mm_blocks", "MatMulInteger", ["A", "B", "za", "zb"], [("A", A), ("B", B)], [("za", za), ("zb", zb)], want)
mm_check("mm_blocks", m, [("A", A), ("B", B)], want)

# three exact chunks: K = 600 products of |a - za| = 255 and |b - zb| = 255 take 258
# per chunk, and a column of equal signs sums to -3.9e7
A = rng.choice(np.array([0, 255, 255], np.uint8), size=(5, 600))
B = rng.choice(np.array([0, 255], np.uint8), size=(600, 20))
B[:, 3] = 0
zb1 = np.array(255, np.uint8)
acc = np.matmul(A.astype(np.int64), B.astype(np.int64) - 255)
check("mm_chunks: sums beyond float's exact range", np.abs(acc).max() > 2 ** 24, str(np.abs(acc).max()))
m = mm_model("mm_chunks", "MatMulInteger", ["A", "B", "", "zb"], [("A", A)], [("B", B), ("zb", zb1)], acc.astype(np.int32))
mm_check("mm_chunks", m, [("A", A)], acc.astype(np.int32), chunk=258)

# QLinearMatMul: int8 A, uint8 B, per-column scales and zero points, uint8 output
A = ints(np.int8, (9, 70))
B = ints(np.uint8, (70, 19))
sa, za = np.array([0.05], np.float32), np.array([3], np.int8)
sb = (rng.random(19) * 0.01 + 0.001).astype(np.float32)
zb = rng.integers(0, 256, size=19).astype(np.uint8)
sy, zy = np.array([0.5], np.float32), np.array([128], np.uint8)
acc = np.matmul(A.astype(np.int64) - 3, B.astype(np.int64) - zb)
want = requant(acc, (sa * sb / sy).astype(np.float32), zy[0], np.uint8)
check("mm_qlinear: requantized outputs span the range", len(np.unique(want)) > 50, str(len(np.unique(want))))
m = mm_model("mm_qlinear", "QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], [("a", A)],
             [("sa", sa), ("za", za), ("b", B), ("sb", sb), ("zb", zb), ("sy", sy), ("zy", zy)], want)
mm_check("mm_qlinear", m, [("a", A)], want)

# ---------------------------------------------------------------- DynamicQuantizeLinear

for name, x in (("dql_zero", np.zeros(5, np.float32)), ("dql_neg", -np.abs(rng.standard_normal(7)).astype(np.float32) * 3)):
    mn, mx = min(0.0, float(x.min())), max(0.0, float(x.max()))
    sc = np.float32(1.0) if mx == mn else np.float32((np.float32(mx) - np.float32(mn)) / np.float32(255))
    zp = np.rint(np.clip(np.float32(0) - np.float32(mn) / sc, 0, 255))
    y = np.clip(np.rint(x / sc) + zp, 0, 255).astype(np.uint8)
    want = [y, np.array(sc, np.float32), np.array(zp, np.uint8)]
    m = make(name, 11, [helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])], [("x", x)],
             [("y", want[0]), ("s", want[1]), ("z", want[2])])
    same(name, run(name, m, [x], want), want)

check.finish()
