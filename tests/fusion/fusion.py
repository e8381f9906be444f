"""tests/fusion: the fusion pass (passes/fuse.c) on small models in the ONNX textual
syntax. For each model: the graph after `fuse` has the nodes it should (fewer than
the model's), and the compiled C gives the outputs PyTorch computes in double from
the same float weights and inputs (an independent reference). Cases cover every
Conv emit path (padded plane, im2col, per-row blocks, the generic loop nest in
double), every Gemm/MatMul kernel (blocked, dot products, matrix-vector, row
updates, batched MatMul with a bias), activations, residual adds in both orders,
biases that become Gemm/Conv biases, elementwise chains, and graphs where fusion
must not happen.

usage: fusion.py KDCC WORKDIR   (Debian's /usr/bin/python3 with numpy and torch)
"""
import os
import re
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from kdtest import Checks, lit, randn, t64, tstr  # noqa: E402

KDCC, WORK = sys.argv[1], sys.argv[2]
os.makedirs(WORK, exist_ok=True)
CC = os.environ.get("CC", "cc")
rng = np.random.default_rng(1234)


def arr(shape, scale=1.0):
    return randn(rng, shape, scale)

check = Checks()


class Model:
    def __init__(self, name, opset=17):
        self.name, self.opset = name, opset
        self.inits, self.inputs, self.outputs, self.nodes = [], [], [], []
        self.feeds = {}

    def init(self, name, a, dt="float"):
        self.inits.append("%s %s = %s" % (tstr(a, dt), name, lit(a)))
        return name

    def input(self, name, a):
        self.inputs.append("%s %s" % (tstr(a), name))
        self.feeds[name] = a
        return name

    def output(self, name, shape):
        self.outputs.append("float[%s] %s" % (",".join(str(d) for d in shape), name))

    def node(self, text):
        self.nodes.append(text)

    def text(self):
        s = "<\n   ir_version: 8,\n   opset_import: [\"\" : %d]\n>\n" % self.opset
        s += "%s (%s) => (%s)\n" % (self.name, ", ".join(self.inputs), ", ".join(self.outputs))
        if self.inits:
            s += "<\n   " + ",\n   ".join(self.inits) + "\n>\n"
        s += "{\n" + "".join("   %s\n" % n for n in self.nodes) + "}\n"
        return s


