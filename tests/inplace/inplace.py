"""tests/inplace: outputs written over their inputs in place (OpDef.inplace,
passes/plan.c). For each model in the ONNX textual syntax: the --report rows say
which outputs are in place of which input, and the totals give the arena, lower
bound, in-place bytes and the bound without in-place writing worked out by hand
below; the header's workspace is the report's arena; the node functions of
in-place nodes have no restrict on the two parameters that share bytes (and keep
it on the others); the emitted C builds with gcc and clang under -std=c99 -Wall
-Wextra -Wpedantic -Werror and under -fsanitize=address,undefined, and every
build's outputs match numpy's in double (an independent reference).

usage: inplace.py KDCC WORKDIR   (Debian's /usr/bin/python3 with numpy)
"""
import os
import re
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from kdtest import Checks, lit, randn, tstr  # noqa: E402

KDCC, WORK = sys.argv[1], sys.argv[2]
os.makedirs(WORK, exist_ok=True)
rng = np.random.default_rng(4321)


def arr(shape, scale=1.0):
    return randn(rng, shape, scale)

check = Checks()


def model(name, inputs, outputs, inits, nodes):
    s = "<\n   ir_version: 8,\n   opset_import: [\"\" : 17]\n>\n"
    s += "%s (%s) => (%s)\n" % (name, ", ".join("%s %s" % (tstr(a), n) for n, a in inputs),
                                ", ".join(outputs))
    s += "<\n   " + ",\n   ".join("%s %s = %s" % (tstr(a), n, lit(a)) for n, a in inits) + "\n>\n"
    s += "{\n" + "".join("   %s\n" % n for n in nodes) + "}\n"
    return s


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def softmax(v, axis):
    e = np.exp(v - v.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def total(rep, key):
    m = re.search(r"^  %s +(\d+) bytes" % re.escape(key), rep, re.M)
    return int(m.group(1)) if m else None


def row(rep, i):
    """the report row of node i, its spacing squeezed"""
    for line in rep.splitlines()[1:]:
        if re.match(r"^ *%d  " % i, line):
            return " ".join(line.split())
    return None


def signature(csrc, i):
    m = re.search(r"^static void kd_n%d_\w+\((.*)\)$" % i, csrc, re.M)
    return m.group(1) if m else None


def builds_and_matches(name, d, feeds, ref):
    """the emitted m.c with a driver: built by gcc and clang (strict) and by gcc with
    the sanitizers; each program's output against ref"""
    drv = ["#include <stdio.h>", "#include \"m.h\""]
    for k in range(len(feeds)):
        drv.append("static float in%d[M_IN%d_COUNT];" % (k, k))
    drv.append("static float out0[M_OUT0_COUNT];")
    drv.append("int main(void) {")
    drv.append("    FILE *f;")
    for k in range(len(feeds)):
        drv.append("    f = fopen(\"in%d.bin\", \"rb\"); if (!f || fread(in%d, sizeof in%d, 1, f) != 1) return 2; fclose(f);"
                   % (k, k, k))
    drv.append("    if (m_run(%s, out0)) return 3;" % ", ".join("in%d" % k for k in range(len(feeds))))
    drv.append("    f = fopen(\"out0.bin\", \"wb\"); if (!f || fwrite(out0, sizeof out0, 1, f) != 1) return 4; fclose(f);")
    drv.append("    return 0;\n}")
    with open(os.path.join(d, "main.c"), "w") as f:
        f.write("\n".join(drv) + "\n")
    for k, a in enumerate(feeds):
        np.asarray(a, dtype=np.float32).tofile(os.path.join(d, "in%d.bin" % k))
    strict = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror"]
    builds = [("gcc", ["gcc", "-O2"] + strict), ("clang", ["clang", "-O2"] + strict),
              ("sanitize", ["gcc", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"] + strict)]
    for tag, cmd in builds:
        if not shutil.which(cmd[0]):
            print("skip %s_%s: no %s" % (name, tag, cmd[0]))
            continue
        r = subprocess.run(cmd + ["-o", "prog_" + tag, "main.c", "m.c", "-lm"], cwd=d, capture_output=True, text=True)
        if r.returncode != 0:
            check("%s_%s_builds" % (name, tag), False, r.stderr.strip()[:600])
            continue
        if os.path.exists(os.path.join(d, "out0.bin")):
            os.remove(os.path.join(d, "out0.bin"))
        r = subprocess.run(["./prog_" + tag], cwd=d, capture_output=True, text=True)
        if r.returncode != 0:
            check("%s_%s_runs" % (name, tag), False, "exit %d: %s" % (r.returncode, r.stderr.strip()[:600]))
            continue
        got = np.fromfile(os.path.join(d, "out0.bin"), dtype=np.float32).astype(np.float64)
        want = np.asarray(ref, dtype=np.float64).ravel()
        err = np.max(np.abs(got - want) / (1 + np.abs(want)))
        check("%s_%s_output" % (name, tag), got.shape == want.shape and err <= 1e-5,
              "max relative error %.3g" % err)


def compile_case(name, text):
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    src = os.path.join(d, "model.txt")
    with open(src, "w") as f:
        f.write(text)
    r = subprocess.run([KDCC, src, "-o", os.path.join(d, "m.c"), "--name", "m", "--report"],
                       capture_output=True, text=True)
    check(name + "_compiles", r.returncode == 0, r.stderr.strip()[:400])
    if r.returncode != 0:
        return d, "", "", ""
    csrc = open(os.path.join(d, "m.c")).read()
    hdr = open(os.path.join(d, "m.h")).read()
    # the same model again: the same file (the in-place choices are deterministic)
    os.makedirs(os.path.join(d, "again"), exist_ok=True)
    r2 = subprocess.run([KDCC, src, "-o", os.path.join(d, "again", "m.c"), "--name", "m"], capture_output=True, text=True)
    check(name + "_deterministic", r2.returncode == 0 and open(os.path.join(d, "again", "m.c")).read() == csrc)
    return d, r.stdout, csrc, hdr


def expect_totals(name, rep, hdr, want):
    for key, v in want.items():
        got = total(rep, key)
        check("%s_%s" % (name, key.replace(" ", "_")), got == v, "got %s, want %s" % (got, v))
    m = re.search(r"^#define M_WORKSPACE_BYTES (\d+)$", hdr, re.M)
    check(name + "_header_workspace", m is not None and int(m.group(1)) == want["arena"],
          "header says %s" % (m.group(1) if m else None))


def expect_row(name, rep, i, want):
    got = row(rep, i)
    check("%s_row%d" % (name, i), got == want, "got '%s', want '%s'" % (got, want))


def expect_sig(name, csrc, i, want):
    got = signature(csrc, i)
    check("%s_params%d" % (name, i), got == want, "got '%s', want '%s'" % (got, want))


# ---- chain: a = MatMul(x, W1) [2,64] (512 bytes); Sigmoid and Mul fuse into one
# node c = kdcc.Fused(a, a) (steps Sigmoid, Mul by a: swish); then
# BatchNormalization (inference form: not folded, there is no Conv before it) and
# Softmax along the last axis. a dies at the fused node, c at the BatchNormalization,
# n at the Softmax: each is written in place of the one before, so one 512-byte
# storage (a's) lives 0..4 (p is read by the last MatMul).
#   with in place: live bytes 512 at every node 0..4 -> bound 512, arena 512
#   without: node 1 holds a and c, node 2 c and n, node 3 n and p -> bound 1024
#   in place: c n p = 1536 bytes (3 outputs); no reuse: a c n p = 2048
x, W1, W2 = arr((2, 64)), arr((64, 64), 0.2), arr((64, 8), 0.2)
sc, bi, mu, var = arr((64,)), arr((64,)), arr((64,)), (np.abs(arr((64,))) + 0.5).astype(np.float32)
text = model("chain", [("x", x)], ["float[2,8] y"],
             [("W1", W1), ("W2", W2), ("sc", sc), ("bi", bi), ("mu", mu), ("var", var)],
             ["a = MatMul(x, W1)", "s = Sigmoid(a)", "c = Mul(a, s)",
              "n = BatchNormalization<epsilon = 0.001>(c, sc, bi, mu, var)", "p = Softmax(n)", "y = MatMul(p, W2)"])
X, A = x.astype(np.float64), x.astype(np.float64) @ W1.astype(np.float64)
C = A * sigmoid(A)
N = (C - mu.astype(np.float64)) / np.sqrt(var.astype(np.float64) + 1e-3) * sc + bi
ref = softmax(N, -1) @ W2.astype(np.float64)
d, rep, csrc, hdr = compile_case("chain", text)
if rep:
    expect_row("chain", rep, 0, "0 #0 MatMul a float[2,64] 8192 512 0 0..4")
    expect_row("chain", rep, 1, "1 #1 kdcc.Fused c float[2,64] - 512 in place of a")
    expect_row("chain", rep, 2, "2 #2 BatchNormalization n float[2,64] - 512 in place of c")
    expect_row("chain", rep, 3, "3 #3 Softmax p float[2,64] - 512 in place of n")
    expect_totals("chain", rep, hdr, {"arena": 512, "lower bound": 512, "in place": 1536, "no in place": 1024,
                                      "no reuse": 2048})
    # the two operands and the output of the fused node are all a's bytes; the
    # BatchNormalization's statistics keep restrict, and so does its row pointer pair
    # only when not in place (here it is: no restrict on xp/yp)
    expect_sig("chain", csrc, 1, "const float *x0, const float *x1, float *y0")
    expect_sig("chain", csrc, 2, "const float *x0, const float *restrict x1, const float *restrict x2, "
                                 "const float *restrict x3, const float *restrict x4, float *y0")
    body = csrc.split("kd_n2_BatchNormalization(", 1)[1].split("\n}\n", 1)[0]
    check("chain_bn_rows_not_restrict", "*restrict xp" not in body and "*restrict yp" not in body and "*xp" in body)
    expect_sig("chain", csrc, 0, "const float *restrict x0, const float *restrict x1, float *restrict y0")
    builds_and_matches("chain", d, [x], ref)

# ---- which input: a = MatMul(x, W1) [2,16] (128 bytes); r = Relu(a) cannot take a's
# bytes (a is read again by z); z = Add(r, a) and q = Mul(z, r) fuse into
# q = kdcc.Fused(r, a, r), written over r (its first operand, dead after it); k =
# MatMul(x, V) [2,1] (8 bytes) is broadcast in b = Sub(k, q), so b takes q's bytes
# (input 1), never k's.
#   storages: a 0..2, r 1..5 (r, q, b: b is read at 5), k 3..4 (16 bytes aligned)
#   live: 128, 256, 256, 136, 136, 128 -> bound 256; placed a@0, r@128, k@0 -> arena 256
#   without in place: node 2 holds a r q = 384 (node 4: q k b = 264) -> 384
#   in place: q b = 256 (2 outputs); no reuse: a r q k b = 520
x, W1, V, W2 = arr((2, 16)), arr((16, 16), 0.5), arr((16, 1), 0.5), arr((16, 4), 0.5)
text = model("which", [("x", x)], ["float[2,4] y"], [("W1", W1), ("V", V), ("W2", W2)],
             ["a = MatMul(x, W1)", "r = Relu(a)", "z = Add(r, a)", "q = Mul(z, r)", "k = MatMul(x, V)",
              "b = Sub(k, q)", "y = MatMul(b, W2)"])
X = x.astype(np.float64)
A = X @ W1
R = np.maximum(A, 0)
ref = (X @ V - (R + A) * R) @ W2
d, rep, csrc, hdr = compile_case("which", text)
if rep:
    expect_row("which", rep, 1, "1 #1 Relu r float[2,16] - 128 128 1..5")
    expect_row("which", rep, 2, "2 #2 kdcc.Fused q float[2,16] - 128 in place of r")
    expect_row("which", rep, 3, "3 #3 MatMul k float[2,1] 32 8 0 3..4")
    expect_row("which", rep, 4, "4 #4 Sub b float[2,16] - 128 in place of q")
    expect_totals("which", rep, hdr, {"arena": 256, "lower bound": 256, "in place": 256, "no in place": 384,
                                      "no reuse": 520})
    expect_sig("which", csrc, 1, "const float *restrict x0, float *restrict y0")
    expect_sig("which", csrc, 2, "const float *x0, const float *restrict x1, const float *x2, float *y0")
    expect_sig("which", csrc, 4, "const float *restrict x0, const float *x1, float *y0")
    builds_and_matches("which", d, [x], ref)

# ---- not in place: Relu of the graph input (the caller's buffer), Softmax along
# axis 1 of [2,8,16] (not the last axis), Casts (other element types); in place:
# LogSoftmax along the last axis over the Softmax's output.
#   a s t d are 1024 bytes (float), c 2048 (double); storages a 0..1, s 1..3 (s, t),
#   c 3..4, d 4..5; live: 1024, 2048, 1024, 3072, 3072, 1024 -> bound 3072;
#   placed c@0, a@0, s@2048 (over c and a), d@2048 -> arena 3072. Without in place
#   node 3 holds t and c: 3072 too (in place saves nothing here); no reuse 6144
x, W2 = arr((2, 8, 16)), arr((16, 4), 0.5)
text = model("notinplace", [("x", x)], ["float[2,8,4] y"], [("W2", W2)],
             ["a = Relu(x)", "s = Softmax<axis = 1>(a)", "t = LogSoftmax<axis = -1>(s)", "c = Cast<to = 11>(t)",
              "d = Cast<to = 1>(c)", "y = MatMul(d, W2)"])
S = softmax(np.maximum(x.astype(np.float64), 0), 1)
ref = np.log(softmax(S, -1)) @ W2
d, rep, csrc, hdr = compile_case("notinplace", text)
if rep:
    expect_row("notinplace", rep, 0, "0 #0 Relu a float[2,8,16] - 1024 0 0..1")
    expect_row("notinplace", rep, 1, "1 #1 Softmax s float[2,8,16] - 1024 2048 1..3")
    expect_row("notinplace", rep, 2, "2 #2 LogSoftmax t float[2,8,16] - 1024 in place of s")
    expect_row("notinplace", rep, 3, "3 #3 Cast c double[2,8,16] - 2048 0 3..4")
    expect_totals("notinplace", rep, hdr, {"arena": 3072, "lower bound": 3072, "in place": 1024,
                                           "no in place": 3072, "no reuse": 6144})
    builds_and_matches("notinplace", d, [x], ref)

# the checks can fail: a wrong figure, a wrong row
if rep:
    check("check_rejects_wrong_total", total(rep, "arena") != 2048)
    check("check_rejects_wrong_row", row(rep, 2) != "2 #2 LogSoftmax t float[2,8,16] - 1024 1024 2..3")

check.finish()
