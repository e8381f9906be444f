"""tests/kernels: the depthwise and pointwise Conv kernels of compiler/ops/conv_dw.c,
and the padded-plane (phase planes for strides), im2col and channel-vector kernels
of compiler/ops/conv.c, and its channel-dot kernel (tiny maps of many input channels).

Each case is a small model in the ONNX textual syntax; the compiled C must give the
outputs PyTorch computes in double from the same float weights and inputs (an
independent reference), and the generated C must show that the kernel under test
took the layer (its comment line), or, for the targets without kernel scratch, that
it did not. Shapes reach the edges: odd sizes, stride 2 and 3, asymmetric padding,
dilation 2, kernels wider than tall and past the written-out tap count, 1-D, group ==
C with a channel multiplier of 2 and 3, two channels per group, pixel counts that
are not a multiple of the block or of the vector, channel counts that are not a
multiple of the block, grouped 1x1, batch 2, and fused epilogues (Relu, Clip, a
residual Add). The pointwise kernel honours --tune's block: each candidate block is
forced through a tune file and checked.

usage: kernels.py KDCC WORKDIR [--sanitized]   (Debian's /usr/bin/python3 with numpy and torch)
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
# --sanitized (set by CMake when kdcc itself is built with ASan/UBSan): that build
# checks kdcc's own code paths, so kdcc still runs on every case, target and forced
# block (with the checks on the C it writes), but only each case's default C is built
# and compared with PyTorch; the emitted C, the same in both builds, is built and
# compared for cortex-m4 and every block in the normal run. The --tune run that gives
# the layer's key uses a stand-in compiler whose harness reports a fixed time (the real
# --tune is tests/tune's, under the sanitizers too). In full, 202 s under the
# sanitizers: 101 s in the 17 --tune runs (10 candidates built and timed each), 78 s
# in 165 builds of emitted C at -O3.
SANITIZED_KDCC = "--sanitized" in sys.argv[3:]
os.makedirs(WORK, exist_ok=True)
CC = os.environ.get("CC", "cc")
FAKE_CC = os.path.join(WORK, "fake-cc.sh")
if SANITIZED_KDCC:
    with open(FAKE_CC, "w") as f:
        f.write('#!/bin/sh\n# kernels.py --sanitized: $CC for kdcc --tune; the "harness" it builds says 1000 ns\n'
                'while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done\n'
                'printf \'#!/bin/sh\\necho 1000\\n\' >"$out" && chmod +x "$out"\n')
    os.chmod(FAKE_CC, 0o755)
rng = np.random.default_rng(4321)


def arr(shape, scale=1.0):
    return randn(rng, shape, scale)

check = Checks()


class Model:
    def __init__(self, name):
        self.name = name
        self.inits, self.inputs, self.nodes, self.feeds = [], [], [], {}
        self.out = None

    def init(self, name, a):
        self.inits.append("%s %s = %s" % (tstr(a), name, lit(a)))

    def input(self, name, a):
        self.inputs.append("%s %s" % (tstr(a), name))
        self.feeds[name] = a

    def node(self, text):
        self.nodes.append(text)

    def text(self):
        s = "<\n   ir_version: 8,\n   opset_import: [\"\" : 17]\n>\n"
        s += "%s (%s) => (%s)\n" % (self.name, ", ".join(self.inputs), self.out)
        s += "<\n   " + ",\n   ".join(self.inits) + "\n>\n"
        return s + "{\n" + "".join("   %s\n" % n for n in self.nodes) + "}\n"


def build_run(m, d, opts, run=True):
    """Compile m into directory d with kdcc options opts, run it; (C text, outputs) or None.
    run=False: kdcc alone, (C text, None)."""
    os.makedirs(d, exist_ok=True)
    src = os.path.join(d, "model.txt")
    with open(src, "w") as f:
        f.write(m.text())
    r = subprocess.run([KDCC, src, "-o", os.path.join(d, "m.c"), "--name", "m"] + opts, capture_output=True, text=True)
    if r.returncode != 0:
        check(os.path.basename(d) + "_compiles", False, r.stderr.strip()[:400])
        return None
    if not run:
        with open(os.path.join(d, "m.c")) as f:
            return f.read(), None
    nin = len(m.feeds)
    drv = ["#include <stdio.h>", "#include \"m.h\""]
    drv += ["static float in%d[M_IN%d_COUNT];" % (k, k) for k in range(nin)]
    drv += ["static float out0[M_OUT0_COUNT];", "int main(void) {", "    FILE *f;"]
    for k in range(nin):
        drv.append("    f = fopen(\"in%d.bin\", \"rb\"); if (!f || fread(in%d, sizeof in%d, 1, f) != 1) return 2; fclose(f);"
                   % (k, k, k))
    drv.append("    if (m_run(%s)) return 3;" % ", ".join(["in%d" % k for k in range(nin)] + ["out0"]))
    drv.append("    f = fopen(\"out0.bin\", \"wb\"); if (!f || fwrite(out0, sizeof out0, 1, f) != 1) return 4; fclose(f);")
    drv.append("    return 0;\n}")
    with open(os.path.join(d, "main.c"), "w") as f:
        f.write("\n".join(drv) + "\n")
    for k, a in enumerate(m.feeds.values()):
        np.asarray(a, dtype=np.float32).tofile(os.path.join(d, "in%d.bin" % k))
    # the flags of the benchmark (vectorised, contracted) and the strict C99 warnings
    r = subprocess.run([CC, "-std=c99", "-O3", "-march=native", "-ffp-contract=fast", "-Wall", "-Wextra", "-Wpedantic",
                        "-Werror", "-o", "prog", "main.c", "m.c", "-lm"], cwd=d, capture_output=True, text=True)
    if r.returncode != 0:
        check(os.path.basename(d) + "_c_builds", False, r.stderr.strip()[:600])
        return None
    r = subprocess.run(["./prog"], cwd=d, capture_output=True, text=True)
    if r.returncode != 0:
        check(os.path.basename(d) + "_runs", False, "exit %d" % r.returncode)
        return None
    with open(os.path.join(d, "m.c")) as f:
        ctext = f.read()
    return ctext, np.fromfile(os.path.join(d, "out0.bin"), dtype=np.float32).astype(np.float64)


def compare(name, got, ref, tol=1e-4):
    ref = np.asarray(ref, dtype=np.float64).ravel()
    err = np.max(np.abs(got - ref) / (1 + np.abs(ref))) if ref.size and got.shape == ref.shape else float("inf")
    check(name, err <= tol, "max relative error %.3g (tolerance %.1g)" % (err, tol))


def case(m, ref, kernel, blocks=(), groups=1, m4=False, v4=None):
    """kernel: 'depthwise', 'pointwise', 'padded plane' or 'im2col', the comment the kernel writes.
    m4: the kernel also takes the layer on cortex-m4 (a pointwise layer of one group
    with constant weights, which passes/layout.c stores input-channel-major: no scratch).
    v4: also built for x86-64-v4, whose C must match this regex (its 16-float vectors)."""
    ref = ref.numpy() if isinstance(ref, torch.Tensor) else ref
    m.out = "float[%s] y" % ",".join(str(d) for d in ref.shape)
    d = os.path.join(WORK, m.name)
    res = build_run(m, d, [])
    if res:
        check(m.name + "_takes_" + kernel, "/* %s:" % kernel in res[0], "the generated C has no '/* %s:' line" % kernel)
        compare(m.name + "_output", res[1], ref)
    # no kernel scratch (cortex-m4): the layer takes another path, with the same numbers
    res = build_run(m, d + "_m4", ["--target", "cortex-m4"], run=not SANITIZED_KDCC)
    if res and m4:
        check(m.name + "_m4_in_place", re.search(r"/\* %s:.*input-channel-major" % kernel, res[0]) is not None,
              "cortex-m4 did not take the %s kernel with the weights in place" % kernel)
    elif res:
        check(m.name + "_m4_without_" + kernel, "/* %s:" % kernel not in res[0], "cortex-m4 took the %s kernel" % kernel)
    if res and res[1] is not None:
        compare(m.name + "_m4_output", res[1], ref)
    if v4:
        res = build_run(m, d + "_v4", ["--target", "x86-64-v4"], run=not SANITIZED_KDCC)
        if res:
            check(m.name + "_v4_takes_" + kernel, "/* %s:" % kernel in res[0], "x86-64-v4: no '/* %s:' line" % kernel)
            check(m.name + "_v4_lanes", re.search(v4, res[0]) is not None, "x86-64-v4: no match for %s" % v4)
            if res[1] is not None:
                compare(m.name + "_v4_output", res[1], ref)
    if blocks:
        # the tune file's key for the layer, from one --tune run; then each block forced
        t = os.path.join(d, "t")
        os.makedirs(t, exist_ok=True)
        if os.path.exists(os.path.join(t, "m.tune")):
            os.remove(os.path.join(t, "m.tune"))
        env = dict(os.environ, KDCC_TUNE_CFLAGS="-O1")
        if SANITIZED_KDCC:
            env["CC"] = FAKE_CC
        r = subprocess.run([KDCC, os.path.join(d, "model.txt"), "-o", os.path.join(t, "m.c"), "--name", "m", "--tune"],
                           capture_output=True, text=True, env=env)
        lines = []
        if r.returncode == 0:
            with open(os.path.join(t, "m.tune")) as f:
                lines = [l for l in f.read().splitlines() if l and not l.startswith("#")]
        check(m.name + "_tunable", len(lines) == 1, "tune: %s; lines %s" % (r.stderr.strip()[:300], lines))
        for blk in blocks:
            tf = os.path.join(d, "b%s.tune" % blk)
            with open(tf, "w") as f:
                f.write("".join(re.sub(r"\t\d+x\d+\t", "\t%s\t" % blk, l) + "\n" for l in lines))
            res = build_run(m, os.path.join(d, "b" + blk), ["--tune-file", tf], run=not SANITIZED_KDCC)
            if res:
                # the block's first dim: channels (clamped to the group's), or pixels
                # (clamped to the map's) in the channel-vector form for few pixels
                mr = int(blk.split("x")[0])
                got = re.search(r"/\* %s: blocks of (\d+) (channels|pixels)" % kernel, res[0])
                lim = ref.shape[1] // groups if got and got.group(2) == "channels" else int(np.prod(ref.shape[2:]))
                check("%s_block_%s_used" % (m.name, blk), got and int(got.group(1)) == min(mr, lim),
                      "block not used: %s" % (got.group(0) if got else "no %s kernel" % kernel))
                if res[1] is not None:
                    compare("%s_block_%s_output" % (m.name, blk), res[1], ref)


def dw(name, n, c, mult, h, w_, k, stride=(1, 1), pads=(0, 0, 0, 0), dil=(1, 1), cpg=1, epi=None):
    """Depthwise-style Conv: c input channels in groups of cpg, mult output channels per group."""
    g = c // cpg
    m = Model(name)
    x = arr((n, c, h, w_))
    wt, b = arr((g * mult, cpg) + tuple(k), 0.3), arr((g * mult,), 0.1)
    m.input("x", x)
    m.init("w", wt)
    m.init("b", b)
    m.node("c = Conv<group = %d, strides = [%d, %d], pads = [%d, %d, %d, %d], dilations = [%d, %d]>(x, w, b)"
           % ((g,) + tuple(stride) + tuple(pads) + tuple(dil)))
    ref = F.conv2d(t64(x), t64(wt), t64(b), stride=stride, dilation=dil, groups=g,
                   padding=0) if pads == (0, 0, 0, 0) else None
    if ref is None:
        xp = F.pad(t64(x), (pads[1], pads[3], pads[0], pads[2]))
        ref = F.conv2d(xp, t64(wt), t64(b), stride=stride, dilation=dil, groups=g)
    return m, x, ref


def finish(m, ref, epi, x_like=None):
    if epi == "relu":
        m.node("y = Relu(c)")
        return F.relu(ref)
    if epi == "clip":
        m.init("lo", np.array([0], np.float32))
        m.init("hi", np.array([6], np.float32))
        m.node("y = Clip(c, lo, hi)")
        return torch.clamp(ref, 0, 6)
    if epi == "add":
        r = arr(tuple(ref.shape))
        m.input("r", r)
        m.node("s = Add(c, r)")
        m.node("y = Relu(s)")
        return F.relu(ref + t64(r))
    m.node("y = Identity(c)")
    return ref


# built for x86-64-v4 as well: the flat depthwise form in vectors of 16 pixels (in place,
# over phase planes, DS-CNN's 25 x 5 map, two outputs per channel)
V4_DW = r"q0 \+= 16\)"
V4_DW_CASES = {"dw_narrow_25x5", "dws_odd_relu", "dws_mult2_add", "dwf_inplace_relu", "dwf_inplace_asym", "dwf1d_inplace"}

# ---- depthwise
for spec in [
    ("dw3x3_relu", dict(n=1, c=5, mult=1, h=7, w_=9, k=(3, 3), pads=(1, 1, 1, 1)), "relu"),
    ("dw3x3_s2_clip", dict(n=2, c=6, mult=1, h=11, w_=10, k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1)), "clip"),
    ("dw3x3_s2_asym", dict(n=1, c=4, mult=1, h=12, w_=13, k=(3, 3), stride=(2, 2), pads=(0, 1, 2, 0)), None),
    ("dw3x3_dil2", dict(n=1, c=3, mult=1, h=9, w_=11, k=(3, 3), pads=(2, 2, 2, 2), dil=(2, 2)), "relu"),
    ("dw3x3_s2_dil2", dict(n=1, c=3, mult=1, h=13, w_=12, k=(3, 3), stride=(2, 2), pads=(2, 1, 2, 1), dil=(2, 2)), None),
    ("dw5x3_s3", dict(n=1, c=2, mult=1, h=16, w_=14, k=(5, 3), stride=(3, 2), pads=(2, 1, 1, 1)), None),
    ("dw_mult2_add", dict(n=1, c=4, mult=2, h=6, w_=7, k=(3, 3), pads=(1, 1, 1, 1)), "add"),
    ("dw_mult3_s2", dict(n=2, c=3, mult=3, h=13, w_=12, k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1)), "relu"),
    ("dw_2ch_per_group", dict(n=1, c=6, mult=1, h=8, w_=8, k=(3, 3), pads=(1, 1, 1, 1), cpg=2), "add"),
    ("dw9x9_loop", dict(n=1, c=2, mult=1, h=22, w_=21, k=(9, 9), pads=(4, 4, 4, 4)), "relu"),
    ("dw9x9_s2_loop", dict(n=1, c=2, mult=1, h=33, w_=32, k=(9, 9), stride=(2, 2), pads=(4, 3, 4, 3)), None),
    ("dw1x1_mult2", dict(n=1, c=3, mult=2, h=9, w_=8, k=(1, 1)), None),
    ("dw_narrow_25x5", dict(n=1, c=8, mult=1, h=25, w_=5, k=(3, 3), pads=(1, 1, 1, 1)), "relu"),
    # channels last (tiny maps of 16 or more channels, conv_dw.c's dwc_emit; its scratch
    # is within a one-node model's budget from 2-3 images on); at n=1 the last falls
    # back to the flat form
    ("dw_cl_3x3_relu", dict(n=2, c=24, mult=1, h=3, w_=3, k=(3, 3), pads=(1, 1, 1, 1)), "relu"),
    ("dw_cl_4x4_dil2_add", dict(n=3, c=16, mult=1, h=4, w_=4, k=(3, 3), pads=(2, 2, 2, 2), dil=(2, 2)), "add"),
    ("dw_cl_3x4_asym", dict(n=2, c=32, mult=1, h=3, w_=4, k=(3, 3), pads=(0, 1, 2, 1)), None),
    ("dw_cl_3x4_asym_flat", dict(n=1, c=32, mult=1, h=3, w_=4, k=(3, 3), pads=(0, 1, 2, 1)), None),
    # strided, flat over phase planes (conv_dw.c's dwf_phases): odd sizes, asymmetric
    # padding, dilation, a multiplier, one stride of 1, stride 3, chunks of fewer
    # channels (planes past DWF_L1_FLOATS), and channels last on tiny strided maps
    ("dws_odd_relu", dict(n=1, c=5, mult=1, h=47, w_=45, k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1)), "relu"),
    ("dws_asym_clip", dict(n=2, c=7, mult=1, h=15, w_=17, k=(3, 3), stride=(2, 2), pads=(0, 1, 1, 0)), "clip"),
    ("dws_pad_tb", dict(n=1, c=3, mult=1, h=14, w_=9, k=(3, 3), stride=(2, 2), pads=(2, 0, 0, 2)), None),
    ("dws_dil2", dict(n=1, c=3, mult=1, h=12, w_=13, k=(3, 3), stride=(2, 2), pads=(2, 2, 2, 2), dil=(2, 2)), "relu"),
    ("dws_mult2_add", dict(n=1, c=4, mult=2, h=11, w_=12, k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1)), "add"),
    ("dws_s1x2", dict(n=1, c=3, mult=1, h=9, w_=16, k=(3, 3), stride=(1, 2), pads=(1, 1, 1, 1)), None),
    ("dws_s2x1", dict(n=1, c=3, mult=1, h=16, w_=9, k=(3, 3), stride=(2, 1), pads=(1, 1, 1, 1)), None),
    ("dws_s3_5x5", dict(n=1, c=4, mult=1, h=20, w_=19, k=(5, 5), stride=(3, 3), pads=(2, 2, 2, 2)), "relu"),
    ("dws_cl_7x6", dict(n=2, c=16, mult=1, h=7, w_=6, k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1)), "clip"),
    ("dws_cl_6x6_asym", dict(n=3, c=24, mult=1, h=6, w_=6, k=(3, 3), stride=(2, 2), pads=(0, 0, 1, 1)), "add"),
    # stride 1, the plane read in place but for its first and last rows
    ("dwf_inplace_relu", dict(n=2, c=5, mult=1, h=30, w_=29, k=(3, 3), pads=(1, 1, 1, 1)), "relu"),
    ("dwf_inplace_asym", dict(n=1, c=3, mult=1, h=33, w_=20, k=(3, 5), pads=(0, 2, 2, 2)), None),
    ("dwf_inplace_dil2_mult2", dict(n=1, c=3, mult=2, h=26, w_=27, k=(3, 3), pads=(2, 2, 2, 2), dil=(2, 2)), "add"),
]:
    name, kw, epi = spec
    m, x, ref = dw(name, **kw)
    case(m, finish(m, ref, epi), "depthwise", v4=V4_DW if name in V4_DW_CASES else None)

# 1-D depthwise: stride 2 (phase-plane form, and flat), and stride 1 read in place
for name, c, length, k, stride, pads, epi in [("dw1d_s2", 4, 79, 5, 2, (2, 1), "relu"),
                                               ("dws1d_flat", 6, 63, 3, 2, (1, 1), "clip"),
                                               ("dwf1d_inplace", 3, 301, 5, 1, (2, 2), "relu")]:
    m = Model(name)
    x, wt = arr((1, c, length)), arr((c, 1, k), 0.3)
    m.input("x", x)
    m.init("w", wt)
    m.node("c = Conv<group = %d, strides = [%d], pads = [%d, %d]>(x, w)" % (c, stride, pads[0], pads[1]))
    ref = F.conv1d(F.pad(t64(x), pads), t64(wt), stride=stride, groups=c)
    case(m, finish(m, ref, epi), "depthwise", v4=V4_DW if name in V4_DW_CASES else None)

# which form the strided cases took: the flat one over phase planes, or channels last
for name in ["dw3x3_s2_clip", "dw3x3_s2_asym", "dw5x3_s3", "dw_mult3_s2", "dws_odd_relu", "dws_asym_clip",
             "dws_pad_tb", "dws_dil2", "dws_mult2_add", "dws_s1x2", "dws_s2x1", "dws_s3_5x5", "dws1d_flat",
             "dws_cl_7x6", "dws_cl_6x6_asym", "dwf_inplace_relu", "dwf_inplace_asym", "dwf_inplace_dil2_mult2",
             "dwf1d_inplace"]:
    want = "channels last" if "_cl_" in name else "flat over each input plane in place" if "inplace" in name else "flat over"
    try:
        with open(os.path.join(WORK, name, "m.c")) as f:
            text = f.read()
    except OSError:
        text = ""
    check(name + "_form", ("/* depthwise: " + want) in text, "no '/* depthwise: %s' line" % want)


# ---- pointwise
def pw(name, n, c, mo, h, w_, g=1, epi=None, bias=True, blocks=(), v4=None):
    m = Model(name)
    x, wt, b = arr((n, c, h, w_)), arr((mo, c // g, 1, 1), 0.3), arr((mo,), 0.1)
    m.input("x", x)
    m.init("w", wt)
    if bias:
        m.init("b", b)
    m.node("c = Conv<group = %d>(x, w%s)" % (g, ", b" if bias else ""))
    ref = F.conv2d(t64(x), t64(wt), t64(b) if bias else None, groups=g)
    case(m, finish(m, ref, epi), "pointwise", blocks, g, m4=g == 1, v4=v4)


ALL = ("8x16", "4x24", "4x32", "6x16", "8x8", "4x16", "8x24", "2x32", "3x8", "5x40")
pw("pw_tail_relu", 1, 6, 10, 7, 5, epi="relu", blocks=ALL)                 # P = 35, 10 channels
pw("pw_p64_add", 2, 16, 24, 8, 8, epi="add", blocks=("4x24", "8x16", "3x8"))  # P = 64, batch 2, residual
pw("pw_p9_nobias", 1, 16, 60, 3, 3, bias=False, blocks=ALL)    # P = 9: vectors over channels, 60 of them
pw("pw_p36_relu", 1, 40, 48, 6, 6, epi="relu", blocks=("4x24", "8x16", "5x40"))
pw("pw_group2_clip", 1, 16, 12, 5, 9, g=2, epi="clip")                    # grouped 1x1, P = 45
pw("pw_group2_p9", 1, 16, 32, 3, 3, g=2, epi="relu")   # grouped, vectors over channels, weights packed
pw("pw_m12_p9", 1, 24, 12, 3, 3, epi="add")    # 12 channels: the in-place rows padded to 16
# P not a whole number of vectors, >= 32 input channels: vectors over channels too
# with vectors of 8 floats; with 16 (x86-64-v4) over the pixels, the last block
# through a padded copy of its columns
pw("pw_p125_c64", 1, 64, 64, 25, 5, epi="relu", blocks=("2x32", "3x32", "4x24", "5x40"),   # DS-CNN's layer
   v4=r"/\* pointwise: blocks of \d+ channels x \d+ pixels")
pw("pw_p121_add", 2, 32, 40, 11, 11, epi="add", blocks=("3x32", "8x16"))   # batch 2, 40 channels: a last block of 8
m = Model("pw1d")
x, wt = arr((1, 12, 37)), arr((7, 12, 1), 0.3)
m.input("x", x)
m.init("w", wt)
m.node("c = Conv(x, w)")
case(m, finish(m, F.conv1d(t64(x), t64(wt)), None), "pointwise", m4=True)

# built for x86-64-v4 as well (16-float accumulator arrays): rows of 28, 37 and 16
# columns, im2col panels of one image and of several
V4_ACC = r"float c\d+_\d+\[16\];"
V4_CASES = {"pl_c1_3x3_relu", "pl_5x3_wide", "ph_16to32_s2", "ic_s2_relu", "ic_s2_batch5_add"}

def check_bands(name, ref):
    """A case named *bands*: its planes went in more than one band, the last one partial."""
    if "bands" not in name:
        return
    c = open(os.path.join(WORK, name, "m.c")).read()
    bands = re.search(r"/\* in (\d+) bands of (\d+) output rows", c)
    check(name + "_in_bands", bands is not None and int(bands.group(1)) > 1 and
          int(bands.group(1)) * int(bands.group(2)) != ref.shape[2], "bands: %s" % (bands.group(0) if bands else "none"))


# ---- padded plane and im2col (compiler/ops/conv.c): dense layers; blocks of whole
# output rows with partial blocks at the right edge and the bottom; the plane when
# the im2col panel exceeds the scratch budget; every candidate block forced
for spec in [
    # 1 input channel (the distillation teacher's first layer), batch 2: two column blocks
    ("pl_c1_3x3_relu", dict(n=2, c=1, mult=16, h=28, w_=28, k=(3, 3), pads=(1, 1, 1, 1)), "relu", ALL),
    # mnist-8's 5x5 layer: its im2col panel is far over the budget
    ("pl_5x5_14", dict(n=1, c=8, mult=16, h=14, w_=14, k=(5, 5), pads=(2, 2, 2, 2)), None, ("8x16", "4x32", "3x8")),
    # 7 columns: blocks of 2 rows of 8, the last one half outside; 10 channels = 8 + 2
    ("pl_7x7_rows_add", dict(n=1, c=6, mult=10, h=7, w_=7, k=(3, 3), pads=(1, 1, 1, 1)), "add", ("8x16", "4x24", "5x40")),
    # 14 of a padded row's 16 columns copied per input row: gcc 12.2 -O3 -mavx2 got the
    # copy loop wrong (batch 64, as in a CNN student's training step); 6 outputs: not Winograd
    ("pl_14x14_16to6", dict(n=64, c=16, mult=6, h=14, w_=14, k=(3, 3), pads=(1, 1, 1, 1)), None, ()),
    ("pl_dil2_asym", dict(n=1, c=4, mult=8, h=13, w_=19, k=(3, 3), pads=(2, 1, 2, 3), dil=(2, 2)), "clip", ()),
    ("pl_5x3_wide", dict(n=1, c=3, mult=12, h=9, w_=37, k=(5, 3), pads=(2, 1, 2, 1)), "relu", ("6x16", "2x32")),
    # planes over half the L2: copied and used a band of output rows at a time, on 200 x
    # 200 (a last band of fewer rows); forced blocks change the band's rows
    ("pl_bands_s1_clip", dict(n=1, c=4, mult=8, h=200, w_=200, k=(3, 3), pads=(1, 1, 1, 1)), "clip", ("8x16", "4x24")),
]:
    name, kw, epi, blocks = spec
    m, x, ref = dw(name, cpg=kw["c"], **kw)
    case(m, finish(m, ref, epi), "padded plane", blocks, v4=r"in \d+ bands of" if "bands" in name else
         V4_ACC if name in V4_CASES else None)
    check_bands(name, ref)
# strided layers through phase planes (the padded plane per stride phase): few
# input channels, or rows of 16 outputs or more; partial blocks at the right and
# the bottom; strides 2, 3 and 4, a stride-2 5x5, dilation with a stride
for spec in [
    # MobileNet's and UltraFace's first layer: 3 channels, 3x3 stride 2; 17 x 36 outputs
    ("ph_c3_s2_relu", dict(n=1, c=3, mult=8, h=33, w_=71, k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1)), "relu", ALL),
    ("ph_s2_asym_add", dict(n=1, c=4, mult=12, h=40, w_=41, k=(3, 3), stride=(2, 2), pads=(0, 1, 2, 0)), "add",
     ("8x16", "4x24", "3x8")),
    ("ph_s3x2_dil_clip", dict(n=1, c=2, mult=6, h=50, w_=46, k=(3, 3), stride=(3, 2), pads=(2, 1, 2, 1), dil=(2, 1)),
     "clip", ("6x16", "2x32")),
    ("ph_5x5_s2_batch3", dict(n=3, c=2, mult=16, h=35, w_=32, k=(5, 5), stride=(2, 2), pads=(2, 2, 2, 2)), "relu", ()),
    ("ph_4x4_s4", dict(n=1, c=3, mult=8, h=64, w_=64, k=(4, 4), stride=(4, 4)), None, ("8x16", "4x32")),
    # ResNet-8's 16->32 stride-2 layer: 16 channels, rows of 16
    ("ph_16to32_s2", dict(n=1, c=16, mult=32, h=32, w_=32, k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1)), "relu", ()),
    # planes over half the L2 (512 KB generic, 1 MB x86-64-v4), copied and used a band of
    # output rows at a time (see pl_bands_s1_clip): UltraFace's first layer on 121 x 96
    # outputs, batch 2
    ("ph_bands_s2_relu", dict(n=2, c=3, mult=16, h=241, w_=191, k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1)), "relu",
     ("6x16",)),
    # planes over half the L1 (32 KB generic, 48 KB x86-64-v4) in rows short enough for
    # bands of a quarter of it: MobileNet's first layer on 47 x 32 outputs
    ("ph_l1_bands_s2_clip", dict(n=1, c=3, mult=8, h=94, w_=64, k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1)), "clip",
     ("8x16",)),
]:
    name, kw, epi, blocks = spec
    m, x, ref = dw(name, cpg=kw["c"], **kw)
    case(m, finish(m, ref, epi), "padded plane", blocks, v4=r"in \d+ bands of" if "bands" in name else
         V4_ACC if name in V4_CASES else None)
    check_bands(name, ref)
    c = open(os.path.join(WORK, name, "m.c")).read()
    check(name + "_phase_planes", "phase planes of" in c, "no phase planes in the generated C")
for spec in [
    ("ic_s2_relu", dict(n=4, c=8, mult=16, h=15, w_=15, k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1)), "relu", ("8x16", "3x8")),
    ("ic_s2_5x5_add", dict(n=4, c=5, mult=12, h=17, w_=16, k=(5, 5), stride=(2, 2), pads=(2, 2, 2, 1)), "add", ()),
    # small images of a batch share a panel: 3 + 2 images of 49 pixels
    ("ic_s2_batch5_add", dict(n=5, c=4, mult=8, h=13, w_=13, k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1)), "add",
     ("8x16", "4x32")),
    # panels over the budget: chunks of output rows; rows of 3 and 4 outputs, so the
    # phase planes' blocks would be mostly padding; 258 outputs, past the channel-vector
    # kernel's maps, and 10 channels, too few for it to come first
    ("ic_s2_chunks_relu", dict(n=1, c=16, mult=32, h=172, w_=6, k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1)), "relu",
     ("8x16", "3x8")),
    ("ic_s2_chunks_clip", dict(n=1, c=6, mult=10, h=91, w_=7, k=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1)), "clip", ()),
]:
    name, kw, epi, blocks = spec
    m, x, ref = dw(name, cpg=kw["c"], **kw)
    case(m, finish(m, ref, epi), "im2col", blocks, v4=V4_ACC if name in V4_CASES else None)
    if "batch" in name:
        c = open(os.path.join(WORK, name, "m.c")).read()
        imgs = re.search(r"/\* im2col: .*, (\d+) image", c)
        check(name + "_images_share_a_panel", imgs and int(imgs.group(1)) > 1,
              "the panel holds %s image(s)" % (imgs.group(1) if imgs else "?"))
    if "chunks" in name:
        c = open(os.path.join(WORK, name, "m.c")).read()
        rows = re.search(r"/\* im2col: .* (\d+) output row", c)
        check(name + "_in_chunks", rows and int(rows.group(1)) < ref.shape[2],
              "the panel holds %s of %d output rows" % (rows.group(1) if rows else "?", ref.shape[2]))

# channel vectors (compiler/ops/conv.c): layers on small maps whose plane blocks
# would be mostly padding and whose im2col panel exceeds the budget; blocks of 6
# pixels (the last one partial: 100 = 16 x 6 + 4, 99 = 16 x 6 + 3, 140 = 23 x 6 + 2)
# x 2 vectors of output channels, or 12 x 1, read in place (no padding) or from
# padded planes, dilation, asymmetric padding, a 5x3 kernel, batch 2, epilogues;
# output channels that end inside a vector (12 and 20: their last lanes computed
# from zero weights and not stored) and stride 2. passes/layout.c stores the constant
# weights [C][K0][K1][Mp]: without padding the layer needs no scratch (the atmega
# shapes: 3 x 3 and 5 x 5 maps of a 2.4 KB arena)
for spec in [
    ("cv_lenet_5x5_relu", dict(n=1, c=6, mult=16, h=14, w_=14, k=(5, 5)), "relu", (), r"stored as \[150\]\[16\]"),
    ("cv_pad_9x11_add", dict(n=1, c=4, mult=16, h=9, w_=11, k=(3, 3), pads=(1, 1, 1, 1)), "add", (), None),
    ("cv_dil2_clip", dict(n=1, c=2, mult=16, h=10, w_=9, k=(3, 3), pads=(2, 2, 2, 2), dil=(2, 2)), "clip", (), None),
    ("cv_5x3_asym_batch2", dict(n=2, c=3, mult=16, h=8, w_=11, k=(5, 3), pads=(2, 1, 1, 0)), None, (), None),
    ("cv_m32_relu", dict(n=1, c=5, mult=32, h=12, w_=12, k=(3, 3)), "relu", (), None),
    ("cv_m12_3x3_on_3x3", dict(n=1, c=20, mult=12, h=5, w_=5, k=(3, 3)), None, ("4x16", "12x8", "2x16"),
     r"stored as \[180\]\[16\]"),
    ("cv_m20_s2_relu", dict(n=1, c=1, mult=20, h=14, w_=14, k=(5, 5), stride=(2, 2)), "relu", ("12x8", "3x24"),
     r"stored as \[25\]\[32\]"),
    ("cv_m24_s2_pad_batch2", dict(n=2, c=4, mult=24, h=9, w_=9, k=(5, 5), stride=(2, 2), pads=(2, 2, 2, 2)), "clip", (),
     r"stored as \[100\]\[32\], padded planes"),
]:
    name, kw, epi, blocks, v4 = spec
    m, x, ref = dw(name, cpg=kw["c"], **kw)
    case(m, finish(m, ref, epi), "channel vectors", blocks, v4=v4)
    if v4 is None:
        continue
    # the C reads the weights as stored, and a layer without padding has no scratch
    c = open(os.path.join(WORK, name, "m.c")).read()
    check(name + "_weights_stored", re.search(r"/\* channel vectors: .*weights stored as", c) is not None,
          "the weights are packed on every call")
    if kw.get("pads", (0,)) == (0, 0, 0, 0):
        check(name + "_no_scratch", re.search(r"static void kd_n0_\w+\([^)]*\by1\b", c) is None,
              "the node function has a scratch argument")

# weights that are not constant (a graph input) are packed on every call into the
# scratch, 12 channels of a 16-float row
m = Model("cv_m12_weights_input")
x, w_in, b = arr((1, 6, 7, 7)), arr((12, 6, 3, 3), 0.3), arr((12,), 0.1)
m.input("x", x)
m.input("w", w_in)
m.init("b", b)
m.node("c = Conv(x, w, b)")
ref = finish(m, F.conv2d(t64(x), t64(w_in), t64(b)), "relu")
case(m, ref, "channel vectors", v4=r"packed as \[54\]\[16\]")

# channel dots (compiler/ops/conv.c): tiny maps of many input channels, vectors over
# the input channels, weights stored [M][K0][K1][C] by passes/layout.c. Detector heads
# (256 -> 6 and 128 -> 12 on 4 x 5), stride 2 with asymmetric padding, dilation 2 (one
# run per tap), a 5x3 kernel with 40 output channels (a remainder block), epilogues,
# forced blocks; batches of 3-4, for the channels-last map to fit a one-node model's
# budget
for spec in [
    ("cd_head_256x6_relu", dict(n=3, c=256, mult=6, h=4, w_=5, k=(3, 3), pads=(1, 1, 1, 1)), "relu",
     ("2x6", "4x3", "12x1", "6x16")),
    ("cd_head_12_add", dict(n=3, c=128, mult=12, h=4, w_=5, k=(3, 3), pads=(1, 1, 1, 1)), "add", ()),
    ("cd_s2_asym_clip", dict(n=3, c=64, mult=20, h=9, w_=8, k=(3, 3), stride=(2, 2), pads=(0, 1, 2, 0)), "clip", ()),
    ("cd_dil2", dict(n=3, c=64, mult=8, h=6, w_=6, k=(3, 3), pads=(2, 2, 2, 2), dil=(2, 2)), None, ()),
    ("cd_5x3_m40_relu", dict(n=4, c=72, mult=40, h=5, w_=7, k=(5, 3), pads=(2, 1, 2, 1)), "relu", ("4x3",)),
]:
    name, kw, epi, blocks = spec
    m, x, ref = dw(name, cpg=kw["c"], **kw)
    case(m, finish(m, ref, epi), "channel dots", blocks)
# one image: the 43 KB map does not fit under the node's own 21 KB of tensors, so the
# weights keep their order and another kernel takes the layer
m, x, ref = dw("cd_one_image_falls_back", n=1, c=256, mult=6, h=4, w_=5, k=(3, 3), pads=(1, 1, 1, 1), cpg=256)
ref = finish(m, ref, "relu")
m.out = "float[%s] y" % ",".join(str(d) for d in ref.shape)
res = build_run(m, os.path.join(WORK, m.name), [])
if res:
    check(m.name + "_other_kernel", "/* channel dots:" not in res[0], "the channel-dot kernel took it")
    compare(m.name + "_output", res[1], ref)

# a detector's last feature map: a pointwise layer on 4 x 5 (the channel-vector form)
# whose only readers are two channel-dot heads; passes/layout.c stores it
# channels-last, so its store writes runs of channels and the heads copy runs
m = Model("cd_heads_channels_last")
x = arr((3, 64, 4, 5))
w1, b1 = arr((256, 64, 1, 1), 0.2), arr((256,), 0.1)
wa, ba, wb, bb = arr((6, 256, 3, 3), 0.05), arr((6,), 0.1), arr((12, 256, 3, 3), 0.05), arr((12,), 0.1)
m.input("x", x)
for nm, a in (("w1", w1), ("b1", b1), ("wa", wa), ("ba", ba), ("wb", wb), ("bb", bb)):
    m.init(nm, a)
m.node("c = Conv(x, w1, b1)")
m.node("h = Relu(c)")
m.node("a = Conv<pads = [1, 1, 1, 1]>(h, wa, ba)")
m.node("e = Conv<pads = [1, 1, 1, 1]>(h, wb, bb)")
m.node("y = Concat<axis = 1>(a, e)")
h = F.relu(F.conv2d(t64(x), t64(w1), t64(b1)))
ref = torch.cat([F.conv2d(h, t64(wa), t64(ba), padding=1), F.conv2d(h, t64(wb), t64(bb), padding=1)], 1).numpy()
m.out = "float[%s] y" % ",".join(str(d) for d in ref.shape)
for tag, opts in (("", []), ("_v4", ["--target", "x86-64-v4"])):
    res = build_run(m, os.path.join(WORK, m.name + tag), opts, run=not (tag and SANITIZED_KDCC))
    if res:
        check(m.name + tag + "_stored", "output stored channels-last" in res[0], "the pointwise layer stores NCHW")
        check(m.name + tag + "_read", res[0].count("copied from an input stored channels-last") == 2,
              "not both heads read it channels-last")
        if res[1] is not None:
            compare(m.name + tag + "_output", res[1], ref)

# ---- depthwise-separable stacks with the activations stored channels-last
# (passes/layout.c): pointwise layers in the channel-vector form, depthwise layers in
# conv_dw.c's emit_dwl (vectors over the channels, the edge pixels with their own
# taps), a global pool at the end. On x86-64-v4 and the generic target (vectors of 16
# and 4 floats); cortex-m4 (no vectors) keeps every activation NCHW. Cases: DS-CNN's
# 25 x 5 map; stride 2 with asymmetric padding, 20 channels (a last vector of 4 on
# x86-64-v4) and batch 2; a 5x5 kernel with dilation on a 3 x 3 map (no interior
# pixel), Clip; GlobalMaxPool; a residual Add reading a pointwise output, which keeps
# that value NCHW while the rest of the stack stays channels-last.
def dwpw_case(name, n, c, h, w_, layers, pool="GlobalAveragePool", residual=None, want=(0, 0), pairs=(0, 0)):
    """layers: ("dw", k, stride, pads, dil, epi), ("pw", out_channels, epi) or ("conv", out_channels, k, stride,
    pads, epi) on an n x c x h x w_ input;
    residual: a layer whose output a ReduceMean reads too (added to the pool), a reader that needs NCHW;
    want: on the vector targets, the depthwise and pointwise layers that take channels-last activations;
    pairs: the pointwise layers whose weights are stored in pairs of input channels, generic and x86-64-v4"""
    m = Model(name)
    x = arr((n, c, h, w_))
    m.input("x", x)
    cur, t, ch, outs = "x", t64(x), c, []
    for i, L in enumerate(layers):
        if L[0] == "dw":
            _, k, st, pads, dil, epi = L
            wt, b = arr((ch, 1) + k, 0.3), arr((ch,), 0.1)
            m.node("c%d = Conv<group = %d, strides = [%d, %d], pads = [%d, %d, %d, %d], dilations = [%d, %d]>(%s, w%d, b%d)"
                   % ((i, ch) + st + pads + dil + (cur, i, i)))
            t = F.conv2d(F.pad(t, (pads[1], pads[3], pads[0], pads[2])), t64(wt), t64(b), stride=st, dilation=dil,
                         groups=ch)
        elif L[0] == "conv":
            _, mo, k, st, pads, epi = L
            wt, b = arr((mo, ch) + k, 0.3), arr((mo,), 0.1)
            m.node("c%d = Conv<strides = [%d, %d], pads = [%d, %d, %d, %d]>(%s, w%d, b%d)" % ((i,) + st + pads + (cur, i, i)))
            t = F.conv2d(F.pad(t, (pads[1], pads[3], pads[0], pads[2])), t64(wt), t64(b), stride=st)
            ch = mo
        else:
            _, mo, epi = L
            wt, b = arr((mo, ch, 1, 1), 0.3), arr((mo,), 0.1)
            m.node("c%d = Conv(%s, w%d, b%d)" % (i, cur, i, i))
            t = F.conv2d(t, t64(wt), t64(b))
            ch = mo
        m.init("w%d" % i, wt)
        m.init("b%d" % i, b)
        if epi == "relu":
            m.node("a%d = Relu(c%d)" % (i, i))
            t = F.relu(t)
        else:
            m.init("lo%d" % i, np.array([0], np.float32))
            m.init("hi%d" % i, np.array([6], np.float32))
            m.node("a%d = Clip(c%d, lo%d, hi%d)" % (i, i, i, i))
            t = torch.clamp(t, 0, 6)
        cur = "a%d" % i
        outs.append(t)
    m.node("g = %s(%s)" % (pool, cur))
    ref = F.adaptive_avg_pool2d(t, 1) if pool == "GlobalAveragePool" else F.adaptive_max_pool2d(t, 1)
    if residual is not None:
        m.node("r = ReduceMean<axes = [2, 3], keepdims = 1>(a%d)" % residual)
        m.node("y = Add(g, r)")
        ref = ref + outs[residual].mean(dim=(2, 3), keepdim=True)
    else:
        m.node("y = Identity(g)")
    ref = ref.numpy()
    m.out = "float[%s] y" % ",".join(str(d) for d in ref.shape)
    for tag, opts in (("", []), ("_v4", ["--target", "x86-64-v4"]), ("_m4", ["--target", "cortex-m4"])):
        res = build_run(m, os.path.join(WORK, name + tag), opts, run=not (tag and SANITIZED_KDCC))
        if not res:
            continue
        ndw = res[0].count("/* depthwise: channels last, vectors over")
        if any(L[0] == "conv" for L in layers):   # the channel-vector kernel writes the first depthwise layer's input
            check(name + tag + "_conv_kernel", ("/* channel vectors:" in res[0]) == (tag != "_m4"),
                  "the channel-vector kernel %s the first layer" % ("took" if tag == "_m4" else "did not take"))
        npw = len(re.findall(r"/\* pointwise: .*(input|output) stored channels-last", res[0]))
        exp = (0, 0) if tag == "_m4" else want
        check(name + tag + "_channels_last", (ndw, npw) == exp,
              "channels-last depthwise/pointwise layers %d/%d, expected %d/%d" % ((ndw, npw) + exp))
        npairs, epairs = res[0].count(" in pairs of input channels"), {"": pairs[0], "_v4": pairs[1]}.get(tag, 0)
        check(name + tag + "_pairs", npairs == epairs, "%d pointwise layers in pairs, expected %d" % (npairs, epairs))
        if res[1] is not None:
            compare(name + tag + "_output", res[1], ref)


DW3 = ("dw", (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), "relu")
dwpw_case("cl_dscnn_25x5", 1, 32, 25, 5, [("pw", 64, "relu"), DW3, ("pw", 64, "relu"), DW3, ("pw", 48, "relu")],
          want=(2, 3))
dwpw_case("cl_s2_asym_batch2", 2, 12, 13, 11, [("pw", 20, "clip"), ("dw", (3, 3), (2, 2), (0, 1, 2, 0), (1, 1), "clip"),
                                               ("pw", 24, "relu")], want=(1, 2), pairs=(0, 1))
dwpw_case("cl_5x5_3x3map_max", 1, 16, 3, 3, [("pw", 32, "relu"), ("dw", (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), "clip"),
                                             ("pw", 16, "relu")], pool="GlobalMaxPool", want=(1, 2),
          pairs=(0, 1))
dwpw_case("cl_dil2_7x6", 1, 8, 7, 6, [("pw", 16, "relu"), ("dw", (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), "relu"),
                                      ("pw", 16, "clip")], want=(1, 2), pairs=(0, 1))
# rows wider than a few blocks of pixels (dwl_block: 4 pixels on x86-64-v4, 2 on
# generic): the interior in a loop of blocks, the rest of the row at constant columns;
# stride 2 with dilation 2, where a block's pixels share input columns differently
dwpw_case("cl_wide_rows", 1, 16, 5, 23, [("pw", 32, "relu"), DW3, ("pw", 32, "relu"),
                                         ("dw", (3, 3), (2, 2), (2, 1, 2, 2), (2, 2), "clip"), ("pw", 16, "relu")],
          want=(2, 3), pairs=(0, 1))
# DS-CNN's first layer (one input channel, 10x4 stride 2 on 49 x 10), here 5x3 stride 2
# on 19 x 6 into 32 channels: the channel-vector kernel stores its output channels-last
dwpw_case("cl_cv_first_s2", 1, 1, 19, 6, [("conv", 32, (5, 3), (2, 2), (2, 1, 2, 1), "relu"), DW3, ("pw", 32, "relu")],
          want=(1, 1))
# the residual reader keeps a2 NCHW, so the second depthwise layer and the last
# pointwise layer stay as they were
dwpw_case("cl_residual_reader", 1, 16, 9, 9, [("pw", 32, "relu"), DW3, ("pw", 32, "relu"), DW3, ("pw", 32, "relu")],
          residual=2, want=(1, 2))

# Few output channels after a channels-last map: the weights in pairs of input channels
# (two lanes per output channel, added at the store) where that takes fewer vectors,
# 6 outputs on 16 lanes (1 instead of 2), 36 on 8 (9 instead of 10) and 16 (5 instead
# of 6), the 36 in blocks of 16 or 32 outputs and one of 4, over two images; or, on 16
# lanes, where the outputs fit in one vector (16 above); an odd C never.
dwpw_case("cl_pairs_heads", 1, 16, 9, 7, [("pw", 32, "relu"), DW3, ("pw", 6, "relu")], want=(1, 2), pairs=(0, 1))
dwpw_case("cl_pairs_four", 1, 16, 9, 7, [("pw", 16, "relu"), DW3, ("pw", 4, "clip")], want=(1, 2), pairs=(1, 1))
dwpw_case("cl_pairs_wide_batch2", 2, 8, 5, 6, [("pw", 16, "relu"), DW3, ("pw", 36, "relu")], want=(1, 2), pairs=(1, 1))
# the residual reader keeps the head's output NCHW: the pairs' sums stored over planes
dwpw_case("cl_pairs_nchw_out", 1, 16, 9, 7, [("pw", 32, "relu"), DW3, ("pw", 4, "clip")], residual=2, want=(1, 2),
          pairs=(1, 1))
dwpw_case("cl_pairs_odd_c", 1, 16, 9, 7, [("pw", 17, "relu"), DW3, ("pw", 4, "relu")], want=(1, 2))

def head_case(name, n, c, h, w_, mo, perm, reshape, views):
    """A detector's head on a depthwise-separable stack: pointwise 32, depthwise 3x3, a
    pointwise head of mo channels, then Transpose<perm> (then a Reshape to [n, -1, 2]
    when reshape, else the Transpose's output is the graph's). views: on the vector
    targets, 1 if the Transpose moves no data (its input stored channels-last)."""
    m = Model(name)
    x = arr((n, c, h, w_))
    m.input("x", x)
    ws = [(arr((32, c, 1, 1), 0.3), arr((32,), 0.1)), (arr((32, 1, 3, 3), 0.3), arr((32,), 0.1)),
          (arr((mo, 32, 1, 1), 0.3), arr((mo,), 0.1))]
    for i, (wt, b) in enumerate(ws):
        m.init("w%d" % i, wt)
        m.init("b%d" % i, b)
    m.node("c0 = Conv(x, w0, b0)")
    m.node("a0 = Relu(c0)")
    m.node("c1 = Conv<group = 32, pads = [1, 1, 1, 1]>(a0, w1, b1)")
    m.node("a1 = Relu(c1)")
    m.node("c2 = Conv(a1, w2, b2)")
    t = F.relu(F.conv2d(t64(x), t64(ws[0][0]), t64(ws[0][1])))
    t = F.relu(F.conv2d(t, t64(ws[1][0]), t64(ws[1][1]), padding=1, groups=32))
    t = F.conv2d(t, t64(ws[2][0]), t64(ws[2][1])).permute(*perm)
    m.node("%s = Transpose<perm = [%s]>(c2)" % ("t" if reshape else "y", ", ".join(str(a) for a in perm)))
    if reshape:
        m.inits.append("int64[3] shp = {%d, -1, 2}" % n)
        m.node("y = Reshape(t, shp)")
        t = t.reshape(n, -1, 2)
    ref = t.numpy()
    m.out = "float[%s] y" % ",".join(str(d) for d in ref.shape)
    for tag, opts in (("", []), ("_v4", ["--target", "x86-64-v4"]), ("_m4", ["--target", "cortex-m4"])):
        res = build_run(m, os.path.join(WORK, name + tag), opts, run=not (tag and SANITIZED_KDCC))
        if not res:
            continue
        copies = len(re.findall(r"static void kd_n\d+_Transpose\(", res[0]))
        want = 1 if tag == "_m4" else 1 - views
        check(name + tag + "_transpose", copies == want, "%d Transpose copies, expected %d" % (copies, want))
        if res[1] is not None:
            compare(name + tag + "_output", res[1], ref)


# the head's Transpose to [N][H][W][C] as a view of its channels-last output, over two
# images; as the graph's output, a copy reading that order; another permutation, too
head_case("head_nhwc_view_batch2", 2, 8, 7, 5, 6, (0, 2, 3, 1), True, 1)
head_case("head_nhwc_graph_output", 1, 8, 7, 5, 6, (0, 2, 3, 1), False, 0)
head_case("head_perm_0312", 1, 8, 7, 5, 4, (0, 3, 1, 2), True, 0)

# the comparison can fail: a 0.1% error is beyond the tolerance
probe = np.array([1.0, 2.0, 3.0])
check("compare_can_fail", np.max(np.abs(probe * 1.001 - probe) / (1 + np.abs(probe))) > 1e-4)

check.finish()