def run_case(m, expect_ops, refs, tol=2e-4, dtype=np.float32):
    """expect_ops: the op types after fuse, in order; refs: expected outputs (arrays)."""
    d = os.path.join(WORK, m.name)
    os.makedirs(d, exist_ok=True)
    src = os.path.join(d, "model.txt")
    with open(src, "w") as f:
        f.write(m.text())
    r = subprocess.run([KDCC, src, "-o", os.path.join(d, "m"), "--name", "m", "--dump-after", "fuse"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        check(m.name + "_compiles", False, r.stderr.strip()[:400])
        return
    ops = re.findall(r"^\s+\S.* = ([A-Za-z.]+) ?[<(]", r.stderr, re.M)
    check(m.name + "_fused_graph", ops == expect_ops, "after fuse: %s, want %s" % (ops, expect_ops))
    # a C driver: inputs from in<k>.bin, outputs to out<k>.bin
    ct = "double" if dtype == np.float64 else "float"
    nin, nout = len(m.feeds), len(refs)
    drv = ["#include <stdio.h>", "#include \"m.h\""]
    for k in range(nin):
        drv.append("static %s in%d[M_IN%d_COUNT];" % (ct, k, k))
    for k in range(nout):
        drv.append("static %s out%d[M_OUT%d_COUNT];" % (ct, k, k))
    drv.append("int main(void) {")
    drv.append("    FILE *f;")
    for k in range(nin):
        drv.append("    f = fopen(\"in%d.bin\", \"rb\"); if (!f || fread(in%d, sizeof in%d, 1, f) != 1) return 2; fclose(f);" % (k, k, k))
    args = ", ".join(["in%d" % k for k in range(nin)] + ["out%d" % k for k in range(nout)])
    drv.append("    if (m_run(%s)) return 3;" % args)
    for k in range(nout):
        drv.append("    f = fopen(\"out%d.bin\", \"wb\"); if (!f || fwrite(out%d, sizeof out%d, 1, f) != 1) return 4; fclose(f);" % (k, k, k))
    drv.append("    return 0;\n}")
    with open(os.path.join(d, "main.c"), "w") as f:
        f.write("\n".join(drv) + "\n")
    for k, a in enumerate(m.feeds.values()):
        np.asarray(a, dtype=dtype).tofile(os.path.join(d, "in%d.bin" % k))
    r = subprocess.run([CC, "-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-o", "prog", "main.c", "m.c", "-lm"],
                       cwd=d, capture_output=True, text=True)
    if r.returncode != 0:
        check(m.name + "_c_builds", False, r.stderr.strip()[:600])
        return
    r = subprocess.run(["./prog"], cwd=d, capture_output=True, text=True)
    if r.returncode != 0:
        check(m.name + "_runs", False, "exit %d" % r.returncode)
        return
    for k, ref in enumerate(refs):
        ref = np.asarray(ref, dtype=np.float64)
        got = np.fromfile(os.path.join(d, "out%d.bin" % k), dtype=dtype).astype(np.float64)
        err = np.max(np.abs(got - ref.ravel()) / (1 + np.abs(ref.ravel()))) if ref.size else 0.0
        check("%s_output%d" % (m.name, k), got.shape == (ref.size,) and err <= tol,
              "max relative error %.3g (tolerance %.1g)" % (err, tol))


# ---- Conv through the padded-plane kernel (stride 1, 3x3, 16 channels) + Relu
m = Model("conv_relu")
x, w, b = arr((2, 8, 12, 12)), arr((16, 8, 3, 3), 0.2), arr((16,), 0.1)
m.input("x", x)
m.init("w", w); m.init("b", b)
m.node("c = Conv<pads = [1, 1, 1, 1]>(x, w, b)")
m.node("y = Relu(c)")
m.output("y", (2, 16, 12, 12))
run_case(m, ["kdcc.FusedConv"], [F.relu(F.conv2d(t64(x), t64(w), t64(b), padding=1))])

# ---- Conv + BatchNormalization + ReLU6 (Clip) + residual Add of the input
m = Model("conv_bn_relu6_add")
x, w = arr((1, 16, 10, 10)), arr((16, 16, 3, 3), 0.1)
sc, bi, mu, var = arr((16,)), arr((16,)), arr((16,)), (np.abs(arr((16,))) + 0.5).astype(np.float32)
m.input("x", x)
m.init("w", w); m.init("sc", sc); m.init("bi", bi); m.init("mu", mu); m.init("var", var)
m.init("lo", np.array([0], np.float32)); m.init("hi", np.array([6], np.float32))
m.node("c = Conv<pads = [1, 1, 1, 1]>(x, w)")
m.node("n = BatchNormalization<epsilon = 0.001>(c, sc, bi, mu, var)")
m.node("r = Clip(n, lo, hi)")
m.node("y = Add(x, r)")
m.output("y", (1, 16, 10, 10))
ref = F.batch_norm(F.conv2d(t64(x), t64(w), padding=1), t64(mu), t64(var), t64(sc), t64(bi), eps=1e-3)
run_case(m, ["kdcc.FusedConv"], [t64(x) + torch.clamp(ref, 0, 6)])

# ---- ResNet block: strided Conv (im2col) -> Add(shortcut, computed after it) -> Relu;
#      Conv -> Relu -> Add -> Relu in the other order
m = Model("resnet_orders")
x = arr((2, 8, 9, 9))
w1, b1, w2, w3 = arr((16, 8, 3, 3), 0.2), arr((16,), 0.1), arr((16, 8, 1, 1), 0.3), arr((16, 16, 3, 3), 0.1)
m.input("x", x)
m.init("w1", w1); m.init("b1", b1); m.init("w2", w2); m.init("w3", w3)
m.node("a = Conv<pads = [1, 1, 1, 1], strides = [2, 2]>(x, w1, b1)")
m.node("s = Conv<strides = [2, 2]>(x, w2)")
m.node("z = Add(a, s)")
m.node("r = Relu(z)")
m.node("c = Conv<pads = [1, 1, 1, 1]>(r, w3)")
m.node("cr = Relu(c)")
m.node("t = Add(cr, r)")
m.node("y = Relu(t)")
m.output("y", (2, 16, 5, 5))
A = F.conv2d(t64(x), t64(w1), t64(b1), stride=2, padding=1)
S = F.conv2d(t64(x), t64(w2), stride=2)
R = F.relu(A + S)
Y = F.relu(F.relu(F.conv2d(R, t64(w3), padding=1)) + R)
# the shortcut Conv stays: its one consumer is the fused Conv, not an elementwise step
run_case(m, ["Conv", "kdcc.FusedConv", "kdcc.FusedConv"], [Y])

# ---- per-row blocks (wide rows, few channels) + LeakyRelu, HardSwish; a channel
#      bias Add that becomes the Conv's bias
m = Model("conv_rows_chain", opset=17)
x, w, cb = arr((1, 3, 6, 40)), arr((4, 3, 3, 3), 0.3), arr((4, 1, 1), 0.5)
m.input("x", x)
m.init("w", w); m.init("cb", cb)
m.node("c = Conv<pads = [1, 1, 1, 1]>(x, w)")
m.node("cc = Add(c, cb)")
m.node("l = LeakyRelu<alpha = 0.2>(cc)")
m.node("y = HardSwish(l)")
m.output("y", (1, 4, 6, 40))
C = F.conv2d(t64(x), t64(w), padding=1) + t64(cb)
run_case(m, ["kdcc.FusedConv"], [F.hardswish(F.leaky_relu(C, 0.2))])

# ---- the generic loop nest (double) + Tanh, Sigmoid, Mul by a scalar
m = Model("conv_double")
x, w = np.asarray(arr((1, 2, 7, 7)), np.float64), np.asarray(arr((3, 2, 3, 3), 0.4), np.float64)
m.inputs.append("double[1,2,7,7] x"); m.feeds["x"] = x
m.init("w", w, "double"); m.init("k", np.array([1.5]), "double")
m.node("c = Conv(x, w)")
m.node("t = Tanh(c)")
m.node("s = Sigmoid(t)")
m.node("y = Mul(k, s)")
m.outputs.append("double[1,3,5,5] y")
run_case(m, ["kdcc.FusedConv"], [1.5 * torch.sigmoid(torch.tanh(F.conv2d(t64(x), t64(w))))], tol=1e-12, dtype=np.float64)

# ---- Gemm (transB: dot products) + Relu; MatMul + bias Add -> Gemm (blocked) + Gelu;
#      Gemm matrix-vector + Tanh; Gemm rows (N < 16) + Elu; a graph output in between
#      stops fusion
m = Model("gemm_paths", opset=20)
x, w1, b1 = arr((4, 24)), arr((32, 24), 0.2), arr((32,), 0.1)
w2, b2 = arr((32, 40), 0.2), arr((40,), 0.1)
w3, w4 = arr((40, 1), 0.2), arr((40, 6), 0.2)
m.input("x", x)
b4 = arr((6,), 0.5)
for nm, a in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2), ("w3", w3), ("w4", w4), ("b4", b4)):
    m.init(nm, a)
m.node("h = Gemm<transB = 1>(x, w1, b1)")
m.node("r = Relu(h)")
m.node("p = MatMul(r, w2)")
m.node("q = Add(p, b2)")
m.node("g = Gelu(q)")
m.node("v = Gemm(g, w3)")
m.node("y1 = Tanh(v)")
m.node("u0 = Gemm<beta = 0.5>(g, w4)")
m.node("u = Add(u0, b4)")
m.node("y2 = Elu<alpha = 0.5>(u)")
m.node("y3 = Sigmoid(y2)")
m.output("y1", (4, 1)); m.output("y2", (4, 6)); m.output("y3", (4, 6))
H = F.relu(t64(x) @ t64(w1).T + t64(b1))
G = F.gelu(H @ t64(w2) + t64(b2))
U = F.elu(G @ t64(w4) + t64(b4), 0.5)
# u0 has beta = 0.5 and no C: the bias Add must not become its C (it would be halved)
run_case(m, ["kdcc.FusedGemm", "kdcc.FusedGemm", "kdcc.FusedGemm", "Gemm", "Add", "Elu", "Sigmoid"],
         [torch.tanh(G @ t64(w3)), U, torch.sigmoid(U)])

# ---- BatchNormalization folded into Gemm and MatMul: transB with alpha and a
#      per-column C under beta, then Relu (one row: the layout pass also transposes
#      its weight); MatMul -> Gemm with the folded bias; Gemm without transB with a
#      one-element C under beta; four rows through the dot-product kernel
m = Model("bn_gemm")
x, x2 = arr((1, 24)), arr((4, 24))
w1, c1, w2, w3, cs, w4 = arr((32, 24), 0.2), arr((32,), 0.1), arr((32, 40), 0.2), arr((32, 16), 0.2), arr((1,), 0.3), arr((32, 24), 0.2)
m.input("x", x); m.input("x2", x2)
bns = {}
for nm, a in (("w1", w1), ("c1", c1), ("w2", w2), ("w3", w3), ("cs", cs), ("w4", w4)):
    m.init(nm, a)
for i, n in ((1, 32), (2, 40), (3, 16), (4, 32)):
    bns[i] = (arr((n,)), arr((n,)), arr((n,)), (np.abs(arr((n,))) + 0.5).astype(np.float32))
    for nm, a in zip(("sc", "bi", "mu", "var"), bns[i]):
        m.init("%s%d" % (nm, i), a)
m.node("h = Gemm<transB = 1, alpha = 0.7, beta = 0.5>(x, w1, c1)")
m.node("n1 = BatchNormalization<epsilon = 0.001>(h, sc1, bi1, mu1, var1)")
m.node("r = Relu(n1)")
m.node("p = MatMul(r, w2)")
m.node("y1 = BatchNormalization(p, sc2, bi2, mu2, var2)")
m.node("q = Gemm<beta = 2.0>(r, w3, cs)")
m.node("y2 = BatchNormalization(q, sc3, bi3, mu3, var3)")
m.node("u = Gemm<transB = 1>(x2, w4)")
m.node("y3 = BatchNormalization(u, sc4, bi4, mu4, var4)")
m.output("y1", (1, 40)); m.output("y2", (1, 16)); m.output("y3", (4, 32))


def bn64(v, i, eps=1e-5):
    sc, bi, mu, var = (t64(a) for a in bns[i])
    return (v - mu) / torch.sqrt(var + eps) * sc + bi


R = F.relu(bn64(0.7 * t64(x) @ t64(w1).T + 0.5 * t64(c1), 1, 1e-3))
run_case(m, ["kdcc.FusedGemm", "Gemm", "Gemm", "Gemm"],
         [bn64(R @ t64(w2), 2), bn64(R @ t64(w3) + 2.0 * t64(cs), 3), bn64(t64(x2) @ t64(w4).T, 4)])

# ---- batched MatMul + bias + HardSigmoid + residual; Gelu tanh approximation
m = Model("matmul_batched", opset=20)
x, w, b, r = arr((3, 5, 16)), arr((16, 20), 0.3), arr((20,), 0.2), arr((3, 5, 20))
m.input("x", x); m.input("r", r)
m.init("w", w); m.init("b", b)
m.node("p = MatMul(x, w)")
m.node("q = Add(b, p)")
m.node("h = HardSigmoid<alpha = 0.3, beta = 0.4>(q)")
m.node("s = Sub(r, h)")
m.node("y = Gelu<approximate = \"tanh\">(s)")
m.output("y", (3, 5, 20))
Q = t64(x) @ t64(w) + t64(b)
run_case(m, ["kdcc.FusedMatMul"], [F.gelu(t64(r) - torch.clamp(0.3 * Q + 0.4, 0, 1), approximate="tanh")])

# ---- elementwise chains: one loop; Div by a scalar, reversed Sub, Softplus
m = Model("chains")
x, r = arr((2, 3, 8)), arr((2, 3, 8))
m.input("x", x); m.input("r", r)
m.init("two", np.array([2.0], np.float32)); m.init("one", np.array([[[1.0]]], np.float32))
m.node("a = Div(x, two)")
m.node("b = Sub(one, a)")
m.node("c = Mul(b, r)")
m.node("d = Softplus(c)")
m.node("e = Exp(r)")
m.node("y = Add(d, e)")
m.output("y", (2, 3, 8))
run_case(m, ["Exp", "kdcc.Fused"], [F.softplus((1 - t64(x) / 2) * t64(r)) + torch.exp(t64(r))])

# ---- no fusion: a Conv output read twice, a Gemm output that is a graph output,
#      an Add that broadcasts the Conv output, a Relu of an integer tensor
m = Model("no_fusion")
x, w, w2 = arr((1, 2, 5, 5)), arr((4, 2, 3, 3), 0.3), arr((4, 4), 0.3)
big = arr((3, 4, 3, 3))
m.input("x", x); m.input("big", big)
m.init("w", w); m.init("w2", w2)
m.node("c = Conv(x, w)")
m.node("r = Relu(c)")
m.node("s = Sigmoid(c)")
m.node("t = Add(c, big)")
m.node("f = Flatten(r)")
m.node("g = Gemm(f, w2)")
m.node("y2 = Relu(g)")
m.output("t", (3, 4, 3, 3)); m.output("s", (1, 4, 3, 3)); m.output("g", (1, 4)); m.output("y2", (1, 4))
m.outputs = ["float[3,4,3,3] t", "float[1,4,3,3] s", "float[1,4] g", "float[1,4] y2"]
C = F.conv2d(t64(x), t64(w))
G = F.relu(C).reshape(1, 36)
# Flatten of [1,4,3,3] is [1,36]: w2 must be [36,4]
m.inits[1] = None
w2 = arr((36, 4), 0.2)
m.inits = [i for i in m.inits if i] + ["%s w2 = %s" % (tstr(w2), lit(w2))]
G = G @ t64(w2)
run_case(m, ["Conv", "Relu", "Sigmoid", "Add", "Flatten", "Gemm", "Relu"],
         [C + t64(big), torch.sigmoid(C), G, F.relu(G)])

# ---- transposes: a pair that cancels (an Identity, a view), a pair that composes,
#      a Transpose folded into Gemm's transA and into a 2-D MatMul (then a Gemm with
#      transB, whose Relu joins its epilogue)
m = Model("transposes")
x3, a2, x2, r = arr((2, 3, 4)), arr((5, 4)), arr((4, 5)), arr((7, 5))
w, b = arr((5, 3), 0.3), arr((3,), 0.1)
m.input("x3", x3); m.input("a2", a2); m.input("x2", x2); m.input("r", r)
m.init("w", w); m.init("b", b)
m.node("t1 = Transpose<perm = [0, 2, 1]>(x3)")
m.node("t2 = Transpose<perm = [0, 2, 1]>(t1)")
m.node("y1 = Sigmoid(t2)")
m.node("u1 = Transpose<perm = [1, 0, 2]>(x3)")
m.node("y2 = Transpose<perm = [0, 2, 1]>(u1)")
m.node("at = Transpose(a2)")
m.node("y3 = Gemm(at, w, b)")
m.node("rt = Transpose<perm = [1, 0]>(r)")
m.node("p = MatMul(x2, rt)")
m.node("y4 = Relu(p)")
m.output("y1", (2, 3, 4)); m.output("y2", (3, 4, 2)); m.output("y3", (4, 3)); m.output("y4", (4, 7))
run_case(m, ["Identity", "Sigmoid", "Transpose", "Gemm", "kdcc.FusedGemm"],
         [torch.sigmoid(t64(x3)), t64(x3).permute(1, 0, 2).permute(0, 2, 1), t64(a2).T @ t64(w) + t64(b),
          F.relu(t64(x2) @ t64(r).T)])

check.finish()
